//! One partition this broker follows: Kafka's fetcher for one partition
//! (AbstractFetcherThread / ReplicaFetcherThread), as a state machine. It says which
//! request to send next and turns each answer into steps for the caller's log.

use bytes::Bytes;

use crate::batches::RecordBatches;
use crate::error::ReplicationError;
use crate::leader::DivergingEpoch;
use crate::log::ReplicaLog;
use crate::{ReplicaId, DEFAULT_REPLICA_FETCH_BACKOFF_MS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerConfig {
    /// `replica.fetch.backoff.ms`: the wait after a failed request.
    pub fetch_backoff_ms: i64,
    /// Kafka 2.7+'s fetcher (KIP-320 on the replication path): a follower whose log has
    /// leader epochs starts fetching at once and truncates on a diverging epoch in the
    /// Fetch response, without OffsetForLeaderEpoch. Off: it asks OffsetForLeaderEpoch first.
    pub truncate_on_fetch: bool,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        Self {
            fetch_backoff_ms: DEFAULT_REPLICA_FETCH_BACKOFF_MS,
            truncate_on_fetch: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerPhase {
    /// Finding where the log diverges from the leader's (OffsetForLeaderEpoch).
    Truncating,
    Fetching,
    /// The leader refused the fetch offset: asking for its log start and end.
    ResolvingOutOfRange,
    /// Fenced by a newer leader epoch: nothing to do until new metadata (a new state).
    AwaitingMetadata,
}

/// A request to the leader, for this partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerRequest {
    /// OffsetForLeaderEpoch with the follower's latest epoch.
    OffsetForLeaderEpoch {
        current_leader_epoch: i32,
        leader_epoch: i32,
    },
    Fetch {
        current_leader_epoch: i32,
        fetch_offset: i64,
        /// The epoch of the last batch in the log (KIP-320); `None` sends -1.
        last_fetched_epoch: Option<i32>,
        log_start_offset: i64,
    },
    /// ListOffsets for the earliest and the latest offset, with the follower's replica id
    /// (so the latest is the leader's log end offset).
    ListOffsets { current_leader_epoch: i32 },
}

/// What [`FollowerState::poll`] wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerAction {
    Send(FollowerRequest),
    /// Local steps with no request (truncation to the high watermark of a log without
    /// leader epochs).
    Apply(Vec<FollowerStep>),
}

/// One partition of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub diverging_epoch: Option<DivergingEpoch>,
    /// The response's record bytes, as received.
    pub records: Bytes,
}

/// The leader's earliest and latest offsets (two ListOffsets answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderOffsets {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// What the caller does, in order, to its log (and its fetch scheduling).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerStep {
    /// Remove everything at or past `offset` (nothing when the log ends before it).
    Truncate { offset: i64 },
    /// Replace the log with an empty one starting at `offset`.
    TruncateFullyAndStartAt { offset: i64 },
    /// Append the batches keeping their offsets and epochs.
    Append(RecordBatches),
    /// Set the log's high watermark (within its log start and end).
    SetHighWatermark(i64),
    /// Raise the log start offset to the leader's.
    IncrementLogStartOffset(i64),
    /// A retriable failure: no request for this partition before `until_ms`.
    Backoff {
        until_ms: i64,
        error: ReplicationError,
    },
    /// A newer leader epoch exists or the log cannot follow: wait for new metadata.
    AwaitMetadata { error: ReplicationError },
}

#[derive(Debug, Clone)]
pub struct FollowerState {
    leader_id: ReplicaId,
    leader_epoch: i32,
    config: FollowerConfig,
    phase: FollowerPhase,
    in_flight: Option<FollowerRequest>,
    backoff_until_ms: i64,
}

impl FollowerState {
    /// This broker follows `leader_id` in `leader_epoch` (a new state for every new leader
    /// epoch, as Kafka restarts the fetch then).
    pub fn new(
        leader_id: ReplicaId,
        leader_epoch: i32,
        config: FollowerConfig,
        log: &impl ReplicaLog,
    ) -> Self {
        let phase = if config.truncate_on_fetch && log.latest_epoch().is_some() {
            FollowerPhase::Fetching
        } else {
            FollowerPhase::Truncating
        };
        Self {
            leader_id,
            leader_epoch,
            config,
            phase,
            in_flight: None,
            backoff_until_ms: i64::MIN,
        }
    }

