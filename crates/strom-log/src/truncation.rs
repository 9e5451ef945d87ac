//! Cutting the end of a log (a follower whose tail diverged from its leader's) and replacing
//! a log with an empty one at a new offset (a follower too far behind the leader's start).
//!
//! Crash safety comes from the order of the steps. The recovery point is lowered before any
//! byte goes, so whatever a crash leaves after it is recovered batch by batch on open.
//! Segments are removed newest first, so a crash leaves a prefix of the log, never a hole.
//! The leader-epoch cache and the high watermark follow the data, and `open` cuts both to
//! the log it finds. A log reopened after a stop at any step is consistent, and running the
//! same truncation again completes it.

use tracing::info;

use crate::checkpoint::{self, RECOVERY_POINT_FILE};
use crate::error::LogError;
use crate::log::PartitionLog;
use crate::recovery::recover_segment;
use crate::segment::Segment;

/// The steps of a truncation, reported to a hook after each is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TruncateStep {
    /// The recovery point checkpoint is at or below the truncation offset.
    RecoveryPointLowered,
    /// One more segment past the truncation offset is gone (newest first).
    SegmentDeleted,
    /// The segment holding the truncation offset is cut and its indexes rebuilt.
    SegmentCut,
    /// The leader-epoch checkpoint no longer names epochs past the new end.
    EpochsTruncated,
    /// `truncate_fully_and_start_at` only: the log start offset checkpoint holds the new start.
    StartCheckpointed,
}

/// Called after each step; `false` stops the truncation right there, as a crash would.
pub(crate) type TruncateHook<'a> = dyn FnMut(TruncateStep) -> bool + 'a;

fn reached(hook: &mut TruncateHook<'_>, step: TruncateStep) -> Result<(), LogError> {
    if hook(step) {
        Ok(())
    } else {
        Err(LogError::Io(std::io::Error::other(format!(
            "truncation stopped after {step:?}"
        ))))
    }
}

