//! Partition roles and replication on the broker side (Kafka's ReplicaManager and the
//! role changes of its Partition): every installed metadata image gives each hosted
//! partition its role, leader (a `strom_replication::LeaderState`) or follower of a
//! leader in an epoch (a `FollowerState`, driven by `replica_fetcher`). A role changes only
//! with a newer leader epoch, or a newer partition epoch for the same leader (Kafka's
//! makeLeader / makeFollower). The replication rules themselves live in
//! `strom-replication`; this module feeds them real logs, requests and time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use strom_metadata::{MetadataImage, PartitionImage, NO_LEADER};
use strom_replication::quota::{ReplicationQuota, ThrottledReplicas, UNLIMITED_RATE};
use strom_replication::{
    AckWaiters, AlterPartitionProposal, BrokerStatus, FetchOutcome, FollowerConfig, FollowerFetch,
    FollowerState, LeaderConfig, LeaderState, MetadataOutcome, PartitionState, ReplicaSelector,
    ReplicationError,
};
use strom_types::{NodeId, TopicId};
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::broker::{now_ms, Broker};
use crate::partition::Partition;

/// A hosted partition's role.
pub enum Role {
    /// No role yet (before the first image), or no leader to follow.
    Unassigned,
    Leader(Mutex<LeaderState>),
    Follower(Mutex<FollowerState>),
}

/// The partition's replication state as this broker knows it.
pub struct Replica {
    pub role: Role,
    /// The leader the image names (`NO_LEADER` when none).
    pub leader: NodeId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

impl Replica {
    pub fn unassigned(leader_epoch: i32) -> Self {
        Self {
            role: Role::Unassigned,
            leader: NO_LEADER,
            leader_epoch,
            partition_epoch: -1,
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }
}

/// An acks=all produce's wait: answered once the high watermark passes its append.
type AckSender = oneshot::Sender<Result<(), ReplicationError>>;

/// Acks=all produce requests waiting at once, at most (Kafka's purgatory has no bound;
/// a bounded set answers the excess at once with REQUEST_TIMED_OUT instead of growing).
const ACK_WAITERS_CAPACITY: usize = 100_000;

pub struct ReplicaManager {
    /// The broker itself, for the tasks roles start (fetchers, AlterPartition).
    broker: std::sync::OnceLock<std::sync::Weak<Broker>>,
    acks: Mutex<AckWaiters<(TopicId, i32), AckSender>>,
    /// One fetcher per leader broker this node follows partitions of.
    pub(crate) fetchers: Mutex<HashMap<NodeId, Arc<crate::replica_fetcher::Fetcher>>>,
    /// Bytes this leader serves to throttled followers (`leader.replication.throttled.rate`).
    leader_quota: Mutex<ReplicationQuota>,
    /// Bytes this follower fetches for throttled partitions (`follower.replication.throttled.rate`).
    follower_quota: Mutex<ReplicationQuota>,
}

impl Default for ReplicaManager {
    fn default() -> Self {
        Self {
            broker: std::sync::OnceLock::new(),
            acks: Mutex::new(AckWaiters::new(ACK_WAITERS_CAPACITY)),
            fetchers: Mutex::new(HashMap::new()),
            leader_quota: Mutex::new(ReplicationQuota::new(UNLIMITED_RATE, 0)),
            follower_quota: Mutex::new(ReplicationQuota::new(UNLIMITED_RATE, 0)),
        }
    }
}

impl ReplicaManager {
    /// Called once the broker is in its `Arc`, before the first image is installed.
    pub fn set_broker(&self, broker: &Arc<Broker>) {
        let _ = self.broker.set(Arc::downgrade(broker));
    }
}

/// Which side of replication a throttle applies to (Kafka's leader and follower
/// ReplicationQuotaManagers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleSide {
    Leader,
    Follower,
}

impl ThrottleSide {
    fn rate_config(self) -> &'static str {
        match self {
            Self::Leader => "leader.replication.throttled.rate",
            Self::Follower => "follower.replication.throttled.rate",
        }
    }
}

