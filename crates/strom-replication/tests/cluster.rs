//! Three replicas wired in-process (no network): LeaderState, FollowerState and MemLogs,
//! with a controller that commits AlterPartition and elects leaders. The high watermark
//! moves only with the ISR, a lagging follower leaves the ISR and comes back, and after
//! leader changes over uncommitted tails every log is identical up to the high watermark.

use std::collections::BTreeMap;

use bytes::Bytes;
use strom_replication::testing::batch_bytes;
use strom_replication::{
    AckStatus, AckWaiters, AlterPartitionProposal, BrokerStatus, CommittedIsr, CompletedAck,
    FetchedPartition, FollowerAction, FollowerConfig, FollowerFetch, FollowerRequest,
    FollowerState, FollowerStep, LeaderConfig, LeaderOffsets, LeaderState, MemLog, PartitionState,
    ReplicaId, ReplicaLog, ReplicationError,
};

const T0: i64 = 1_000_000;
const PARTITION: u8 = 0;

enum Role {
    Leader(LeaderState),
    Follower(FollowerState),
}

struct Node {
    log: MemLog,
    role: Role,
    follower_config: FollowerConfig,
}

struct Cluster {
    nodes: BTreeMap<ReplicaId, Node>,
    /// The controller's view of the partition.
    partition: PartitionState,
    config: LeaderConfig,
    now: i64,
    waiters: AckWaiters<u8, u32>,
    acked: Vec<CompletedAck<u32>>,
}

fn broker_epoch(id: ReplicaId) -> i64 {
    100 + i64::from(id)
}

impl Cluster {
    /// Replicas 1, 2, 3 with 1 leading in epoch 1. Replica 1 truncates through
    /// OffsetForLeaderEpoch when it follows; 2 and 3 on a diverging epoch in Fetch.
    fn new() -> Self {
        let partition = PartitionState {
            leader: 1,
            leader_epoch: 1,
            partition_epoch: 0,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
        };
        let mut cluster = Self {
            nodes: BTreeMap::new(),
            partition,
            config: LeaderConfig {
                min_insync_replicas: 2,
                ..LeaderConfig::default()
            },
            now: T0,
            waiters: AckWaiters::new(16),
            acked: Vec::new(),
        };
        for id in [1, 2, 3] {
            let follower_config = FollowerConfig {
                truncate_on_fetch: id != 1,
                ..FollowerConfig::default()
            };
            let log = MemLog::new();
            let role = Role::Follower(FollowerState::new(1, 0, follower_config, &log));
            cluster.nodes.insert(
                id,
                Node {
                    log,
                    role,
                    follower_config,
                },
            );
        }
        cluster.publish_partition();
        cluster
    }

    /// Every node takes the controller's partition state (Kafka's makeLeader/makeFollower).
    fn publish_partition(&mut self) {
        let state = self.partition.clone();
        for (&id, node) in &mut self.nodes {
            if id == state.leader {
                if let Role::Leader(leader) = &mut node.role {
                    leader.on_metadata(&state, &node.log, self.now);
                    continue;
                }
                let mut leader = LeaderState::new(
                    id,
                    broker_epoch(id),
                    &state,
                    self.config,
                    &node.log,
                    self.now,
                )
                .unwrap();
                for other in [1, 2, 3] {
                    leader.set_broker_status(
                        other,
                        Some(BrokerStatus {
                            epoch: broker_epoch(other),
                            fenced: false,
                            in_controlled_shutdown: false,
                        }),
                    );
                }
                node.log
                    .assign_epoch_start(state.leader_epoch, leader.leader_epoch_start_offset());
                node.role = Role::Leader(leader);
            } else {
                let same = matches!(&node.role, Role::Follower(f)
                    if f.leader_id() == state.leader && f.leader_epoch() == state.leader_epoch);
                if !same {
                    node.role = Role::Follower(FollowerState::new(
                        state.leader,
                        state.leader_epoch,
                        node.follower_config,
                        &node.log,
                    ));
                }
            }
        }
    }

    fn leader_id(&self) -> ReplicaId {
        self.partition.leader
    }

    fn leader(&self) -> &LeaderState {
        match &self.nodes[&self.leader_id()].role {
            Role::Leader(leader) => leader,
            Role::Follower(_) => panic!("the elected leader is not leading"),
        }
    }

    fn log(&self, id: ReplicaId) -> &MemLog {
        &self.nodes[&id].log
    }

