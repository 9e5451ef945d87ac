//! A deterministic simulation of a strom cluster. Three nodes each run the real metadata
//! quorum (strom-raft on openraft), the real controller logic (strom-metadata's
//! `ClusterControl`, `alter_partition`, `create_topic`) when they lead it, and the real
//! partition replication (strom-replication's `LeaderState`, `FollowerState`,
//! `AckWaiters` over `MemLog`s). An idempotent acks=all producer and a consumer use the
//! cluster while seeded faults hit it: crashes (power loss: unflushed data is gone),
//! network partitions, message loss and delay. Afterwards the cluster is healed and the
//! run is checked (see [`check`]).
//!
//! Determinism: everything runs on one tokio current-thread runtime with a paused clock;
//! every random choice (network, faults, workload, and openraft's election timeouts
//! through [`strom_raft::seed_rng`]) comes from the seed; collections are ordered. So a
//! seed replays a run exactly, and [`Report::trace`] is the same byte for byte.

mod broker;
mod check;
mod messages;
mod net;
mod node;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strom_raft::{MemStorage, Quorum, QuorumConfig, QuorumError};
use strom_replication::ReplicaLog;
use strom_replication::{MemLog, RecordBatches};
use strom_types::NodeId;
use strom_types::TopicId;
use strom_wire::batch::BatchHeader;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};
use tokio::task::JoinHandle;

use broker::{Broker, Ctx};
use messages::{Message, Payload};
use net::{lock, NetConfig, SharedWorld, SimTransport, World, CLIENT};
use node::{Controller, ImageSm};

/// The cluster's settings (scaled down from Kafka's defaults so a run is short).
#[derive(Debug, Clone, Copy)]
pub struct SimConfig {
    pub nodes: NodeId,
    pub partitions: i32,
    pub min_insync_replicas: usize,
    /// openraft's longest election timeout (strom-raft's `election_timeout_ms`): the
    /// production default, half of `controller.quorum.fetch.timeout.ms`.
    pub election_timeout_ms: u64,
    pub raft_heartbeat_ms: u64,
    pub snapshot_every_entries: u64,
    pub heartbeat_interval_ms: u64,
    pub session_timeout_ms: u64,
    pub replica_lag_time_max_ms: u64,
    /// How often a node writes its page cache back (no fsync on acks, Kafka's default).
    pub flush_interval_ms: u64,
    pub produce_timeout_ms: u64,
    /// Faults happen until then; then the cluster is healed.
    pub fault_ms: u64,
    /// The run fails if it has not converged this long after healing.
    pub settle_ms: u64,
    pub batches_per_partition: i32,
    /// KIP-966 eligible leader replicas (strom's default). Its last-known-leader
    /// recovery is an unclean election: losses after one are reported apart.
    pub elr_enabled: bool,
    /// Two raft leaders in one term is a violation (else only counted: openraft 0.9's
    /// default leader ids are (term, node), so a term may have several leaders).
    pub strict_raft_terms: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            partitions: 3,
            min_insync_replicas: 2,
            election_timeout_ms: 1000,
            raft_heartbeat_ms: 100,
            snapshot_every_entries: 64,
            heartbeat_interval_ms: 250,
            session_timeout_ms: 1500,
            replica_lag_time_max_ms: 1500,
            flush_interval_ms: 1000,
            produce_timeout_ms: 1500,
            fault_ms: 20_000,
            settle_ms: 40_000,
            batches_per_partition: 40,
            elr_enabled: true,
            strict_raft_terms: false,
        }
    }
}

/// What one run did and found.
#[derive(Debug, Clone)]
pub struct Report {
    pub seed: u64,
    pub violations: Vec<String>,
    /// Every event of the run, one per line, with its simulated time.
    pub trace: String,
    pub simulated_ms: u64,
    pub acked_batches: usize,
    pub crashes: usize,
    pub partitions_cut: usize,
    pub elr_enabled: bool,
    /// Acknowledged or consumed batches lost on partitions that had an unclean
    /// (last-known-leader) election: expected of such an election, so not violations.
    pub unclean_losses: Vec<String>,
    /// Raft terms that had two leaders.
    pub shared_terms: Vec<String>,
}