    pub fn leader_id(&self) -> ReplicaId {
        self.leader_id
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    pub fn phase(&self) -> FollowerPhase {
        self.phase
    }

    pub fn in_flight(&self) -> Option<&FollowerRequest> {
        self.in_flight.as_ref()
    }

    /// When a backoff ends, if one is running.
    pub fn backoff_until_ms(&self, now_ms: i64) -> Option<i64> {
        (self.backoff_until_ms > now_ms).then_some(self.backoff_until_ms)
    }

    /// The next thing to do: a request (at most one in flight), local steps, or nothing
    /// (waiting for an answer, a backoff, or metadata).
    pub fn poll(&mut self, log: &impl ReplicaLog, now_ms: i64) -> Option<FollowerAction> {
        if self.in_flight.is_some() || now_ms < self.backoff_until_ms {
            return None;
        }
        let request = match self.phase {
            FollowerPhase::AwaitingMetadata => return None,
            FollowerPhase::Truncating => match log.latest_epoch() {
                Some(leader_epoch) => FollowerRequest::OffsetForLeaderEpoch {
                    current_leader_epoch: self.leader_epoch,
                    leader_epoch,
                },
                None => {
                    // No epochs to compare: keep only what the high watermark covers.
                    self.phase = FollowerPhase::Fetching;
                    return Some(FollowerAction::Apply(vec![FollowerStep::Truncate {
                        offset: log.high_watermark(),
                    }]));
                }
            },
            FollowerPhase::Fetching => FollowerRequest::Fetch {
                current_leader_epoch: self.leader_epoch,
                fetch_offset: log.log_end_offset(),
                last_fetched_epoch: log.latest_epoch(),
                log_start_offset: log.log_start_offset(),
            },
            FollowerPhase::ResolvingOutOfRange => FollowerRequest::ListOffsets {
                current_leader_epoch: self.leader_epoch,
            },
        };
        self.in_flight = Some(request.clone());
        Some(FollowerAction::Send(request))
    }

    /// The in-flight request got no answer (connection lost, timeout).
    pub fn on_request_failed(&mut self, error: ReplicationError, now_ms: i64) -> Vec<FollowerStep> {
        if self.in_flight.take().is_none() {
            return Vec::new();
        }
        self.on_error(error, now_ms)
    }

    /// The answer to OffsetForLeaderEpoch: the leader's `(epoch, end offset)` for our
    /// latest epoch, `None` when it has none (-1/-1).
    pub fn on_offset_for_leader_epoch(
        &mut self,
        log: &impl ReplicaLog,
        response: Result<Option<(i32, i64)>, ReplicationError>,
        now_ms: i64,
    ) -> Vec<FollowerStep> {
        if !matches!(
            self.in_flight,
            Some(FollowerRequest::OffsetForLeaderEpoch { .. })
        ) {
            return Vec::new();
        }
        self.in_flight = None;
        match response {
            Err(error) => self.on_error(error, now_ms),
            Ok(epoch_end) => {
                let (offset, completed) = truncation_offset(log, epoch_end);
                self.phase = if completed || self.config.truncate_on_fetch {
                    FollowerPhase::Fetching
                } else {
                    FollowerPhase::Truncating
                };
                vec![FollowerStep::Truncate { offset }]
            }
        }
    }

    /// The answer to a Fetch. Ignored when it is stale (the log no longer ends at the
    /// fetch offset).
    pub fn on_fetch_response(
        &mut self,
        log: &impl ReplicaLog,
        response: Result<FetchedPartition, ReplicationError>,
        now_ms: i64,
    ) -> Vec<FollowerStep> {
        let Some(FollowerRequest::Fetch { fetch_offset, .. }) = self.in_flight else {
            return Vec::new();
        };
        self.in_flight = None;
        if log.log_end_offset() != fetch_offset || self.phase != FollowerPhase::Fetching {
            return Vec::new();
        }
        let partition = match response {
            Err(ReplicationError::OffsetOutOfRange { .. }) => {
                self.phase = FollowerPhase::ResolvingOutOfRange;
                return Vec::new();
            }
            Err(error) => return self.on_error(error, now_ms),
            Ok(partition) => partition,
        };
        if let Some(diverging) = partition.diverging_epoch {
            // Truncate first; offsets and records come with the next fetch.
            let (offset, _) = truncation_offset(log, Some((diverging.epoch, diverging.end_offset)));
            return vec![FollowerStep::Truncate { offset }];
        }
        let batches = match RecordBatches::parse(partition.records) {
            Ok(batches) => batches,
            Err(error) => return self.on_error(error, now_ms),
        };
        let mut steps = Vec::new();
        let mut log_start = log.log_start_offset();
        let mut log_end = fetch_offset;
        if let (Some(first), Some(last)) = (batches.spans().first(), batches.last_offset()) {
            if first.base_offset != fetch_offset {
                // The leader's log start inside a batch (DeleteRecords): an empty log
                // restarts at that batch, as Kafka's follower does.
                if fetch_offset == log.log_start_offset()
                    && first.base_offset < fetch_offset
                    && first.last_offset >= fetch_offset
                {
                    steps.push(FollowerStep::TruncateFullyAndStartAt {
                        offset: first.base_offset,
                    });
                    log_start = first.base_offset;
                } else {
                    return self.await_metadata(ReplicationError::UnexpectedAppendOffset {
                        first_offset: first.base_offset,
                        log_end_offset: fetch_offset,
                    });
                }
            }
            log_end = last + 1;
            steps.push(FollowerStep::Append(batches));
        }
        let high_watermark = partition.high_watermark.min(log_end).max(log_start);
        if high_watermark != log.high_watermark() || log_start != log.log_start_offset() {
            steps.push(FollowerStep::SetHighWatermark(high_watermark));
        }
        if partition.log_start_offset > log_start {
            steps.push(FollowerStep::IncrementLogStartOffset(
                partition.log_start_offset.min(high_watermark),
            ));
        }
        steps
    }

    /// The answers to ListOffsets after OFFSET_OUT_OF_RANGE (Kafka's
    /// fetchOffsetAndTruncate): behind the leader's end after an unclean election, the log
    /// is cut to it; before the leader's start, it restarts empty there; else fetching
    /// resumes at the log end.
    pub fn on_leader_offsets(
        &mut self,
        log: &impl ReplicaLog,
        response: Result<LeaderOffsets, ReplicationError>,
        now_ms: i64,
    ) -> Vec<FollowerStep> {
        if !matches!(self.in_flight, Some(FollowerRequest::ListOffsets { .. })) {
            return Vec::new();
        }
        self.in_flight = None;
        let offsets = match response {
            Err(error) => return self.on_error(error, now_ms),
            Ok(offsets) => offsets,
        };
        self.phase = FollowerPhase::Fetching;
        let log_end = log.log_end_offset();
        if offsets.log_end_offset < log_end {
            vec![FollowerStep::Truncate {
                offset: offsets.log_end_offset,
            }]
        } else if offsets.log_start_offset > log_end {
            vec![FollowerStep::TruncateFullyAndStartAt {
                offset: offsets.log_start_offset,
            }]
        } else {
            Vec::new()
        }
    }

    fn on_error(&mut self, error: ReplicationError, now_ms: i64) -> Vec<FollowerStep> {
        match error {
            ReplicationError::FencedLeaderEpoch { .. } => self.await_metadata(error),
            error => {
                self.backoff_until_ms = now_ms + self.config.fetch_backoff_ms;
                vec![FollowerStep::Backoff {
                    until_ms: self.backoff_until_ms,
                    error,
                }]
            }
        }
    }

    fn await_metadata(&mut self, error: ReplicationError) -> Vec<FollowerStep> {
        self.phase = FollowerPhase::AwaitingMetadata;
        vec![FollowerStep::AwaitMetadata { error }]
    }
}

/// Kafka's getOffsetTruncationState: where to cut the log given the leader's end of an
/// epoch, and whether that is final (`false`: the leader named an epoch this log does not
/// have, so ask again with the epoch before it).
fn truncation_offset(log: &impl ReplicaLog, leader_epoch_end: Option<(i32, i64)>) -> (i64, bool) {
    let log_end = log.log_end_offset();
    let Some((leader_epoch, leader_end)) = leader_epoch_end.filter(|&(_, end)| end >= 0) else {
        // The leader cannot place our epoch: keep what the high watermark covers.
        return (log.high_watermark(), true);
    };
    if leader_epoch < 0 {
        return (leader_end.min(log_end), true);
    }
    match log.end_offset_for_epoch(leader_epoch) {
        Some((epoch, end)) if epoch != leader_epoch => (end.min(log_end), false),
        Some((_, end)) => (end.min(leader_end).min(log_end), true),
        None => (leader_end.min(log_end), true),
    }
}