    fn high_watermark(&self) -> i64 {
        self.log(self.leader_id()).high_watermark()
    }

    fn isr(&self) -> Vec<ReplicaId> {
        self.leader().isr().iter().copied().collect()
    }

    /// The controller's AlterPartition: applied when the epochs match.
    fn alter_partition(&mut self, proposal: &AlterPartitionProposal) -> CommittedIsr {
        assert_eq!(proposal.leader_epoch, self.partition.leader_epoch);
        assert_eq!(proposal.partition_epoch, self.partition.partition_epoch);
        self.partition.isr = proposal.isr();
        self.partition.partition_epoch += 1;
        CommittedIsr {
            leader_epoch: self.partition.leader_epoch,
            partition_epoch: self.partition.partition_epoch,
            isr: self.partition.isr.clone(),
        }
    }

    /// Sends a proposal and applies the answer on the leader.
    fn submit(&mut self, proposal: AlterPartitionProposal) {
        let committed = self.alter_partition(&proposal);
        let now = self.now;
        let node = self.nodes.get_mut(&self.partition.leader).unwrap();
        let Role::Leader(leader) = &mut node.role else {
            unreachable!()
        };
        if let Some(hw) = leader.on_isr_committed(&proposal, &committed, &node.log, now) {
            node.log.maybe_increment_high_watermark(hw);
        }
        self.complete_acks();
    }

    fn complete_acks(&mut self) {
        let node = &self.nodes[&self.partition.leader];
        let Role::Leader(leader) = &node.role else {
            return;
        };
        let done = self.waiters.complete(&PARTITION, |required| {
            leader.acks_all_result(&node.log, required)
        });
        self.acked.extend(done);
    }

    /// An acks=all produce of `records` records to the leader; returns its required offset.
    fn produce(&mut self, records: usize, id: u32) -> Result<i64, ReplicationError> {
        let node = self.nodes.get_mut(&self.partition.leader).unwrap();
        let Role::Leader(leader) = &node.role else {
            unreachable!()
        };
        leader.check_produce_acks_all()?;
        let values = vec![b"r".as_slice(); records];
        let (_, last) = node
            .log
            .append_as_leader(&batch_bytes(0, 0, &values), leader.leader_epoch())
            .unwrap();
        if let Some(hw) = leader.maybe_increment_high_watermark(&node.log, self.now) {
            node.log.maybe_increment_high_watermark(hw);
        }
        self.waiters
            .insert(PARTITION, last + 1, self.now + 30_000, id)
            .unwrap();
        self.complete_acks();
        Ok(last + 1)
    }

    /// An acks=1 append nobody waits for.
    fn append_unreplicated(&mut self, records: usize) {
        let node = self.nodes.get_mut(&self.partition.leader).unwrap();
        let Role::Leader(leader) = &node.role else {
            unreachable!()
        };
        let values = vec![b"tail".as_slice(); records];
        node.log
            .append_as_leader(&batch_bytes(0, 0, &values), leader.leader_epoch())
            .unwrap();
    }