/// Whether the topic's `*.replication.throttled.replicas` names this partition on this
/// broker (Kafka's isThrottled).
pub fn is_throttled(broker: &Broker, partition: &Partition, side: ThrottleSide) -> bool {
    let settings = partition.settings();
    let listed = match side {
        ThrottleSide::Leader => &settings.leader_throttled_replicas,
        ThrottleSide::Follower => &settings.follower_throttled_replicas,
    };
    !listed.trim().is_empty()
        && ThrottledReplicas::parse(listed, broker.config.node_id).is_throttled(partition.index)
}

impl ReplicaManager {
    fn quota(&self, side: ThrottleSide) -> &Mutex<ReplicationQuota> {
        match side {
            ThrottleSide::Leader => &self.leader_quota,
            ThrottleSide::Follower => &self.follower_quota,
        }
    }
}

/// Kafka's isQuotaExceeded, at the rate the broker's dynamic config says now.
pub fn is_quota_exceeded(broker: &Broker, side: ThrottleSide) -> bool {
    let rate = broker
        .effective_config::<i64>(side.rate_config(), i64::MAX)
        .max(0) as u64;
    let now = now_ms();
    let mut quota = broker
        .replicas
        .quota(side)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    quota.set_rate(rate, now);
    quota.is_exceeded(now)
}

/// Counts bytes replicated for throttled partitions, in sync or not (as Kafka does, so
/// the total stays under the rate).
pub fn record_throttled_bytes(broker: &Broker, side: ThrottleSide, bytes: usize) {
    if bytes == 0 {
        return;
    }
    broker
        .replicas
        .quota(side)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(bytes, now_ms());
}

/// Whether `replica` is in the ISR of a partition this broker leads.
pub fn is_in_sync(partition: &Partition, replica: NodeId) -> bool {
    match &partition.replica().role {
        Role::Leader(state) => state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .isr()
            .contains(&replica),
        _ => false,
    }
}

fn partition_state(spec: &PartitionImage) -> PartitionState {
    PartitionState {
        leader: spec.leader,
        leader_epoch: spec.leader_epoch,
        partition_epoch: spec.partition_epoch,
        replicas: spec.replicas.clone(),
        isr: spec.isr.clone(),
    }
}

fn leader_config(broker: &Broker, partition: &Partition) -> LeaderConfig {
    LeaderConfig {
        replica_lag_time_max_ms: broker.config.cluster.replica_lag_time_max_ms,
        min_insync_replicas: partition.settings().min_insync_replicas,
        hw_requires_min_isr: false,
    }
}

fn follower_config(broker: &Broker) -> FollowerConfig {
    FollowerConfig {
        fetch_backoff_ms: i64::from(broker.config.cluster.replica_fetch_backoff_ms),
        // Kafka 2.7+ (KIP-320 on the replication path): a log with epochs fetches at once
        // and truncates on the leader's diverging epoch.
        truncate_on_fetch: true,
    }
}

fn broker_status(image: &MetadataImage, id: NodeId) -> Option<BrokerStatus> {
    image.broker(id).map(|b| BrokerStatus {
        epoch: b.epoch,
        fenced: b.fenced,
        in_controlled_shutdown: b.in_controlled_shutdown,
    })
}

/// This broker's epoch in the image, -1 when it has none yet.
pub fn local_broker_epoch(broker: &Broker, image: &MetadataImage) -> i64 {
    image.broker(broker.config.node_id).map_or(-1, |b| b.epoch)
}

/// Gives every hosted partition its role in `image` (called by `Broker::install` before
/// the image is published, so no request sees a partition without its role).
pub fn apply_roles(broker: &Broker, image: &MetadataImage) {
    let Some(broker) = broker.replicas.broker.get().and_then(|b| b.upgrade()) else {
        return;
    };
    let broker = &broker;
    let now = now_ms();
    // Most commits touch few partitions: one whose state and brokers are as before keeps
    // its role untouched, so an image with many partitions installs in time linear in
    // what changed (plus one comparison per partition).
    let previous = broker.image();
    let brokers_changed = !previous.brokers().eq(image.brokers());
    for partition in broker.all_partitions() {
        let Some(spec) = image
            .topic(&partition.topic)
            .filter(|t| t.id == partition.topic_id)
            .and_then(|t| t.partitions.get(&partition.index))
        else {
            // Deleted: the install removes it.
            continue;
        };
        let unchanged = !brokers_changed
            && previous
                .topic(&partition.topic)
                .filter(|t| t.id == partition.topic_id)
                .and_then(|t| t.partitions.get(&partition.index))
                == Some(spec);
        if unchanged && !matches!(partition.replica().role, Role::Unassigned) {
            continue;
        }
        apply_role(broker, image, &partition, spec, now);
    }
}