impl Report {
    pub fn replay_command(&self) -> String {
        let elr = if self.elr_enabled { "" } else { " --no-elr" };
        format!(
            "cargo run --release -p strom-sim --{elr} --seed {}",
            self.seed
        )
    }
}

/// Runs seeds `from..from + count` on `threads` threads; returns the failed runs'
/// reports, by seed.
pub fn run_many(from: u64, count: u64, threads: usize, config: SimConfig) -> Vec<Report> {
    let next = std::sync::atomic::AtomicU64::new(from);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= from + count {
                    return;
                }
                let report = run(seed, config);
                if !report.violations.is_empty() {
                    failed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(report);
                }
            });
        }
    });
    let mut failed = failed.into_inner().unwrap_or_else(|e| e.into_inner());
    failed.sort_by_key(|r| r.seed);
    failed
}

const TICK: Duration = Duration::from_millis(5);
const PRODUCER_ID: i64 = 4242;

enum NodeState {
    Down,
    Starting(JoinHandle<Result<Quorum<ImageSm>, QuorumError>>, ImageSm),
    Up(Box<Running>),
}

struct Running {
    quorum: Arc<Quorum<ImageSm>>,
    sm: ImageSm,
    controller: JoinHandle<()>,
    controller_inbox: UnboundedSender<Message>,
    broker: Broker,
}

/// A node's disks (they survive crashes, minus what was not flushed) and its process.
struct Node {
    id: NodeId,
    raft_disk: MemStorage,
    logs: BTreeMap<i32, MemLog>,
    incarnation: u64,
    state: NodeState,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Crash(NodeId),
    Restart(NodeId),
    /// Cuts a node off from the other nodes (and from the client when asked).
    Isolate {
        node: NodeId,
        from_client: bool,
    },
    HealAll,
}

/// A batch the producer got acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Acked {
    pub partition: i32,
    pub epoch: i16,
    pub base_offset: i64,
    pub sequence: i32,
    pub crc: u32,
}

/// A batch the consumer read.
#[derive(Debug, Clone)]
pub(crate) struct Consumed {
    pub partition: i32,
    pub base_offset: i64,
    pub crc: u32,
}

struct InFlight {
    request_id: u64,
    sequence: i32,
    batch: Bytes,
    sent_ms: u64,
}

#[derive(Default)]
struct ProducerPartition {
    /// Bumped (and the sequence reset) on OUT_OF_ORDER_SEQUENCE, as the Java producer
    /// does since KIP-360: what it had in flight was lost with an unclean election.
    epoch: i16,
    next_sequence: i32,
    acked: i32,
    batch: Option<(i32, Bytes)>,
    in_flight: Option<InFlight>,
    next_send_ms: u64,
}

#[derive(Default)]
struct ConsumerPartition {
    position: i64,
    in_flight: Option<(u64, u64)>,
    next_fetch_ms: u64,
}

/// The producer (idempotent, acks=all, one batch in flight per partition, retrying the
/// same sequence until acknowledged) and the consumer (reads up to the high watermark).
#[derive(Default)]
struct Client {
    next_id: u64,
    producer: BTreeMap<i32, ProducerPartition>,
    consumer: BTreeMap<i32, ConsumerPartition>,
    acked: Vec<Acked>,
    consumed: Vec<Consumed>,
}