    /// The leader's side of one request from follower `from`.
    fn serve(&mut self, from: ReplicaId, request: &FollowerRequest) -> Served {
        let now = self.now;
        let leader_id = self.partition.leader;
        let node = self.nodes.get_mut(&leader_id).unwrap();
        let Role::Leader(leader) = &mut node.role else {
            return Served::Error(ReplicationError::NotLeaderOrFollower);
        };
        let log = &mut node.log;
        match *request {
            FollowerRequest::OffsetForLeaderEpoch {
                current_leader_epoch,
                leader_epoch,
            } => match leader.check_leader_epoch(Some(current_leader_epoch)) {
                Err(e) => Served::Error(e),
                Ok(()) => Served::EpochEnd(log.end_offset_for_epoch(leader_epoch)),
            },
            FollowerRequest::ListOffsets {
                current_leader_epoch,
            } => match leader.check_leader_epoch(Some(current_leader_epoch)) {
                Err(e) => Served::Error(e),
                Ok(()) => Served::Offsets(LeaderOffsets {
                    log_start_offset: log.log_start_offset(),
                    log_end_offset: log.log_end_offset(),
                }),
            },
            FollowerRequest::Fetch {
                current_leader_epoch,
                fetch_offset,
                last_fetched_epoch,
                log_start_offset,
            } => {
                if let Err(e) = leader.check_leader_epoch(Some(current_leader_epoch)) {
                    return Served::Error(e);
                }
                let high_watermark = log.high_watermark();
                match leader.validate_fetch_epoch(&*log, fetch_offset, last_fetched_epoch) {
                    Err(e) => return Served::Error(e),
                    Ok(Some(diverging)) => {
                        return Served::Fetched(FetchedPartition {
                            high_watermark,
                            log_start_offset: log.log_start_offset(),
                            diverging_epoch: Some(diverging),
                            records: Bytes::new(),
                        })
                    }
                    Ok(None) => {}
                }
                let leader_log_end_offset = log.log_end_offset();
                let records = match log.read(fetch_offset, 1 << 20) {
                    Ok(records) => records,
                    Err(_) => {
                        return Served::Error(ReplicationError::OffsetOutOfRange {
                            offset: fetch_offset,
                            log_start_offset: log.log_start_offset(),
                            log_end_offset: leader_log_end_offset,
                        })
                    }
                };
                let fetch = FollowerFetch {
                    replica_id: from,
                    current_leader_epoch: Some(current_leader_epoch),
                    fetch_offset,
                    log_start_offset,
                    broker_epoch: broker_epoch(from),
                    leader_log_end_offset,
                };
                let outcome = leader.on_follower_fetch(&fetch, &*log, now).unwrap();
                if let Some(hw) = outcome.high_watermark {
                    assert!(log.maybe_increment_high_watermark(hw));
                }
                let served = Served::Fetched(FetchedPartition {
                    high_watermark,
                    log_start_offset: log.log_start_offset(),
                    diverging_epoch: None,
                    records,
                });
                self.complete_acks();
                if let Some(proposal) = outcome.alter_partition {
                    self.submit(proposal);
                }
                served
            }
        }
    }

    /// One poll of follower `id`; returns whether anything happened.
    fn step(&mut self, id: ReplicaId) -> bool {
        let now = self.now;
        let mut node = self.nodes.remove(&id).unwrap();
        let Role::Follower(follower) = &mut node.role else {
            self.nodes.insert(id, node);
            return false;
        };
        let action = follower.poll(&node.log, now);
        let steps = match action {
            None => Vec::new(),
            Some(FollowerAction::Apply(steps)) => steps,
            Some(FollowerAction::Send(request)) => {
                // The leader is served with this node out of the map.
                let served = self.serve(id, &request);
                let Role::Follower(follower) = &mut node.role else {
                    unreachable!()
                };
                match (request, served) {
                    (FollowerRequest::OffsetForLeaderEpoch { .. }, Served::EpochEnd(end)) => {
                        follower.on_offset_for_leader_epoch(&node.log, Ok(end), now)
                    }
                    (FollowerRequest::OffsetForLeaderEpoch { .. }, Served::Error(e)) => {
                        follower.on_offset_for_leader_epoch(&node.log, Err(e), now)
                    }
                    (FollowerRequest::Fetch { .. }, Served::Fetched(p)) => {
                        follower.on_fetch_response(&node.log, Ok(p), now)
                    }
                    (FollowerRequest::Fetch { .. }, Served::Error(e)) => {
                        follower.on_fetch_response(&node.log, Err(e), now)
                    }
                    (FollowerRequest::ListOffsets { .. }, Served::Offsets(o)) => {
                        follower.on_leader_offsets(&node.log, Ok(o), now)
                    }
                    (FollowerRequest::ListOffsets { .. }, Served::Error(e)) => {
                        follower.on_leader_offsets(&node.log, Err(e), now)
                    }
                    (request, served) => panic!("{request:?} answered with {served:?}"),
                }
            }
        };
        let progressed = action_made_progress(&steps, &node.log);
        for step in steps {
            match step {
                FollowerStep::Truncate { offset } => node.log.truncate_to(offset),
                FollowerStep::TruncateFullyAndStartAt { offset } => {
                    node.log.truncate_fully_and_start_at(offset)
                }
                FollowerStep::Append(batches) => node.log.append_as_follower(&batches).unwrap(),
                FollowerStep::SetHighWatermark(hw) => {
                    node.log.set_high_watermark(hw);
                }
                FollowerStep::IncrementLogStartOffset(offset) => {
                    node.log.maybe_increment_log_start_offset(offset);
                }
                FollowerStep::Backoff { error, .. } | FollowerStep::AwaitMetadata { error } => {
                    panic!("replica {id}: {error}")
                }
            }
        }
        self.nodes.insert(id, node);
        progressed
    }