fn apply_role(
    broker: &Arc<Broker>,
    image: &MetadataImage,
    partition: &Arc<Partition>,
    spec: &PartitionImage,
    now: i64,
) {
    let node = broker.config.node_id;
    let mut replica = partition.replica_mut();
    if !spec.replicas.contains(&node) {
        // Moved off this broker (a completed reassignment): it stops here, and the install
        // removes its files, as Kafka deletes a replica it no longer hosts.
        let previous_leader = replica.leader;
        replica.role = Role::Unassigned;
        drop(replica);
        stop_following(broker, partition, previous_leader);
        partition.notify_appended();
        return;
    }
    if partition.data_dir().is_offline() {
        // A replica in an offline dir neither leads nor follows (Kafka's offline
        // partition); the controller moves leadership once the broker reports the dir.
        let previous_leader = replica.leader;
        let was_leader = replica.is_leader();
        replica.leader = spec.leader;
        replica.leader_epoch = replica.leader_epoch.max(spec.leader_epoch);
        replica.partition_epoch = replica.partition_epoch.max(spec.partition_epoch);
        replica.role = Role::Unassigned;
        drop(replica);
        if was_leader {
            fail_acks(
                broker,
                partition,
                ReplicationError::KafkaStorageError(format!(
                    "log dir {} is offline",
                    partition.data_dir().path.display()
                )),
            );
        }
        stop_following(broker, partition, previous_leader);
        partition.notify_appended();
        return;
    }
    let newer_epoch = spec.leader_epoch > replica.leader_epoch;
    let fresh = matches!(replica.role, Role::Unassigned);
    if spec.leader == node {
        if let Role::Leader(state) = &replica.role {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            for &id in &spec.replicas {
                state.set_broker_status(id, broker_status(image, id));
            }
            state.set_config(leader_config(broker, partition));
            let outcome = partition.with_log(|log| {
                let outcome = state.on_metadata(&partition_state(spec), &*log, now);
                if let MetadataOutcome::Updated {
                    new_epoch_start,
                    high_watermark,
                } = &outcome
                {
                    if let Some((epoch, start)) = new_epoch_start {
                        log.assign_epoch_start(*epoch, *start)?;
                    }
                    if let Some(hw) = high_watermark {
                        log.maybe_increment_high_watermark(*hw);
                    }
                }
                Ok(outcome)
            });
            drop(state);
            if let Ok(MetadataOutcome::Updated { .. }) = outcome {
                replica.leader_epoch = spec.leader_epoch;
                replica.partition_epoch = spec.partition_epoch;
            }
            drop(replica);
            complete_acks(&broker.replicas, partition);
            partition.notify_appended();
            return;
        }
        if !(fresh || newer_epoch) {
            return;
        }
        let previous_leader = replica.leader;
        stop_following(broker, partition, previous_leader);
        let made = partition.with_log(|log| {
            let mut state = LeaderState::new(
                node,
                local_broker_epoch(broker, image),
                &partition_state(spec),
                leader_config(broker, partition),
                &*log,
                now,
            )
            .map_err(|e| strom_log::LogError::Io(std::io::Error::other(e.to_string())))?;
            for &id in &spec.replicas {
                state.set_broker_status(id, broker_status(image, id));
            }
            log.assign_epoch_start(spec.leader_epoch, state.leader_epoch_start_offset())?;
            if let Some(hw) = state.maybe_increment_high_watermark(&*log, now) {
                log.maybe_increment_high_watermark(hw);
            }
            Ok(state)
        });
        replica.leader = spec.leader;
        replica.leader_epoch = spec.leader_epoch;
        replica.partition_epoch = spec.partition_epoch;
        match made {
            Ok(state) => {
                if !fresh {
                    info!(topic = %partition.topic, partition = partition.index, epoch = spec.leader_epoch, "became leader");
                }
                replica.role = Role::Leader(Mutex::new(state));
            }
            Err(e) => {
                warn!(topic = %partition.topic, partition = partition.index, error = %e, "becoming leader failed");
                replica.role = Role::Unassigned;
            }
        }
        drop(replica);
        partition.notify_appended();
        return;
    }
    let was_leader = replica.is_leader();
    if !(fresh || newer_epoch || was_leader) {
        // Same leader epoch: only the assignment or ISR changed, which a follower ignores.
        replica.partition_epoch = replica.partition_epoch.max(spec.partition_epoch);
        return;
    }
    let previous_leader = replica.leader;
    replica.leader = spec.leader;
    replica.leader_epoch = spec.leader_epoch;
    replica.partition_epoch = spec.partition_epoch;
    if spec.leader == NO_LEADER || !spec.replicas.contains(&node) {
        replica.role = Role::Unassigned;
    } else {
        let state = FollowerState::new(
            spec.leader,
            spec.leader_epoch,
            follower_config(broker),
            &partition.replica_log(),
        );
        replica.role = Role::Follower(Mutex::new(state));
        if !fresh {
            info!(topic = %partition.topic, partition = partition.index, leader = spec.leader, epoch = spec.leader_epoch, "became follower");
        }
    }
    drop(replica);
    if was_leader {
        fail_acks(broker, partition, ReplicationError::NotLeaderOrFollower);
    }
    if previous_leader != spec.leader {
        stop_following(broker, partition, previous_leader);
    }
    if spec.leader != NO_LEADER && spec.leader != node && spec.replicas.contains(&node) {
        crate::replica_fetcher::follow(broker, spec.leader, partition);
    }
    partition.notify_appended();
}

