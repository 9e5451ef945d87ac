//! [`Quorum`]: one node of the metadata quorum.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::raft::AppendEntriesResponse;
use openraft::{Config, Raft, ServerState, SnapshotPolicy};
use tracing::{info, warn};

use crate::network::{AddressBook, Contacts, NetworkFactory};
use crate::state_machine::{encode_records, StateMachineStore};
use crate::storage::{LogStore, Shared, Storage};
use crate::{
    MetadataStateMachine, NodeId, QuorumConfig, RaftRequest, RaftResponse, RaftTransport,
    TypeConfig,
};

/// Why a quorum could not start, or stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QuorumError {
    #[error("invalid quorum config: {0}")]
    Config(String),
    /// The stored state could not be read (or a stored snapshot not restored).
    #[error("metadata storage: {0}")]
    Storage(String),
    /// The node stopped on an error it cannot go on from (a metadata log I/O error).
    #[error("metadata quorum stopped: {0}")]
    Fatal(String),
    /// The node was shut down.
    #[error("metadata quorum shut down")]
    Stopped,
}

/// Why a proposal (or a catch-up) did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader takes proposals; `leader` is the one this node knows, if any.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// The leader could not reach a majority to confirm it still leads.
    #[error("no quorum: {0}")]
    NoQuorum(String),
    /// A record could not be serialized.
    #[error("record cannot be encoded: {0}")]
    Encode(String),
    /// A membership change (adding or removing an observer) was refused, e.g. while the
    /// previous one is not committed yet: try again.
    #[error("membership change refused: {0}")]
    Membership(String),
    /// The node stopped (see [`Quorum::fatal`]).
    #[error("metadata quorum stopped: {0}")]
    Fatal(String),
}

/// One voter as the local node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterStatus {
    pub node_id: NodeId,
    /// The last offset known to match the leader's log (leader only; the leader's own is
    /// its log end).
    pub matched_offset: Option<u64>,
    /// Milliseconds since the voter last answered this node.
    pub last_contact_ms_ago: Option<u64>,
    /// Milliseconds since the voter last had this node's whole log (leader only; Kafka's
    /// last caught-up time).
    pub last_caught_up_ms_ago: Option<u64>,
}

/// What DescribeQuorum reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    pub node_id: NodeId,
    pub leader: Option<NodeId>,
    pub term: u64,
    /// The last offset applied here (every applied entry is committed).
    pub applied_offset: Option<u64>,
    /// The last offset in the local log.
    pub last_offset: Option<u64>,
    /// The last offset the newest snapshot covers.
    pub snapshot_offset: Option<u64>,
    pub voters: Vec<VoterStatus>,
    /// The observers (openraft learners) of the current membership, as the voters are
    /// reported.
    pub observers: Vec<VoterStatus>,
}

/// One node of the metadata quorum (see the crate docs).
pub struct Quorum<SM: MetadataStateMachine> {
    raft: Raft<TypeConfig>,
    node_id: NodeId,
    voters: Vec<NodeId>,
    contacts: Arc<Contacts>,
    /// The last leader whose AppendEntries this node accepted, and when.
    leader_heard: std::sync::Mutex<Option<(NodeId, tokio::time::Instant)>>,
    shared: Arc<Shared>,
    addresses: Arc<AddressBook>,
    _state_machine: PhantomData<fn(SM)>,
}

impl<SM: MetadataStateMachine> Quorum<SM> {
    /// Starts the node: loads the storage, restores `sm` from the stored snapshot, and
    /// joins the quorum. On an empty storage every voter initializes the same membership
    /// (the configured voters). A one-voter quorum leads at once. Returns once the node
    /// knows a leader (and, when it leads, has applied everything committed), or after
    /// four election timeouts.
    pub async fn start(
        config: QuorumConfig,
        storage: impl Into<Storage>,
        transport: Arc<dyn RaftTransport>,
        sm: SM,
    ) -> Result<Self, QuorumError> {
        if config.voters.is_empty() {
            return Err(QuorumError::Config("no voters".into()));
        }
        let raft_config = Config {
            cluster_name: "strom-metadata".to_string(),
            election_timeout_min: (config.election_timeout_ms / 2).max(1),
            election_timeout_max: config.election_timeout_ms.max(2),
            heartbeat_interval: config.heartbeat_interval_ms,
            install_snapshot_timeout: config.election_timeout_ms.max(200),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every_entries),
            // The log is purged up to each snapshot: a follower behind it gets the snapshot.
            max_in_snapshot_log_to_keep: 0,
            ..Config::default()
        }
        .validate()
        .map_err(|e| QuorumError::Config(e.to_string()))?;

