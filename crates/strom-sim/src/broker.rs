//! One simulated node's broker side: registration and heartbeats to the active
//! controller, and the partition replicas it hosts, driven by strom-replication's
//! `LeaderState`/`FollowerState`/`AckWaiters` over `MemLog`s. Leadership is learnt only
//! from the committed metadata image.

use std::collections::BTreeMap;

use bytes::Bytes;
use strom_metadata::alter_partition::{
    AlterPartitionData, AlterPartitionRequest, AlterPartitionTopic, IsrMember,
};
use strom_metadata::cluster_control::{BrokerHeartbeatRequest, BrokerRegistrationRequest};
use strom_metadata::{ControllerError, LeaderRecoveryState, NO_LEADER};
use strom_raft::Quorum;
use strom_replication::{
    AckWaiters, AlterPartitionError, AlterPartitionProposal, AlterPartitionRetry, BrokerStatus,
    CommittedIsr, FetchedPartition, FollowerAction, FollowerConfig, FollowerFetch, FollowerRequest,
    FollowerState, FollowerStep, LeaderConfig, LeaderOffsets, LeaderState, MemLog, MetadataOutcome,
    PartitionState, RecordBatches, ReplicaLog, ReplicationError,
};
use strom_types::NodeId;
use strom_types::TopicId;
use strom_wire::batch::BatchHeader;

use crate::messages::{
    ControllerReply, ControllerRequest, Message, Payload, ReplicaReply, ReplicaRequest,
};
use crate::net::World;
use crate::node::{ImageSm, TOPIC};
use crate::SimConfig;

const REQUEST_TIMEOUT_MS: u64 = 1000;
/// OUT_OF_ORDER_SEQUENCE_NUMBER, as the simulated producer recognizes it.
pub const OUT_OF_ORDER: &str = "out of order sequence";
/// An empty fetch waits this long before the next (Kafka's leader holds it instead).
const FETCH_IDLE_MS: u64 = 20;
const ISR_SHRINK_CHECK_MS: u64 = 250;
const ALTER_RETRY_MS: u64 = 50;

enum Role {
    Leader(LeaderState),
    Follower {
        state: FollowerState,
        request: Option<(u64, u64)>,
        next_poll_ms: u64,
    },
}

/// An acks=all produce waiting for the high watermark.
#[derive(Debug, Clone)]
pub struct ProduceWait {
    pub request_id: u64,
    pub client_incarnation: u64,
    pub base_offset: i64,
}

pub struct Broker {
    pub id: NodeId,
    pub incarnation: u64,
    incarnation_id: uuid::Uuid,
    pub epoch: Option<i64>,
    caught_up: bool,
    register_sent: Option<u64>,
    heartbeat_sent: Option<u64>,
    next_heartbeat_ms: u64,
    seen_offset: i64,
    next_id: u64,
    /// Controller request id -> what it was.
    controller_requests: BTreeMap<u64, ControllerRequest>,
    roles: BTreeMap<i32, Role>,
    acks: AckWaiters<i32, ProduceWait>,
    /// Per partition: the AlterPartition in flight (request id, proposal, sent at) or
    /// waiting to be resent.
    alters: BTreeMap<i32, (Option<u64>, AlterPartitionProposal, u64)>,
    next_shrink_check_ms: u64,
    next_flush_ms: u64,
}

fn leader_config(config: &SimConfig) -> LeaderConfig {
    LeaderConfig {
        replica_lag_time_max_ms: config.replica_lag_time_max_ms as i64,
        min_insync_replicas: config.min_insync_replicas,
        hw_requires_min_isr: false,
    }
}

fn follower_config() -> FollowerConfig {
    FollowerConfig {
        fetch_backoff_ms: 100,
        truncate_on_fetch: false,
    }
}

fn alter_error(e: &ControllerError) -> AlterPartitionError {
    match e {
        ControllerError::NotController(_) => AlterPartitionError::NotController,
        ControllerError::FencedLeaderEpoch(_) => AlterPartitionError::FencedLeaderEpoch,
        ControllerError::InvalidUpdateVersion(_) => AlterPartitionError::InvalidUpdateVersion,
        ControllerError::InvalidRequest(_) => AlterPartitionError::InvalidRequest,
        ControllerError::IneligibleReplica(_) => AlterPartitionError::IneligibleReplica(-1),
        ControllerError::UnknownTopicOrPartition(_) => AlterPartitionError::UnknownTopicOrPartition,
        ControllerError::UnknownTopicId(_) => AlterPartitionError::UnknownTopicId,
        ControllerError::NewLeaderElected(_) => AlterPartitionError::NewLeaderElected,
        other => AlterPartitionError::UnknownServerError(other.to_string()),
    }
}

