//! Log compaction (`cleanup.policy=compact`), as Kafka's LogCleaner does it:
//! which part of the log may be cleaned and when, the cleaning round over it,
//! and the cleaner checkpoint (the first dirty offset).
//!
//! A round maps the keys of the dirty range `[first dirty, first uncleanable)`
//! to their latest offsets, then rewrites every segment below the mapped end,
//! several small segments into one, keeping per key only its latest record
//! (plus anything not mapped). Offsets never change: removed records leave
//! gaps that readers skip. Tombstones get a delete horizon (batch attribute
//! bit 6) the first time they are cleaned and go at the first round after it.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;

use tracing::info;

use crate::checkpoint;
use crate::cleaner::{self, CleanContext, GroupStats, LastRecord};
use crate::cleaner_txn::CleanedTransactions;
use crate::config::LogConfig;
use crate::error::LogError;
use crate::log::PartitionLog;
use crate::offset_map::OffsetMap;
use crate::segment::{offset_fits, Segment, SegmentSnapshot};
use crate::swap::{self, SwapHook, SwapStep};
use crate::txn_index::TxnIndexEntry;

/// Per-partition file holding the first dirty offset (Kafka keeps one
/// `cleaner-offset-checkpoint` per log dir; the format is the same as ours).
pub(crate) const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

/// The topic (and cleaner) configs compaction follows, with Kafka's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionPolicy {
    /// `delete.retention.ms` (86400000): how long a cleaned tombstone stays readable.
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio` (0.5): dirty bytes / all bytes that trigger a round.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms` (0): segments with a record younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms` (i64::MAX): a dirty segment older than this forces a round.
    pub max_compaction_lag_ms: i64,
    /// Broker `log.cleaner.dedupe.buffer.size` (134217728): memory for the key map;
    /// a round stops mapping when it is spent and the next round goes on.
    pub dedupe_buffer_bytes: usize,
    /// Broker `producer.id.expiration.ms` (86400000): the last batch (or marker) of a
    /// producer active within it is kept (empty if need be) so its sequence and epoch
    /// survive.
    pub producer_id_expiration_ms: i64,
}

/// Kafka's `producer.id.expiration.ms` default: a producer idle this long is forgotten.
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            dedupe_buffer_bytes: 128 * 1024 * 1024,
            producer_id_expiration_ms: PRODUCER_ID_EXPIRATION_MS,
        }
    }
}

/// What a call to [`PartitionLog::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// False when the log was not due (dirty ratio and max lag not reached).
    pub cleaned: bool,
    /// The cleaner checkpoint after the call: offsets below it are clean.
    pub first_dirty_offset: i64,
    /// Offsets from here on were not cleanable (active segment, min lag, bound).
    pub first_uncleanable_offset: i64,
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
}

/// The cleanable part of a log and whether it is due, as Kafka's
/// LogCleanerManager computes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CleanableRange {
    pub first_dirty: i64,
    pub first_uncleanable: i64,
    /// The checkpoint was invalid (below the log start or past the end) and was reset.
    pub reset_checkpoint: bool,
    pub clean_bytes: u64,
    pub cleanable_bytes: u64,
    /// A dirty segment is older than max.compaction.lag.ms.
    pub overdue: bool,
    /// A kept tombstone's delete horizon has passed: clean even with nothing dirty.
    pub horizon_passed: bool,
}

impl CleanableRange {
    pub(crate) fn dirty_ratio(&self) -> f64 {
        let total = self.clean_bytes + self.cleanable_bytes;
        if total == 0 {
            0.0
        } else {
            self.cleanable_bytes as f64 / total as f64
        }
    }

    pub(crate) fn is_due(&self, policy: &CompactionPolicy) -> bool {
        self.clean_bytes + self.cleanable_bytes > 0
            && ((self.overdue && self.cleanable_bytes > 0)
                || self.horizon_passed
                || self.dirty_ratio() > policy.min_cleanable_dirty_ratio)
    }
}

impl PartitionLog {
    /// The cleaner checkpoint: offsets below it have been compacted (`None` before the
    /// first round).
    pub fn cleaner_checkpoint(&self) -> Result<Option<i64>, LogError> {
        Ok(checkpoint::read_offset(&self.dir, CLEANER_CHECKPOINT_FILE)?)
    }

