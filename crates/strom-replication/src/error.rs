//! Errors named as Kafka names them; strom-broker's errors.rs maps them to codes.

use thiserror::Error;

use crate::ReplicaId;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplicationError {
    /// acks=all refused before the append: the committed ISR is below min.insync.replicas.
    #[error(
        "the ISR has {isr_size} replicas, fewer than min.insync.replicas {min_insync_replicas}"
    )]
    NotEnoughReplicas {
        isr_size: usize,
        min_insync_replicas: usize,
    },
    /// acks=all appended, but the ISR was below min.insync.replicas when the high
    /// watermark reached the append.
    #[error("appended, but the ISR has {isr_size} replicas, fewer than min.insync.replicas {min_insync_replicas}")]
    NotEnoughReplicasAfterAppend {
        isr_size: usize,
        min_insync_replicas: usize,
    },
    #[error("the request timed out")]
    RequestTimedOut,
    #[error("this broker is not the leader or a follower of the partition")]
    NotLeaderOrFollower,
    /// The request's leader epoch is older than the partition's.
    #[error("leader epoch {request_epoch} is older than the current {current_epoch}")]
    FencedLeaderEpoch {
        request_epoch: i32,
        current_epoch: i32,
    },
    /// The request's leader epoch is newer than the partition's, or the replica is not
    /// (yet) one of the partition's replicas in it.
    #[error("leader epoch {request_epoch} is not known (current {current_epoch})")]
    UnknownLeaderEpoch {
        request_epoch: i32,
        current_epoch: i32,
    },
    #[error("offset {offset} is outside [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("corrupt record batch: {0}")]
    CorruptRecord(String),
    #[error("the partition is not known")]
    UnknownTopicOrPartition,
    /// The partition's log dir is offline (Kafka's KAFKA_STORAGE_ERROR).
    #[error("storage error: {0}")]
    KafkaStorageError(String),
    /// Fetched batches do not start at the follower's log end offset.
    #[error("fetched batches start at {first_offset}, the log ends at {log_end_offset}")]
    UnexpectedAppendOffset {
        first_offset: i64,
        log_end_offset: i64,
    },
    /// The request did not reach the other broker or its answer did not come back.
    #[error("network error: {0}")]
    NetworkException(String),
    #[error("unexpected server error: {0}")]
    UnknownServerError(String),
}

/// Why the controller refused an AlterPartition (Kafka's names), or why it never answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AlterPartitionError {
    #[error("the controller did not apply the change")]
    OperationNotAttempted,
    #[error("replica {0} may not join the ISR")]
    IneligibleReplica(ReplicaId),
    #[error("the controller does not know the partition")]
    UnknownTopicOrPartition,
    #[error("the controller does not know the topic id")]
    UnknownTopicId,
    #[error("the leader epoch is stale")]
    FencedLeaderEpoch,
    #[error("the partition epoch is stale")]
    InvalidUpdateVersion,
    #[error("the request is invalid")]
    InvalidRequest,
    #[error("applied, but this replica left the replica set and is no longer the leader")]
    NewLeaderElected,
    #[error("the broker asked is not the active controller")]
    NotController,
    #[error("the request timed out")]
    RequestTimedOut,
    #[error("network error: {0}")]
    NetworkException(String),
    #[error("unexpected server error: {0}")]
    UnknownServerError(String),
}