fn stop_following(broker: &Broker, partition: &Partition, leader: NodeId) {
    if leader == NO_LEADER || leader == broker.config.node_id {
        return;
    }
    crate::replica_fetcher::unfollow(broker, leader, partition);
}

/// Makes a partition its own only replica's leader, outside any image (tests of code that
/// appends to a partition).
pub fn make_sole_leader(partition: &Partition, node: NodeId) {
    let state = PartitionState {
        leader: node,
        leader_epoch: partition.leader_epoch(),
        partition_epoch: 0,
        replicas: vec![node],
        isr: vec![node],
    };
    let mut replica = partition.replica_mut();
    let made = partition.with_log(|log| {
        LeaderState::new(node, -1, &state, LeaderConfig::default(), &*log, now_ms())
            .map_err(|e| strom_log::LogError::Io(std::io::Error::other(e.to_string())))
    });
    if let Ok(state) = made {
        replica.leader = node;
        replica.role = Role::Leader(Mutex::new(state));
    }
}

/// The leader's answer to where a request should go instead (KIP-951): the leader's id
/// and epoch, with its endpoint on the listener the request came in on.
#[derive(Debug, Clone, Default)]
pub struct CurrentLeader {
    pub leader_id: NodeId,
    pub leader_epoch: i32,
    pub endpoint: Option<(String, u16, Option<String>)>,
}

pub fn current_leader(
    image: &MetadataImage,
    partition: &Partition,
    listener: &str,
) -> CurrentLeader {
    let replica = partition.replica();
    let (leader_id, leader_epoch) = (replica.leader, replica.leader_epoch);
    drop(replica);
    let endpoint = image.broker(leader_id).and_then(|b| {
        b.endpoints
            .iter()
            .find(|e| e.listener == listener)
            .map(|e| (e.host.clone(), e.port, b.rack.clone()))
    });
    CurrentLeader {
        leader_id,
        leader_epoch,
        endpoint,
    }
}

