//! TxnOffsetCommit (KIP-98, KIP-447): offsets committed within a transaction.
//!
//! The offsets go out as one transactional batch of the request's producer and stay
//! pending (invisible to OffsetFetch) until the producer's commit or abort marker
//! reaches this shard's partition (`complete_transaction` / `replay_control`).

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use strom_types::ErrorCode;

use crate::classic::responses::code_of;
use crate::offsets_api::java_length;
use crate::output::{Output, Reply};
use crate::records::{CoordinatorRecord, OffsetCommitValue, RECORD_VALUE_VERSION};
use crate::shard::{Group, GroupCoordinatorShard};

impl GroupCoordinatorShard {
    /// TxnOffsetCommit. Validation as Kafka: an unknown group with generation -1
    /// becomes a simple group (else ILLEGAL_GENERATION); v3+ members (KIP-447) are
    /// checked by member id, group instance id and generation (a consumer group's
    /// member epoch; a stale one answers ILLEGAL_GENERATION). A failed check answers
    /// every partition with its error; OFFSET_METADATA_TOO_LARGE is per partition.
    /// Producer fencing and transaction verification are the runtime's.
    pub fn txn_offset_commit(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        request: TxnOffsetCommitRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let group_id = request.group_id.0.to_string();
        let member_id = request.member_id.to_string();
        let generation_id = request.generation_id;
        let validation = if group_id.is_empty() {
            Err(ErrorCode::InvalidGroupId)
        } else {
            match self.groups.get(&group_id) {
                Some(Group::Classic(group)) => group.validate_offset_commit(
                    &member_id,
                    request.group_instance_id.as_deref(),
                    generation_id,
                    true,
                ),
                Some(Group::Consumer(group)) => group
                    .validate_offset_commit(&member_id, generation_id, api_version, true)
                    .map_err(|error| match error {
                        ErrorCode::StaleMemberEpoch => ErrorCode::IllegalGeneration,
                        other => other,
                    }),
                None if generation_id < 0 => Ok(()),
                None => Err(ErrorCode::IllegalGeneration),
            }
        };
        let max_metadata = usize::try_from(self.config.offset_metadata_max_bytes).unwrap_or(0);
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let metadata = p.committed_metadata.as_deref().unwrap_or("");
                    let result = validation.and_then(|()| {
                        if java_length(metadata) > max_metadata {
                            return Err(ErrorCode::OffsetMetadataTooLarge);
                        }
                        let value = OffsetCommitValue {
                            version: RECORD_VALUE_VERSION,
                            offset: p.committed_offset,
                            // Decoded as -1 below v2, which has no leader epoch.
                            leader_epoch: p.committed_leader_epoch,
                            metadata: metadata.to_owned(),
                            commit_timestamp_ms: now_ms,
                            expire_timestamp_ms: None,
                        };
                        records.push(CoordinatorRecord::offset_commit(
                            &group_id,
                            topic.name.0.as_str(),
                            p.partition_index,
                            Some(&value),
                        ));
                        Ok(())
                    });
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code_of(result))
                })
                .collect();
            topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
        if validation.is_ok() {
            // A simple group exists from its first commit on, even if nothing was written.
            self.ensure_group(&group_id);
        }
        self.append_transactional(
            &mut out,
            request.producer_id.0,
            request.producer_epoch,
            records,
        );
        out.reply(
            request_id,
            Reply::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(topics)),
        );
        out
    }
}
