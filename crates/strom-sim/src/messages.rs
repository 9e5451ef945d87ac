//! What brokers, the controller and the client send each other over the simulated network.

use bytes::Bytes;
use strom_metadata::alter_partition::{AlterPartitionRequest, AlterPartitionResult};
use strom_metadata::cluster_control::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, BrokerRegistrationRequest,
};
use strom_metadata::ControllerError;
use strom_replication::{FetchedPartition, LeaderOffsets, ReplicationError};
use strom_types::NodeId;

#[derive(Debug, Clone)]
pub struct Message {
    pub from: NodeId,
    /// The sender's incarnation (0 for the client), for the reply's `to_incarnation`.
    pub from_incarnation: u64,
    pub to: NodeId,
    /// The incarnation of `to` a reply is meant for: a restarted node drops replies to
    /// requests its previous life sent.
    pub to_incarnation: Option<u64>,
    pub payload: Payload,
}

#[derive(Debug, Clone)]
pub enum Payload {
    /// Follower -> leader, for one partition.
    Replica {
        id: u64,
        partition: i32,
        replica_id: i32,
        broker_epoch: i64,
        request: ReplicaRequest,
    },
    ReplicaReply {
        id: u64,
        partition: i32,
        reply: ReplicaReply,
    },
    Controller {
        id: u64,
        request: ControllerRequest,
    },
    ControllerReply {
        id: u64,
        reply: ControllerReply,
    },
    Produce {
        id: u64,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        batch: Bytes,
    },
    ProduceReply {
        id: u64,
        /// The base offset of the batch.
        result: Result<i64, ReplicationError>,
    },
    ConsumerFetch {
        id: u64,
        partition: i32,
        offset: i64,
    },
    ConsumerFetchReply {
        id: u64,
        partition: i32,
        result: Result<Bytes, ReplicationError>,
    },
}

impl Payload {
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Replica { .. } => "replica",
            Payload::ReplicaReply { .. } => "replica-reply",
            Payload::Controller { .. } => "controller",
            Payload::ControllerReply { .. } => "controller-reply",
            Payload::Produce { .. } => "produce",
            Payload::ProduceReply { .. } => "produce-reply",
            Payload::ConsumerFetch { .. } => "consumer-fetch",
            Payload::ConsumerFetchReply { .. } => "consumer-fetch-reply",
        }
    }
}

#[derive(Debug, Clone)]
pub enum ReplicaRequest {
    OffsetForLeaderEpoch {
        current_leader_epoch: i32,
        leader_epoch: i32,
    },
    Fetch {
        current_leader_epoch: i32,
        fetch_offset: i64,
        last_fetched_epoch: Option<i32>,
        log_start_offset: i64,
    },
    ListOffsets {
        current_leader_epoch: i32,
    },
}

#[derive(Debug, Clone)]
pub enum ReplicaReply {
    OffsetForLeaderEpoch(Result<Option<(i32, i64)>, ReplicationError>),
    Fetch(Result<FetchedPartition, ReplicationError>),
    ListOffsets(Result<LeaderOffsets, ReplicationError>),
}

#[derive(Debug, Clone)]
pub enum ControllerRequest {
    Register(BrokerRegistrationRequest),
    Heartbeat(BrokerHeartbeatRequest),
    AlterPartition(AlterPartitionRequest),
}

#[derive(Debug, Clone)]
pub enum ControllerReply {
    Registered(Result<i64, ControllerError>),
    Heartbeat(Result<BrokerHeartbeatReply, ControllerError>),
    AlterPartition(Result<Vec<AlterPartitionResult>, ControllerError>),
    /// This node is not the active controller (or lost leadership while proposing).
    NotController,
}
