//! One partition this broker leads: Kafka's `Partition` as leader (followers' progress,
//! the high watermark, ISR changes through AlterPartition, acks=all, KIP-320 checks).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{AlterPartitionError, ReplicationError};
use crate::log::ReplicaLog;
use crate::{ReplicaId, DEFAULT_REPLICA_LAG_TIME_MAX_MS, UNKNOWN_OFFSET};

/// A partition's replication state as the metadata log has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: ReplicaId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<ReplicaId>,
    pub isr: Vec<ReplicaId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// `replica.lag.time.max.ms`: a follower not caught up for longer leaves the ISR.
    pub replica_lag_time_max_ms: i64,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: usize,
    /// KIP-966 (KAFKA-15583): the high watermark stays while the committed ISR is below
    /// min.insync.replicas. Off by default: an ISR shrunk below the minimum lets the high
    /// watermark advance and acks=all waits then fail NOT_ENOUGH_REPLICAS_AFTER_APPEND.
    pub hw_requires_min_isr: bool,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            replica_lag_time_max_ms: DEFAULT_REPLICA_LAG_TIME_MAX_MS,
            min_insync_replicas: 1,
            hw_requires_min_isr: false,
        }
    }
}

/// What the metadata image says of a broker (a registered, live one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerStatus {
    pub epoch: i64,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
}

/// The leader's view of one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    pub log_start_offset: i64,
    /// Its last fetch offset; [`UNKNOWN_OFFSET`] before its first fetch to this leader.
    pub log_end_offset: i64,
    /// The leader's log end offset when the previous fetch was read.
    pub last_fetch_leader_log_end_offset: i64,
    pub last_fetch_time_ms: i64,
    /// The last time it was known to have fetched up to the leader's log end offset.
    pub last_caught_up_time_ms: i64,
    /// The broker epoch its last fetch carried.
    pub broker_epoch: Option<i64>,
}

impl FollowerProgress {
    fn new_leader(now_ms: i64, in_isr: bool) -> Self {
        Self {
            log_start_offset: UNKNOWN_OFFSET,
            log_end_offset: UNKNOWN_OFFSET,
            last_fetch_leader_log_end_offset: UNKNOWN_OFFSET,
            last_fetch_time_ms: 0,
            last_caught_up_time_ms: if in_isr { now_ms } else { 0 },
            broker_epoch: None,
        }
    }

    /// Kafka's `isCaughtUp`: at the leader's end, or caught up within the lag.
    fn is_caught_up(&self, leader_end_offset: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        leader_end_offset == self.log_end_offset
            || now_ms - self.last_caught_up_time_ms <= max_lag_ms
    }
}

/// A follower's Fetch as the leader records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerFetch {
    pub replica_id: ReplicaId,
    /// The request's current_leader_epoch; `None` when absent (-1).
    pub current_leader_epoch: Option<i32>,
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    /// The request's replica_state.replica_epoch (-1 skips the check).
    pub broker_epoch: i64,
    /// The leader's log end offset read *before* the fetch read the log, so appends
    /// during the read do not keep the follower from counting as caught up.
    pub leader_log_end_offset: i64,
}

/// What a follower's fetch changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchOutcome {
    /// A new high watermark for the log (greater than its current one).
    pub high_watermark: Option<i64>,
    /// An ISR expansion to send to the controller.
    pub alter_partition: Option<AlterPartitionProposal>,
}

/// An ISR member in an AlterPartition request, with the broker epoch the leader saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IsrMember {
    pub replica_id: ReplicaId,
    /// -1 when not known (a member that has not fetched from this leader yet).
    pub broker_epoch: i64,
}

/// The AlterPartition the broker sends for one partition (Kafka's LeaderAndIsr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionProposal {
    pub leader_id: ReplicaId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<IsrMember>,
}

impl AlterPartitionProposal {
    pub fn isr(&self) -> Vec<ReplicaId> {
        self.new_isr.iter().map(|m| m.replica_id).collect()
    }
}

/// The partition state in a successful AlterPartition response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedIsr {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<ReplicaId>,
}

/// The ISR, with at most one change waiting for the controller (KIP-497).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsrState {
    Committed {
        isr: BTreeSet<ReplicaId>,
    },
    /// The maximal ISR already counts the new member: waiting for it is only stricter.
    PendingExpand {
        isr: BTreeSet<ReplicaId>,
        new_member: ReplicaId,
        proposal: AlterPartitionProposal,
    },
    /// The maximal ISR still counts the removed members, in case the change fails.
    PendingShrink {
        isr: BTreeSet<ReplicaId>,
        removed: BTreeSet<ReplicaId>,
        proposal: AlterPartitionProposal,
    },
}

impl IsrState {
    /// The last committed ISR.
    pub fn isr(&self) -> &BTreeSet<ReplicaId> {
        match self {
            Self::Committed { isr }
            | Self::PendingExpand { isr, .. }
            | Self::PendingShrink { isr, .. } => isr,
        }
    }

    fn in_maximal_isr(&self, replica: ReplicaId) -> bool {
        self.isr().contains(&replica)
            || matches!(self, Self::PendingExpand { new_member, .. } if *new_member == replica)
    }

    pub fn maximal_isr(&self) -> BTreeSet<ReplicaId> {
        let mut isr = self.isr().clone();
        if let Self::PendingExpand { new_member, .. } = self {
            isr.insert(*new_member);
        }
        isr
    }

    pub fn is_inflight(&self) -> bool {
        !matches!(self, Self::Committed { .. })
    }