/// KIP-392 on the leader (Kafka's findPreferredReadReplica): the follower a consumer in
/// `client_rack` fetching `fetch_offset` should read from instead, per
/// `replica.selector.class`; `None` when this broker should serve the fetch (it does not
/// lead the partition, no selector is configured, or the selector chose the leader).
pub fn preferred_read_replica(
    broker: &Broker,
    partition: &Partition,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<NodeId> {
    let selector = broker.config.cluster.replica_selector;
    if selector == ReplicaSelector::LeaderOnly {
        return None;
    }
    let image = broker.image();
    let listener = &broker.config.cluster.inter_broker_listener_name;
    let replica = partition.replica();
    let Role::Leader(state) = &replica.role else {
        return None;
    };
    let state = state.lock().unwrap_or_else(|p| p.into_inner());
    let log_end_offset = partition.reader().offsets().snapshot().log_end_offset;
    // Kafka's metadata cache gives endpoints of unfenced brokers only.
    let rack_of = |id: NodeId| {
        let b = image.broker(id).filter(|b| !b.fenced)?;
        b.endpoints
            .iter()
            .any(|e| e.listener == *listener)
            .then_some(b.rack.as_deref())
    };
    strom_replication::preferred_read_replica(
        selector,
        &state,
        log_end_offset,
        client_rack,
        fetch_offset,
        now_ms(),
        rack_of,
    )
}

/// A request's current_leader_epoch (-1: none) against what this broker knows (Kafka's
/// localLogWithEpochOrThrow for any role).
pub fn check_epoch(partition: &Partition, request_epoch: i32) -> Result<(), ReplicationError> {
    // As Kafka's getPartitionOrException: an offline replica answers before any epoch check.
    partition.check_online()?;
    epoch_check(partition.leader_epoch(), request_epoch)
}

fn epoch_check(current_epoch: i32, request_epoch: i32) -> Result<(), ReplicationError> {
    if request_epoch < 0 || request_epoch == current_epoch {
        Ok(())
    } else if request_epoch < current_epoch {
        Err(ReplicationError::FencedLeaderEpoch {
            request_epoch,
            current_epoch,
        })
    } else {
        Err(ReplicationError::UnknownLeaderEpoch {
            request_epoch,
            current_epoch,
        })
    }
}

/// The leader role or NOT_LEADER_OR_FOLLOWER, with the request's leader epoch checked.
pub fn check_leader(partition: &Partition, request_epoch: i32) -> Result<(), ReplicationError> {
    check_epoch(partition, request_epoch)?;
    if partition.replica().is_leader() {
        Ok(())
    } else {
        Err(ReplicationError::NotLeaderOrFollower)
    }
}

/// Before an acks=all append: NOT_ENOUGH_REPLICAS when the committed ISR is below the
/// topic's min.insync.replicas.
pub fn check_acks_all(broker: &Broker, partition: &Partition) -> Result<(), ReplicationError> {
    let replica = partition.replica();
    let Role::Leader(state) = &replica.role else {
        return Err(ReplicationError::NotLeaderOrFollower);
    };
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    state.set_config(leader_config(broker, partition));
    state.check_produce_acks_all()
}

/// Waits until the high watermark passes `required_offset` (an acks=all append's last
/// offset + 1), until `deadline_ms` at most. No lock is held while waiting.
pub async fn wait_for_acks(
    manager: &ReplicaManager,
    partition: &Partition,
    required_offset: i64,
    deadline_ms: i64,
) -> Result<(), ReplicationError> {
    let key = (partition.topic_id, partition.index);
    let (sender, receiver) = oneshot::channel();
    {
        let mut acks = manager.acks.lock().unwrap_or_else(|p| p.into_inner());
        if acks
            .insert(key, required_offset, deadline_ms, sender)
            .is_err()
        {
            return Err(ReplicationError::RequestTimedOut);
        }
    }
    // The high watermark may have passed it before the wait was registered.
    complete_acks(manager, partition);
    let wait = std::time::Duration::from_millis((deadline_ms - now_ms()).max(0) as u64);
    let mut receiver = receiver;
    match tokio::time::timeout(wait, &mut receiver).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ReplicationError::NotLeaderOrFollower),
        Err(_) => {
            let expired = manager
                .acks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .expire(now_ms());
            for done in expired {
                let _ = done.id.send(done.result);
            }
            receiver
                .await
                .unwrap_or(Err(ReplicationError::RequestTimedOut))
        }
    }
}