    /// One compaction round if the log is due, with the log end offset as the last
    /// stable offset (a single replica without open transactions).
    pub fn compact(
        &mut self,
        now_ms: i64,
        policy: &CompactionPolicy,
    ) -> Result<CompactionOutcome, LogError> {
        let bound = self.last_stable_offset();
        self.compact_up_to(now_ms, policy, bound)
    }

    /// One compaction round if the log is due, never cleaning at or past
    /// `last_stable_offset` (Kafka's bound: the high watermark, or the first offset of
    /// an open transaction). The active segment is never cleaned.
    pub fn compact_up_to(
        &mut self,
        now_ms: i64,
        policy: &CompactionPolicy,
        last_stable_offset: i64,
    ) -> Result<CompactionOutcome, LogError> {
        self.compact_with_hook(now_ms, policy, last_stable_offset, &mut |_| true)
    }

    /// Indices `[start, end)` of the segments overlapping offsets `[from, to)`, as
    /// Kafka's `logSegments(from, to)`: the one holding `from`, then those starting
    /// before `to`.
    fn segments_overlapping(&self, from: i64, to: i64) -> std::ops::Range<usize> {
        if from >= to {
            return 0..0;
        }
        let start = self.segment_index_for(from);
        let end = self.segments.partition_point(|s| s.base_offset < to);
        start..end.max(start)
    }

    fn bytes_of(&self, range: std::ops::Range<usize>) -> u64 {
        self.segments[range].iter().map(|s| s.size_bytes).sum()
    }

