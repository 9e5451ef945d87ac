//! strom's group coordinator, sans-io.
//!
//! The broker hosts one [`GroupCoordinatorShard`] per partition of the internal
//! compacted topic `__consumer_offsets` (`offsets.topic.num.partitions`, 50 by
//! default) and routes each group's requests to the shard of
//! [`group_partition`]`(group_id, partitions)`. A shard does no I/O, spawns
//! nothing and never reads a clock: every call takes `now_ms`.
//!
//! # Driving a shard
//!
//! * Load: create the shard with [`GroupCoordinatorShard::new`] (and
//!   [`with_member_id_seed`](GroupCoordinatorShard::with_member_id_seed) with a
//!   random seed), replay every record of the partition in offset order (data
//!   records with [`replay_at`](GroupCoordinatorShard::replay_at)`(offset, producer,
//!   record)`, where `producer` is the batch's `(producer id, epoch)` if it is
//!   transactional; control records with
//!   [`replay_control`](GroupCoordinatorShard::replay_control)`(offset, producer_id,
//!   commit)`; [`replay`](GroupCoordinatorShard::replay) is `replay_at` for a
//!   non-transactional record at the next position), then call
//!   [`loaded`](GroupCoordinatorShard::loaded) once (loaded members must heartbeat
//!   within their session timeout from then).
//! * Requests: `join_group`, `sync_group`, `heartbeat`, `leave_group`,
//!   `offset_commit`, `offset_fetch`, `offset_delete`, `list_groups`,
//!   `describe_groups`, `delete_groups`, `txn_offset_commit`, each taking
//!   `(now_ms, request_id, api_version, request)` (`join_group` also takes the
//!   [`ClientInfo`]) with the `kafka-protocol` request struct as decoded for
//!   `api_version`. Each returns an [`Output`].
//! * [`Output`]: append `records` to the partition (in order) first, then each
//!   of `transactional_records` as a transactional batch of its producer, then send
//!   `replies`. A JoinGroup or SyncGroup may be parked and answered by a later
//!   call's output (including `tick`); one output may answer several requests.
//!   Every request id is answered exactly once (a parked request superseded by a
//!   retry of the same member is answered with REBALANCE_IN_PROGRESS).
//! * Time: call [`tick`](GroupCoordinatorShard::tick) at
//!   [`next_deadline_ms`](GroupCoordinatorShard::next_deadline_ms) (and after any
//!   call, since deadlines move). It expires sessions, completes join phases at the
//!   rebalance timeout or the end of `group.initial.rebalance.delay.ms`, expires
//!   pending syncs, and every `offsets.retention.check.interval.ms` expires offsets
//!   and deletes empty groups left with none.
//! * Transactions (KIP-98, KIP-447): `txn_offset_commit` writes the offsets as a
//!   transactional batch; they stay pending per producer id (OffsetFetch does not
//!   show them; with `require_stable` their partitions answer
//!   UNSTABLE_OFFSET_COMMIT) until the runtime has written the producer's commit or
//!   abort marker to this partition and calls
//!   [`complete_transaction`](GroupCoordinatorShard::complete_transaction)`(now_ms,
//!   producer_id, commit, marker_offset)`. On commit each pending offset replaces the
//!   committed one unless a non-transactional commit of the partition was written
//!   later; on abort they are dropped. "Later" compares log positions: replay uses
//!   the records' offsets, live records take the next position in emission order,
//!   so outputs must reach the log in the order the shard returned them (see
//!   [`Output`]). A tombstone (OffsetDelete, DeleteGroups, topic deletion) drops
//!   pending offsets of its partition; expiry skips partitions with a pending
//!   offset and keeps a group while a transaction with its offsets is open.
//! * Unload: [`unload`](GroupCoordinatorShard::unload) answers parked requests
//!   with NOT_COORDINATOR.
//!
//! # Consumer groups (KIP-848)
//!
//! * Topics: call [`set_topic_metadata`](GroupCoordinatorShard::set_topic_metadata)
//!   with every topic of the cluster (`name -> (topic id, partition count)`) once the
//!   shard exists (before or after replay) and again whenever topics are created,
//!   deleted or grow. It bumps the epoch of consumer groups whose subscribed topics
//!   changed (append its records like any output). Until the first call,
//!   ConsumerGroupHeartbeat answers COORDINATOR_LOAD_IN_PROGRESS.
//! * Requests: [`consumer_group_heartbeat`](GroupCoordinatorShard::consumer_group_heartbeat)
//!   `(now_ms, request_id, api_version, &ClientInfo, request)` and
//!   [`consumer_group_describe`](GroupCoordinatorShard::consumer_group_describe)
//!   `(now_ms, request_id, api_version, request)`; both answer at once. ListGroups,
//!   DescribeGroups, DeleteGroups and the offset APIs see consumer groups too.
//! * Timers: session expiry (`group.consumer.session.timeout.ms`) and the rebalance
//!   timeout of members that do not revoke run through the same `tick`.
//! * A group id is either classic or consumer. A consumer heartbeat (epoch 0) takes
//!   over an empty classic group and a new JoinGroup member an empty consumer group
//!   (offsets stay). Non-empty groups of the other type are refused: the heartbeat
//!   with GROUP_ID_NOT_FOUND (Kafka's answer when online upgrade is not possible),
//!   JoinGroup with INCONSISTENT_GROUP_PROTOCOL.
//!
//! # State
//!
//! Persisted state (a classic group's metadata as of its last completed rebalance
//! or when it became empty; a consumer group's epochs, members, target and current
//! assignments; committed offsets; deletions) changes in memory only by
//! applying records through the same code as [`replay`](GroupCoordinatorShard::replay).
//! Transient state (members joining, parked requests, deadlines) changes directly.
//! Groups are typed ([`GroupType`]); a group id belongs to one type.
//!
//! # Record format
//!
//! [`CoordinatorRecord`] keys and values are UTF-8 JSON; a `None` value is a
//! tombstone, so compaction keeps the latest record per key. Transactional offset
//! commits are ordinary committed-offset records in a transactional batch.
//!
//! | record | key | value |
//! |---|---|---|
//! | committed offset | `{"type":"offset_commit","group":G,"topic":T,"partition":P}` | `{"version":1,"offset":i64,"leader_epoch":i32,"metadata":str,"commit_timestamp_ms":i64,"expire_timestamp_ms":i64\|null}` |
//! | classic group | `{"type":"classic_group","group":G}` | `{"version":1,"protocol_type":str\|null,"generation":i32,"protocol":str\|null,"leader":str\|null,"current_state_timestamp_ms":i64,"members":[{"member_id","group_instance_id","client_id","client_host","rebalance_timeout_ms","session_timeout_ms","subscription":hex,"assignment":hex}]}` |
//!
//! | consumer group | `{"type":"consumer_group","group":G}` | `{"version":1,"epoch":i32,"subscription_metadata":[{"topic","topic_id":uuid,"partitions":i32}]}` |
//! | consumer member | `{"type":"consumer_group_member","group":G,"member":M}` | `{"version":1,"instance_id","rack_id","client_id","client_host","subscribed_topic_names":[str],"subscribed_topic_regex","server_assignor","rebalance_timeout_ms"}` |
//! | target assignment | `{"type":"consumer_group_target_assignment","group":G,"member":M}` | `{"version":1,"partitions":[{"topic_id":uuid,"partitions":[i32]}]}` |
//! | target epoch | `{"type":"consumer_group_target_assignment_epoch","group":G}` | `{"version":1,"assignment_epoch":i32}` |
//! | current assignment | `{"type":"consumer_group_current_assignment","group":G,"member":M}` | `{"version":1,"member_epoch","previous_member_epoch","state":"stable"\|"unrevoked_partitions"\|"unreleased_partitions","assigned":[..],"pending_revocation":[..]}` |
//!
//! A departing consumer member gets tombstones for its current assignment, target
//! and metadata (in that order); a deleted consumer group additionally for its
//! target epoch and group record.
//!
//! `subscription` is the member's metadata for the selected protocol; byte fields
//! are lower-case hex. A group value with no members is an Empty group (kept for its
//! generation and the time it became empty); a group tombstone deletes the group,
//! after tombstones for its offsets. Values with an unknown `version` are refused.