/// Answers the acks=all waits the partition's high watermark (or ISR) now settles.
pub fn complete_acks(manager: &ReplicaManager, partition: &Partition) {
    let key = (partition.topic_id, partition.index);
    let replica = partition.replica();
    let done = {
        let mut acks = manager.acks.lock().unwrap_or_else(|p| p.into_inner());
        if acks.is_empty() {
            return;
        }
        match &replica.role {
            Role::Leader(state) => {
                let state = state.lock().unwrap_or_else(|p| p.into_inner());
                let log = partition.replica_log();
                acks.complete(&key, |required| state.acks_all_result(&log, required))
            }
            _ => acks.fail_partition(&key, ReplicationError::NotLeaderOrFollower),
        }
    };
    drop(replica);
    for done in done {
        let _ = done.id.send(done.result);
    }
}

pub(crate) fn fail_acks(broker: &Broker, partition: &Partition, error: ReplicationError) {
    let key = (partition.topic_id, partition.index);
    let done = broker
        .replicas
        .acks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .fail_partition(&key, error);
    for done in done {
        let _ = done.id.send(done.result);
    }
}

/// A follower's fetch of one partition as the leader reads it.
pub struct ReplicaFetchRead {
    pub replica_id: NodeId,
    pub broker_epoch: i64,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    pub last_fetched_epoch: i32,
    pub log_start_offset: i64,
}

/// Before reading for a follower: the leader role, the epoch, and KIP-320's diverging
/// epoch (`Some`: answer it instead of records).
pub fn validate_replica_fetch(
    partition: &Partition,
    fetch: &ReplicaFetchRead,
) -> Result<Option<strom_replication::DivergingEpoch>, ReplicationError> {
    partition.check_online()?;
    let replica = partition.replica();
    let Role::Leader(state) = &replica.role else {
        epoch_check(replica.leader_epoch, fetch.current_leader_epoch)?;
        return Err(ReplicationError::NotLeaderOrFollower);
    };
    let state = state.lock().unwrap_or_else(|p| p.into_inner());
    state.check_leader_epoch(
        (fetch.current_leader_epoch >= 0).then_some(fetch.current_leader_epoch),
    )?;
    state.validate_fetch_epoch(
        &partition.replica_log(),
        fetch.fetch_offset,
        (fetch.last_fetched_epoch >= 0).then_some(fetch.last_fetched_epoch),
    )
}

/// After reading for a follower: records its progress (Kafka's updateFollowerFetchState),
/// moves the high watermark (waking parked fetches and acks=all produces); returns an ISR
/// expansion for the controller. `leader_log_end_offset` is the leader's end read before
/// the read.
pub fn record_replica_fetch(
    manager: &ReplicaManager,
    partition: &Partition,
    fetch: &ReplicaFetchRead,
    leader_log_end_offset: i64,
) -> Result<Option<AlterPartitionProposal>, ReplicationError> {
    let outcome: FetchOutcome = {
        let replica = partition.replica();
        let Role::Leader(state) = &replica.role else {
            return Err(ReplicationError::NotLeaderOrFollower);
        };
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.on_follower_fetch(
            &FollowerFetch {
                replica_id: fetch.replica_id,
                current_leader_epoch: (fetch.current_leader_epoch >= 0)
                    .then_some(fetch.current_leader_epoch),
                fetch_offset: fetch.fetch_offset,
                log_start_offset: fetch.log_start_offset,
                broker_epoch: fetch.broker_epoch,
                leader_log_end_offset,
            },
            &partition.replica_log(),
            now_ms(),
        )?
    };
    if let Some(hw) = outcome.high_watermark {
        if partition.raise_high_watermark(hw) {
            partition.notify_appended();
            complete_acks(manager, partition);
        }
    }
    Ok(outcome.alter_partition)
}

