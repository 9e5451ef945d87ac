//! Removing old data: DeleteRecords (raising the log start offset) and Kafka's retention
//! passes, which delete whole segments from the oldest on.

use tracing::info;

use crate::checkpoint;
use crate::error::LogError;
use crate::log::PartitionLog;
use crate::segment::Segment;

/// What a retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

impl RetentionOutcome {
    fn add(&mut self, (segments, bytes): (usize, u64)) {
        self.deleted_segments += segments;
        self.deleted_bytes += bytes;
    }
}

impl PartitionLog {
    /// DeleteRecords: raises the log start offset to `offset` (a lower value changes nothing),
    /// persists it, and deletes the segments wholly below it. Offsets past the high watermark
    /// are out of range, as in Kafka. Returns the log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset < 0 || offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.high_watermark,
            });
        }
        self.raise_log_start_offset(offset)?;
        self.delete_segments_below_start()?;
        Ok(self.log_start_offset)
    }

    /// Moves the log start offset up to `offset` (never down): checkpointed first, then the
    /// leader-epoch cache drops what lies below it, then readers see it.
    pub(crate) fn raise_log_start_offset(&mut self, offset: i64) -> Result<(), LogError> {
        if offset <= self.log_start_offset {
            return Ok(());
        }
        self.log_start_offset = offset;
        self.write_log_start_offset()?;
        if self.leader_epochs.truncate_from_start(offset) {
            self.write_leader_epochs()?;
        }
        self.high_watermark = self.high_watermark.max(offset);
        // As Kafka's onLogStartOffsetIncremented: completed transactions now wholly below
        // the start are forgotten; open ones stay open (the last stable offset is clamped
        // to the start) until their marker comes.
        self.producers.on_log_start_offset_incremented(offset);
        self.producers
            .on_high_watermark_updated(self.high_watermark);
        self.trim_snapshots()?;
        self.publish();
        Ok(())
    }

    /// Retention up to the high watermark.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        let high_watermark = self.high_watermark;
        self.enforce_retention_up_to(now_ms, high_watermark)
    }

    /// Kafka's retention pass: segments wholly below the log start offset, then the oldest
    /// segments while the log exceeds retention.bytes, then those whose largest timestamp is
    /// older than retention.ms. Only segments wholly below `high_watermark` are eligible; if
    /// the active segment must go too, it is rolled first so the log keeps an empty one.
    pub fn enforce_retention_up_to(
        &mut self,
        now_ms: i64,
        high_watermark: i64,
    ) -> Result<RetentionOutcome, LogError> {
        let mut outcome = RetentionOutcome::default();
        outcome.add(self.delete_segments_below_start()?);
        let retention_bytes = self.config.retention_bytes;
        if retention_bytes >= 0 {
            let mut excess_bytes = self.size_bytes() as i64 - retention_bytes;
            let count = self.deletable_prefix(high_watermark, |segment| {
                let fits = excess_bytes - segment.size_bytes as i64 >= 0;
                if fits {
                    excess_bytes -= segment.size_bytes as i64;
                }
                fits
            });
            outcome.add(self.delete_deletable(count, now_ms, "retention.bytes")?);
        }
        let retention_ms = self.config.retention_ms;
        if retention_ms >= 0 {
            let count = self.deletable_prefix(high_watermark, |segment| {
                now_ms.saturating_sub(segment.largest_timestamp_ms()) > retention_ms
            });
            outcome.add(self.delete_deletable(count, now_ms, "retention.ms")?);
        }
        outcome.log_start_offset = self.log_start_offset;
        Ok(outcome)
    }

    /// How many of the oldest segments satisfy `predicate`, stopping at the first that does
    /// not, at an empty active segment, or at one reaching past the high watermark.
    fn deletable_prefix(
        &self,
        high_watermark: i64,
        mut predicate: impl FnMut(&Segment) -> bool,
    ) -> usize {
        let mut count = 0;
        for (i, segment) in self.segments.iter().enumerate() {
            let next_base = self.segments.get(i + 1).map(|s| s.base_offset);
            if next_base.is_none() && segment.is_empty() {
                break;
            }
            let upper_bound_offset = next_base.unwrap_or(segment.next_offset);
            if high_watermark < upper_bound_offset || !predicate(segment) {
                break;
            }
            count += 1;
        }
        count
    }

    fn delete_deletable(
        &mut self,
        count: usize,
        now_ms: i64,
        reason: &str,
    ) -> Result<(usize, u64), LogError> {
        if count == 0 {
            return Ok((0, 0));
        }
        if count == self.segments.len() {
            self.roll(now_ms)?;
        }
        info!(dir = %self.dir.display(), count, reason, "deleting log segments");
        self.delete_oldest(count)
    }

    /// Deletes segments whose successor starts at or below the log start offset.
    fn delete_segments_below_start(&mut self) -> Result<(usize, u64), LogError> {
        let count = self
            .segments
            .windows(2)
            .take_while(|pair| pair[1].base_offset <= self.log_start_offset)
            .count();
        self.delete_oldest(count)
    }

    /// Deletes the `count` oldest segments (never all of them). The raised log start offset
    /// is checkpointed before any file goes, so a crash in between only leaves extra files.
    fn delete_oldest(&mut self, count: usize) -> Result<(usize, u64), LogError> {
        let count = count.min(self.segments.len().saturating_sub(1));
        if count == 0 {
            return Ok((0, 0));
        }
        let new_start = self.segments[count].base_offset;
        self.raise_log_start_offset(new_start)?;
        let mut deleted_bytes = 0;
        let deleted: Vec<Segment> = self.segments.drain(..count).collect();
        self.publish_segments();
        for segment in deleted {
            deleted_bytes += segment.size_bytes;
            let pending = segment.schedule_deletion(&self.dir)?;
            self.pending_deletions.push(pending);
        }
        checkpoint::sync_dir(&self.dir)?;
        Ok((count, deleted_bytes))
    }

    /// Deletes the files of removed segments once `file.delete.delay.ms` has passed and no
    /// reader still holds them. Returns how many segments' files went.
    pub fn delete_due_segments(&mut self, now_ms: i64) -> Result<usize, LogError> {
        let delay_ms = self.config.file_delete_delay_ms;
        let mut deleted = 0;
        let mut kept = Vec::with_capacity(self.pending_deletions.len());
        for mut pending in std::mem::take(&mut self.pending_deletions) {
            match pending.delete_if_due(&self.dir, now_ms, delay_ms) {
                Ok(true) => deleted += 1,
                Ok(false) => kept.push(pending),
                Err(e) => {
                    kept.push(pending);
                    self.pending_deletions = kept;
                    return Err(e.into());
                }
            }
        }
        self.pending_deletions = kept;
        if deleted > 0 {
            checkpoint::sync_dir(&self.dir)?;
        }
        Ok(deleted)
    }
}