mod admin;
mod assignor;
mod classic;
mod config;
mod consumer;
mod member_id;
mod offsets;
mod offsets_api;
mod output;
mod records;
mod shard;
mod subscription;
mod txn_offsets;

pub use classic::ClassicGroupState;
pub use config::{GroupConfig, GroupOverrides};
pub use consumer::ConsumerGroupState;
pub use output::{Output, Reply, TransactionalRecords};
pub use records::{
    ClassicGroupValue, ClassicMemberValue, ConsumerCurrentAssignmentValue, ConsumerGroupValue,
    ConsumerMemberValue, ConsumerTargetAssignmentEpochValue, ConsumerTargetAssignmentValue,
    CoordinatorRecord, DecodedRecord, MemberState, OffsetCommitValue, RecordError, RecordKey,
    TopicMetadataValue, TopicPartitionsValue, RECORD_VALUE_VERSION,
};
pub use shard::{ClientInfo, GroupCoordinatorShard};

/// Kafka's `offsets.topic.num.partitions` default.
pub const DEFAULT_OFFSETS_TOPIC_PARTITIONS: i32 = 50;

/// The kinds of group a shard can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    /// JoinGroup/SyncGroup groups.
    Classic,
    /// ConsumerGroupHeartbeat groups (KIP-848).
    Consumer,
}

pub use strom_types::java_string_hashcode;

/// The `__consumer_offsets` partition that owns `group_id`, as Kafka computes it:
/// `Utils.abs(groupId.hashCode()) % partitions` with `Utils.abs(n) = n & 0x7fffffff`.
/// Returns 0 when `partitions` is not positive.
pub fn group_partition(group_id: &str, partitions: i32) -> i32 {
    strom_types::internal_topic_partition(group_id, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_matches_kafka() {
        // Java: "".hashCode() == 0, "a".hashCode() == 97.
        assert_eq!(java_string_hashcode(""), 0);
        assert_eq!(java_string_hashcode("a"), 97);
        assert_eq!(java_string_hashcode("ab"), 97 * 31 + 98);
        // Overflowing hash: "polygenelubricants".hashCode() == Integer.MIN_VALUE in Java.
        assert_eq!(java_string_hashcode("polygenelubricants"), i32::MIN);
        assert_eq!(group_partition("polygenelubricants", 50), 0);
        // Utils.abs masks the sign bit rather than negating.
        let h = java_string_hashcode("test-group");
        assert_eq!(group_partition("test-group", 50), (h & 0x7fff_ffff) % 50);
        assert_eq!(group_partition("g", 0), 0);
        // Non-BMP characters hash as two UTF-16 units, as in Java.
        assert_eq!(java_string_hashcode("\u{1F600}"), 0xD83D * 31 + 0xDE00);
    }
}