    pub(crate) fn cleanable_range(
        &self,
        now_ms: i64,
        policy: &CompactionPolicy,
        last_stable_offset: i64,
    ) -> Result<CleanableRange, LogError> {
        let start = self.log_start_offset;
        let checkpointed = self.cleaner_checkpoint()?;
        let (first_dirty, reset_checkpoint) = match checkpointed {
            Some(offset) if offset < start || offset > self.log_end_offset() => (start, true),
            Some(offset) => (offset, false),
            None => (start, false),
        };
        let active = self.segments.len() - 1;
        let dirty_inactive =
            &self.segments[self.segment_index_for(first_dirty).min(active)..active];
        let min_lag = policy.min_compaction_lag_ms.max(0);
        let too_young = (min_lag > 0)
            .then(|| {
                dirty_inactive
                    .iter()
                    .find(|s| s.largest_timestamp_ms() > now_ms.saturating_sub(min_lag))
                    .map(|s| s.base_offset)
            })
            .flatten();
        let first_uncleanable = [
            Some(last_stable_offset),
            Some(self.segments[active].base_offset),
            too_young,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(first_dirty)
        .max(first_dirty);
        let uncleanable_base = self.segments[self.segment_index_for(first_uncleanable)].base_offset;
        let cleanable =
            self.segments_overlapping(first_dirty.min(uncleanable_base), uncleanable_base);
        let earliest_dirty_ms = dirty_inactive
            .iter()
            .filter_map(|s| s.rolling_timestamp_ms.filter(|t| *t > 0))
            .min();
        let clean_until = now_ms.saturating_sub(policy.max_compaction_lag_ms.max(0));
        Ok(CleanableRange {
            first_dirty,
            first_uncleanable,
            reset_checkpoint,
            clean_bytes: self.bytes_of(
                0..self
                    .segments
                    .partition_point(|s| s.base_offset < first_dirty),
            ),
            cleanable_bytes: self.bytes_of(cleanable),
            overdue: earliest_dirty_ms.is_some_and(|t| t < clean_until),
            horizon_passed: self.latest_delete_horizon_ms.is_some_and(|h| h <= now_ms),
        })
    }

    /// [`Self::compact_up_to`] with `hook` told of every swap step; it stops the round
    /// where it returns false, leaving the files as a crash would.
    pub(crate) fn compact_with_hook(
        &mut self,
        now_ms: i64,
        policy: &CompactionPolicy,
        last_stable_offset: i64,
        hook: &mut SwapHook<'_>,
    ) -> Result<CompactionOutcome, LogError> {
        run_round(
            &RefCell::new(self),
            now_ms,
            policy,
            Some(last_stable_offset),
            hook,
        )
    }

    /// The locked first step of a round: finishes an interrupted swap, works out the
    /// cleanable range and, when the log is due, snapshots the segments the round reads.
    pub fn plan_compaction(
        &mut self,
        now_ms: i64,
        policy: &CompactionPolicy,
        last_stable_offset: i64,
    ) -> Result<Planned, LogError> {
        if self.swap_pending {
            swap::finish_interrupted(&self.dir)?;
            // The segment of the interrupted swap has its final name now.
            self.segments.iter().for_each(Segment::unpin_log);
            self.swap_pending = false;
        }
        let range = self.cleanable_range(now_ms, policy, last_stable_offset)?;
        if range.reset_checkpoint {
            self.write_cleaner_checkpoint(range.first_dirty)?;
        }
        let outcome = CompactionOutcome {
            cleaned: false,
            first_dirty_offset: range.first_dirty,
            first_uncleanable_offset: range.first_uncleanable,
            segments_before: self.segments.len(),
            segments_after: self.segments.len(),
            bytes_before: self.size_bytes(),
            bytes_after: self.size_bytes(),
            records_removed: 0,
        };
        if !range.is_due(policy) {
            return Ok(Planned::NotDue(outcome));
        }
        Ok(Planned::Round(Box::new(CompactionRound {
            dir: self.dir.clone(),
            config: self.config.clone(),
            policy: policy.clone(),
            now_ms,
            range,
            segments: self.segments.iter().map(Segment::snapshot).collect(),
            active_producers: self
                .producers
                .active_epochs(now_ms, policy.producer_id_expiration_ms),
            outcome,
            work: None,
            stats: GroupStats::default(),
            interrupted: false,
        })))
    }

    /// The locked step after each cleaned group: swaps it in, crash-safely, if the segments
    /// it replaces are still the ones it was cleaned from. Otherwise (retention or a
    /// truncation removed them meanwhile) the cleaned files go and the round stops.
    pub fn swap_in_cleaned(
        &mut self,
        round: &mut CompactionRound,
        cleaned: CleanedGroup,
        hook: &mut SwapHook<'_>,
    ) -> Result<(), LogError> {
        let CleanedGroup {
            mut segment,
            replaced,
        } = cleaned;
        let base = segment.base_offset;
        let first = self.segment_index_for(base);
        // The active segment is never replaced.
        let unchanged = first + replaced.len() < self.segments.len()
            && replaced
                .iter()
                .zip(&self.segments[first..])
                .all(|(old, current)| old.is_same_as(current));
        if !unchanged {
            drop(segment);
            swap::remove_cleaned(&self.dir, base)?;
            round.interrupted = true;
            info!(dir = %self.dir.display(), base_offset = base, "segments changed while cleaning; round stopped");
            return Ok(());
        }
        // Its name changes by path from here until the swap is complete.
        segment.pin_log()?;
        swap::commit(&self.dir, base, hook)?;
        // Committed: the new segment is the truth from here, on disk and in memory.
        self.swap_pending = true;
        segment.set_final_names(&self.dir);
        let replaced_segments: Vec<Segment> = self
            .segments
            .splice(first..first + replaced.len(), [segment])
            .collect();
        self.publish_segments();
        // Their files go next: readers still holding them keep descriptors.
        replaced_segments.into_iter().for_each(Segment::retire);
        let replaced: Vec<i64> = replaced.iter().map(|s| s.base_offset).collect();
        swap::finish(&self.dir, base, &replaced, hook)?;
        self.segments[first].unpin_log();
        self.swap_pending = false;
        Ok(())
    }

    /// The locked last step: what the round did.
    pub fn complete_compaction(&mut self, round: CompactionRound) -> CompactionOutcome {
        let mut outcome = round.outcome;
        outcome.segments_after = self.segments.len();
        outcome.bytes_after = self.size_bytes();
        outcome.records_removed = round.stats.records_removed;
        if round.interrupted {
            self.latest_delete_horizon_ms = self
                .latest_delete_horizon_ms
                .max(round.stats.latest_delete_horizon_ms);
        } else {
            outcome.cleaned = true;
            self.latest_delete_horizon_ms = round.stats.latest_delete_horizon_ms;
            info!(
                dir = %self.dir.display(),
                records_removed = outcome.records_removed,
                bytes_before = outcome.bytes_before,
                bytes_after = outcome.bytes_after,
                "cleaned log"
            );
        }
        outcome
    }

    fn write_cleaner_checkpoint(&self, offset: i64) -> Result<(), LogError> {
        checkpoint::write_offset(&self.dir, CLEANER_CHECKPOINT_FILE, offset)?;
        Ok(())
    }
}

/// What [`PartitionLog::plan_compaction`] found.
pub enum Planned {
    /// The log is not due: nothing to do.
    NotDue(CompactionOutcome),
    Round(Box<CompactionRound>),
}

/// One compaction round. It is planned and its cleaned groups are swapped in under the
/// log's lock; the offset map is built and the groups are cleaned without it, from
/// snapshots of the segments, so appends, reads and the group coordinator never wait for
/// the slow part.
pub struct CompactionRound {
    dir: PathBuf,
    config: LogConfig,
    policy: CompactionPolicy,
    now_ms: i64,
    range: CleanableRange,
    /// Every segment when planned, the active one last.
    segments: Vec<SegmentSnapshot>,
    /// Producer id => epoch of the producers not expired when planned.
    active_producers: HashMap<i64, i16>,
    outcome: CompactionOutcome,
    work: Option<RoundWork>,
    stats: GroupStats,
    /// A group's segments changed under the round: the rest waits for the next round and
    /// the cleaner checkpoint stays where it was.
    interrupted: bool,
}

/// What the unlocked part of a round works from once the key map is built.
struct RoundWork {
    map: OffsetMap,
    last_records: HashMap<i64, LastRecord>,
    /// Transactions seen so far, carried from group to group.
    txns: CleanedTransactions,
    /// Groups still to clean, first to last.
    groups: VecDeque<Vec<SegmentSnapshot>>,
    end_offset: i64,
}

/// A group's cleaned segment (`.cleaned` files), waiting to be swapped in.
pub struct CleanedGroup {
    segment: Segment,
    replaced: Vec<SegmentSnapshot>,
}

impl CompactionRound {
    /// Builds the key map of the dirty range and the groups to clean. No lock needed.
    pub fn build_offset_map(&mut self) -> Result<(), LogError> {
        let inactive = &self.segments[..self.segments.len() - 1];
        let first = inactive
            .partition_point(|s| s.base_offset <= self.range.first_dirty)
            .saturating_sub(1);
        // Every aborted transaction of the log: the markers of those with data in the
        // cleaned range may lie anywhere after it, up to the active segment.
        let aborted: Vec<TxnIndexEntry> = self
            .segments
            .iter()
            .flat_map(|s| s.view.txn_entries())
            .collect();
        let mut map = cleaner::build_offset_map(
            &inactive[first..],
            self.range.first_dirty,
            self.range.first_uncleanable,
            self.policy.dedupe_buffer_bytes,
            aborted.clone(),
        )?;
        // With nothing dirty (a round for expired tombstones) the clean part is
        // re-filtered up to the first dirty offset with an empty key map.
        if map.len() == 0 {
            map.advance_latest_offset(self.range.first_dirty - 1);
        }
        let end_offset = map.latest_offset() + 1;
        let last_records =
            cleaner::last_records_of_active_producers(&self.segments, &self.active_producers)?;
        info!(
            dir = %self.dir.display(),
            first_dirty = self.range.first_dirty,
            end_offset,
            keys = map.len(),
            dirty_ratio = self.range.dirty_ratio(),
            "cleaning log"
        );
        let groups = self.group_by_size(end_offset);
        // The groups hold what they need; the rest must not keep removed files open.
        self.segments = Vec::new();
        self.work = Some(RoundWork {
            map,
            last_records,
            txns: CleanedTransactions::new(aborted),
            groups,
            end_offset,
        });
        Ok(())
    }

