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
