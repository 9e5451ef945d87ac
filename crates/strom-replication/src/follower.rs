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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{batch_bytes, concat};
    use crate::MemLog;

    const EPOCH: i32 = 7;
    const NOW: i64 = 5_000;

    fn config() -> FollowerConfig {
        FollowerConfig::default()
    }

    /// A follower log with epoch 1 at 0..5 and epoch 3 at 5..10, high watermark 4.
    fn two_epoch_log() -> MemLog {
        let mut log = MemLog::new();
        log.append_as_leader(&batch_bytes(0, 0, &[b"a".as_slice(); 5]), 1)
            .unwrap();
        log.append_as_leader(&batch_bytes(0, 0, &[b"b".as_slice(); 5]), 3)
            .unwrap();
        log.set_high_watermark(4);
        log
    }

    fn apply(log: &mut MemLog, steps: &[FollowerStep]) {
        for step in steps {
            match step {
                FollowerStep::Truncate { offset } => log.truncate_to(*offset),
                FollowerStep::TruncateFullyAndStartAt { offset } => {
                    log.truncate_fully_and_start_at(*offset)
                }
                FollowerStep::Append(batches) => log.append_as_follower(batches).unwrap(),
                FollowerStep::SetHighWatermark(hw) => {
                    log.set_high_watermark(*hw);
                }
                FollowerStep::IncrementLogStartOffset(offset) => {
                    log.maybe_increment_log_start_offset(*offset);
                }
                FollowerStep::Backoff { .. } | FollowerStep::AwaitMetadata { .. } => {}
            }
        }
    }

    fn send(follower: &mut FollowerState, log: &MemLog, now: i64) -> FollowerRequest {
        match follower.poll(log, now) {
            Some(FollowerAction::Send(request)) => request,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn fetched(hw: i64, log_start: i64, records: Bytes) -> FetchedPartition {
        FetchedPartition {
            high_watermark: hw,
            log_start_offset: log_start,
            diverging_epoch: None,
            records,
        }
    }

    #[test]
    fn a_log_without_epochs_truncates_to_its_high_watermark() {
        let mut log = MemLog::new();
        log.append_as_follower(
            &RecordBatches::parse(batch_bytes(0, -1, &[b"x".as_slice()])).unwrap(),
        )
        .unwrap();
        log.append_as_follower(
            &RecordBatches::parse(batch_bytes(1, -1, &[b"y".as_slice()])).unwrap(),
        )
        .unwrap();
        log.set_high_watermark(1);
        let mut follower = FollowerState::new(2, EPOCH, config(), &log);
        assert_eq!(follower.phase(), FollowerPhase::Truncating);
        assert_eq!(
            follower.poll(&log, NOW),
            Some(FollowerAction::Apply(vec![FollowerStep::Truncate {
                offset: 1
            }]))
        );
        log.truncate_to(1);
        assert_eq!(
            send(&mut follower, &log, NOW),
            FollowerRequest::Fetch {
                current_leader_epoch: EPOCH,
                fetch_offset: 1,
                last_fetched_epoch: None,
                log_start_offset: 0
            }
        );
        assert_eq!(follower.poll(&log, NOW), None, "one request in flight");
    }

    #[test]
    fn offset_for_leader_epoch_truncates_where_the_logs_diverge() {
        // The leader ended epoch 3 at 7: keep 0..7.
        let mut log = two_epoch_log();
        let mut follower = FollowerState::new(2, EPOCH, config(), &log);
        assert_eq!(
            send(&mut follower, &log, NOW),
            FollowerRequest::OffsetForLeaderEpoch {
                current_leader_epoch: EPOCH,
                leader_epoch: 3
            }
        );
        let steps = follower.on_offset_for_leader_epoch(&log, Ok(Some((3, 7))), NOW);
        assert_eq!(steps, vec![FollowerStep::Truncate { offset: 7 }]);
        assert_eq!(follower.phase(), FollowerPhase::Fetching);
        apply(&mut log, &steps);
        assert_eq!(
            log.log_end_offset(),
            5,
            "the batch 5..9 holds 7: it goes whole, as in strom-log"
        );

        // The leader never had epoch 3; its floor is epoch 2, ending at 8, unknown here:
        // cut to the end of our epoch before it (1, at 5) and ask again with epoch 1.
        let mut log = two_epoch_log();
        let mut follower = FollowerState::new(2, EPOCH, config(), &log);
        send(&mut follower, &log, NOW);
        let steps = follower.on_offset_for_leader_epoch(&log, Ok(Some((2, 8))), NOW);
        assert_eq!(steps, vec![FollowerStep::Truncate { offset: 5 }]);
        assert_eq!(follower.phase(), FollowerPhase::Truncating);
        apply(&mut log, &steps);
        assert_eq!(
            send(&mut follower, &log, NOW),
            FollowerRequest::OffsetForLeaderEpoch {
                current_leader_epoch: EPOCH,
                leader_epoch: 1
            }
        );
        let steps = follower.on_offset_for_leader_epoch(&log, Ok(Some((1, 3))), NOW);
        assert_eq!(steps, vec![FollowerStep::Truncate { offset: 3 }]);
        assert_eq!(follower.phase(), FollowerPhase::Fetching);

        // The leader cannot place our epoch: keep what the high watermark covers.
        let log = two_epoch_log();
        let mut follower = FollowerState::new(2, EPOCH, config(), &log);
        send(&mut follower, &log, NOW);
        assert_eq!(
            follower.on_offset_for_leader_epoch(&log, Ok(None), NOW),
            vec![FollowerStep::Truncate { offset: 4 }]
        );
        // An answer nobody asked for changes nothing.
        assert_eq!(
            follower.on_offset_for_leader_epoch(&log, Ok(Some((3, 0))), NOW),
            vec![]
        );
    }

    #[test]
    fn errors_back_off_or_wait_for_metadata() {
        let log = two_epoch_log();
        let mut follower = FollowerState::new(2, EPOCH, config(), &log);
        send(&mut follower, &log, NOW);
        let error = ReplicationError::UnknownLeaderEpoch {
            request_epoch: EPOCH,
            current_epoch: EPOCH - 1,
        };
        assert_eq!(
            follower.on_offset_for_leader_epoch(&log, Err(error.clone()), NOW),
            vec![FollowerStep::Backoff {
                until_ms: NOW + 1_000,
                error
            }]
        );
        assert_eq!(follower.poll(&log, NOW + 999), None);
        assert_eq!(follower.backoff_until_ms(NOW + 999), Some(NOW + 1_000));
        send(&mut follower, &log, NOW + 1_000);
        let error = ReplicationError::NetworkException("reset".into());
        assert_eq!(
            follower.on_request_failed(error.clone(), NOW + 1_000),
            vec![FollowerStep::Backoff {
                until_ms: NOW + 2_000,
                error
            }]
        );
        send(&mut follower, &log, NOW + 2_000);
        let error = ReplicationError::FencedLeaderEpoch {
            request_epoch: EPOCH,
            current_epoch: EPOCH + 1,
        };
        assert_eq!(
            follower.on_offset_for_leader_epoch(&log, Err(error.clone()), NOW + 2_000),
            vec![FollowerStep::AwaitMetadata { error }]
        );
        assert_eq!(follower.phase(), FollowerPhase::AwaitingMetadata);
        assert_eq!(follower.poll(&log, NOW + 100_000), None);
    }

    #[test]
    fn fetched_batches_are_appended_with_the_leaders_offsets() {
        let mut log = two_epoch_log();
        let mut follower = FollowerState::new(
            2,
            EPOCH,
            FollowerConfig {
                truncate_on_fetch: true,
                ..config()
            },
            &log,
        );
        assert_eq!(follower.phase(), FollowerPhase::Fetching);
        assert_eq!(
            send(&mut follower, &log, NOW),
            FollowerRequest::Fetch {
                current_leader_epoch: EPOCH,
                fetch_offset: 10,
                last_fetched_epoch: Some(3),
                log_start_offset: 0
            }
        );
        let records = concat(&[
            batch_bytes(10, 3, &[b"c", b"d"]),
            batch_bytes(12, EPOCH, &[b"e"]),
        ]);
        let batches = RecordBatches::parse(records.clone()).unwrap();
        let steps = follower.on_fetch_response(&log, Ok(fetched(20, 2, records)), NOW);
        assert_eq!(
            steps,
            vec![
                FollowerStep::Append(batches),
                FollowerStep::SetHighWatermark(13),
                FollowerStep::IncrementLogStartOffset(2),
            ]
        );
        apply(&mut log, &steps);
        assert_eq!(
            (
                log.log_start_offset(),
                log.log_end_offset(),
                log.high_watermark()
            ),
            (2, 13, 13)
        );
        assert_eq!(log.latest_epoch(), Some(EPOCH));
        // An empty answer moves only the high watermark.
        assert_eq!(
            send(&mut follower, &log, NOW),
            FollowerRequest::Fetch {
                current_leader_epoch: EPOCH,
                fetch_offset: 13,
                last_fetched_epoch: Some(EPOCH),
                log_start_offset: 2
            }
        );
        assert_eq!(
            follower.on_fetch_response(&log, Ok(fetched(13, 2, Bytes::new())), NOW),
            vec![]
        );
        // A stale answer (the log changed under the request) is dropped.
        send(&mut follower, &log, NOW);
        log.truncate_to(12);
        assert_eq!(
            follower.on_fetch_response(&log, Ok(fetched(13, 0, Bytes::new())), NOW),
            vec![]
        );
        // Corrupt bytes: back off and fetch again.
        send(&mut follower, &log, NOW);
        let mut bad = batch_bytes(12, EPOCH, &[b"e"]).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            follower.on_fetch_response(&log, Ok(fetched(13, 0, Bytes::from(bad))), NOW)[..],
            [FollowerStep::Backoff {
                error: ReplicationError::CorruptRecord(_),
                ..
            }]
        ));
        // Batches that do not start at the log end: the partition stops.
        send(&mut follower, &log, NOW + 1_000);
        assert_eq!(
            follower.on_fetch_response(
                &log,
                Ok(fetched(20, 0, batch_bytes(15, EPOCH, &[b"f"]))),
                NOW + 1_000
            ),
            vec![FollowerStep::AwaitMetadata {
                error: ReplicationError::UnexpectedAppendOffset {
                    first_offset: 15,
                    log_end_offset: 12
                }
            }]
        );
    }

    #[test]
    fn a_diverging_epoch_truncates_before_fetching_on() {
        let mut log = two_epoch_log();
        let mut follower = FollowerState::new(
            2,
            EPOCH,
            FollowerConfig {
                truncate_on_fetch: true,
                ..config()
            },
            &log,
        );
        send(&mut follower, &log, NOW);
        let response = FetchedPartition {
            diverging_epoch: Some(DivergingEpoch {
                epoch: 1,
                end_offset: 5,
            }),
            ..fetched(9, 0, batch_bytes(10, 3, &[b"ignored"]))
        };
        let steps = follower.on_fetch_response(&log, Ok(response), NOW);
        assert_eq!(steps, vec![FollowerStep::Truncate { offset: 5 }]);
        apply(&mut log, &steps);
        assert_eq!(
            send(&mut follower, &log, NOW),
            FollowerRequest::Fetch {
                current_leader_epoch: EPOCH,
                fetch_offset: 5,
                last_fetched_epoch: Some(1),
                log_start_offset: 0
            }
        );
    }

    #[test]
    fn out_of_range_resolves_from_the_leaders_offsets() {
        let cases = [
            // Unclean election: the leader ends before us; cut to its end.
            (
                LeaderOffsets {
                    log_start_offset: 0,
                    log_end_offset: 6,
                },
                vec![FollowerStep::Truncate { offset: 6 }],
            ),
            // Far behind: the leader's log starts past our end; restart there.
            (
                LeaderOffsets {
                    log_start_offset: 50,
                    log_end_offset: 80,
                },
                vec![FollowerStep::TruncateFullyAndStartAt { offset: 50 }],
            ),
            // Neither: fetch again from our end.
            (
                LeaderOffsets {
                    log_start_offset: 3,
                    log_end_offset: 12,
                },
                vec![],
            ),
        ];
        for (offsets, expected) in cases {
            let log = two_epoch_log();
            let mut follower = FollowerState::new(
                2,
                EPOCH,
                FollowerConfig {
                    truncate_on_fetch: true,
                    ..config()
                },
                &log,
            );
            send(&mut follower, &log, NOW);
            let error = ReplicationError::OffsetOutOfRange {
                offset: 10,
                log_start_offset: 0,
                log_end_offset: 0,
            };
            assert_eq!(follower.on_fetch_response(&log, Err(error), NOW), vec![]);
            assert_eq!(follower.phase(), FollowerPhase::ResolvingOutOfRange);
            assert_eq!(
                send(&mut follower, &log, NOW),
                FollowerRequest::ListOffsets {
                    current_leader_epoch: EPOCH
                }
            );
            assert_eq!(follower.on_leader_offsets(&log, Ok(offsets), NOW), expected);
            assert_eq!(follower.phase(), FollowerPhase::Fetching);
        }
    }

    #[test]
    fn a_leader_log_start_inside_the_first_batch_restarts_the_log_there() {
        let mut log = MemLog::new();
        log.truncate_fully_and_start_at(12);
        let mut follower = FollowerState::new(
            2,
            EPOCH,
            FollowerConfig {
                truncate_on_fetch: true,
                ..config()
            },
            &log,
        );
        // No epochs: truncate to the high watermark (12) first.
        assert_eq!(
            follower.poll(&log, NOW),
            Some(FollowerAction::Apply(vec![FollowerStep::Truncate {
                offset: 12
            }]))
        );
        send(&mut follower, &log, NOW);
        let records = batch_bytes(10, EPOCH, &[b"a", b"b", b"c", b"d"]);
        let steps = follower.on_fetch_response(&log, Ok(fetched(14, 12, records.clone())), NOW);
        assert_eq!(
            steps,
            vec![
                FollowerStep::TruncateFullyAndStartAt { offset: 10 },
                FollowerStep::Append(RecordBatches::parse(records).unwrap()),
                FollowerStep::SetHighWatermark(14),
                FollowerStep::IncrementLogStartOffset(12),
            ]
        );
        apply(&mut log, &steps);
        assert_eq!(
            (
                log.log_start_offset(),
                log.log_end_offset(),
                log.high_watermark()
            ),
            (12, 14, 14)
        );
    }
}
