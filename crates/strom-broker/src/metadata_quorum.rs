//! The metadata quorum as a node runs it: `strom-raft`'s [`Quorum`] over the metadata log
//! in `<log.dirs>/__cluster_metadata-0`, whose one state machine is the broker itself
//! (committed records become the broker's image, and its hosted partitions follow), and
//! whose Raft messages travel as node requests (`node_rpc`) to the voters' CONTROLLER
//! listeners.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use strom_metadata::MetadataRecord;
use strom_raft::{
    MetadataStateMachine, NodeId, Quorum, QuorumConfig, RaftRequest, RaftResponse, RaftTransport,
    TransportError,
};

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::node_rpc::{NodeRpcClient, NodeRpcError};

pub type MetadataQuorum = Quorum<MetadataApplier>;

/// Entries applied between snapshots of the image: the metadata log stays this short.
const SNAPSHOT_EVERY_ENTRIES: u64 = 2_000;
/// The leader's heartbeat, well inside the shortest election timeout.
const HEARTBEAT_DIVISOR: u64 = 5;

/// The quorum settings of a node, from its KRaft configs. With no voters configured the
/// node is a quorum of one.
pub fn quorum_config(config: &BrokerConfig) -> QuorumConfig {
    let node_id = config.node_id as NodeId;
    let cluster = &config.cluster;
    let mut quorum = QuorumConfig::single(node_id);
    if !cluster.voters.is_empty() {
        quorum.voters = cluster
            .voters
            .iter()
            .map(|v| (v.id as NodeId, format!("{}:{}", v.host, v.port)))
            .collect();
    }
    // KRaft starts an election once a follower has not fetched from the leader for
    // `controller.quorum.fetch.timeout.ms` (2000), and a candidate retries after about
    // `controller.quorum.election.timeout.ms` (1000). openraft waits its leader lease plus
    // a random election timeout, 1.5 to 2 of its longest election timeout: half the fetch
    // timeout keeps that within it.
    let fetch_timeout = cluster.controller_quorum_fetch_timeout_ms.max(2) as u64;
    let election_timeout = cluster.controller_quorum_election_timeout_ms.max(2) as u64;
    quorum.election_timeout_ms = election_timeout.min(fetch_timeout / 2).max(2);
    quorum.heartbeat_interval_ms = (quorum.election_timeout_ms / 2 / HEARTBEAT_DIVISOR).max(1);
    quorum.snapshot_every_entries = SNAPSHOT_EVERY_ENTRIES;
    quorum
}

/// The broker as the quorum's state machine. Applying opens and closes partition logs,
/// which is file I/O: it runs in `block_in_place`, off the async workers' queue.
pub struct MetadataApplier {
    pub(crate) broker: Weak<Broker>,
}

impl MetadataStateMachine for MetadataApplier {
    type Record = MetadataRecord;

    fn apply(&mut self, offset: u64, records: &[MetadataRecord]) {
        if let Some(broker) = self.broker.upgrade() {
            tokio::task::block_in_place(|| broker.apply_committed(offset, records));
        }
    }

    fn snapshot(&self) -> Vec<MetadataRecord> {
        self.broker
            .upgrade()
            .map(|broker| broker.applied_image().to_records())
            .unwrap_or_default()
    }

    fn restore(&mut self, offset: u64, records: Vec<MetadataRecord>) {
        if let Some(broker) = self.broker.upgrade() {
            tokio::task::block_in_place(|| broker.restore_image(offset, &records));
        }
    }
}

/// Answers a node request (a Raft message from another voter) that came in on a
/// CONTROLLER listener.
pub async fn handle_node_request(
    broker: &Broker,
    body: &[u8],
) -> Result<Vec<u8>, NodeRequestError> {
    let request = RaftRequest::decode(body)?;
    // Still starting: the connection closes and the sender retries.
    let quorum = broker
        .metadata_quorum()
        .ok_or(NodeRequestError::NotStarted)?;
    Ok(quorum.handle(request).await.encode())
}

#[derive(Debug, thiserror::Error)]
pub enum NodeRequestError {
    #[error(transparent)]
    Decode(#[from] strom_raft::DecodeError),
    #[error("the metadata quorum is still starting")]
    NotStarted,
}

/// Raft messages to other voters as node requests on their CONTROLLER listeners.
pub struct NodeTransport {
    client: NodeRpcClient,
    timeout: Duration,
}

impl NodeTransport {
    pub fn new(config: &BrokerConfig) -> Arc<Self> {
        Arc::new(Self {
            client: NodeRpcClient::new(config.socket_request_max_bytes),
            timeout: Duration::from_millis(
                config.cluster.controller_quorum_fetch_timeout_ms.max(1) as u64,
            ),
        })
    }
}

#[async_trait]
impl RaftTransport for NodeTransport {
    async fn send(
        &self,
        target: NodeId,
        address: &str,
        request: RaftRequest,
    ) -> Result<RaftResponse, TransportError> {
        let body = self
            .client
            .call(address, &request.encode(), self.timeout)
            .await
            .map_err(|e| match e {
                NodeRpcError::Io { error, .. }
                    if error.kind() == std::io::ErrorKind::ConnectionRefused =>
                {
                    TransportError::Unreachable(target, error.to_string())
                }
                other => TransportError::Network(target, other.to_string()),
            })?;
        RaftResponse::decode(&body).map_err(|e| TransportError::Network(target, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn quorum_with(settings: &[(&str, &str)]) -> QuorumConfig {
        let map: BTreeMap<String, String> = settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        quorum_config(&BrokerConfig::from_map(map).unwrap())
    }

    #[test]
    fn a_lost_leader_is_replaced_within_the_fetch_timeout() {
        // Kafka's defaults: election 1000 ms, fetch 2000 ms. A follower waits openraft's
        // lease (the longest election timeout) plus at most that again.
        let q = quorum_with(&[]);
        assert_eq!(q.election_timeout_ms, 1000);
        assert_eq!(q.heartbeat_interval_ms, 100);

        let q = quorum_with(&[("controller.quorum.fetch.timeout.ms", "800")]);
        assert_eq!(q.election_timeout_ms, 400);
        assert!(q.heartbeat_interval_ms < q.election_timeout_ms / 2);

        let q = quorum_with(&[
            ("controller.quorum.election.timeout.ms", "300"),
            ("controller.quorum.fetch.timeout.ms", "5000"),
        ]);
        assert_eq!(q.election_timeout_ms, 300);
        assert_eq!(q.heartbeat_interval_ms, 30);
    }
}
