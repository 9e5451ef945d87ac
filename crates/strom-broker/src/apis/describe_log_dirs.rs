//! DescribeLogDirs: every log dir with its partitions' sizes and its disk space; an
//! offline dir with KAFKA_STORAGE_ERROR and nothing else, as Kafka answers.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct DescribeLogDirsHandler;

impl Handler for DescribeLogDirsHandler {
    type Request = DescribeLogDirsRequest;
    const KEY: ApiKey = ApiKey::DescribeLogDirs;
    const VERSIONS: VersionRange = VersionRange { min: 1, max: 4 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeLogDirsRequest,
    ) -> DescribeLogDirsResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::Describe) {
            return DescribeLogDirsResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        let wanted = |topic: &str, partition: i32| match &request.topics {
            None => true,
            Some(topics) => topics
                .iter()
                .any(|t| t.topic.as_str() == topic && t.partitions.contains(&partition)),
        };
        let partitions = broker.all_partitions();
        let results = broker
            .data_dirs()
            .iter()
            .map(|data_dir| {
                let dir =
                    std::fs::canonicalize(&data_dir.path).unwrap_or_else(|_| data_dir.path.clone());
                let result = DescribeLogDirsResult::default()
                    .with_log_dir(StrBytes::from_string(dir.display().to_string()))
                    .with_total_bytes(-1)
                    .with_usable_bytes(-1);
                if data_dir.is_offline() {
                    return result.with_error_code(ErrorCode::KafkaStorageError.code());
                }
                let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
                for partition in partitions
                    .iter()
                    .filter(|p| Arc::ptr_eq(p.data_dir(), data_dir))
                {
                    if !wanted(&partition.topic, partition.index) {
                        continue;
                    }
                    let size = partition.with_log(|log| Ok(log.size_bytes())).unwrap_or(0);
                    by_topic.entry(partition.topic.clone()).or_default().push(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(partition.index)
                            .with_partition_size(size as i64),
                    );
                }
                let topics = by_topic
                    .into_iter()
                    .map(|(name, mut partitions)| {
                        partitions.sort_by_key(|p| p.partition_index);
                        DescribeLogDirsTopic::default()
                            .with_name(TopicName(StrBytes::from_string(name)))
                            .with_partitions(partitions)
                    })
                    .collect();
                // total_bytes and usable_bytes exist from v4.
                let (total_bytes, usable_bytes) = if ctx.api_version >= 4 {
                    disk_space(&dir).unwrap_or((-1, -1))
                } else {
                    (-1, -1)
                };
                result
                    .with_topics(topics)
                    .with_total_bytes(total_bytes)
                    .with_usable_bytes(usable_bytes)
            })
            .collect();
        DescribeLogDirsResponse::default().with_results(results)
    }
}

/// Total and available bytes of the file system holding `dir`.
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stats` is a valid out-pointer.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    let fragment = stats.f_frsize as i64;
    Some((
        stats.f_blocks as i64 * fragment,
        stats.f_bavail as i64 * fragment,
    ))
}