    /// Cleans the next group into `.cleaned` files, fsynced. No lock needed. `None` when
    /// every group is done (or the round was stopped).
    pub fn clean_next_group(&mut self) -> Result<Option<CleanedGroup>, LogError> {
        if self.work.is_none() {
            self.build_offset_map()?;
        }
        let Some(work) = self.work.as_mut() else {
            return Ok(None);
        };
        while !self.interrupted {
            let Some(group) = work.groups.pop_front() else {
                break;
            };
            if group.iter().all(SegmentSnapshot::is_empty) {
                continue;
            }
            let ctx = CleanContext {
                map: &work.map,
                now_ms: self.now_ms,
                delete_retention_ms: self.policy.delete_retention_ms,
                active_producers: &work.last_records,
            };
            let segment = cleaner::clean_group(
                &self.dir,
                &self.config,
                &group,
                &ctx,
                &mut work.txns,
                &mut self.stats,
            )?;
            return Ok(Some(CleanedGroup {
                segment,
                replaced: group,
            }));
        }
        Ok(None)
    }

    /// After the last swap: moves the cleaner checkpoint past the cleaned range, unless
    /// the round was stopped. No lock needed: only the cleaner writes it.
    pub fn write_checkpoint(&mut self, hook: &mut SwapHook<'_>) -> Result<(), LogError> {
        let Some(work) = self.work.as_ref().filter(|_| !self.interrupted) else {
            return Ok(());
        };
        swap::reached(hook, SwapStep::RoundDone)?;
        checkpoint::write_offset(&self.dir, CLEANER_CHECKPOINT_FILE, work.end_offset)?;
        self.outcome.first_dirty_offset = work.end_offset;
        Ok(())
    }