    /// Steps the followers round-robin until a whole round changes no log.
    fn run(&mut self, followers: &[ReplicaId]) {
        for _ in 0..100 {
            let mut progressed = false;
            for &id in followers {
                // Two polls: one may only truncate, the next fetches.
                progressed |= self.step(id);
                progressed |= self.step(id);
            }
            if !progressed {
                return;
            }
        }
        panic!("replication did not settle");
    }

    /// The controller moves leadership to `new_leader` (from the ISR).
    fn elect(&mut self, new_leader: ReplicaId) {
        assert!(self.partition.isr.contains(&new_leader));
        self.partition.leader = new_leader;
        self.partition.leader_epoch += 1;
        self.partition.partition_epoch += 1;
        // The old leader's waits end: it no longer leads.
        let done = self
            .waiters
            .fail_partition(&PARTITION, ReplicationError::NotLeaderOrFollower);
        self.acked.extend(done);
        self.publish_partition();
    }

    fn assert_identical_up_to_high_watermark(&self) {
        let hw = self.high_watermark();
        for id in [1, 2, 3] {
            assert_eq!(self.log(id).high_watermark(), hw, "replica {id}");
            for other in [1, 2, 3] {
                assert_eq!(self.log(id).same_prefix(self.log(other), hw), Ok(()));
            }
        }
    }

    fn take_acked(&mut self) -> Vec<(u32, Result<(), ReplicationError>)> {
        self.acked.drain(..).map(|c| (c.id, c.result)).collect()
    }
}

#[derive(Debug)]
enum Served {
    EpochEnd(Option<(i32, i64)>),
    Fetched(FetchedPartition),
    Offsets(LeaderOffsets),
    Error(ReplicationError),
}

fn action_made_progress(steps: &[FollowerStep], log: &MemLog) -> bool {
    steps.iter().any(|step| match step {
        FollowerStep::Truncate { offset } => *offset < log.log_end_offset(),
        FollowerStep::SetHighWatermark(hw) => *hw != log.high_watermark(),
        _ => true,
    })
}

