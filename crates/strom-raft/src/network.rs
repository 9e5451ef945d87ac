//! The transport seam: openraft's RPCs as [`RaftRequest`]/[`RaftResponse`] values that
//! encode to bytes, sent by the caller's [`RaftTransport`] and served by
//! [`crate::Quorum::handle`].
//!
//! Encoding is JSON (serde_json): openraft's message types derive serde with attributes
//! (tagged enums, skipped fields) that only self-describing formats round-trip, the
//! metadata log already stores JSON, and the workspace already has serde_json. Snapshot
//! chunks cost more as JSON arrays of bytes, which the metadata log's size makes fine.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{EmptyNode, RaftNetwork, RaftNetworkFactory};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::storage::Shared;
use crate::{NodeId, TypeConfig};

/// A raft RPC from one voter to another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RaftRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
}

/// The answer to a [`RaftRequest`] of the same kind.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
}

/// Bytes that are not a request or response of this crate.
#[derive(Debug, thiserror::Error)]
#[error("malformed raft message: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

impl RaftRequest {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("raft requests always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

impl RaftResponse {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("raft responses always serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// The peer cannot be reached now (refused, no route): openraft backs off.
    #[error("node {0} unreachable: {1}")]
    Unreachable(NodeId, String),
    /// The request or its response was lost or timed out.
    #[error("network error talking to node {0}: {1}")]
    Network(NodeId, String),
}

/// Sends raft RPCs to other nodes (the caller's sockets; an in-memory network in tests).
#[async_trait]
pub trait RaftTransport: Send + Sync + 'static {
    /// Sends `request` to node `target` at `address` (a voter's CONTROLLER listener from
    /// the configured voters, or the address the application gave an observer) and waits
    /// for its response.
    async fn send(
        &self,
        target: NodeId,
        address: &str,
        request: RaftRequest,
    ) -> Result<RaftResponse, TransportError>;
}

/// When each peer last answered, and when it last had everything the leader had.
#[derive(Default)]
pub(crate) struct Contacts(Mutex<HashMap<NodeId, Contact>>);

#[derive(Clone, Copy)]
struct Contact {
    answered: Instant,
    /// When an AppendEntries was sent that brought the peer to the leader's log end then
    /// (Kafka's last caught-up time).
    caught_up: Option<Instant>,
}

impl Contacts {
    fn touch(&self, node: NodeId, caught_up_since: Option<Instant>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let contact = map.entry(node).or_insert(Contact {
            answered: now,
            caught_up: None,
        });
        contact.answered = now;
        if let Some(at) = caught_up_since {
            contact.caught_up = Some(contact.caught_up.map_or(at, |c| c.max(at)));
        }
    }

    fn millis_since_each(
        &self,
        node: NodeId,
        pick: impl Fn(&Contact) -> Option<Instant>,
    ) -> Option<u64> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&node)
            .and_then(pick)
            .map(|at| at.elapsed().as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub(crate) fn millis_since(&self, node: NodeId) -> Option<u64> {
        self.millis_since_each(node, |c| Some(c.answered))
    }

    pub(crate) fn millis_since_caught_up(&self, node: NodeId) -> Option<u64> {
        self.millis_since_each(node, |c| c.caught_up)
    }
}

/// Where each node is reached: the configured voters, and the observers the application
/// names (from its own committed state, so every voter knows them once it leads).
pub(crate) struct AddressBook {
    voters: BTreeMap<NodeId, String>,
    observers: RwLock<BTreeMap<NodeId, String>>,
}

impl AddressBook {
    pub(crate) fn new(voters: BTreeMap<NodeId, String>) -> Self {
        Self {
            voters,
            observers: RwLock::new(BTreeMap::new()),
        }
    }

    /// Looked up at each send: an observer's address may be learned after its
    /// replication stream started.
    fn address(&self, node: NodeId) -> Option<String> {
        self.voters.get(&node).cloned().or_else(|| {
            self.observers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&node)
                .cloned()
        })
    }

    pub(crate) fn set_observers(&self, mut observers: BTreeMap<NodeId, String>) {
        observers.retain(|id, _| !self.voters.contains_key(id));
        *self.observers.write().unwrap_or_else(|e| e.into_inner()) = observers;
    }
}

#[derive(Clone)]
pub(crate) struct NetworkFactory {
    pub(crate) transport: Arc<dyn RaftTransport>,
    pub(crate) addresses: Arc<AddressBook>,
    pub(crate) contacts: Arc<Contacts>,
    /// The leader's own log, to tell whether an AppendEntries reaches its end.
    pub(crate) shared: Arc<Shared>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, _node: &EmptyNode) -> PeerClient {
        PeerClient {
            target,
            factory: self.clone(),
        }
    }
}

pub(crate) struct PeerClient {
    target: NodeId,
    factory: NetworkFactory,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>>;

// The error type is openraft's, fixed by its `RaftNetwork` trait.
#[allow(clippy::result_large_err)]
impl PeerClient {
    async fn call<E: std::error::Error>(
        &self,
        request: RaftRequest,
    ) -> Result<RaftResponse, RPCError<NodeId, EmptyNode, RaftError<NodeId, E>>> {
        let sent_at = Instant::now();
        // The entries end where the leader's log ended when sent: a success means the
        // peer was caught up at `sent_at`.
        let reaches_log_end = match &request {
            RaftRequest::AppendEntries(r) => {
                let request_end = r
                    .entries
                    .last()
                    .map(|e| e.log_id.index)
                    .or(r.prev_log_id.map(|l| l.index));
                request_end >= self.factory.shared.cache().last_index()
            }
            _ => false,
        };
        let Some(address) = self.factory.addresses.address(self.target) else {
            let e = TransportError::Unreachable(self.target, "no known address".into());
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        };
        let response = self
            .factory
            .transport
            .send(self.target, &address, request)
            .await
            .map_err(|e| match e {
                TransportError::Unreachable(..) => RPCError::Unreachable(Unreachable::new(&e)),
                TransportError::Network(..) => RPCError::Network(NetworkError::new(&e)),
            })?;
        let caught_up = reaches_log_end
            && matches!(
                response,
                RaftResponse::AppendEntries(Ok(AppendEntriesResponse::Success))
            );
        self.factory
            .contacts
            .touch(self.target, caught_up.then_some(sent_at));
        Ok(response)
    }

    fn mismatch<T, E: std::error::Error>(&self, response: &RaftResponse) -> RpcResult<T, E> {
        let e = std::io::Error::other(format!(
            "voter {} answered with the wrong kind of response: {response:?}",
            self.target
        ));
        Err(RPCError::Network(NetworkError::new(&e)))
    }

    fn remote<T, E: std::error::Error>(&self, e: RaftError<NodeId, E>) -> RpcResult<T, E> {
        Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        match self.call(RaftRequest::AppendEntries(rpc)).await? {
            RaftResponse::AppendEntries(Ok(r)) => Ok(r),
            RaftResponse::AppendEntries(Err(e)) => self.remote(e),
            other => self.mismatch(&other),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        match self.call(RaftRequest::InstallSnapshot(rpc)).await? {
            RaftResponse::InstallSnapshot(Ok(r)) => Ok(r),
            RaftResponse::InstallSnapshot(Err(e)) => self.remote(e),
            other => self.mismatch(&other),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        match self.call(RaftRequest::Vote(rpc)).await? {
            RaftResponse::Vote(Ok(r)) => Ok(r),
            RaftResponse::Vote(Err(e)) => self.remote(e),
            other => self.mismatch(&other),
        }
    }
}