    /// Kafka's groupSegmentsBySize over the inactive segments below `end_offset`: runs of
    /// consecutive segments whose data and indexes fit one segment and whose offsets fit 4
    /// bytes relative to the first.
    fn group_by_size(&self, end_offset: i64) -> VecDeque<Vec<SegmentSnapshot>> {
        let inactive = &self.segments[..self.segments.len() - 1];
        let count = inactive.partition_point(|s| s.base_offset < end_offset);
        let max_bytes = self.config.effective_segment_bytes();
        let max_index_bytes = u64::from(self.config.segment_index_bytes);
        let mut groups = VecDeque::new();
        let mut i = 0;
        while i < count {
            let first = &inactive[i];
            let (mut bytes, mut index, mut time_index) =
                (first.size_bytes, first.index_bytes, first.time_index_bytes);
            let mut len = 1;
            while i + len < count {
                let candidate = &inactive[i + len];
                // Bounded by the next segment's base (or the uncleanable offset): cheap and safe.
                let last_offset = self
                    .segments
                    .get(i + len + 1)
                    .map_or(self.range.first_uncleanable, |s| s.base_offset)
                    - 1;
                let fits = bytes + candidate.size_bytes <= max_bytes
                    && index + candidate.index_bytes <= max_index_bytes
                    && time_index + candidate.time_index_bytes <= max_index_bytes
                    && (candidate.is_empty() || offset_fits(first.base_offset, last_offset));
                if !fits {
                    break;
                }
                bytes += candidate.size_bytes;
                index += candidate.index_bytes;
                time_index += candidate.time_index_bytes;
                len += 1;
            }
            groups.push_back(inactive[i..i + len].to_vec());
            i += len;
        }
        groups
    }
}

/// Access to a log behind its lock, for the locked steps of a round.
pub trait LogLock {
    fn with_log<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, LogError>;
}

impl LogLock for RefCell<&mut PartitionLog> {
    fn with_log<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        f(&mut self.borrow_mut())
    }
}

impl LogLock for Mutex<PartitionLog> {
    fn with_log<T>(
        &self,
        f: impl FnOnce(&mut PartitionLog) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        f(&mut self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// One compaction round if the log is due, taking the log's lock only to plan, to swap
/// each cleaned group in, and to finish. `last_stable_offset` bounds the round (`None`:
/// the log's own). `hook` hears every step ([`SwapStep::MapBuilt`] without the lock);
/// where it returns false the round stops, leaving the files as a crash would.
pub fn run_round(
    log: &impl LogLock,
    now_ms: i64,
    policy: &CompactionPolicy,
    last_stable_offset: Option<i64>,
    hook: &mut SwapHook<'_>,
) -> Result<CompactionOutcome, LogError> {
    let planned = log.with_log(|log| {
        let bound = last_stable_offset.unwrap_or_else(|| log.last_stable_offset());
        log.plan_compaction(now_ms, policy, bound)
    })?;
    let mut round = match planned {
        Planned::NotDue(outcome) => return Ok(outcome),
        Planned::Round(round) => round,
    };
    round.build_offset_map()?;
    swap::reached(hook, SwapStep::MapBuilt)?;
    while let Some(cleaned) = round.clean_next_group()? {
        swap::reached(hook, SwapStep::CleanedWritten)?;
        log.with_log(|log| log.swap_in_cleaned(&mut round, cleaned, hook))?;
    }
    round.write_checkpoint(hook)?;
    log.with_log(|log| Ok(log.complete_compaction(*round)))
}
