//! DescribeLogDirs: the one log dir, its partitions' sizes and its disk space.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Handler, RequestContext};
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
        let wanted = |topic: &str, partition: i32| match &request.topics {
            None => true,
            Some(topics) => topics
                .iter()
                .any(|t| t.topic.as_str() == topic && t.partitions.contains(&partition)),
        };
        let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
        for partition in broker.all_partitions() {
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
        let dir = std::fs::canonicalize(&broker.config.log_dir)
            .unwrap_or_else(|_| broker.config.log_dir.clone());
        // total_bytes and usable_bytes exist from v4.
        let (total_bytes, usable_bytes) = if ctx.api_version >= 4 {
            disk_space(&dir).unwrap_or((-1, -1))
        } else {
            (-1, -1)
        };
        DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
            .with_log_dir(StrBytes::from_string(dir.display().to_string()))
            .with_topics(topics)
            .with_total_bytes(total_bytes)
            .with_usable_bytes(usable_bytes)])
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
