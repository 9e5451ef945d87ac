//! Kafka's partition replication, as pure state machines: no sockets, no clocks (`now_ms`
//! is passed in), no async. The broker drives them with real requests and a real log; a
//! deterministic simulation drives the same code over [`MemLog`] and an in-memory network.
//!
//! - [`LeaderState`]: one partition this broker leads. Followers' progress, the high
//!   watermark (smallest log end offset of the maximal ISR, KIP-497), ISR expansion and
//!   shrink proposals (sent by the caller as AlterPartition), min.insync.replicas checks,
//!   and KIP-320 validation of a follower's last fetched epoch.
//! - [`FollowerState`]: one partition this broker follows. Truncation (OffsetForLeaderEpoch
//!   or a diverging epoch in a Fetch response), then fetching; responses become
//!   [`FollowerStep`]s the caller applies to its log.
//! - [`AckWaiters`]: acks=all produce requests waiting for the high watermark.
//! - [`ReplicaLog`]: what replication reads of a log; implemented for strom-log's
//!   `PartitionLog` and for [`MemLog`], the in-memory model.
//!
//! - [`preferred_read_replica`]: KIP-392, the replica a consumer should fetch from
//!   (`replica.selector.class`, Kafka's RackAwareReplicaSelector).
//! - [`quota`]: replication throttling (Kafka's ReplicationQuotaManager) as a token
//!   bucket over passed-in time, and the throttled-replicas topic configs.
//!
//! Errors carry Kafka's names; the broker maps them to error codes.

mod acks;
mod batches;
mod error;
mod follower;
mod leader;
mod log;
mod mem_log;
pub mod quota;
mod read_replica;
pub mod testing;

pub use acks::{AckWaiters, AckWaitersFull, CompletedAck};
pub use batches::{BatchSpan, RecordBatches};
pub use error::{AlterPartitionError, ReplicationError};
pub use follower::{
    FetchedPartition, FollowerAction, FollowerConfig, FollowerPhase, FollowerRequest,
    FollowerState, FollowerStep, LeaderOffsets,
};
pub use leader::{
    AckStatus, AlterPartitionProposal, AlterPartitionRetry, BrokerStatus, CommittedIsr,
    DivergingEpoch, FetchOutcome, FollowerFetch, FollowerProgress, IsrMember, IsrState,
    LeaderConfig, LeaderState, MetadataOutcome, PartitionState,
};
pub use log::ReplicaLog;
pub use mem_log::{MemBatch, MemLog, MemLogError, PrefixMismatch};
pub use read_replica::{
    preferred_read_replica, ReplicaSelector, ReplicaView, RACK_AWARE_REPLICA_SELECTOR,
};

/// A broker id, as Kafka's replica ids.
pub type ReplicaId = i32;

/// Kafka's `replica.lag.time.max.ms` default.
pub const DEFAULT_REPLICA_LAG_TIME_MAX_MS: i64 = 30_000;
/// Kafka's `replica.fetch.backoff.ms` default.
pub const DEFAULT_REPLICA_FETCH_BACKOFF_MS: i64 = 1_000;
/// A follower's log end offset before its first fetch to a new leader (Kafka's UnknownOffset).
pub const UNKNOWN_OFFSET: i64 = -1;