/// One producer batch: `count` records with readable values, carrying the producer id
/// and sequence numbers the broker deduplicates on.
fn producer_batch(partition: i32, epoch: i16, sequence: i32, count: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: PRODUCER_ID,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: sequence + i as i32,
            timestamp: 1_000,
            key: None,
            value: Some(Bytes::from(format!(
                "p{partition}-e{epoch}-s{}",
                sequence + i as i32
            ))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("an uncompressed batch encodes");
    buf.freeze()
}

fn crc_of(batch: &[u8]) -> u32 {
    BatchHeader::new(batch).map_or(0, |h| h.crc())
}

struct Sim {
    seed: u64,
    config: SimConfig,
    world: SharedWorld,
    nodes: BTreeMap<NodeId, Node>,
    client: Client,
    topic_id: TopicId,
    faults: Vec<(u64, Fault)>,
    crashes: usize,
    cuts: usize,
}

/// Runs one seed to the end and checks it.
pub fn run(seed: u64, config: SimConfig) -> Report {
    strom_raft::seed_rng(seed ^ 0x005e_ed0f_0af7);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds");
    let report = runtime.block_on(async move {
        let mut sim = Sim::new(seed, config);
        sim.run().await
    });
    drop(runtime);
    strom_raft::unseed_rng();
    report
}

impl Sim {
    fn new(seed: u64, config: SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let max_delay = rng.gen_range(2..=25);
        let net = NetConfig {
            min_delay_ms: 1,
            max_delay_ms: max_delay,
            loss: [0.0, 0.005, 0.02, 0.05][rng.gen_range(0..4)],
            spike: 0.02,
            spike_ms: 300,
        };
        let topic_id = TopicId::from_u64_pair(rng.gen(), rng.gen());
        let faults = Self::schedule(&mut rng, &config);
        let mut world = World {
            rng,
            config: net,
            cut: Default::default(),
            quorums: BTreeMap::new(),
            queue: BTreeMap::new(),
            next_seq: 0,
            trace: Vec::new(),
            start: tokio::time::Instant::now(),
            observed: Default::default(),
        };
        world.trace(format!("seed {seed} network {net:?} faults {faults:?}"));
        let nodes = (1..=config.nodes)
            .map(|id| {
                (
                    id,
                    Node {
                        id,
                        raft_disk: MemStorage::new(),
                        logs: BTreeMap::new(),
                        incarnation: 0,
                        state: NodeState::Down,
                    },
                )
            })
            .collect();
        Self {
            seed,
            config,
            world: Arc::new(Mutex::new(world)),
            nodes,
            client: Client::default(),
            topic_id,
            faults,
            crashes: 0,
            cuts: 0,
        }
    }

    /// The faults of a run. Crashes are power losses, at least two write-back intervals
    /// apart: a record acknowledged by the ISR is then on some disk before a second node
    /// loses its page cache, so any acknowledged record lost is a replication bug, not
    /// the no-fsync trade-off.
    fn schedule(rng: &mut StdRng, config: &SimConfig) -> Vec<(u64, Fault)> {
        let mut faults = Vec::new();
        let mut t = 4000;
        let mut last_crash = 0u64;
        while t < config.fault_ms {
            let node = rng.gen_range(1..=config.nodes);
            match rng.gen_range(0..10) {
                0..=3 if t >= last_crash + 2 * config.flush_interval_ms + 100 => {
                    let down = rng.gen_range(300..5000);
                    faults.push((t, Fault::Crash(node)));
                    faults.push((t + down, Fault::Restart(node)));
                    last_crash = t;
                }
                4..=6 => {
                    let length = rng.gen_range(300..6000);
                    faults.push((
                        t,
                        Fault::Isolate {
                            node,
                            from_client: rng.gen_bool(0.5),
                        },
                    ));
                    faults.push((t + length, Fault::HealAll));
                }
                _ => {}
            }
            t += rng.gen_range(300..3000);
        }
        faults.sort_by_key(|(t, _)| *t);
        faults
    }

    fn now(&self) -> u64 {
        lock(&self.world).now_ms()
    }

    fn trace(&self, line: String) {
        lock(&self.world).trace(line);
    }

    fn start_node(&mut self, id: NodeId) {
        let config = self.config;
        let world = self.world.clone();
        let node = self.nodes.get_mut(&id).expect("node exists");
        if !matches!(node.state, NodeState::Down) {
            return;
        }
        node.incarnation += 1;
        let quorum_config = QuorumConfig {
            node_id: id as u64,
            voters: (1..=config.nodes)
                .map(|v| (v as u64, format!("node-{v}")))
                .collect(),
            election_timeout_ms: config.election_timeout_ms,
            heartbeat_interval_ms: config.raft_heartbeat_ms,
            snapshot_every_entries: config.snapshot_every_entries,
        };
        let sm = ImageSm::new();
        let transport = Arc::new(SimTransport { from: id, world });
        let handle = tokio::spawn(Quorum::start(
            quorum_config,
            node.raft_disk.clone(),
            transport,
            sm.clone(),
        ));
        node.state = NodeState::Starting(handle, sm);
        let incarnation = node.incarnation;
        self.trace(format!("node {id} starting (incarnation {incarnation})"));
    }

    /// Nodes whose quorum finished starting become brokers and controllers.
    async fn finish_starts(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in ids {
            let node = self.nodes.get_mut(&id).expect("node exists");
            let NodeState::Starting(handle, _) = &node.state else {
                continue;
            };
            if !handle.is_finished() {
                continue;
            }
            let NodeState::Starting(handle, sm) =
                std::mem::replace(&mut node.state, NodeState::Down)
            else {
                continue;
            };
            match handle.await {
                Ok(Ok(quorum)) => {
                    let quorum = Arc::new(quorum);
                    let (tx, rx) = unbounded_channel();
                    let (incarnation_id, flush_phase, now) = {
                        let mut world = lock(&self.world);
                        world.quorums.insert(id, quorum.clone());
                        let uuid = uuid::Uuid::from_u64_pair(world.rng.gen(), world.rng.gen());
                        let phase = world.rng.gen_range(0..self.config.flush_interval_ms);
                        (uuid, phase, world.now_ms())
                    };
                    let controller = tokio::spawn(
                        Controller {
                            node: id,
                            quorum: quorum.clone(),
                            sm: sm.clone(),
                            world: self.world.clone(),
                            inbox: rx,
                            config: self.config,
                            topic_id: self.topic_id,
                        }
                        .run(),
                    );
                    let broker =
                        Broker::new(id, node.incarnation, incarnation_id, now, flush_phase);
                    node.state = NodeState::Up(Box::new(Running {
                        quorum,
                        sm,
                        controller,
                        controller_inbox: tx,
                        broker,
                    }));
                    self.trace(format!("node {id} up"));
                }
                Ok(Err(e)) => {
                    self.trace(format!("node {id} failed to start: {e}"));
                }
                Err(e) => {
                    self.trace(format!("node {id} start task failed: {e}"));
                }
            }
        }
    }

    /// A power loss: the process is gone, and so is whatever was not written back.
    async fn crash(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).expect("node exists");
        let NodeState::Up(_) = &node.state else {
            return;
        };
        let NodeState::Up(running) = std::mem::replace(&mut node.state, NodeState::Down) else {
            return;
        };
        lock(&self.world).quorums.remove(&id);
        running.controller.abort();
        running.quorum.shutdown().await;
        node.raft_disk.crash();
        let mut lost = Vec::new();
        for (partition, log) in node.logs.iter_mut() {
            let before = log.log_end_offset();
            log.crash();
            if log.log_end_offset() != before {
                lost.push(format!("p{partition} {before}->{}", log.log_end_offset()));
            }
        }
        self.crashes += 1;
        self.trace(format!("node {id} crashed, unflushed lost: {lost:?}"));
    }

    async fn apply_fault(&mut self, fault: Fault) {
        self.trace(format!("fault {fault:?}"));
        match fault {
            Fault::Crash(id) => self.crash(id).await,
            Fault::Restart(id) => self.start_node(id),
            Fault::Isolate { node, from_client } => {
                self.cuts += 1;
                let mut world = lock(&self.world);
                for other in 0..=self.config.nodes {
                    if other != node && (other != CLIENT || from_client) {
                        world.cut.insert((node.min(other), node.max(other)));
                    }
                }
            }
            Fault::HealAll => lock(&self.world).cut.clear(),
        }
    }

    async fn run(&mut self) -> Report {
        for id in 1..=self.config.nodes {
            self.start_node(id);
        }
        let mut faults = std::mem::take(&mut self.faults).into_iter().peekable();
        let mut healed = false;
        let mut converged_at = None;
        let end = self.config.fault_ms + self.config.settle_ms;
        loop {
            tokio::time::sleep(TICK).await;
            let now = self.now();
            while let Some((_, fault)) = faults.next_if(|(t, _)| *t <= now) {
                self.apply_fault(fault).await;
            }
            if !healed && now >= self.config.fault_ms {
                healed = true;
                self.trace("healing: every node up, no cuts, no loss".into());
                let mut world = lock(&self.world);
                world.cut.clear();
                world.config.loss = 0.0;
                drop(world);
                for id in 1..=self.config.nodes {
                    self.start_node(id);
                }
            }
            self.finish_starts().await;
            self.deliver();
            self.step_nodes();
            self.step_client(now);
            self.observe_raft();
            if healed && now.is_multiple_of(100) && self.converged() {
                converged_at = Some(now);
                break;
            }
            if now >= end {
                break;
            }
        }
        let mut violations = std::mem::take(&mut lock(&self.world).observed.violations);
        if converged_at.is_none() {
            violations.push(format!(
                "no convergence {} ms after healing: {}",
                self.config.settle_ms,
                self.progress()
            ));
        }
        let (found, unclean_losses) = check::check(self);
        violations.extend(found);
        let shared_terms = std::mem::take(&mut lock(&self.world).observed.shared_terms);
        for id in 1..=self.config.nodes {
            if let NodeState::Up(running) = &self.nodes[&id].state {
                running.controller.abort();
                running.quorum.shutdown().await;
            }
        }
        let now = self.now();
        let mut world = lock(&self.world);
        world.quorums.clear();
        for v in &violations {
            world.trace(format!("VIOLATION {v}"));
        }
        let trace = world.trace.join("\n");
        Report {
            seed: self.seed,
            violations,
            trace,
            simulated_ms: now,
            acked_batches: self.client.acked.len(),
            crashes: self.crashes,
            partitions_cut: self.cuts,
            elr_enabled: self.config.elr_enabled,
            unclean_losses,
            shared_terms,
        }
    }

    fn progress(&self) -> String {
        let acked = self.client.acked.len();
        let wanted = (self.config.partitions * self.config.batches_per_partition) as usize;
        let up = self
            .nodes
            .values()
            .filter(|n| matches!(n.state, NodeState::Up(_)))
            .count();
        format!("{acked}/{wanted} batches acknowledged, {up} nodes up")
    }

    /// Delivers due messages to their nodes (or the client).
    fn deliver(&mut self) {
        let due = lock(&self.world).due();
        for message in due {
            if message.to == CLIENT {
                self.on_client_message(message);
                continue;
            }
            let Some(node) = self.nodes.get_mut(&message.to) else {
                continue;
            };
            let NodeState::Up(running) = &mut node.state else {
                continue;
            };
            if message
                .to_incarnation
                .is_some_and(|i| i != node.incarnation)
            {
                continue;
            }
            if let Payload::Controller { .. } = message.payload {
                let _ = running.controller_inbox.send(message);
                continue;
            }
            let mut world = lock(&self.world);
            let now = world.now_ms();
            let mut ctx = Ctx {
                world: &mut world,
                logs: &mut node.logs,
                quorum: &running.quorum,
                sm: &running.sm,
                config: &self.config,
                topic_id: self.topic_id,
                now,
            };
            running.broker.on_message(&mut ctx, message);
        }
    }

    fn step_nodes(&mut self) {
        for node in self.nodes.values_mut() {
            let NodeState::Up(running) = &mut node.state else {
                continue;
            };
            let mut world = lock(&self.world);
            let now = world.now_ms();
            let mut ctx = Ctx {
                world: &mut world,
                logs: &mut node.logs,
                quorum: &running.quorum,
                sm: &running.sm,
                config: &self.config,
                topic_id: self.topic_id,
                now,
            };
            running.broker.tick(&mut ctx);
        }
    }

    /// Records which node leads each raft term.
    fn observe_raft(&mut self) {
        let mut world = lock(&self.world);
        for node in self.nodes.values() {
            let NodeState::Up(running) = &node.state else {
                continue;
            };
            if !running.quorum.is_leader() {
                continue;
            }
            let term = running.quorum.status().term;
            let previous = world.observed.raft_leaders.insert(term, node.id);
            if previous.is_none() {
                world.trace(format!("raft leader {} in term {term}", node.id));
            }
            if let Some(other) = previous.filter(|&o| o != node.id) {
                let v = format!("raft term {term} led by {other} and {}", node.id);
                world.trace(&v);
                if self.config.strict_raft_terms {
                    world.observed.violations.push(v.clone());
                }
                world.observed.shared_terms.push(v);
            }
        }
    }

    /// The partition leader a client learns from a node's metadata (any node's: it may
    /// be stale, as Kafka clients' metadata may be).
    fn leader_of(&self, partition: i32, world: &mut World) -> Option<NodeId> {
        let up: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| matches!(n.state, NodeState::Up(_)))
            .collect();
        if up.is_empty() {
            return None;
        }
        let pick = up[world.rng.gen_range(0..up.len())];
        let NodeState::Up(running) = &pick.state else {
            return None;
        };
        let image = running.sm.applied().image;
        let leader = image.partition(&self.topic_id, partition)?.leader;
        (leader > 0).then_some(leader)
    }

    fn step_client(&mut self, now: u64) {
        let mut world = lock(&self.world);
        for partition in 0..self.config.partitions {
            // Producer.
            let pending = {
                let p = self.client.producer.entry(partition).or_default();
                if p.in_flight
                    .as_ref()
                    .is_some_and(|f| now >= f.sent_ms + self.config.produce_timeout_ms + 500)
                {
                    let f = p.in_flight.take().expect("checked");
                    world.trace(format!("client p{partition} seq {} timed out", f.sequence));
                }
                p.in_flight.is_none()
                    && now >= p.next_send_ms
                    && (p.batch.is_some() || p.acked < self.config.batches_per_partition)
            };
            if pending {
                let leader = self.leader_of(partition, &mut world);
                let p = self.client.producer.entry(partition).or_default();
                let Some(leader) = leader else {
                    p.next_send_ms = now + 100;
                    continue;
                };
                let (sequence, batch) = match &p.batch {
                    Some(b) => b.clone(),
                    None => {
                        let count = world.rng.gen_range(1..=2);
                        let b = (
                            p.next_sequence,
                            producer_batch(partition, p.epoch, p.next_sequence, count),
                        );
                        p.batch = Some(b.clone());
                        b
                    }
                };
                self.client.next_id += 1;
                let id = self.client.next_id;
                p.in_flight = Some(InFlight {
                    request_id: id,
                    sequence,
                    batch: batch.clone(),
                    sent_ms: now,
                });
                world.send(Message {
                    from: CLIENT,
                    from_incarnation: 1,
                    to: leader,
                    to_incarnation: None,
                    payload: Payload::Produce {
                        id,
                        partition,
                        producer_id: PRODUCER_ID,
                        producer_epoch: p.epoch,
                        base_sequence: sequence,
                        batch,
                    },
                });
            }
            // Consumer.
            let c = self.client.consumer.entry(partition).or_default();
            if c.in_flight.is_some_and(|(_, sent)| now >= sent + 1000) {
                c.in_flight = None;
            }
            if c.in_flight.is_none() && now >= c.next_fetch_ms {
                let offset = c.position;
                let leader = self.leader_of(partition, &mut world);
                let c = self.client.consumer.entry(partition).or_default();
                c.next_fetch_ms = now + 100;
                if let Some(leader) = leader {
                    self.client.next_id += 1;
                    let id = self.client.next_id;
                    c.in_flight = Some((id, now));
                    world.send(Message {
                        from: CLIENT,
                        from_incarnation: 1,
                        to: leader,
                        to_incarnation: None,
                        payload: Payload::ConsumerFetch {
                            id,
                            partition,
                            offset,
                        },
                    });
                }
            }
        }
    }

    fn on_client_message(&mut self, message: Message) {
        let now = self.now();
        match message.payload {
            Payload::ProduceReply { id, result, .. } => {
                let Some((partition, p)) = self
                    .client
                    .producer
                    .iter_mut()
                    .find(|(_, p)| p.in_flight.as_ref().is_some_and(|f| f.request_id == id))
                else {
                    return;
                };
                let partition = *partition;
                let f = p.in_flight.take().expect("found");
                match result {
                    Ok(base_offset) => {
                        let count = RecordBatches::parse(f.batch.clone())
                            .ok()
                            .and_then(|b| b.last_offset())
                            .map_or(1, |last| last as i32 + 1);
                        self.client.acked.push(Acked {
                            partition,
                            epoch: BatchHeader::new(&f.batch).map_or(-1, |h| h.producer_epoch()),
                            base_offset,
                            sequence: f.sequence,
                            crc: crc_of(&f.batch),
                        });
                        p.batch = None;
                        p.acked += 1;
                        p.next_sequence = f.sequence + count;
                        p.next_send_ms = now + 100 + (id * 7919 % 400);
                        self.trace(format!(
                            "client p{partition} seq {} acked at {base_offset} by {}",
                            f.sequence, message.from
                        ));
                    }
                    Err(e) => {
                        if e.to_string().contains(broker::OUT_OF_ORDER) {
                            p.epoch += 1;
                            p.next_sequence = 0;
                            p.batch = None;
                        }
                        p.next_send_ms = now + 50;
                        self.trace(format!(
                            "client p{partition} seq {} failed at {}: {e}",
                            f.sequence, message.from
                        ));
                    }
                }
            }
            Payload::ConsumerFetchReply {
                id,
                partition,
                result,
            } => {
                let Some(c) = self.client.consumer.get_mut(&partition) else {
                    return;
                };
                if c.in_flight.map(|(i, _)| i) != Some(id) {
                    return;
                }
                c.in_flight = None;
                let Ok(bytes) = result else {
                    return;
                };
                let Ok(batches) = RecordBatches::parse(bytes) else {
                    return;
                };
                let mut read = Vec::new();
                for (span, bytes) in batches.iter() {
                    if span.last_offset < c.position {
                        continue;
                    }
                    read.push(Consumed {
                        partition,
                        base_offset: span.base_offset,
                        crc: crc_of(&bytes),
                    });
                    c.position = span.last_offset + 1;
                    c.next_fetch_ms = now;
                }
                if !read.is_empty() {
                    let line = format!(
                        "client consumed p{partition} up to {} from {}",
                        c.position, message.from
                    );
                    self.client.consumed.extend(read);
                    self.trace(line);
                }
            }
            _ => {}
        }
    }

    /// Healed and quiet: every node up, the producer done, every replica at its
    /// leader's log end and high watermark, the consumer at the high watermark.
    fn converged(&self) -> bool {
        let wanted = (self.config.partitions * self.config.batches_per_partition) as usize;
        if self.client.acked.len() < wanted {
            return false;
        }
        if self
            .client
            .producer
            .values()
            .any(|p| p.in_flight.is_some() || p.batch.is_some())
        {
            return false;
        }
        check::replicas_converged(self)
    }
}
