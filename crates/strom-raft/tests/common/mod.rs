//! An in-memory network of quorum nodes and a state machine that records what it saw.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use strom_raft::{
    FileStorage, MetadataStateMachine, NodeId, Quorum, QuorumConfig, RaftRequest, RaftResponse,
    RaftTransport, Storage, TransportError,
};

/// What a state machine saw, shared with the test.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    /// Every record of the current state, in log order (what a snapshot holds).
    pub state: Vec<String>,
    /// Entries applied since start: (offset, records).
    pub applied: Vec<(u64, Vec<String>)>,
    /// Offsets of the snapshots restored.
    pub restored: Vec<u64>,
}

#[derive(Clone, Default)]
pub struct TestSm(pub Arc<Mutex<Seen>>);

impl TestSm {
    pub fn seen(&self) -> Seen {
        self.0.lock().unwrap().clone()
    }
}

impl MetadataStateMachine for TestSm {
    type Record = String;

    fn apply(&mut self, offset: u64, records: &[String]) {
        let mut seen = self.0.lock().unwrap();
        seen.state.extend(records.iter().cloned());
        seen.applied.push((offset, records.to_vec()));
    }

    fn snapshot(&self) -> Vec<String> {
        self.0.lock().unwrap().state.clone()
    }

    fn restore(&mut self, offset: u64, records: Vec<String>) {
        let mut seen = self.0.lock().unwrap();
        seen.state = records;
        seen.restored.push(offset);
    }
}

/// Nodes reachable by id; a cut node neither sends nor receives.
#[derive(Default)]
pub struct Net {
    nodes: Mutex<HashMap<NodeId, Arc<Quorum<TestSm>>>>,
    cut: Mutex<HashSet<NodeId>>,
}

impl Net {
    pub fn register(&self, quorum: Arc<Quorum<TestSm>>) {
        self.nodes.lock().unwrap().insert(quorum.node_id(), quorum);
    }

    pub fn remove(&self, id: NodeId) -> Option<Arc<Quorum<TestSm>>> {
        self.nodes.lock().unwrap().remove(&id)
    }

    pub fn cut(&self, id: NodeId, cut: bool) {
        let mut set = self.cut.lock().unwrap();
        if cut {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    pub fn transport(self: &Arc<Self>, from: NodeId) -> Arc<dyn RaftTransport> {
        Arc::new(NodeTransport {
            from,
            net: self.clone(),
        })
    }
}

struct NodeTransport {
    from: NodeId,
    net: Arc<Net>,
}

#[async_trait]
impl RaftTransport for NodeTransport {
    async fn send(
        &self,
        target: NodeId,
        _address: &str,
        request: RaftRequest,
    ) -> Result<RaftResponse, TransportError> {
        let unreachable = || TransportError::Unreachable(target, "cut off".into());
        {
            let cut = self.net.cut.lock().unwrap();
            if cut.contains(&self.from) || cut.contains(&target) {
                return Err(unreachable());
            }
        }
        let node = self.net.nodes.lock().unwrap().get(&target).cloned();
        let node = node.ok_or_else(unreachable)?;
        // Through the codec, as a socket transport sends them.
        let request = RaftRequest::decode(&request.encode()).expect("request round-trips");
        let response = node.handle(request).await;
        if self.net.cut.lock().unwrap().contains(&self.from) {
            return Err(TransportError::Network(target, "cut off".into()));
        }
        Ok(RaftResponse::decode(&response.encode()).expect("response round-trips"))
    }
}

pub fn config(node_id: NodeId, voters: &[NodeId], snapshot_every_entries: u64) -> QuorumConfig {
    QuorumConfig {
        node_id,
        voters: voters
            .iter()
            .map(|id| (*id, format!("127.0.0.1:{}", 19000 + id)))
            .collect::<BTreeMap<_, _>>(),
        election_timeout_ms: 150,
        heartbeat_interval_ms: 30,
        snapshot_every_entries,
    }
}

pub async fn start_file_node(
    net: &Arc<Net>,
    dir: &Path,
    config: QuorumConfig,
) -> (Arc<Quorum<TestSm>>, TestSm) {
    let storage = FileStorage::open(dir, &config).expect("storage opens");
    start_node(net, Storage::from(storage), config).await
}

pub async fn start_node(
    net: &Arc<Net>,
    storage: Storage,
    config: QuorumConfig,
) -> (Arc<Quorum<TestSm>>, TestSm) {
    let sm = TestSm::default();
    let id = config.node_id;
    let quorum = Quorum::start(config, storage, net.transport(id), sm.clone())
        .await
        .expect("quorum starts");
    let quorum = Arc::new(quorum);
    net.register(quorum.clone());
    (quorum, sm)
}

/// Polls `check` every 10 ms for up to 30 s (elections on a loaded 2-core machine can
/// take seconds).
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..3000 {
        if let Some(value) = check() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The leader every listed node agrees on.
pub async fn agreed_leader(nodes: &[&Arc<Quorum<TestSm>>]) -> NodeId {
    eventually("an agreed leader", || {
        let leader = nodes[0].leader()?;
        let agreed = nodes.iter().all(|n| n.leader() == Some(leader));
        let leads = nodes.iter().any(|n| n.node_id() == leader && n.is_leader());
        (agreed && leads).then_some(leader)
    })
    .await
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