/// Kafka's isr-expiration task, every replica.lag.time.max.ms / 2: leaders propose their
/// ISR without the followers that fell behind.
pub fn shrink_isrs(broker: &Broker) {
    let Some(broker) = broker.replicas.broker.get().and_then(|b| b.upgrade()) else {
        return;
    };
    let now = now_ms();
    for partition in broker.all_partitions() {
        let proposal: Option<AlterPartitionProposal> = {
            let replica = partition.replica();
            let Role::Leader(state) = &replica.role else {
                continue;
            };
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            state.maybe_shrink_isr(&partition.replica_log(), now)
        };
        if let Some(proposal) = proposal {
            info!(topic = %partition.topic, partition = partition.index, isr = ?proposal.isr(), "shrinking the ISR");
            crate::alter_partition_sender::send(broker.clone(), partition.clone(), proposal);
        }
    }
}

#[cfg(test)]
mod tests {
    use strom_metadata::topic_config::{BrokerConfigLookup, ConfigSource};
    use strom_replication::testing::batch_bytes;

    use super::*;

    struct NoOverrides;
    impl BrokerConfigLookup for NoOverrides {
        fn broker_config(&self, _name: &str) -> Vec<(String, ConfigSource)> {
            Vec::new()
        }
    }

    const EPOCH: i32 = 4;

    fn partition(dir: &std::path::Path) -> Arc<Partition> {
        let settings = crate::topic_settings::resolve(&MetadataImage::default(), &NoOverrides, "t");
        let log = strom_log::PartitionLog::open(dir, settings.log.clone(), now_ms()).unwrap();
        Arc::new(Partition::new(
            "t".into(),
            TopicId::new_v4(),
            0,
            EPOCH,
            log,
            settings,
        ))
    }

    /// Broker 1 leads replicas 1, 2, 3 (all in the ISR, brokers 2 and 3 live).
    fn lead_three(partition: &Partition, min_insync_replicas: usize) {
        let state = PartitionState {
            leader: 1,
            leader_epoch: EPOCH,
            partition_epoch: 7,
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
        };
        let config = LeaderConfig {
            min_insync_replicas,
            ..LeaderConfig::default()
        };
        let mut replica = partition.replica_mut();
        let leader = partition
            .with_log(|log| {
                let mut leader = LeaderState::new(1, 10, &state, config, &*log, now_ms()).unwrap();
                for id in [2, 3] {
                    leader.set_broker_status(
                        id,
                        Some(BrokerStatus {
                            epoch: 20 + i64::from(id),
                            fenced: false,
                            in_controlled_shutdown: false,
                        }),
                    );
                }
                log.assign_epoch_start(EPOCH, leader.leader_epoch_start_offset())?;
                Ok(leader)
            })
            .unwrap();
        replica.leader = 1;
        replica.partition_epoch = 7;
        replica.role = Role::Leader(Mutex::new(leader));
    }

    fn append(partition: &Partition, records: usize) -> strom_log::AppendInfo {
        let mut batch = batch_bytes(0, 0, &vec![b"v".as_slice(); records]).to_vec();
        partition.append(&mut batch, now_ms()).unwrap()
    }

    fn fetch(replica_id: NodeId, fetch_offset: i64, last_fetched_epoch: i32) -> ReplicaFetchRead {
        ReplicaFetchRead {
            replica_id,
            broker_epoch: 20 + i64::from(replica_id),
            current_leader_epoch: EPOCH,
            fetch_offset,
            last_fetched_epoch,
            log_start_offset: 0,
        }
    }

