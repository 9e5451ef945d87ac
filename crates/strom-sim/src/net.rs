//! The simulated network: every message between nodes (and the client) gets a seeded
//! delay, may be lost, and is dropped while its link is cut or its target is down. One
//! ordered queue holds the data-plane messages; raft RPCs go through [`SimTransport`],
//! which draws from the same generator and sleeps on the same paused clock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::Rng;
use strom_raft::{Quorum, RaftRequest, RaftResponse, RaftTransport, TransportError};
use strom_types::NodeId;

use crate::messages::Message;
use crate::node::ImageSm;

/// The client (producer and consumer) as a network endpoint.
pub const CLIENT: NodeId = 0;

/// How the network misbehaves in one run.
#[derive(Debug, Clone, Copy)]
pub struct NetConfig {
    pub min_delay_ms: u64,
    pub max_delay_ms: u64,
    /// Probability that a message is lost (each direction of an RPC on its own).
    pub loss: f64,
    /// Probability that a message is delayed by up to `spike_ms` more.
    pub spike: f64,
    pub spike_ms: u64,
}

/// What the world shares with the raft tasks: the generator, the links, the trace.
pub struct World {
    pub rng: StdRng,
    pub config: NetConfig,
    /// Links cut in both directions, as (smaller, larger) id pairs.
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Running quorums, by node: what raft RPCs reach.
    pub quorums: BTreeMap<NodeId, Arc<Quorum<ImageSm>>>,
    /// Data-plane messages by (delivery time, sequence).
    pub queue: BTreeMap<(u64, u64), Message>,
    pub next_seq: u64,
    pub trace: Vec<String>,
    pub start: tokio::time::Instant,
    /// What the checks look at after the run.
    pub observed: Observed,
}

/// Facts gathered during a run for the checks.
#[derive(Debug, Default)]
pub struct Observed {
    /// (partition, leader epoch) -> the broker that led it.
    pub partition_leaders: BTreeMap<(i32, i32), NodeId>,
    /// Raft term -> the node that led it.
    pub raft_leaders: BTreeMap<u64, NodeId>,
    /// Invariants broken while running.
    pub violations: Vec<String>,
    /// Partitions that had a leader elected uncleanly (KIP-966 last-known-leader
    /// recovery, `LeaderRecoveryState::Recovering`): they may lose acknowledged records.
    pub unclean_partitions: std::collections::BTreeSet<i32>,
    /// Raft terms with two leaders (openraft 0.9's default leader ids allow it).
    pub shared_terms: Vec<String>,
}

pub type SharedWorld = Arc<Mutex<World>>;

pub fn lock(world: &SharedWorld) -> MutexGuard<'_, World> {
    world.lock().unwrap_or_else(|e| e.into_inner())
}

impl World {
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn trace(&mut self, line: impl AsRef<str>) {
        let now = self.now_ms();
        self.trace.push(format!("{now:>6} {}", line.as_ref()));
    }

    pub fn is_cut(&self, a: NodeId, b: NodeId) -> bool {
        a != b && self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// A delay for one message, or `None` when it is lost.
    pub fn draw_delay(&mut self) -> Option<u64> {
        let config = self.config;
        if self.rng.gen_bool(config.loss) {
            return None;
        }
        let mut delay = self
            .rng
            .gen_range(config.min_delay_ms..=config.max_delay_ms);
        if self.rng.gen_bool(config.spike) {
            delay += self.rng.gen_range(0..=config.spike_ms);
        }
        Some(delay)
    }

    /// Queues a data-plane message (or loses it).
    pub fn send(&mut self, message: Message) {
        let (from, to) = (message.from, message.to);
        if self.is_cut(from, to) {
            return;
        }
        let Some(delay) = self.draw_delay() else {
            let line = format!("lost {from}->{to} {}", message.payload.kind());
            self.trace(line);
            return;
        };
        let at = self.now_ms() + delay;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.insert((at, seq), message);
    }

    /// The messages due now whose link is still up.
    pub fn due(&mut self) -> Vec<Message> {
        let now = self.now_ms();
        let mut out = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let message = entry.remove();
            if !self.is_cut(message.from, message.to) {
                out.push(message);
            }
        }
        out
    }
}

/// Raft RPCs of one node over the simulated network. Failures are always
/// `TransportError::Network` (a lost or timed-out message), never `Unreachable`:
/// openraft answers Unreachable with a backoff whose `tokio::select!` is unbiased, and
/// tokio's select randomness cannot be seeded without `--cfg tokio_unstable`.
pub struct SimTransport {
    pub from: NodeId,
    pub world: SharedWorld,
}

/// How long a sender waits for a lost request or response before giving up (openraft's
/// own RPC timeouts usually end the call first).
const LOST_AFTER: Duration = Duration::from_millis(1000);

impl SimTransport {
    fn leg(&self, from: NodeId, to: NodeId, what: &str) -> Option<u64> {
        let mut world = lock(&self.world);
        let up = world.quorums.contains_key(&to) && !world.is_cut(from, to);
        let delay = world.draw_delay().filter(|_| up);
        if delay.is_none() {
            world.trace(format!("raft lost {from}->{to} {what}"));
        }
        delay
    }
}

fn kind(request: &RaftRequest) -> String {
    match request {
        RaftRequest::AppendEntries(r) => {
            format!("append(t{} n{})", r.vote.leader_id().term, r.entries.len())
        }
        RaftRequest::Vote(r) => format!("vote(t{})", r.vote.leader_id().term),
        RaftRequest::InstallSnapshot(r) => format!("snapshot(t{})", r.vote.leader_id().term),
    }
}

#[async_trait]
impl RaftTransport for SimTransport {
    async fn send(
        &self,
        target_id: strom_raft::NodeId,
        _address: &str,
        request: RaftRequest,
    ) -> Result<RaftResponse, TransportError> {
        let lost = || TransportError::Network(target_id, "lost".into());
        let target = target_id as NodeId;
        let what = kind(&request);
        let Some(delay) = self.leg(self.from, target, &what) else {
            tokio::time::sleep(LOST_AFTER).await;
            return Err(lost());
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let quorum = lock(&self.world).quorums.get(&target).cloned();
        let Some(quorum) = quorum else {
            tokio::time::sleep(LOST_AFTER).await;
            return Err(lost());
        };
        // Through the codec, as the socket transport sends them.
        let request = RaftRequest::decode(&request.encode()).expect("raft requests round-trip");
        let response = quorum.handle(request).await;
        drop(quorum);
        let Some(delay) = self.leg(target, self.from, &what) else {
            tokio::time::sleep(LOST_AFTER).await;
            return Err(lost());
        };
        tokio::time::sleep(Duration::from_millis(delay)).await;
        Ok(RaftResponse::decode(&response.encode()).expect("raft responses round-trip"))
    }
}