/// What the node around the broker lends it for one step.
pub struct Ctx<'a> {
    pub world: &'a mut World,
    pub logs: &'a mut BTreeMap<i32, MemLog>,
    pub quorum: &'a Quorum<ImageSm>,
    pub sm: &'a ImageSm,
    pub config: &'a SimConfig,
    pub topic_id: TopicId,
    pub now: u64,
}

impl Ctx<'_> {
    fn send(&mut self, from: NodeId, from_incarnation: u64, to: NodeId, payload: Payload) {
        self.world.send(Message {
            from,
            from_incarnation,
            to,
            to_incarnation: None,
            payload,
        });
    }

    fn reply(&mut self, from: NodeId, request: &Message, payload: Payload) {
        self.world.send(Message {
            from,
            from_incarnation: 0,
            to: request.from,
            to_incarnation: Some(request.from_incarnation),
            payload,
        });
    }

    fn violation(&mut self, what: String) {
        self.world.trace(format!("VIOLATION {what}"));
        self.world.observed.violations.push(what);
    }
}

impl Broker {
    pub fn new(
        id: NodeId,
        incarnation: u64,
        incarnation_id: uuid::Uuid,
        now: u64,
        flush_phase: u64,
    ) -> Self {
        Self {
            id,
            incarnation,
            incarnation_id,
            epoch: None,
            caught_up: false,
            register_sent: None,
            heartbeat_sent: None,
            next_heartbeat_ms: now,
            seen_offset: -2,
            next_id: 1,
            controller_requests: BTreeMap::new(),
            roles: BTreeMap::new(),
            acks: AckWaiters::new(10_000),
            alters: BTreeMap::new(),
            next_shrink_check_ms: now,
            next_flush_ms: now + flush_phase,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn send_controller(&mut self, ctx: &mut Ctx, request: ControllerRequest) -> u64 {
        let id = self.next_id();
        let voters = ctx.config.nodes as u64;
        let to = ctx.quorum.leader().unwrap_or_else(|| 1 + (id % voters)) as NodeId;
        self.controller_requests.insert(id, request.clone());
        ctx.send(
            self.id,
            self.incarnation,
            to,
            Payload::Controller { id, request },
        );
        id
    }

    /// One step of the broker's timers.
    pub fn tick(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        if now >= self.next_flush_ms {
            // The OS writing the page cache back: Kafka's default is no fsync.
            for log in ctx.logs.values_mut() {
                log.flush();
            }
            self.next_flush_ms = now + ctx.config.flush_interval_ms;
        }
        let stale = |sent: Option<u64>| sent.is_none_or(|at| now >= at + REQUEST_TIMEOUT_MS);
        match self.epoch {
            None if stale(self.register_sent) => {
                let request = BrokerRegistrationRequest {
                    log_dirs: vec![],
                    broker_id: self.id,
                    incarnation_id: self.incarnation_id,
                    endpoints: vec![],
                    rack: None,
                    // Every simulated stop is a crash: never a clean shutdown.
                    previous_broker_epoch: -1,
                };
                self.send_controller(ctx, ControllerRequest::Register(request));
                self.register_sent = Some(now);
            }
            Some(epoch) if now >= self.next_heartbeat_ms && stale(self.heartbeat_sent) => {
                let request = BrokerHeartbeatRequest {
                    offline_log_dirs: vec![],
                    broker_id: self.id,
                    broker_epoch: epoch,
                    current_metadata_offset: ctx.sm.applied().offset,
                    want_fence: false,
                    want_shut_down: false,
                };
                self.send_controller(ctx, ControllerRequest::Heartbeat(request));
                self.heartbeat_sent = Some(now);
                self.next_heartbeat_ms = now + ctx.config.heartbeat_interval_ms;
            }
            _ => {}
        }
        self.reconcile(ctx);
        self.poll_followers(ctx);
        self.leader_timers(ctx);
        for done in self.acks.expire(now as i64) {
            self.answer_produce(ctx, done.id, done.result);
        }
    }

    /// Acts on newly committed metadata (once caught up with the metadata log, as a
    /// KRaft broker does before it serves).
    fn reconcile(&mut self, ctx: &mut Ctx) {
        if self.epoch.is_none() || !self.caught_up {
            return;
        }
        let applied = ctx.sm.applied();
        if applied.offset == self.seen_offset {
            return;
        }
        self.seen_offset = applied.offset;
        let image = applied.image;
        let Some(topic) = image.topic_by_id(&ctx.topic_id).filter(|t| t.name == TOPIC) else {
            return;
        };
        let now = ctx.now as i64;
        for (&partition, p) in &topic.partitions {
            if !p.replicas.contains(&self.id) {
                self.drop_role(ctx, partition);
                continue;
            }
            let state = PartitionState {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
            };
            if p.leader_recovery_state == LeaderRecoveryState::Recovering
                && ctx.world.observed.unclean_partitions.insert(partition)
            {
                ctx.world.trace(format!(
                    "p{partition} leader {} elected uncleanly",
                    p.leader
                ));
            }
            let log = ctx.logs.entry(partition).or_default();
            if p.leader == self.id {
                let mut new_epoch = None;
                let mut hw = None;
                match self.roles.get_mut(&partition) {
                    Some(Role::Leader(leader)) => match leader.on_metadata(&state, &*log, now) {
                        MetadataOutcome::Updated {
                            new_epoch_start,
                            high_watermark,
                        } => {
                            new_epoch = new_epoch_start;
                            hw = high_watermark;
                        }
                        MetadataOutcome::Stale | MetadataOutcome::NoLongerLeader => {}
                    },
                    _ => {
                        let epoch = self.epoch.unwrap_or(-1);
                        match LeaderState::new(
                            self.id,
                            epoch,
                            &state,
                            leader_config(ctx.config),
                            &*log,
                            now,
                        ) {
                            Ok(leader) => {
                                new_epoch = Some((
                                    leader.leader_epoch(),
                                    leader.leader_epoch_start_offset(),
                                ));
                                self.roles.insert(partition, Role::Leader(leader));
                                self.alters.remove(&partition);
                            }
                            Err(e) => {
                                ctx.violation(format!("LeaderState::new refused: {e}"));
                                continue;
                            }
                        }
                    }
                }
                let Some(Role::Leader(leader)) = self.roles.get_mut(&partition) else {
                    continue;
                };
                for &replica in &p.replicas {
                    let status = image.broker(replica).map(|b| BrokerStatus {
                        epoch: b.epoch,
                        fenced: b.fenced,
                        in_controlled_shutdown: b.in_controlled_shutdown,
                    });
                    leader.set_broker_status(replica, status);
                }
                if let Some((epoch, start)) = new_epoch {
                    log.assign_epoch_start(epoch, start);
                    let line = format!(
                        "broker {} leads p{partition} epoch {epoch} from offset {start} isr {:?}",
                        self.id, p.isr
                    );
                    ctx.world.trace(line);
                    let previous = ctx
                        .world
                        .observed
                        .partition_leaders
                        .insert((partition, epoch), self.id);
                    if let Some(other) = previous.filter(|&other| other != self.id) {
                        let v = format!(
                            "p{partition} leader epoch {epoch} led by {other} and {}",
                            self.id
                        );
                        ctx.world.trace(format!("VIOLATION {v}"));
                        ctx.world.observed.violations.push(v);
                    }
                }
                let hw = hw.or_else(|| leader.maybe_increment_high_watermark(&*log, now));
                if let Some(hw) = hw {
                    log.maybe_increment_high_watermark(hw);
                }
                self.complete_acks(ctx, partition);
            } else {
                if matches!(self.roles.get(&partition), Some(Role::Leader(_))) {
                    self.drop_role(ctx, partition);
                }
                if p.leader == NO_LEADER {
                    self.roles.remove(&partition);
                    continue;
                }
                let current = matches!(
                    self.roles.get(&partition),
                    Some(Role::Follower { state, .. })
                        if state.leader_epoch() == p.leader_epoch && state.leader_id() == p.leader
                );
                if !current {
                    let log = ctx.logs.entry(partition).or_default();
                    self.roles.insert(
                        partition,
                        Role::Follower {
                            state: FollowerState::new(
                                p.leader,
                                p.leader_epoch,
                                follower_config(),
                                &*log,
                            ),
                            request: None,
                            next_poll_ms: 0,
                        },
                    );
                    ctx.world.trace(format!(
                        "broker {} follows {} for p{partition} epoch {}",
                        self.id, p.leader, p.leader_epoch
                    ));
                }
            }
        }
    }

    fn drop_role(&mut self, ctx: &mut Ctx, partition: i32) {
        if let Some(Role::Leader(_)) = self.roles.remove(&partition) {
            for done in self
                .acks
                .fail_partition(&partition, ReplicationError::NotLeaderOrFollower)
            {
                self.answer_produce(ctx, done.id, done.result);
            }
            self.alters.remove(&partition);
        }
    }

    fn answer_produce(
        &mut self,
        ctx: &mut Ctx,
        wait: ProduceWait,
        result: Result<(), ReplicationError>,
    ) {
        // The partition is not in the wait: find it from the roles is not needed, the
        // client matches by request id.
        ctx.world.send(Message {
            from: self.id,
            from_incarnation: self.incarnation,
            to: crate::net::CLIENT,
            to_incarnation: Some(wait.client_incarnation),
            payload: Payload::ProduceReply {
                id: wait.request_id,
                result: result.map(|()| wait.base_offset),
            },
        });
    }

    fn complete_acks(&mut self, ctx: &mut Ctx, partition: i32) {
        let Some(Role::Leader(leader)) = self.roles.get(&partition) else {
            return;
        };
        let log = ctx.logs.entry(partition).or_default();
        let done = self.acks.complete(&partition, |required| {
            leader.acks_all_result(&*log, required)
        });
        for done in done {
            self.answer_produce(ctx, done.id, done.result);
        }
    }

    fn poll_followers(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        let partitions: Vec<i32> = self.roles.keys().copied().collect();
        for partition in partitions {
            let Some(Role::Follower {
                state,
                request,
                next_poll_ms,
            }) = self.roles.get_mut(&partition)
            else {
                continue;
            };
            let log = ctx.logs.entry(partition).or_default();
            if let Some((_, sent)) = *request {
                if now < sent + REQUEST_TIMEOUT_MS {
                    continue;
                }
                *request = None;
                let steps = state.on_request_failed(
                    ReplicationError::NetworkException("timed out".into()),
                    now as i64,
                );
                let _ = apply_steps(log, &steps);
            }
            if now < *next_poll_ms {
                continue;
            }
            let leader = state.leader_id();
            match state.poll(&*log, now as i64) {
                Some(FollowerAction::Send(follower_request)) => {
                    let request_msg = match follower_request {
                        FollowerRequest::OffsetForLeaderEpoch {
                            current_leader_epoch,
                            leader_epoch,
                        } => ReplicaRequest::OffsetForLeaderEpoch {
                            current_leader_epoch,
                            leader_epoch,
                        },
                        FollowerRequest::Fetch {
                            current_leader_epoch,
                            fetch_offset,
                            last_fetched_epoch,
                            log_start_offset,
                        } => ReplicaRequest::Fetch {
                            current_leader_epoch,
                            fetch_offset,
                            last_fetched_epoch,
                            log_start_offset,
                        },
                        FollowerRequest::ListOffsets {
                            current_leader_epoch,
                        } => ReplicaRequest::ListOffsets {
                            current_leader_epoch,
                        },
                    };
                    self.next_id += 1;
                    let id = self.next_id;
                    *request = Some((id, now));
                    let payload = Payload::Replica {
                        id,
                        partition,
                        replica_id: self.id,
                        broker_epoch: self.epoch.unwrap_or(-1),
                        request: request_msg,
                    };
                    ctx.send(self.id, self.incarnation, leader, payload);
                }
                Some(FollowerAction::Apply(steps)) => {
                    let _ = apply_steps(log, &steps);
                }
                None => {}
            }
        }
    }

    fn leader_timers(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        if now >= self.next_shrink_check_ms {
            self.next_shrink_check_ms = now + ISR_SHRINK_CHECK_MS;
            for (&partition, role) in self.roles.iter_mut() {
                if let Role::Leader(leader) = role {
                    let log = ctx.logs.entry(partition).or_default();
                    if let Some(proposal) = leader.maybe_shrink_isr(&*log, now as i64) {
                        self.alters.insert(partition, (None, proposal, 0));
                    }
                }
            }
        }
        let due: Vec<i32> = self
            .alters
            .iter()
            .filter(|(_, (id, _, at))| match id {
                None => now >= *at,
                Some(_) => now >= at + REQUEST_TIMEOUT_MS,
            })
            .map(|(p, _)| *p)
            .collect();
        for partition in due {
            let Some((_, proposal, _)) = self.alters.get(&partition).cloned() else {
                continue;
            };
            let request = AlterPartitionRequest {
                broker_id: self.id,
                broker_epoch: self.epoch.unwrap_or(-1),
                topics: vec![AlterPartitionTopic {
                    topic_id: ctx.topic_id,
                    partitions: vec![AlterPartitionData {
                        partition,
                        leader_epoch: proposal.leader_epoch,
                        partition_epoch: proposal.partition_epoch,
                        new_isr: proposal
                            .new_isr
                            .iter()
                            .map(|m| IsrMember {
                                broker_id: m.replica_id,
                                broker_epoch: m.broker_epoch,
                            })
                            .collect(),
                        leader_recovery_state: LeaderRecoveryState::Recovered,
                    }],
                }],
            };
            ctx.world.trace(format!(
                "broker {} alter p{partition} isr {:?} (epoch {}/{})",
                self.id,
                proposal.isr(),
                proposal.leader_epoch,
                proposal.partition_epoch
            ));
            let id = self.send_controller(ctx, ControllerRequest::AlterPartition(request));
            self.alters.insert(partition, (Some(id), proposal, now));
        }
    }

    /// A message for this broker.
    pub fn on_message(&mut self, ctx: &mut Ctx, message: Message) {
        let now = ctx.now as i64;
        match message.payload.clone() {
            Payload::ControllerReply { id, reply } => {
                let Some(request) = self.controller_requests.remove(&id) else {
                    return;
                };
                self.on_controller_reply(ctx, request, reply);
            }
            Payload::ReplicaReply {
                id,
                partition,
                reply,
            } => {
                let Some(Role::Follower { state, request, .. }) = self.roles.get_mut(&partition)
                else {
                    return;
                };
                if request.map(|(sent, _)| sent) != Some(id) {
                    return;
                }
                *request = None;
                let log = ctx.logs.entry(partition).or_default();
                let mut idle = false;
                let steps = match reply {
                    ReplicaReply::OffsetForLeaderEpoch(result) => {
                        state.on_offset_for_leader_epoch(&*log, result, now)
                    }
                    ReplicaReply::Fetch(result) => {
                        idle = result.as_ref().is_ok_and(|f| f.records.is_empty());
                        state.on_fetch_response(&*log, result, now)
                    }
                    ReplicaReply::ListOffsets(result) => {
                        state.on_leader_offsets(&*log, result, now)
                    }
                };
                if let Err(e) = apply_steps(log, &steps) {
                    ctx.violation(format!("broker {} p{partition}: {e}", self.id));
                }
                if let Some(Role::Follower { next_poll_ms, .. }) = self.roles.get_mut(&partition) {
                    *next_poll_ms = if idle { ctx.now + FETCH_IDLE_MS } else { 0 };
                }
            }
            Payload::Replica {
                id,
                partition,
                replica_id,
                broker_epoch,
                request,
            } => {
                let reply =
                    self.on_replica_request(ctx, partition, replica_id, broker_epoch, request);
                ctx.reply(
                    self.id,
                    &message,
                    Payload::ReplicaReply {
                        id,
                        partition,
                        reply,
                    },
                );
            }
            Payload::Produce {
                id,
                partition,
                producer_id,
                producer_epoch,
                base_sequence,
                batch,
            } => {
                let wait = ProduceWait {
                    request_id: id,
                    client_incarnation: message.from_incarnation,
                    base_offset: -1,
                };
                if let Err(e) = self.produce(
                    ctx,
                    partition,
                    (producer_id, producer_epoch),
                    base_sequence,
                    batch,
                    wait,
                ) {
                    ctx.reply(
                        self.id,
                        &message,
                        Payload::ProduceReply { id, result: Err(e) },
                    );
                }
            }
            Payload::ConsumerFetch {
                id,
                partition,
                offset,
            } => {
                let result = self.consumer_fetch(ctx, partition, offset);
                ctx.reply(
                    self.id,
                    &message,
                    Payload::ConsumerFetchReply {
                        id,
                        partition,
                        result,
                    },
                );
            }
            Payload::Controller { .. }
            | Payload::ProduceReply { .. }
            | Payload::ConsumerFetchReply { .. } => {}
        }
    }

    fn on_controller_reply(
        &mut self,
        ctx: &mut Ctx,
        request: ControllerRequest,
        reply: ControllerReply,
    ) {
        match (request, reply) {
            (ControllerRequest::Register(_), ControllerReply::Registered(Ok(epoch))) => {
                ctx.world
                    .trace(format!("broker {} registered with epoch {epoch}", self.id));
                self.epoch = Some(epoch);
                self.next_heartbeat_ms = ctx.now;
            }
            (ControllerRequest::Register(_), _) => {
                // Retry soon (after the request timeout at the latest).
                self.register_sent = Some(ctx.now.saturating_sub(REQUEST_TIMEOUT_MS - 50));
            }
            (ControllerRequest::Heartbeat(_), ControllerReply::Heartbeat(Ok(reply))) => {
                self.heartbeat_sent = None;
                if reply.is_caught_up && !self.caught_up {
                    ctx.world
                        .trace(format!("broker {} caught up with the metadata", self.id));
                    self.caught_up = true;
                }
            }
            (ControllerRequest::Heartbeat(_), ControllerReply::Heartbeat(Err(e))) => {
                self.heartbeat_sent = None;
                if matches!(
                    e,
                    ControllerError::StaleBrokerEpoch(_)
                        | ControllerError::BrokerIdNotRegistered(_)
                ) {
                    ctx.world
                        .trace(format!("broker {} must register again: {e}", self.id));
                    self.epoch = None;
                    self.register_sent = None;
                }
            }
            (ControllerRequest::Heartbeat(_), _) => self.heartbeat_sent = None,
            (ControllerRequest::AlterPartition(request), reply) => {
                let Some(data) = request.topics.first().and_then(|t| t.partitions.first()) else {
                    return;
                };
                let partition = data.partition;
                let Some((_, sent, _)) = self.alters.get(&partition).cloned() else {
                    return;
                };
                if sent.leader_epoch != data.leader_epoch
                    || sent.partition_epoch != data.partition_epoch
                {
                    return;
                }
                let Some(Role::Leader(leader)) = self.roles.get_mut(&partition) else {
                    self.alters.remove(&partition);
                    return;
                };
                let log = ctx.logs.entry(partition).or_default();
                let now = ctx.now as i64;
                let outcome = match reply {
                    ControllerReply::AlterPartition(Ok(results)) => {
                        match results
                            .into_iter()
                            .find(|r| r.partition == partition)
                            .map(|r| r.result)
                        {
                            Some(Ok(state)) => Ok(CommittedIsr {
                                leader_epoch: state.leader_epoch,
                                partition_epoch: state.partition_epoch,
                                isr: state.isr,
                            }),
                            Some(Err(e)) => Err(alter_error(&e)),
                            None => {
                                Err(AlterPartitionError::UnknownServerError("no result".into()))
                            }
                        }
                    }
                    ControllerReply::AlterPartition(Err(e)) => Err(alter_error(&e)),
                    _ => Err(AlterPartitionError::NotController),
                };
                match outcome {
                    Ok(committed) => {
                        self.alters.remove(&partition);
                        ctx.world.trace(format!(
                            "broker {} p{partition} isr committed {:?} (epoch {}/{})",
                            self.id,
                            committed.isr,
                            committed.leader_epoch,
                            committed.partition_epoch
                        ));
                        if let Some(hw) = leader.on_isr_committed(&sent, &committed, &*log, now) {
                            log.maybe_increment_high_watermark(hw);
                        }
                        self.complete_acks(ctx, partition);
                    }
                    Err(error) => match leader.on_isr_change_failed(&sent, &error) {
                        AlterPartitionRetry::Resend(proposal) => {
                            self.alters
                                .insert(partition, (None, proposal, ctx.now + ALTER_RETRY_MS));
                        }
                        AlterPartitionRetry::Reverted
                        | AlterPartitionRetry::AwaitMetadata
                        | AlterPartitionRetry::Ignored => {
                            self.alters.remove(&partition);
                        }
                    },
                }
            }
        }
    }

    fn on_replica_request(
        &mut self,
        ctx: &mut Ctx,
        partition: i32,
        replica_id: i32,
        broker_epoch: i64,
        request: ReplicaRequest,
    ) -> ReplicaReply {
        let now = ctx.now as i64;
        let Some(Role::Leader(leader)) = self.roles.get_mut(&partition) else {
            let e = ReplicationError::NotLeaderOrFollower;
            return match request {
                ReplicaRequest::OffsetForLeaderEpoch { .. } => {
                    ReplicaReply::OffsetForLeaderEpoch(Err(e))
                }
                ReplicaRequest::Fetch { .. } => ReplicaReply::Fetch(Err(e)),
                ReplicaRequest::ListOffsets { .. } => ReplicaReply::ListOffsets(Err(e)),
            };
        };
        let log = ctx.logs.entry(partition).or_default();
        match request {
            ReplicaRequest::OffsetForLeaderEpoch {
                current_leader_epoch,
                leader_epoch,
            } => ReplicaReply::OffsetForLeaderEpoch(
                leader
                    .check_leader_epoch(Some(current_leader_epoch))
                    .map(|()| log.end_offset_for_epoch(leader_epoch)),
            ),
            ReplicaRequest::ListOffsets {
                current_leader_epoch,
            } => ReplicaReply::ListOffsets(
                leader
                    .check_leader_epoch(Some(current_leader_epoch))
                    .map(|()| LeaderOffsets {
                        log_start_offset: log.log_start_offset(),
                        log_end_offset: log.log_end_offset(),
                    }),
            ),
            ReplicaRequest::Fetch {
                current_leader_epoch,
                fetch_offset,
                last_fetched_epoch,
                log_start_offset,
            } => {
                let result = (|| {
                    leader.check_leader_epoch(Some(current_leader_epoch))?;
                    if let Some(diverging) =
                        leader.validate_fetch_epoch(&*log, fetch_offset, last_fetched_epoch)?
                    {
                        return Ok((
                            FetchedPartition {
                                high_watermark: log.high_watermark(),
                                log_start_offset: log.log_start_offset(),
                                diverging_epoch: Some(diverging),
                                records: Bytes::new(),
                            },
                            None,
                        ));
                    }
                    let leader_log_end_offset = log.log_end_offset();
                    let records = log.read(fetch_offset, 64 * 1024).map_err(|_| {
                        ReplicationError::OffsetOutOfRange {
                            offset: fetch_offset,
                            log_start_offset: log.log_start_offset(),
                            log_end_offset: log.log_end_offset(),
                        }
                    })?;
                    let outcome = leader.on_follower_fetch(
                        &FollowerFetch {
                            replica_id,
                            current_leader_epoch: Some(current_leader_epoch),
                            fetch_offset,
                            log_start_offset,
                            broker_epoch,
                            leader_log_end_offset,
                        },
                        &*log,
                        now,
                    )?;
                    if let Some(hw) = outcome.high_watermark {
                        log.maybe_increment_high_watermark(hw);
                    }
                    Ok((
                        FetchedPartition {
                            high_watermark: log.high_watermark(),
                            log_start_offset: log.log_start_offset(),
                            diverging_epoch: None,
                            records,
                        },
                        outcome.alter_partition,
                    ))
                })();
                let result = result.map(|(fetched, alter)| {
                    if let Some(proposal) = alter {
                        self.alters.insert(partition, (None, proposal, 0));
                    }
                    fetched
                });
                self.complete_acks(ctx, partition);
                ReplicaReply::Fetch(result)
            }
        }
    }

    fn produce(
        &mut self,
        ctx: &mut Ctx,
        partition: i32,
        (producer_id, producer_epoch): (i64, i16),
        base_sequence: i32,
        batch: Bytes,
        mut wait: ProduceWait,
    ) -> Result<(), ReplicationError> {
        let Some(Role::Leader(leader)) = self.roles.get(&partition) else {
            return Err(ReplicationError::NotLeaderOrFollower);
        };
        let log = ctx.logs.entry(partition).or_default();
        // Idempotence: the producer state is what the log holds (Kafka rebuilds it from
        // the log's batches when a replica becomes leader).
        let mut last_sequence = -1;
        let mut duplicate = None;
        for stored in log.batches() {
            let header = BatchHeader::new(&stored.bytes)
                .map_err(|e| ReplicationError::CorruptRecord(e.to_string()))?;
            if header.producer_id() != producer_id || header.producer_epoch() != producer_epoch {
                continue;
            }
            let last = header.base_sequence() + header.last_offset_delta();
            last_sequence = last_sequence.max(last);
            if header.base_sequence() == base_sequence {
                duplicate = Some((stored.base_offset, stored.last_offset));
            }
        }
        let (first, last) = if let Some(found) = duplicate {
            ctx.world.trace(format!(
                "broker {} p{partition} duplicate seq {base_sequence} at {}",
                self.id, found.0
            ));
            found
        } else if base_sequence != last_sequence + 1 {
            return Err(ReplicationError::UnknownServerError(format!(
                "{OUT_OF_ORDER} {base_sequence}, expected {}",
                last_sequence + 1
            )));
        } else {
            leader.check_produce_acks_all()?;
            let appended = log
                .append_as_leader(&batch, leader.leader_epoch())
                .map_err(|e| ReplicationError::UnknownServerError(e.to_string()))?;
            ctx.world.trace(format!(
                "broker {} p{partition} appended seq {base_sequence} at {} epoch {}",
                self.id,
                appended.0,
                leader.leader_epoch()
            ));
            appended
        };
        if let Some(hw) = leader.maybe_increment_high_watermark(&*log, ctx.now as i64) {
            log.maybe_increment_high_watermark(hw);
        }
        wait.base_offset = first;
        let deadline = (ctx.now + ctx.config.produce_timeout_ms) as i64;
        self.acks
            .insert(partition, last + 1, deadline, wait)
            .map_err(|e| ReplicationError::UnknownServerError(e.to_string()))?;
        self.complete_acks(ctx, partition);
        Ok(())
    }

    fn consumer_fetch(
        &mut self,
        ctx: &mut Ctx,
        partition: i32,
        offset: i64,
    ) -> Result<Bytes, ReplicationError> {
        let Some(Role::Leader(_)) = self.roles.get(&partition) else {
            return Err(ReplicationError::NotLeaderOrFollower);
        };
        let log = ctx.logs.entry(partition).or_default();
        let high_watermark = log.high_watermark();
        if offset > high_watermark {
            return Err(ReplicationError::OffsetOutOfRange {
                offset,
                log_start_offset: log.log_start_offset(),
                log_end_offset: high_watermark,
            });
        }
        let bytes = log
            .read(offset, 1 << 20)
            .map_err(|e| ReplicationError::UnknownServerError(e.to_string()))?;
        let batches = RecordBatches::parse(bytes.clone())?;
        // Only what the high watermark covers.
        let end = batches
            .spans()
            .iter()
            .take_while(|s| s.last_offset < high_watermark)
            .last()
            .map_or(0, |s| s.position + s.size);
        Ok(bytes.slice(..end))
    }
}

/// Applies a follower's steps to its log.
pub fn apply_steps(log: &mut MemLog, steps: &[FollowerStep]) -> Result<(), String> {
    for step in steps {
        match step {
            FollowerStep::Truncate { offset } => log.truncate_to(*offset),
            FollowerStep::TruncateFullyAndStartAt { offset } => {
                log.truncate_fully_and_start_at(*offset)
            }
            FollowerStep::Append(batches) => {
                log.append_as_follower(batches).map_err(|e| e.to_string())?
            }
            FollowerStep::SetHighWatermark(hw) => {
                log.set_high_watermark(*hw);
            }
            FollowerStep::IncrementLogStartOffset(offset) => {
                log.maybe_increment_log_start_offset(*offset);
            }
            FollowerStep::Backoff { .. } | FollowerStep::AwaitMetadata { .. } => {}
        }
    }
    Ok(())
}