    #[test]
    fn only_a_leader_appends_and_a_sole_replica_moves_the_high_watermark_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        let mut batch = batch_bytes(0, 0, &[b"a"]).to_vec();
        assert!(partition.append(&mut batch, now_ms()).is_err());
        assert_eq!(
            check_leader(&partition, -1),
            Err(ReplicationError::NotLeaderOrFollower)
        );
        make_sole_leader(&partition, 1);
        assert_eq!(check_leader(&partition, EPOCH), Ok(()));
        assert!(matches!(
            check_leader(&partition, EPOCH - 1),
            Err(ReplicationError::FencedLeaderEpoch { .. })
        ));
        assert!(matches!(
            check_leader(&partition, EPOCH + 1),
            Err(ReplicationError::UnknownLeaderEpoch { .. })
        ));
        let info = append(&partition, 3);
        assert_eq!((info.base_offset, info.last_offset), (0, 2));
        assert_eq!(partition.high_watermark(), 3);
    }

    #[tokio::test]
    async fn acks_all_waits_for_the_isr_and_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        lead_three(&partition, 2);
        let manager = ReplicaManager::default();
        assert_eq!(check_acks_all_with(&partition), Ok(()));
        append(&partition, 3);
        // Followers have not fetched: the high watermark waits for the ISR.
        assert_eq!(partition.high_watermark(), 0);
        let waiting = {
            let (manager, partition) = (&manager, partition.clone());
            async move { wait_for_acks(manager, &partition, 3, now_ms() + 60_000).await }
        };
        let answered = async {
            tokio::task::yield_now().await;
            // Follower 2 fetches everything: not enough while 3 lags.
            let read = fetch(2, 3, EPOCH);
            assert_eq!(validate_replica_fetch(&partition, &read), Ok(None));
            assert_eq!(
                record_replica_fetch(&manager, &partition, &read, 3),
                Ok(None)
            );
            assert_eq!(partition.high_watermark(), 0);
            let read = fetch(3, 3, EPOCH);
            assert_eq!(
                record_replica_fetch(&manager, &partition, &read, 3),
                Ok(None)
            );
            assert_eq!(partition.high_watermark(), 3);
        };
        let (result, ()) = tokio::join!(waiting, answered);
        assert_eq!(result, Ok(()));
        // Nobody fetches the next append: its wait ends at its deadline.
        append(&partition, 1);
        let result = wait_for_acks(&manager, &partition, 4, now_ms() + 50).await;
        assert_eq!(result, Err(ReplicationError::RequestTimedOut));
    }

    fn check_acks_all_with(partition: &Partition) -> Result<(), ReplicationError> {
        let replica = partition.replica();
        let Role::Leader(state) = &replica.role else {
            return Err(ReplicationError::NotLeaderOrFollower);
        };
        let state = state.lock().unwrap();
        state.check_produce_acks_all()
    }

    #[test]
    fn replica_fetches_are_checked_for_epochs_and_divergence() {
        let dir = tempfile::tempdir().unwrap();
        let partition = partition(dir.path());
        let stranger = fetch(2, 0, -1);
        assert_eq!(
            validate_replica_fetch(&partition, &stranger),
            Err(ReplicationError::NotLeaderOrFollower)
        );
        lead_three(&partition, 1);
        append(&partition, 5);
        // A follower whose last epoch (2) the leader never had: truncate to where the
        // leader's epochs before 2 end (its first epoch starts at 0).
        let diverged = fetch(2, 5, 2);
        let answer = validate_replica_fetch(&partition, &diverged).unwrap();
        assert_eq!(
            answer,
            Some(strom_replication::DivergingEpoch {
                epoch: 2,
                end_offset: 0
            })
        );
        // In the leader's epoch, ending past the leader's end: diverges at its end.
        let ahead = fetch(2, 7, EPOCH);
        assert_eq!(
            validate_replica_fetch(&partition, &ahead).unwrap(),
            Some(strom_replication::DivergingEpoch {
                epoch: EPOCH,
                end_offset: 5
            })
        );
        let mut old = fetch(2, 5, EPOCH);
        old.current_leader_epoch = EPOCH - 1;
        assert!(matches!(
            validate_replica_fetch(&partition, &old),
            Err(ReplicationError::FencedLeaderEpoch { .. })
        ));
        // Not a replica of the partition.
        let outsider = fetch(9, 5, EPOCH);
        assert!(matches!(
            record_replica_fetch(&ReplicaManager::default(), &partition, &outsider, 5),
            Err(ReplicationError::UnknownLeaderEpoch { .. })
        ));
    }
}
