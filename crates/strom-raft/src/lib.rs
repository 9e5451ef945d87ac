//! The metadata quorum: strom's metadata log (`__cluster_metadata-0`) replicated with
//! openraft 0.9 among the voters of `controller.quorum.voters`.
//!
//! - [`Quorum`] runs one Raft node: [`Quorum::propose`] appends records as one entry and
//!   answers once they are committed and applied here, [`Quorum::catch_up`] is the leader's
//!   read index, [`Quorum::handle`] serves the RPCs peers send through a [`RaftTransport`].
//! - The committed log reaches the application through one [`MetadataStateMachine`], in
//!   log order; a snapshot is the records [`MetadataStateMachine::snapshot`] returns.
//! - [`FileStorage`] keeps the log in a strom-log `PartitionLog` (raft index == offset,
//!   batch leader epoch == raft term), the vote in `quorum-state` and snapshots in
//!   `<offset>-<term>.checkpoint` files; [`MemStorage`] is its in-memory model for tests and
//!   simulation. Any storage I/O error stops the node: [`Quorum::fatal`] resolves.
//!
//! The crate opens no sockets: the transport is the caller's. It runs on tokio ([`Runtime`]);
//! the random election timeouts come from a generator a simulation can seed ([`seed_rng`]).

mod config;
mod network;
mod quorum;
mod runtime;
mod state_machine;
mod storage;

use std::io::Cursor;

pub use config::QuorumConfig;
pub use network::{DecodeError, RaftRequest, RaftResponse, RaftTransport, TransportError};
pub use quorum::{ProposeError, Quorum, QuorumError, QuorumStatus, VoterStatus};
pub use runtime::{seed_rng, unseed_rng, Runtime, RuntimeRng};
pub use state_machine::MetadataStateMachine;
pub use storage::{FaultInjector, FileStorage, MemStorage, Storage, METADATA_LOG_DIR};

/// A voter's id (Kafka's `node.id`).
pub type NodeId = u64;

/// The records of one normal entry, each kept as its JSON text: the storage and the
/// transport never need the application's record type.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EntryRecords(pub Vec<Box<serde_json::value::RawValue>>);

openraft::declare_raft_types!(
    /// openraft's types for the metadata quorum.
    pub TypeConfig:
        D = EntryRecords,
        R = (),
        NodeId = NodeId,
        Node = openraft::EmptyNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = Runtime,
);

/// A raft log entry as stored and sent.
pub type Entry = openraft::Entry<TypeConfig>;
/// A raft log id: the term (with the leader that wrote it) and the index (== offset).
pub type LogId = openraft::LogId<NodeId>;