#[test]
fn three_replicas_replicate_shrink_expand_and_converge_after_leader_changes() {
    let mut cluster = Cluster::new();
    // Followers start by truncating (nothing to cut) and fetch nothing yet.
    cluster.run(&[2, 3]);
    assert_eq!(cluster.high_watermark(), 0);

    // acks=all: the high watermark waits for every ISR member.
    assert_eq!(cluster.produce(3, 1), Ok(3));
    assert_eq!(
        cluster.leader().acks_all_result(cluster.log(1), 3),
        AckStatus::Waiting
    );
    cluster.step(2); // fetches 0..3
    cluster.step(2); // fetch at 3: replica 2 has them
    assert_eq!(cluster.log(2).log_end_offset(), 3);
    assert_eq!(
        cluster.high_watermark(),
        0,
        "replica 3 has not fetched them"
    );
    assert!(cluster.take_acked().is_empty());
    cluster.step(3);
    cluster.step(3);
    assert_eq!(cluster.high_watermark(), 3);
    assert_eq!(cluster.take_acked(), vec![(1, Ok(()))]);
    cluster.run(&[2, 3]);
    cluster.assert_identical_up_to_high_watermark();
    assert_eq!(cluster.log(3).high_watermark(), 3);

    // Replica 3 stops fetching: the high watermark stays at its end until it leaves the
    // ISR after replica.lag.time.max.ms.
    let caught_up_at = cluster.now;
    cluster.now += 1_000;
    assert_eq!(cluster.produce(2, 2), Ok(5));
    cluster.run(&[2]);
    assert_eq!(cluster.log(2).log_end_offset(), 5);
    assert_eq!(cluster.high_watermark(), 3);
    cluster.now = caught_up_at + 30_000;
    let node = cluster.nodes.get_mut(&1).unwrap();
    let Role::Leader(leader) = &mut node.role else {
        unreachable!()
    };
    assert_eq!(
        leader.maybe_shrink_isr(&node.log, caught_up_at + 30_000),
        None
    );
    let proposal = leader
        .maybe_shrink_isr(&node.log, caught_up_at + 30_001)
        .unwrap();
    assert_eq!(proposal.isr(), vec![1, 2]);
    cluster.now = caught_up_at + 30_001;
    cluster.submit(proposal);
    assert_eq!(cluster.isr(), vec![1, 2]);
    assert_eq!(cluster.partition.partition_epoch, 1);
    assert_eq!(cluster.high_watermark(), 5);
    assert_eq!(cluster.take_acked(), vec![(2, Ok(()))]);
    // With 2 of 3 in the ISR acks=all still meets min.insync.replicas=2.
    assert_eq!(cluster.produce(4, 3), Ok(9));
    cluster.run(&[2]);
    assert_eq!(cluster.high_watermark(), 9);
    assert_eq!(cluster.take_acked(), vec![(3, Ok(()))]);

    // Replica 3 comes back, catches up and rejoins the ISR.
    cluster.now += 1_000;
    cluster.run(&[2, 3]);
    assert_eq!(cluster.isr(), vec![1, 2, 3]);
    assert_eq!(cluster.partition.partition_epoch, 2);
    cluster.assert_identical_up_to_high_watermark();
    assert_eq!(cluster.high_watermark(), 9);

    // Leader 1 appends a tail nobody fetches, then replica 2 is elected (epoch 2) and
    // writes over those offsets. Replica 1 follows with OffsetForLeaderEpoch and cuts it.
    cluster.append_unreplicated(3);
    assert_eq!(cluster.log(1).log_end_offset(), 12);
    cluster.elect(2);
    assert_eq!(cluster.log(2).end_offset_for_epoch(1), Some((1, 9)));
    assert_eq!(cluster.produce(2, 4), Ok(11));
    cluster.run(&[1, 3]);
    assert_eq!(cluster.high_watermark(), 11);
    assert_eq!(cluster.take_acked(), vec![(4, Ok(()))]);
    cluster.assert_identical_up_to_high_watermark();
    let tail: Vec<(i64, i32)> = cluster
        .log(1)
        .batches()
        .iter()
        .map(|b| (b.base_offset, b.leader_epoch))
        .collect();
    assert_eq!(tail, vec![(0, 1), (3, 1), (5, 1), (9, 2)]);

    // Now leader 2 appends an unreplicated tail and replica 3 takes over (epoch 3);
    // replica 2 learns of the divergence from a Fetch response.
    cluster.append_unreplicated(2);
    cluster.elect(3);
    assert_eq!(cluster.produce(1, 5), Ok(12));
    cluster.run(&[1, 2]);
    assert_eq!(cluster.high_watermark(), 12);
    assert_eq!(cluster.take_acked(), vec![(5, Ok(()))]);
    cluster.assert_identical_up_to_high_watermark();
    for id in [1, 2, 3] {
        assert_eq!(cluster.log(id).log_end_offset(), 12, "replica {id}");
        assert_eq!(cluster.log(id).end_offset_for_epoch(2), Some((2, 11)));
        assert_eq!(cluster.log(id).latest_epoch(), Some(3));
    }
}

#[test]
fn acks_all_fails_after_the_isr_shrinks_below_the_minimum() {
    let mut cluster = Cluster::new();
    cluster.run(&[2, 3]);
    // Both followers stop; a produce waits, then both leave the ISR.
    assert_eq!(cluster.produce(1, 1), Ok(1));
    cluster.now += 30_001;
    let node = cluster.nodes.get_mut(&1).unwrap();
    let Role::Leader(leader) = &mut node.role else {
        unreachable!()
    };
    let proposal = leader.maybe_shrink_isr(&node.log, cluster.now).unwrap();
    assert_eq!(proposal.isr(), vec![1]);
    cluster.submit(proposal);
    assert_eq!(cluster.high_watermark(), 1);
    assert_eq!(
        cluster.take_acked(),
        vec![(
            1,
            Err(ReplicationError::NotEnoughReplicasAfterAppend {
                isr_size: 1,
                min_insync_replicas: 2
            })
        )]
    );
    assert_eq!(
        cluster.produce(1, 2),
        Err(ReplicationError::NotEnoughReplicas {
            isr_size: 1,
            min_insync_replicas: 2
        })
    );
    // A wait nobody completes times out.
    cluster
        .waiters
        .insert(PARTITION, 99, cluster.now + 5, 3)
        .unwrap();
    assert_eq!(cluster.waiters.next_deadline_ms(), Some(cluster.now + 5));
    let expired: Vec<_> = cluster
        .waiters
        .expire(cluster.now + 5)
        .into_iter()
        .map(|c| (c.id, c.result))
        .collect();
    assert_eq!(expired, vec![(3, Err(ReplicationError::RequestTimedOut))]);
}