impl PartitionLog {
    /// Removes every batch holding an offset at or past `offset` (a batch that straddles it
    /// goes whole). Returns false when the log already ends at or before `offset`, in which
    /// case only leader epochs past the log end are dropped, as Kafka does. A target below
    /// the first segment empties the log and restarts it at `offset`.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<bool, LogError> {
        self.truncate_to_with_hook(offset, now_ms, &mut |_| true)
    }

    pub(crate) fn truncate_to_with_hook(
        &mut self,
        offset: i64,
        now_ms: i64,
        hook: &mut TruncateHook<'_>,
    ) -> Result<bool, LogError> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        if offset >= self.log_end_offset() {
            // A leader that appended nothing in its epoch leaves an entry at the log end;
            // readers (the follower's next fetch names its latest epoch) must stop seeing it
            // too, or the leader answers the same diverging epoch forever.
            let log_end_offset = self.log_end_offset();
            if self.leader_epochs.truncate_from_end(log_end_offset) {
                self.write_leader_epochs()?;
                self.publish();
            }
            return Ok(false);
        }
        if offset < self.segments[0].base_offset {
            self.truncate_fully_with_hook(offset, now_ms, hook)?;
            return Ok(true);
        }
        info!(dir = %self.dir.display(), offset, log_end_offset = self.log_end_offset(), "truncating log");
        self.lower_recovery_point(offset)?;
        reached(hook, TruncateStep::RecoveryPointLowered)?;
        while self.segments.len() > 1 && self.active().base_offset > offset {
            let segment = self.segments.pop().expect("more than one segment");
            self.publish_segments();
            segment.delete(&self.dir)?;
            checkpoint::sync_dir(&self.dir)?;
            reached(hook, TruncateStep::SegmentDeleted)?;
        }
        self.cut_active_segment(offset, now_ms)?;
        reached(hook, TruncateStep::SegmentCut)?;
        let log_end_offset = self.log_end_offset();
        if self.leader_epochs.truncate_from_end(log_end_offset) {
            self.write_leader_epochs()?;
        }
        reached(hook, TruncateStep::EpochsTruncated)?;
        if offset < self.log_start_offset {
            // Kafka's rule: the start follows a truncation below it.
            self.log_start_offset = offset.max(self.segments[0].base_offset);
            self.write_log_start_offset()?;
        }
        self.high_watermark = self.high_watermark.min(log_end_offset);
        self.flush()?;
        // Kafka's truncateAndReload: snapshots past the new end go, and the producer state
        // is the newest remaining snapshot plus the batches after it.
        self.remove_snapshots_above(log_end_offset)?;
        self.load_producer_state(now_ms, None)?;
        self.publish();
        Ok(true)
    }

    /// Deletes every segment and starts the log empty at `offset`: log start, log end, high
    /// watermark and recovery point all become `offset`, and the leader-epoch cache empties.
    pub fn truncate_fully_and_start_at(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        self.truncate_fully_with_hook(offset, now_ms, &mut |_| true)
    }

    pub(crate) fn truncate_fully_with_hook(
        &mut self,
        offset: i64,
        now_ms: i64,
        hook: &mut TruncateHook<'_>,
    ) -> Result<(), LogError> {
        if offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        info!(dir = %self.dir.display(), offset, "truncating log fully");
        self.lower_recovery_point(offset.min(self.log_end_offset()))?;
        reached(hook, TruncateStep::RecoveryPointLowered)?;
        // The log keeps its active segment until the new one exists.
        while self.segments.len() > 1 {
            let segment = self.segments.pop().expect("more than one segment");
            self.publish_segments();
            segment.delete(&self.dir)?;
            checkpoint::sync_dir(&self.dir)?;
            reached(hook, TruncateStep::SegmentDeleted)?;
        }
        // With no segment left, `open` starts the log empty at the checkpointed start; so the
        // start is checkpointed before the last segment goes.
        self.log_start_offset = offset;
        self.write_log_start_offset()?;
        reached(hook, TruncateStep::StartCheckpointed)?;
        let last = self
            .segments
            .pop()
            .expect("a log always has an active segment");
        last.delete(&self.dir)?;
        checkpoint::sync_dir(&self.dir)?;
        self.segments
            .push(Segment::create(&self.dir, offset, &self.config, now_ms)?);
        self.remove_snapshots_above(-1)?;
        self.producers.clear();
        reached(hook, TruncateStep::SegmentDeleted)?;
        if self.leader_epochs.clear() {
            self.write_leader_epochs()?;
        }
        reached(hook, TruncateStep::EpochsTruncated)?;
        self.high_watermark = offset;
        self.recovery_point = offset;
        checkpoint::write_offset(&self.dir, RECOVERY_POINT_FILE, offset)?;
        self.publish();
        Ok(())
    }

    /// After a failed append or flush: cuts the files back to `offset` (the log end before
    /// the failed write) with file truncation and removal alone, which need no free space
    /// (a full disk is the usual cause), so a reopen does not recover what was never
    /// acknowledged. The log is failed from here on (in memory it still names the cut
    /// batches); only reopening it, which recovers past the recovery point, uses it again.
    pub fn cut_after_failure(&mut self, offset: i64) -> Result<(), LogError> {
        self.mark_failed(format!("cut back to offset {offset} after a failed write"));
        while self.segments.len() > 1 && self.active().base_offset > offset {
            let segment = self.segments.pop().expect("more than one segment");
            self.publish_segments();
            segment.delete(&self.dir)?;
        }
        let active = self.active();
        let cut_at = match active.translate_offset(offset)? {
            Some(batch) => batch.position,
            None => return Ok(()),
        };
        let file = active.log()?;
        file.set_len(cut_at)?;
        file.sync_all()?;
        Ok(())
    }

    fn lower_recovery_point(&mut self, offset: i64) -> Result<(), LogError> {
        if self.recovery_point > offset {
            self.recovery_point = offset;
            checkpoint::write_offset(&self.dir, RECOVERY_POINT_FILE, offset)?;
        }
        Ok(())
    }

    /// Cuts the active segment before its first batch ending at or after `offset`, then
    /// rebuilds its indexes and facts from what is left (truncation is rare: a rescan of one
    /// segment is cheaper than keeping every derived field right by hand).
    fn cut_active_segment(&mut self, offset: i64, now_ms: i64) -> Result<(), LogError> {
        let active = self.active();
        let cut_at = match active.translate_offset(offset)? {
            Some(batch) => batch.position,
            None => active.size_bytes,
        };
        let base_offset = active.base_offset;
        let file = active.log()?;
        file.set_len(cut_at)?;
        file.sync_all()?;
        drop(file);
        let (mut segment, _) = recover_segment(&self.dir, base_offset, &self.config, now_ms)?;
        // Aborts whose markers were cut go; the earlier ones stay.
        segment.cut_txn_index(offset)?;
        *self
            .segments
            .last_mut()
            .expect("a log always has an active segment") = segment;
        self.publish_segments();
        Ok(())
    }
}