    fn proposal(&self) -> Option<&AlterPartitionProposal> {
        match self {
            Self::Committed { .. } => None,
            Self::PendingExpand { proposal, .. } | Self::PendingShrink { proposal, .. } => {
                Some(proposal)
            }
        }
    }
}

/// What to do after an AlterPartition failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterPartitionRetry {
    /// The failure does not concern the change pending now: nothing changed.
    Ignored,
    /// A retriable failure: send this again.
    Resend(AlterPartitionProposal),
    /// The controller says the change was not applied: back to the committed ISR, and a
    /// new change may be proposed.
    Reverted,
    /// The change stays pending until new metadata for the partition arrives.
    AwaitMetadata,
}

/// What new metadata for the partition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataOutcome {
    /// Older than what this leader knows (its partition epoch is newer): ignored.
    Stale,
    /// Another broker leads now: the caller drops this state (and becomes a follower).
    NoLongerLeader,
    Updated {
        /// A new leader epoch started at this offset: the caller records it in the log's
        /// epoch cache (Kafka's maybeAssignEpochStartOffset).
        new_epoch_start: Option<(i32, i64)>,
        high_watermark: Option<i64>,
    },
}

/// Whether an acks=all produce may answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckStatus {
    Done,
    Waiting,
    Failed(ReplicationError),
}

/// KIP-320: where the leader's log for the follower's last fetched epoch ends, when the
/// follower's log diverges from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DivergingEpoch {
    pub epoch: i32,
    pub end_offset: i64,
}

#[derive(Debug, Clone)]
pub struct LeaderState {
    local_id: ReplicaId,
    local_broker_epoch: i64,
    config: LeaderConfig,
    replicas: Vec<ReplicaId>,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: IsrState,
    leader_epoch_start_offset: i64,
    followers: BTreeMap<ReplicaId, FollowerProgress>,
    brokers: BTreeMap<ReplicaId, BrokerStatus>,
}

impl LeaderState {
    /// This broker becomes the leader (Kafka's makeLeader for a new leader). Its leader
    /// epoch starts at the log end offset: the caller records that in the log's epoch
    /// cache ([`Self::leader_epoch_start_offset`]) before appending. Followers' offsets are
    /// unknown until they fetch; ISR members count as caught up as of `now_ms`.
    pub fn new(
        local_id: ReplicaId,
        local_broker_epoch: i64,
        state: &PartitionState,
        config: LeaderConfig,
        log: &impl ReplicaLog,
        now_ms: i64,
    ) -> Result<Self, ReplicationError> {
        if state.leader != local_id {
            return Err(ReplicationError::NotLeaderOrFollower);
        }
        let isr: BTreeSet<ReplicaId> = state.isr.iter().copied().collect();
        let followers = state
            .replicas
            .iter()
            .filter(|&&id| id != local_id)
            .map(|&id| (id, FollowerProgress::new_leader(now_ms, isr.contains(&id))))
            .collect();
        Ok(Self {
            local_id,
            local_broker_epoch,
            config,
            replicas: state.replicas.clone(),
            leader_epoch: state.leader_epoch,
            partition_epoch: state.partition_epoch,
            isr: IsrState::Committed { isr },
            leader_epoch_start_offset: log.log_end_offset(),
            followers,
            brokers: BTreeMap::new(),
        })
    }