        let shared =
            Shared::load(storage.into()).map_err(|e| QuorumError::Storage(e.to_string()))?;
        let fresh = {
            let cache = shared.cache();
            cache.vote.is_none()
                && cache.entries.is_empty()
                && cache.last_purged.is_none()
                && cache.snapshot.is_none()
        };
        let state_machine = StateMachineStore::new(sm, shared.clone())
            .map_err(|e| QuorumError::Storage(format!("restoring the snapshot: {e}")))?;
        let contacts = Arc::new(Contacts::default());
        let addresses = Arc::new(AddressBook::new(config.voters.clone()));
        let network = NetworkFactory {
            transport,
            addresses: addresses.clone(),
            contacts: contacts.clone(),
            shared: shared.clone(),
        };
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            LogStore {
                shared: shared.clone(),
            },
            state_machine,
        )
        .await
        .map_err(|e| QuorumError::Fatal(e.to_string()))?;
        // The core publishes its first metrics from its own task: until then the status
        // says "empty log", and a caller waiting to apply its stored log would not wait.
        let stored_last = shared.cache().last_index();
        let _ = raft
            .wait(Some(Duration::from_millis(
                config.election_timeout_ms.saturating_mul(4),
            )))
            .metrics(
                |m| m.last_log_index >= stored_last || m.running_state.is_err(),
                "the stored log is loaded",
            )
            .await;

        // An observer never initializes a membership: the leader's first AppendEntries
        // (once it added this node) brings the log and its membership.
        if fresh && !config.is_observer() {
            match raft.initialize(config.voter_ids()).await {
                Ok(()) => {
                    info!(node_id = config.node_id, voters = ?config.voter_ids(), "initialized the metadata quorum")
                }
                // A peer's leader reached this node first: it already has state.
                Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                    info!(error = %e, "metadata quorum already initialized")
                }
                Err(e) => return Err(QuorumError::Fatal(e.to_string())),
            }
        } else if config.is_single_voter() && raft.metrics().borrow().state != ServerState::Leader {
            raft.trigger()
                .elect()
                .await
                .map_err(|e| QuorumError::Fatal(e.to_string()))?;
        }

        let quorum = Self {
            raft,
            node_id: config.node_id,
            voters: config.voters.keys().copied().collect(),
            contacts,
            leader_heard: std::sync::Mutex::new(None),
            shared,
            addresses,
            _state_machine: PhantomData,
        };
        let bound = Duration::from_millis(config.election_timeout_ms.saturating_mul(4));
        // A voter among several returns at once: its peers may need it to elect anyone,
        // and they reach it only once the caller serves its transport. So does an
        // observer: the leader reaches it there.
        if !config.is_single_voter() {
            return Ok(quorum);
        }
        let known = quorum
            .raft
            .wait(Some(bound))
            .metrics(
                |m| m.current_leader.is_some() || m.running_state.is_err(),
                "a leader is known",
            )
            .await;
        if known.is_err() {
            warn!(
                node_id = config.node_id,
                "no metadata quorum leader known yet"
            );
        }
        if let Some(e) = quorum.stopped() {
            return Err(e);
        }
        if quorum.is_leader() {
            let _ = tokio::time::timeout(bound, quorum.catch_up()).await;
        }
        Ok(quorum)
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Proposes records as one entry; returns its offset once committed and applied here.
    pub async fn propose(&self, records: Vec<SM::Record>) -> Result<u64, ProposeError> {
        let entry = encode_records(&records).map_err(|e| ProposeError::Encode(e.to_string()))?;
        match self.raft.client_write(entry).await {
            Ok(written) => Ok(written.log_id.index),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ProposeError::Fatal(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(ProposeError::Fatal(e.to_string())),
        }
    }

    /// On the leader: returns once everything committed before the call is applied here
    /// (openraft's `ensure_linearizable`, a read index confirmed by a majority).
    pub async fn catch_up(&self) -> Result<(), ProposeError> {
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => {
                Err(ProposeError::NoQuorum(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(ProposeError::Fatal(e.to_string())),
        }
    }

    /// The leader this node knows of.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The last leader other than this node that this node accepted entries from, and
    /// how long ago: when this node leads now, how long that leader has been silent.
    pub fn last_heard_leader(&self) -> Option<(NodeId, Duration)> {
        let heard = *self.leader_heard.lock().unwrap_or_else(|p| p.into_inner());
        heard
            .filter(|(leader, _)| *leader != self.node_id)
            .map(|(leader, at)| (leader, at.elapsed()))
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics.state == ServerState::Leader && metrics.current_leader == Some(self.node_id)
    }

    pub fn status(&self) -> QuorumStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let matched: BTreeMap<NodeId, Option<u64>> = metrics
            .replication
            .as_ref()
            .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
            .unwrap_or_default();
        let replica_status = |node_id: NodeId| {
            if node_id == self.node_id {
                // This node: up to date with itself; matched only as the leader.
                VoterStatus {
                    node_id,
                    matched_offset: (metrics.state == ServerState::Leader)
                        .then_some(metrics.last_log_index)
                        .flatten(),
                    last_contact_ms_ago: Some(0),
                    last_caught_up_ms_ago: Some(0),
                }
            } else {
                VoterStatus {
                    node_id,
                    matched_offset: matched.get(&node_id).copied().flatten(),
                    last_contact_ms_ago: self.contacts.millis_since(node_id),
                    last_caught_up_ms_ago: self.contacts.millis_since_caught_up(node_id),
                }
            }
        };
        QuorumStatus {
            node_id: self.node_id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            applied_offset: metrics.last_applied.map(|l| l.index),
            last_offset: metrics.last_log_index,
            snapshot_offset: metrics.snapshot.map(|l| l.index),
            observers: metrics
                .membership_config
                .membership()
                .learner_ids()
                .map(replica_status)
                .collect(),
            voters: self.voters.iter().copied().map(replica_status).collect(),
        }
    }

    /// Where observers are reached; the application sets it from its committed state on
    /// every node, so a new leader knows them. Voters' entries are ignored.
    pub fn set_observer_addresses(&self, addresses: BTreeMap<NodeId, String>) {
        self.addresses.set_observers(addresses);
    }

    /// The observers (learners) of the membership this node knows.
    pub fn observers(&self) -> Vec<NodeId> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .learner_ids()
            .collect()
    }

    /// On the leader: makes `node` an observer (an openraft learner, which the leader
    /// sends the log to and which applies only what is committed). Returns once the
    /// membership entry is committed; nothing to do when it already is one.
    pub async fn add_observer(&self, node: NodeId) -> Result<(), ProposeError> {
        if self.voters.contains(&node) || self.observers().contains(&node) {
            return Ok(());
        }
        let added = self
            .raft
            .add_learner(node, openraft::EmptyNode {}, false)
            .await;
        self.membership_result(added)?;
        info!(node, "added an observer of the metadata log");
        Ok(())
    }

    /// On the leader: stops sending the log to observer `node` (a decommissioned broker).
    pub async fn remove_observer(&self, node: NodeId) -> Result<(), ProposeError> {
        if !self.observers().contains(&node) {
            return Ok(());
        }
        let removed = self
            .raft
            .change_membership(
                openraft::ChangeMembers::RemoveNodes([node].into_iter().collect()),
                false,
            )
            .await;
        self.membership_result(removed)?;
        info!(node, "removed an observer of the metadata log");
        Ok(())
    }

    fn membership_result<T>(
        &self,
        result: Result<T, RaftError<NodeId, ClientWriteError<NodeId, openraft::EmptyNode>>>,
    ) -> Result<(), ProposeError> {
        match result {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ProposeError::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                Err(ProposeError::Membership(e.to_string()))
            }
            Err(RaftError::Fatal(e)) => Err(ProposeError::Fatal(e.to_string())),
        }
    }

    /// The server side of the transport: answers a peer's request.
    pub async fn handle(&self, request: RaftRequest) -> RaftResponse {
        match request {
            RaftRequest::AppendEntries(r) => {
                let leader = r.vote.leader_id().voted_for();
                let response = self.raft.append_entries(r).await;
                // Any answer but a higher vote means this node took the sender as leader.
                let accepted = matches!(&response, Ok(r) if !matches!(r, AppendEntriesResponse::HigherVote(_)));
                if let (Some(leader), true) = (leader, accepted) {
                    *self.leader_heard.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some((leader, tokio::time::Instant::now()));
                }
                RaftResponse::AppendEntries(response)
            }
            RaftRequest::Vote(r) => RaftResponse::Vote(self.raft.vote(r).await),
            RaftRequest::InstallSnapshot(r) => {
                RaftResponse::InstallSnapshot(self.raft.install_snapshot(r).await)
            }
        }
    }

    fn stopped(&self) -> Option<QuorumError> {
        match &self.raft.metrics().borrow().running_state {
            Ok(()) => None,
            Err(openraft::error::Fatal::Stopped) => Some(QuorumError::Stopped),
            Err(e) => Some(QuorumError::Fatal(e.to_string())),
        }
    }

    /// Resolves when the node stopped on a fatal error (a metadata log I/O error): the
    /// process should exit, as Kafka's controller does.
    pub async fn fatal(&self) -> QuorumError {
        let mut metrics = self.raft.metrics();
        loop {
            if let Some(e) = self.stopped() {
                return e;
            }
            if metrics.changed().await.is_err() {
                return self.stopped().unwrap_or(QuorumError::Stopped);
            }
        }
    }

    /// Stops the node (its storage is left as a restart expects it). Requests after it
    /// fail with [`ProposeError::Fatal`]. A file log is closed without a sync: the
    /// caller syncs the filesystem and then finishes the returned close.
    pub async fn shutdown(&self) -> Option<strom_log::UnsyncedClose> {
        if let Err(e) = self.raft.shutdown().await {
            warn!(error = %e, "metadata quorum did not shut down cleanly");
            return None;
        }
        match self.shared.run(|backend| backend.close()).await {
            Ok(closing) => closing,
            Err(e) => {
                warn!(error = %e, "closing the metadata log failed");
                None
            }
        }
    }
}