    /// This broker, the leader.
    pub fn local_id(&self) -> ReplicaId {
        self.local_id
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    pub fn replicas(&self) -> &[ReplicaId] {
        &self.replicas
    }

    pub fn isr_state(&self) -> &IsrState {
        &self.isr
    }

    /// The committed ISR (what min.insync.replicas is checked against before an append).
    pub fn isr(&self) -> &BTreeSet<ReplicaId> {
        self.isr.isr()
    }

    /// The committed ISR plus a member being added (what the high watermark waits for).
    pub fn maximal_isr(&self) -> BTreeSet<ReplicaId> {
        self.isr.maximal_isr()
    }

    pub fn leader_epoch_start_offset(&self) -> i64 {
        self.leader_epoch_start_offset
    }

    pub fn follower(&self, replica: ReplicaId) -> Option<&FollowerProgress> {
        self.followers.get(&replica)
    }

    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    /// A topic config change (min.insync.replicas) or broker config change.
    pub fn set_config(&mut self, config: LeaderConfig) {
        self.config = config;
    }

    /// What the metadata image says of a broker; `None` when it is not registered or not
    /// alive. Only unfenced brokers not shutting down whose fetches carry their current
    /// epoch may join the ISR (KIP-841).
    pub fn set_broker_status(&mut self, broker: ReplicaId, status: Option<BrokerStatus>) {
        match status {
            Some(status) => self.brokers.insert(broker, status),
            None => self.brokers.remove(&broker),
        };
    }

    /// min.insync.replicas, capped at the replication factor (Kafka's effectiveMinIsr).
    pub fn effective_min_isr(&self) -> usize {
        self.config
            .min_insync_replicas
            .min(self.followers.len() + 1)
    }

    pub fn is_under_min_isr(&self) -> bool {
        self.isr().len() < self.effective_min_isr()
    }

    /// A request's current_leader_epoch against this leader's (Kafka's
    /// localLogWithEpochOrThrow): older is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
    pub fn check_leader_epoch(&self, request_epoch: Option<i32>) -> Result<(), ReplicationError> {
        match request_epoch {
            Some(epoch) if epoch < self.leader_epoch => Err(ReplicationError::FencedLeaderEpoch {
                request_epoch: epoch,
                current_epoch: self.leader_epoch,
            }),
            Some(epoch) if epoch > self.leader_epoch => Err(ReplicationError::UnknownLeaderEpoch {
                request_epoch: epoch,
                current_epoch: self.leader_epoch,
            }),
            _ => Ok(()),
        }
    }

    /// KIP-320, before reading a follower's (or consumer's) fetch: the leader's end of the
    /// fetch's last fetched epoch. When the fetcher's log diverges (the leader's epoch for
    /// it is older, or ends before the fetch offset) the answer is that epoch and end
    /// instead of records, and the fetch must not update the follower's state.
    /// OFFSET_OUT_OF_RANGE when the leader cannot place the epoch or the offset is below
    /// its log start.
    pub fn validate_fetch_epoch(
        &self,
        log: &impl ReplicaLog,
        fetch_offset: i64,
        last_fetched_epoch: Option<i32>,
    ) -> Result<Option<DivergingEpoch>, ReplicationError> {
        let Some(last_fetched_epoch) = last_fetched_epoch.filter(|&e| e >= 0) else {
            return Ok(None);
        };
        let out_of_range = || ReplicationError::OffsetOutOfRange {
            offset: fetch_offset,
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
        };
        let (epoch, end_offset) = log
            .end_offset_for_epoch(last_fetched_epoch)
            .ok_or_else(out_of_range)?;
        if fetch_offset < log.log_start_offset() {
            return Err(out_of_range());
        }
        if epoch < last_fetched_epoch || end_offset < fetch_offset {
            return Ok(Some(DivergingEpoch { epoch, end_offset }));
        }
        Ok(None)
    }

    /// Records a follower's fetch (read without a diverging epoch): its log end offset is
    /// the fetch offset. May propose adding it to the ISR (caught up to the high watermark
    /// and to this leader epoch's start) and may move the high watermark.
    pub fn on_follower_fetch(
        &mut self,
        fetch: &FollowerFetch,
        log: &impl ReplicaLog,
        now_ms: i64,
    ) -> Result<FetchOutcome, ReplicationError> {
        self.check_leader_epoch(fetch.current_leader_epoch)?;
        let cached_epoch = self.brokers.get(&fetch.replica_id).map(|b| b.epoch);
        let Some(progress) = self.followers.get_mut(&fetch.replica_id) else {
            // Not (yet) a replica in this epoch, e.g. one a reassignment adds: retry later.
            return Err(match fetch.current_leader_epoch {
                Some(epoch) => ReplicationError::UnknownLeaderEpoch {
                    request_epoch: epoch,
                    current_epoch: self.leader_epoch,
                },
                None => ReplicationError::NotLeaderOrFollower,
            });
        };
        if fetch.broker_epoch != -1 && cached_epoch.is_some_and(|e| e > fetch.broker_epoch) {
            // A fetch from before the broker restarted.
            return Err(ReplicationError::NotLeaderOrFollower);
        }
        let previous_end = progress.log_end_offset;
        let last_caught_up_time_ms = if fetch.fetch_offset >= fetch.leader_log_end_offset {
            progress.last_caught_up_time_ms.max(now_ms)
        } else if fetch.fetch_offset >= progress.last_fetch_leader_log_end_offset {
            progress
                .last_caught_up_time_ms
                .max(progress.last_fetch_time_ms)
        } else {
            progress.last_caught_up_time_ms
        };
        *progress = FollowerProgress {
            log_start_offset: fetch.log_start_offset,
            log_end_offset: fetch.fetch_offset,
            last_fetch_leader_log_end_offset: fetch
                .leader_log_end_offset
                .max(progress.last_fetch_leader_log_end_offset),
            last_fetch_time_ms: now_ms,
            last_caught_up_time_ms,
            broker_epoch: Some(fetch.broker_epoch),
        };
        let alter_partition = self.maybe_expand_isr(fetch.replica_id, log);
        let high_watermark = if previous_end != fetch.fetch_offset {
            self.maybe_increment_high_watermark(log, now_ms)
        } else {
            None
        };
        Ok(FetchOutcome {
            high_watermark,
            alter_partition,
        })
    }

    fn is_isr_eligible(&self, replica: ReplicaId) -> bool {
        let Some(status) = self.brokers.get(&replica) else {
            return false;
        };
        let fetched_epoch = self.followers.get(&replica).and_then(|p| p.broker_epoch);
        !status.fenced
            && !status.in_controlled_shutdown
            && fetched_epoch.is_some_and(|e| e == -1 || e == status.epoch)
    }

    fn maybe_expand_isr(
        &mut self,
        replica: ReplicaId,
        log: &impl ReplicaLog,
    ) -> Option<AlterPartitionProposal> {
        let IsrState::Committed { isr } = &self.isr else {
            return None;
        };
        if isr.contains(&replica) || !self.is_isr_eligible(replica) {
            return None;
        }
        let end = self.followers.get(&replica)?.log_end_offset;
        if end < log.high_watermark() || end < self.leader_epoch_start_offset {
            return None;
        }
        let isr = isr.clone();
        let mut new_isr = isr.clone();
        new_isr.insert(replica);
        let proposal = self.proposal(&new_isr);
        self.isr = IsrState::PendingExpand {
            isr,
            new_member: replica,
            proposal: proposal.clone(),
        };
        Some(proposal)
    }

    fn proposal(&self, isr: &BTreeSet<ReplicaId>) -> AlterPartitionProposal {
        let new_isr = isr
            .iter()
            .map(|&replica_id| IsrMember {
                replica_id,
                broker_epoch: if replica_id == self.local_id {
                    self.local_broker_epoch
                } else {
                    self.followers
                        .get(&replica_id)
                        .and_then(|p| p.broker_epoch)
                        .unwrap_or(-1)
                },
            })
            .collect();
        AlterPartitionProposal {
            leader_id: self.local_id,
            leader_epoch: self.leader_epoch,
            partition_epoch: self.partition_epoch,
            new_isr,
        }
    }

    /// Kafka's maybeIncrementLeaderHW: the smallest log end offset among the maximal ISR
    /// and the caught-up followers eligible to join it (so a joining follower is not left
    /// behind), capped by the leader's. Returns it when it is above the log's current high
    /// watermark (it never goes back); the caller sets it on the log.
    pub fn maybe_increment_high_watermark(
        &self,
        log: &impl ReplicaLog,
        now_ms: i64,
    ) -> Option<i64> {
        if self.config.hw_requires_min_isr && self.is_under_min_isr() {
            return None;
        }
        let leader_end = log.log_end_offset();
        let mut high_watermark = leader_end;
        for (&replica, progress) in &self.followers {
            if progress.log_end_offset < high_watermark
                && (self.isr.in_maximal_isr(replica)
                    || (progress.is_caught_up(
                        leader_end,
                        now_ms,
                        self.config.replica_lag_time_max_ms,
                    ) && self.is_isr_eligible(replica)))
            {
                high_watermark = progress.log_end_offset;
            }
        }
        (high_watermark > log.high_watermark()).then_some(high_watermark)
    }

    /// Kafka's getOutOfSyncReplicas: ISR followers neither at the leader's log end offset
    /// nor caught up within replica.lag.time.max.ms. Empty while an ISR change is pending.
    pub fn out_of_sync_replicas(&self, log: &impl ReplicaLog, now_ms: i64) -> BTreeSet<ReplicaId> {
        let IsrState::Committed { isr } = &self.isr else {
            return BTreeSet::new();
        };
        let leader_end = log.log_end_offset();
        isr.iter()
            .copied()
            .filter(|&id| id != self.local_id)
            .filter(|id| {
                self.followers.get(id).is_none_or(|p| {
                    !p.is_caught_up(leader_end, now_ms, self.config.replica_lag_time_max_ms)
                })
            })
            .collect()
    }

    /// Kafka's maybeShrinkIsr, run periodically: proposes the ISR without its out-of-sync
    /// followers. The maximal ISR keeps them until the controller commits the change.
    pub fn maybe_shrink_isr(
        &mut self,
        log: &impl ReplicaLog,
        now_ms: i64,
    ) -> Option<AlterPartitionProposal> {
        let removed = self.out_of_sync_replicas(log, now_ms);
        if removed.is_empty() {
            return None;
        }
        let isr = self.isr.isr().clone();
        let new_isr: BTreeSet<ReplicaId> = isr.difference(&removed).copied().collect();
        let proposal = self.proposal(&new_isr);
        self.isr = IsrState::PendingShrink {
            isr,
            removed,
            proposal: proposal.clone(),
        };
        Some(proposal)
    }

    /// The controller committed an AlterPartition. Ignored unless it answers the change
    /// pending now, for this leader epoch, at a partition epoch not older than ours.
    /// Returns a new high watermark when the ISR change allows one.
    pub fn on_isr_committed(
        &mut self,
        sent: &AlterPartitionProposal,
        committed: &CommittedIsr,
        log: &impl ReplicaLog,
        now_ms: i64,
    ) -> Option<i64> {
        if self.isr.proposal() != Some(sent)
            || committed.leader_epoch != self.leader_epoch
            || committed.partition_epoch < self.partition_epoch
        {
            return None;
        }
        self.isr = IsrState::Committed {
            isr: committed.isr.iter().copied().collect(),
        };
        self.partition_epoch = committed.partition_epoch;
        self.maybe_increment_high_watermark(log, now_ms)
    }

    /// An AlterPartition failed (Kafka's handleAlterPartitionError).
    pub fn on_isr_change_failed(
        &mut self,
        sent: &AlterPartitionProposal,
        error: &AlterPartitionError,
    ) -> AlterPartitionRetry {
        if self.isr.proposal() != Some(sent) {
            return AlterPartitionRetry::Ignored;
        }
        match error {
            AlterPartitionError::OperationNotAttempted
            | AlterPartitionError::IneligibleReplica(_) => {
                self.isr = IsrState::Committed {
                    isr: self.isr.isr().clone(),
                };
                AlterPartitionRetry::Reverted
            }
            AlterPartitionError::UnknownTopicOrPartition
            | AlterPartitionError::UnknownTopicId
            | AlterPartitionError::FencedLeaderEpoch
            | AlterPartitionError::InvalidUpdateVersion
            | AlterPartitionError::InvalidRequest
            | AlterPartitionError::NewLeaderElected => AlterPartitionRetry::AwaitMetadata,
            AlterPartitionError::NotController
            | AlterPartitionError::RequestTimedOut
            | AlterPartitionError::NetworkException(_)
            | AlterPartitionError::UnknownServerError(_) => {
                AlterPartitionRetry::Resend(sent.clone())
            }
        }
    }

    /// New metadata for the partition (Kafka's makeLeader on a broker already leading):
    /// replicas and the committed ISR replace ours unless our partition epoch is newer; a
    /// new leader epoch starts at the log end offset and resets followers' catch-up times.
    pub fn on_metadata(
        &mut self,
        state: &PartitionState,
        log: &impl ReplicaLog,
        now_ms: i64,
    ) -> MetadataOutcome {
        if state.leader != self.local_id {
            return MetadataOutcome::NoLongerLeader;
        }
        if state.partition_epoch < self.partition_epoch {
            return MetadataOutcome::Stale;
        }
        let isr: BTreeSet<ReplicaId> = state.isr.iter().copied().collect();
        self.followers
            .retain(|id, _| state.replicas.contains(id) && *id != self.local_id);
        for &id in &state.replicas {
            if id != self.local_id {
                self.followers
                    .entry(id)
                    .or_insert_with(|| FollowerProgress::new_leader(now_ms, isr.contains(&id)));
            }
        }
        let mut new_epoch_start = None;
        if state.leader_epoch > self.leader_epoch {
            let start = log.log_end_offset();
            for (id, progress) in &mut self.followers {
                let in_isr = isr.contains(id);
                progress.last_fetch_leader_log_end_offset = start;
                progress.last_fetch_time_ms = if in_isr { now_ms } else { 0 };
                progress.last_caught_up_time_ms = if in_isr { now_ms } else { 0 };
            }
            self.leader_epoch = state.leader_epoch;
            self.leader_epoch_start_offset = start;
            new_epoch_start = Some((state.leader_epoch, start));
        }
        self.replicas = state.replicas.clone();
        self.isr = IsrState::Committed { isr };
        self.partition_epoch = state.partition_epoch;
        MetadataOutcome::Updated {
            new_epoch_start,
            high_watermark: self.maybe_increment_high_watermark(log, now_ms),
        }
    }

    /// Before an acks=all append (Kafka's appendRecordsToLeader): NOT_ENOUGH_REPLICAS when
    /// the committed ISR is below min.insync.replicas.
    pub fn check_produce_acks_all(&self) -> Result<(), ReplicationError> {
        if self.is_under_min_isr() {
            return Err(ReplicationError::NotEnoughReplicas {
                isr_size: self.isr().len(),
                min_insync_replicas: self.effective_min_isr(),
            });
        }
        Ok(())
    }

    /// An acks=all produce whose last offset is `required_offset - 1` (Kafka's
    /// checkEnoughReplicasReachOffset): done once the high watermark reaches it, failed
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the maximal ISR is then below the minimum.
    pub fn acks_all_result(&self, log: &impl ReplicaLog, required_offset: i64) -> AckStatus {
        if log.high_watermark() < required_offset {
            return AckStatus::Waiting;
        }
        let maximal = self.maximal_isr().len();
        if self.effective_min_isr() <= maximal {
            AckStatus::Done
        } else {
            AckStatus::Failed(ReplicationError::NotEnoughReplicasAfterAppend {
                isr_size: maximal,
                min_insync_replicas: self.effective_min_isr(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::batch_bytes;
    use crate::MemLog;

    const LEADER: ReplicaId = 1;
    const LEADER_BROKER_EPOCH: i64 = 50;
    const EPOCH: i32 = 5;
    const T0: i64 = 1_000_000;

    fn state(isr: &[ReplicaId]) -> PartitionState {
        PartitionState {
            leader: LEADER,
            leader_epoch: EPOCH,
            partition_epoch: 10,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
        }
    }

    fn live(epoch: i64) -> Option<BrokerStatus> {
        Some(BrokerStatus {
            epoch,
            fenced: false,
            in_controlled_shutdown: false,
        })
    }

    /// A leader of replicas 1,2,3 (brokers 2 and 3 live at epochs 102 and 103) over an
    /// empty log, then `records` appended in its epoch.
    fn leader(isr: &[ReplicaId], config: LeaderConfig, records: usize) -> (LeaderState, MemLog) {
        let mut log = MemLog::new();
        let mut leader =
            LeaderState::new(LEADER, LEADER_BROKER_EPOCH, &state(isr), config, &log, T0).unwrap();
        leader.set_broker_status(2, live(102));
        leader.set_broker_status(3, live(103));
        log.assign_epoch_start(EPOCH, leader.leader_epoch_start_offset());
        append(&mut log, records);
        (leader, log)
    }

    fn append(log: &mut MemLog, records: usize) {
        let values: Vec<&[u8]> = vec![b"v"; records];
        if records > 0 {
            log.append_as_leader(&batch_bytes(0, 0, &values), EPOCH)
                .unwrap();
        }
    }

    fn fetch(replica_id: ReplicaId, fetch_offset: i64, leader_end: i64) -> FollowerFetch {
        FollowerFetch {
            replica_id,
            current_leader_epoch: Some(EPOCH),
            fetch_offset,
            log_start_offset: 0,
            broker_epoch: 100 + i64::from(replica_id),
            leader_log_end_offset: leader_end,
        }
    }

    fn apply(log: &mut MemLog, outcome: &FetchOutcome) {
        if let Some(hw) = outcome.high_watermark {
            assert!(log.maybe_increment_high_watermark(hw));
        }
    }

    #[test]
    fn high_watermark_is_the_smallest_isr_end_and_never_goes_back() {
        let (mut leader, mut log) = leader(&[1, 2, 3], LeaderConfig::default(), 10);
        assert_eq!(leader.leader_epoch_start_offset(), 0);
        // Followers' ends are unknown until they fetch.
        assert_eq!(leader.maybe_increment_high_watermark(&log, T0), None);
        let out = leader
            .on_follower_fetch(&fetch(2, 4, 10), &log, T0 + 1)
            .unwrap();
        assert_eq!(out, FetchOutcome::default());
        let out = leader
            .on_follower_fetch(&fetch(3, 7, 10), &log, T0 + 2)
            .unwrap();
        assert_eq!(out.high_watermark, Some(4));
        apply(&mut log, &out);
        let out = leader
            .on_follower_fetch(&fetch(2, 10, 10), &log, T0 + 3)
            .unwrap();
        assert_eq!(out.high_watermark, Some(7));
        apply(&mut log, &out);
        // A follower fetching from an earlier offset does not pull the high watermark back.
        let out = leader
            .on_follower_fetch(&fetch(2, 3, 10), &log, T0 + 4)
            .unwrap();
        assert_eq!(out.high_watermark, None);
        let out = leader
            .on_follower_fetch(&fetch(3, 10, 10), &log, T0 + 5)
            .unwrap();
        assert_eq!(out.high_watermark, None, "replica 2 is back at 3");
        let out = leader
            .on_follower_fetch(&fetch(2, 10, 10), &log, T0 + 6)
            .unwrap();
        assert_eq!(out.high_watermark, Some(10));
        assert_eq!(
            leader.follower(2),
            Some(&FollowerProgress {
                log_start_offset: 0,
                log_end_offset: 10,
                last_fetch_leader_log_end_offset: 10,
                last_fetch_time_ms: T0 + 6,
                last_caught_up_time_ms: T0 + 6,
                broker_epoch: Some(102),
            })
        );
    }

    #[test]
    fn caught_up_time_follows_kafka() {
        let (mut leader, log) = leader(&[1, 2, 3], LeaderConfig::default(), 10);
        // Behind the leader's end at read time, and behind the previous fetch's end (-1 is
        // below everything, so the previous fetch time, 0, counts).
        leader
            .on_follower_fetch(&fetch(2, 5, 10), &log, T0 + 100)
            .unwrap();
        assert_eq!(leader.follower(2).unwrap().last_caught_up_time_ms, T0);
        // Reaching the end the leader had at the previous fetch: caught up as of then.
        leader
            .on_follower_fetch(&fetch(2, 10, 12), &log, T0 + 200)
            .unwrap();
        assert_eq!(leader.follower(2).unwrap().last_caught_up_time_ms, T0 + 100);
        // Reaching the leader's end at read time: caught up now.
        leader
            .on_follower_fetch(&fetch(2, 12, 12), &log, T0 + 300)
            .unwrap();
        assert_eq!(leader.follower(2).unwrap().last_caught_up_time_ms, T0 + 300);
    }

    #[test]
    fn a_caught_up_follower_is_proposed_for_the_isr_once() {
        let (mut leader, mut log) = leader(&[1, 2], LeaderConfig::default(), 10);
        let out = leader
            .on_follower_fetch(&fetch(2, 8, 10), &log, T0)
            .unwrap();
        apply(&mut log, &out);
        assert_eq!(log.high_watermark(), 8);
        // Below the high watermark: not in sync yet.
        let out = leader
            .on_follower_fetch(&fetch(3, 5, 10), &log, T0 + 1)
            .unwrap();
        assert_eq!(out, FetchOutcome::default());
        let out = leader
            .on_follower_fetch(&fetch(3, 9, 10), &log, T0 + 2)
            .unwrap();
        let proposal = AlterPartitionProposal {
            leader_id: 1,
            leader_epoch: EPOCH,
            partition_epoch: 10,
            new_isr: vec![
                IsrMember {
                    replica_id: 1,
                    broker_epoch: LEADER_BROKER_EPOCH,
                },
                IsrMember {
                    replica_id: 2,
                    broker_epoch: 102,
                },
                IsrMember {
                    replica_id: 3,
                    broker_epoch: 103,
                },
            ],
        };
        assert_eq!(out.alter_partition, Some(proposal.clone()));
        assert_eq!(
            out.high_watermark, None,
            "the high watermark waits for 3 at 9"
        );
        assert_eq!(leader.isr(), &BTreeSet::from([1, 2]));
        assert_eq!(leader.maximal_isr(), BTreeSet::from([1, 2, 3]));
        // While it is pending nothing else is proposed.
        let out = leader
            .on_follower_fetch(&fetch(3, 10, 10), &log, T0 + 3)
            .unwrap();
        assert_eq!(out.alter_partition, None);
        assert_eq!(out.high_watermark, None, "replica 2 is at 8");
        // A stale answer is ignored; the right one commits.
        let other = AlterPartitionProposal {
            partition_epoch: 9,
            ..proposal.clone()
        };
        let committed = CommittedIsr {
            leader_epoch: EPOCH,
            partition_epoch: 11,
            isr: vec![1, 2, 3],
        };
        assert_eq!(
            leader.on_isr_committed(&other, &committed, &log, T0 + 4),
            None
        );
        assert!(leader.isr_state().is_inflight());
        let wrong_epoch = CommittedIsr {
            leader_epoch: EPOCH + 1,
            ..committed.clone()
        };
        assert_eq!(
            leader.on_isr_committed(&proposal, &wrong_epoch, &log, T0 + 4),
            None
        );
        assert!(leader.isr_state().is_inflight());
        assert_eq!(
            leader.on_isr_committed(&proposal, &committed, &log, T0 + 4),
            None
        );
        assert_eq!(
            leader.isr_state(),
            &IsrState::Committed {
                isr: BTreeSet::from([1, 2, 3])
            }
        );
        assert_eq!(leader.partition_epoch(), 11);
    }

    #[test]
    fn only_eligible_brokers_join_the_isr() {
        let (mut leader, log) = leader(&[1, 2], LeaderConfig::default(), 0);
        for status in [
            None,
            Some(BrokerStatus {
                epoch: 103,
                fenced: true,
                in_controlled_shutdown: false,
            }),
            Some(BrokerStatus {
                epoch: 103,
                fenced: false,
                in_controlled_shutdown: true,
            }),
            // The fetch carries 103, the image a newer... no: an older registration.
            Some(BrokerStatus {
                epoch: 90,
                fenced: false,
                in_controlled_shutdown: false,
            }),
        ] {
            leader.set_broker_status(3, status);
            let out = leader.on_follower_fetch(&fetch(3, 0, 0), &log, T0).unwrap();
            assert_eq!(out.alter_partition, None, "{status:?}");
        }
        // A fetch from before the broker re-registered is refused.
        leader.set_broker_status(3, live(200));
        assert_eq!(
            leader.on_follower_fetch(&fetch(3, 0, 0), &log, T0),
            Err(ReplicationError::NotLeaderOrFollower)
        );
        // A replica outside the assignment, and fetches in other epochs.
        assert_eq!(
            leader.on_follower_fetch(&fetch(4, 0, 0), &log, T0),
            Err(ReplicationError::UnknownLeaderEpoch {
                request_epoch: EPOCH,
                current_epoch: EPOCH
            })
        );
        let old = FollowerFetch {
            current_leader_epoch: Some(EPOCH - 1),
            ..fetch(2, 0, 0)
        };
        assert_eq!(
            leader.on_follower_fetch(&old, &log, T0),
            Err(ReplicationError::FencedLeaderEpoch {
                request_epoch: EPOCH - 1,
                current_epoch: EPOCH
            })
        );
        assert_eq!(
            leader.check_leader_epoch(Some(EPOCH + 1)),
            Err(ReplicationError::UnknownLeaderEpoch {
                request_epoch: EPOCH + 1,
                current_epoch: EPOCH
            })
        );
        assert_eq!(leader.check_leader_epoch(None), Ok(()));
    }

    #[test]
    fn a_lagging_follower_is_proposed_out_of_the_isr() {
        let (mut leader, mut log) = leader(&[1, 2, 3], LeaderConfig::default(), 10);
        for replica in [2, 3] {
            let out = leader
                .on_follower_fetch(&fetch(replica, 10, 10), &log, T0)
                .unwrap();
            if let Some(hw) = out.high_watermark {
                log.maybe_increment_high_watermark(hw);
            }
        }
        assert_eq!(log.high_watermark(), 10);
        append(&mut log, 10);
        let out = leader
            .on_follower_fetch(&fetch(2, 20, 20), &log, T0 + 20_000)
            .unwrap();
        assert_eq!(out.high_watermark, None, "replica 3 holds it at 10");
        // Caught up within the lag up to and including 30 s.
        assert_eq!(leader.maybe_shrink_isr(&log, T0 + 30_000), None);
        let proposal = leader.maybe_shrink_isr(&log, T0 + 30_001).unwrap();
        assert_eq!(proposal.isr(), vec![1, 2]);
        assert_eq!(leader.maximal_isr(), BTreeSet::from([1, 2, 3]));
        assert_eq!(
            leader.maybe_shrink_isr(&log, T0 + 30_002),
            None,
            "one at a time"
        );
        assert_eq!(
            leader.maybe_increment_high_watermark(&log, T0 + 30_002),
            None
        );
        // The controller did not apply it: back to the committed ISR, then again.
        assert_eq!(
            leader.on_isr_change_failed(&proposal, &AlterPartitionError::OperationNotAttempted),
            AlterPartitionRetry::Reverted
        );
        assert!(!leader.isr_state().is_inflight());
        let proposal = leader.maybe_shrink_isr(&log, T0 + 30_003).unwrap();
        assert_eq!(
            leader.on_isr_change_failed(&proposal, &AlterPartitionError::NotController),
            AlterPartitionRetry::Resend(proposal.clone())
        );
        assert_eq!(
            leader.on_isr_change_failed(&proposal, &AlterPartitionError::InvalidUpdateVersion),
            AlterPartitionRetry::AwaitMetadata
        );
        assert!(leader.isr_state().is_inflight());
        let stale = AlterPartitionProposal {
            partition_epoch: 3,
            ..proposal.clone()
        };
        assert_eq!(
            leader.on_isr_change_failed(&stale, &AlterPartitionError::OperationNotAttempted),
            AlterPartitionRetry::Ignored
        );
        let committed = CommittedIsr {
            leader_epoch: EPOCH,
            partition_epoch: 11,
            isr: vec![1, 2],
        };
        assert_eq!(
            leader.on_isr_committed(&proposal, &committed, &log, T0 + 30_004),
            Some(20)
        );
    }

    #[test]
    fn min_insync_replicas_before_and_after_the_append() {
        let config = LeaderConfig {
            min_insync_replicas: 2,
            ..LeaderConfig::default()
        };
        let (mut leader, mut log) = leader(&[1, 2, 3], config, 10);
        assert_eq!(leader.check_produce_acks_all(), Ok(()));
        assert_eq!(leader.acks_all_result(&log, 10), AckStatus::Waiting);
        leader
            .on_follower_fetch(&fetch(2, 10, 10), &log, T0)
            .unwrap();
        // Replica 3 never fetches: the ISR shrinks to the leader and 2, then to the leader.
        let proposal = leader.maybe_shrink_isr(&log, T0 + 30_001).unwrap();
        let hw = leader.on_isr_committed(
            &proposal,
            &CommittedIsr {
                leader_epoch: EPOCH,
                partition_epoch: 11,
                isr: vec![1, 2],
            },
            &log,
            T0 + 30_001,
        );
        assert_eq!(hw, Some(10));
        log.maybe_increment_high_watermark(10);
        assert_eq!(leader.acks_all_result(&log, 10), AckStatus::Done);
        let committed = PartitionState {
            partition_epoch: 12,
            isr: vec![1],
            ..state(&[1])
        };
        assert_eq!(
            leader.on_metadata(&committed, &log, T0 + 30_002),
            MetadataOutcome::Updated {
                new_epoch_start: None,
                high_watermark: None
            }
        );
        assert_eq!(
            leader.check_produce_acks_all(),
            Err(ReplicationError::NotEnoughReplicas {
                isr_size: 1,
                min_insync_replicas: 2
            })
        );
        append(&mut log, 5);
        // Alone in the ISR the leader moves the high watermark, and the wait fails.
        assert_eq!(
            leader.maybe_increment_high_watermark(&log, T0 + 30_003),
            Some(15)
        );
        log.maybe_increment_high_watermark(15);
        assert_eq!(
            leader.acks_all_result(&log, 15),
            AckStatus::Failed(ReplicationError::NotEnoughReplicasAfterAppend {
                isr_size: 1,
                min_insync_replicas: 2
            })
        );
        // KIP-966: the high watermark waits instead.
        leader.set_config(LeaderConfig {
            hw_requires_min_isr: true,
            ..config
        });
        append(&mut log, 1);
        assert_eq!(
            leader.maybe_increment_high_watermark(&log, T0 + 30_004),
            None
        );
        // min.insync.replicas above the replication factor counts as the factor.
        leader.set_config(LeaderConfig {
            min_insync_replicas: 5,
            ..config
        });
        assert_eq!(leader.effective_min_isr(), 3);
    }

    #[test]
    fn diverging_epochs_follow_kip_320() {
        let mut log = MemLog::new();
        log.append_as_leader(&batch_bytes(0, 0, &[b"a".as_slice(); 5]), 1)
            .unwrap();
        log.append_as_leader(&batch_bytes(0, 0, &[b"b".as_slice(); 5]), 3)
            .unwrap();
        let state = PartitionState {
            leader_epoch: 3,
            ..state(&[1, 2, 3])
        };
        let leader =
            LeaderState::new(LEADER, 1, &state, LeaderConfig::default(), &log, T0).unwrap();
        let check = |offset, epoch| leader.validate_fetch_epoch(&log, offset, epoch);
        assert_eq!(check(4, None), Ok(None));
        assert_eq!(check(4, Some(-1)), Ok(None));
        assert_eq!(check(10, Some(3)), Ok(None));
        assert_eq!(check(7, Some(3)), Ok(None));
        assert_eq!(check(5, Some(1)), Ok(None));
        let diverging = Some(DivergingEpoch {
            epoch: 1,
            end_offset: 5,
        });
        // An epoch the leader never had: its floor, ending where epoch 3 starts.
        assert_eq!(check(8, Some(2)), Ok(diverging));
        // A known epoch that ends before the fetch offset.
        assert_eq!(check(6, Some(1)), Ok(diverging));
        // Newer than every epoch of the leader.
        assert_eq!(
            check(3, Some(4)),
            Err(ReplicationError::OffsetOutOfRange {
                offset: 3,
                log_start_offset: 0,
                log_end_offset: 10
            })
        );
        let mut log = log.clone();
        log.set_high_watermark(10);
        assert!(log.maybe_increment_log_start_offset(5));
        assert_eq!(
            leader.validate_fetch_epoch(&log, 3, Some(1)),
            Err(ReplicationError::OffsetOutOfRange {
                offset: 3,
                log_start_offset: 5,
                log_end_offset: 10
            })
        );
    }

    #[test]
    fn metadata_updates_the_assignment_and_starts_new_epochs() {
        let (mut leader, mut log) = leader(&[1, 2, 3], LeaderConfig::default(), 10);
        leader
            .on_follower_fetch(&fetch(2, 10, 10), &log, T0)
            .unwrap();
        let out = leader
            .on_follower_fetch(&fetch(3, 6, 10), &log, T0)
            .unwrap();
        log.maybe_increment_high_watermark(out.high_watermark.unwrap());
        assert_eq!(log.high_watermark(), 6);
        let stale = PartitionState {
            partition_epoch: 9,
            ..state(&[1])
        };
        assert_eq!(leader.on_metadata(&stale, &log, T0), MetadataOutcome::Stale);
        let moved = PartitionState {
            leader: 2,
            ..state(&[2, 3])
        };
        assert_eq!(
            leader.on_metadata(&moved, &log, T0),
            MetadataOutcome::NoLongerLeader
        );
        // Replica 3 leaves the ISR and the assignment, 4 joins it; the epoch moves on.
        let next = PartitionState {
            leader: LEADER,
            leader_epoch: EPOCH + 1,
            partition_epoch: 12,
            replicas: vec![1, 2, 4],
            isr: vec![1, 2],
        };
        assert_eq!(
            leader.on_metadata(&next, &log, T0 + 10),
            MetadataOutcome::Updated {
                new_epoch_start: Some((EPOCH + 1, 10)),
                high_watermark: Some(10)
            }
        );
        assert_eq!(leader.follower(3), None);
        assert_eq!(
            leader.follower(4),
            Some(&FollowerProgress {
                last_fetch_leader_log_end_offset: 10,
                ..FollowerProgress::new_leader(T0 + 10, false)
            })
        );
        assert_eq!(
            leader.follower(2),
            Some(&FollowerProgress {
                log_start_offset: 0,
                log_end_offset: 10,
                last_fetch_leader_log_end_offset: 10,
                last_fetch_time_ms: T0 + 10,
                last_caught_up_time_ms: T0 + 10,
                broker_epoch: Some(102),
            })
        );
        assert_eq!(leader.leader_epoch_start_offset(), 10);
        assert_eq!(
            LeaderState::new(2, 1, &state(&[1]), LeaderConfig::default(), &log, T0).err(),
            Some(ReplicationError::NotLeaderOrFollower)
        );
    }
}
