//! `PartitionLog`: the ordered segments of one partition, with the active one last.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use strom_wire::batch::{
    set_base_offset, set_partition_leader_epoch, BatchHeader, SplitBatch, TimestampType,
    BATCH_HEADER_BYTES,
};
use tracing::{info, warn};

use crate::checkpoint::{self, LEADER_EPOCH_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use crate::config::LogConfig;
use crate::error::LogError;
use crate::leader_epoch::{EpochEntry, LeaderEpochCache};
use crate::offsets::OffsetsSnapshot;
use crate::producer_snapshot::{batch_producer_info, encode_marker_batch, list_snapshots};
use crate::producer_state::{AppendOrigin, ProducerBatch, ProducerStateManager, StagedAppend};
use crate::reader::{LogReader, LogShared};
use crate::recovery::load_segments;
use crate::scan::{BatchMeta, HeaderScan};
use crate::segment::Segment;

/// What an append stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// Largest batch max timestamp in the append, -1 when none carries one.
    pub max_timestamp: i64,
    /// Last offset of the first batch holding `max_timestamp` (Kafka's shallow offset), -1
    /// when there is no timestamp.
    pub offset_of_max_timestamp: i64,
    /// The stamped time when the batches use LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// The append was a retry of a batch the log already holds (the producer's epoch and
    /// sequence range match one of its last five): nothing was written, the offsets are
    /// the original batch's, and the timestamps are -1, as Kafka answers a duplicate.
    pub duplicate: bool,
}

impl AppendInfo {
    fn duplicate_of(batch: ProducerBatch) -> Self {
        Self {
            base_offset: batch.base_offset,
            last_offset: batch.last_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            log_append_time_ms: -1,
            duplicate: true,
        }
    }
}

/// Whole batches read from the log, as stored (never decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub bytes: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// One segment as DescribeLogDirs and operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: i64,
    /// Last offset + 1 in the segment (its base offset while empty).
    pub next_offset: i64,
    pub size_bytes: u64,
    /// Largest batch max timestamp, -1 when none.
    pub max_timestamp_ms: i64,
}

pub struct PartitionLog {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Sorted by base offset; never empty; the last one takes appends.
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start_offset: i64,
    /// Everything below it is known to be fsynced.
    pub(crate) recovery_point: i64,
    pub(crate) last_flush_ms: i64,
    /// A cleaner swap failed after its commit point: finish it before cleaning again.
    pub(crate) swap_pending: bool,
    /// Segments removed by retention whose files wait for `file.delete.delay.ms`.
    pub(crate) pending_deletions: Vec<crate::segment::PendingDeletion>,
    /// The latest delete horizon the cleaner gave a tombstone it kept. Once it
    /// passes, the log is cleaned again even with nothing dirty (KIP-534), so
    /// idle compacted logs still lose their expired tombstones. Memory only,
    /// as in Kafka: after a restart the next dirty round finds them.
    pub(crate) latest_delete_horizon_ms: Option<i64>,
    pub(crate) leader_epochs: LeaderEpochCache,
    /// The leader-epoch checkpoint was rewritten on append without an fsync; it is synced
    /// before the recovery point passes the new epoch's start, so an epoch start below the
    /// recovery point (which recovery does not rescan) is always durable.
    pub(crate) leader_epochs_unsynced: bool,
    /// Offsets below it are replicated to every in-sync replica: what consumers may read.
    /// The broker moves it; the log only keeps it within [log start, log end].
    pub(crate) high_watermark: i64,
    /// What readers see: published offsets and segment list.
    pub(crate) shared: Arc<LogShared>,
    /// Idempotent and transactional producers (`producer_state`), checked and updated
    /// by every append under this log's lock.
    pub(crate) producers: ProducerStateManager,
    /// How many batches the last load of the producer state replayed after its snapshot.
    pub(crate) producer_state_replayed_batches: u64,
    /// Set by a failed fsync or a failed write that could not be cut off: no more writes.
    pub(crate) failed: Option<String>,
}

impl PartitionLog {
    /// Opens or creates the log in `dir`. Without a clean-shutdown marker, segments from the
    /// one holding the recovery point on are validated batch by batch (CRC included), a torn
    /// or corrupt tail is cut off, and their indexes are rebuilt. A segment swap the log
    /// cleaner left half done is rolled back (before its commit) or completed (after).
    /// The leader-epoch cache is the checkpoint plus the epochs of recovered batches, cut to
    /// the log's offsets. The high watermark starts at the log start offset: the broker
    /// restores its checkpointed value with [`Self::set_high_watermark`].
    ///
    /// A standalone log: clean when its own marker (written by [`Self::close`]) is there.
    pub fn open(dir: impl Into<PathBuf>, config: LogConfig, now_ms: i64) -> Result<Self, LogError> {
        Self::open_in_log_dir(dir, config, now_ms, false)
    }

    /// Opens a log of a log dir whose clean-shutdown marker the caller read:
    /// `log_dir_clean` when it was there (every log closed with [`Self::close_unsynced`]
    /// and the dir synced before it was written). The caller removes that marker once all
    /// its logs are open and before any append. A marker of the log's own (left by
    /// [`Self::close`], or by a broker from before the log dir marker) counts as well, and
    /// is removed durably here.
    pub fn open_in_log_dir(
        dir: impl Into<PathBuf>,
        config: LogConfig,
        now_ms: i64,
        log_dir_clean: bool,
    ) -> Result<Self, LogError> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        let own_marker = checkpoint::marker_exists(&dir);
        let clean_shutdown = log_dir_clean || own_marker;
        let recovery_point = checkpoint::read_offset(&dir, RECOVERY_POINT_FILE)?.unwrap_or(0);
        let checkpointed_start = checkpoint::read_offset(&dir, LOG_START_OFFSET_FILE)?.unwrap_or(0);
        let checkpointed_epochs = read_epoch_checkpoint(&dir)?;
        crate::swap::finish_interrupted(&dir)?;
        let (mut segments, recovered) =
            load_segments(&dir, &config, now_ms, clean_shutdown, recovery_point)?;
        if segments.is_empty() {
            segments.push(Segment::create(&dir, checkpointed_start, &config, now_ms)?);
        }
        let mut log = Self {
            log_start_offset: checkpointed_start.max(segments[0].base_offset),
            dir,
            config,
            segments,
            recovery_point,
            last_flush_ms: now_ms,
            failed: None,
            swap_pending: false,
            pending_deletions: Vec::new(),
            latest_delete_horizon_ms: None,
            leader_epochs: LeaderEpochCache::from_entries(
                checkpointed_epochs.iter().flatten().copied(),
            ),
            leader_epochs_unsynced: false,
            high_watermark: 0,
            shared: Arc::default(),
            producers: ProducerStateManager::default(),
            producer_state_replayed_batches: 0,
        };
        if log.log_start_offset > log.log_end_offset() {
            // The tail holding the checkpointed start is gone: restart the log empty there,
            // as Kafka does, rather than expose offsets below the start.
            warn!(
                dir = %log.dir.display(),
                log_start_offset = log.log_start_offset,
                log_end_offset = log.log_end_offset(),
                "log start offset is past the log end; deleting all segments"
            );
            for segment in std::mem::take(&mut log.segments) {
                segment.delete(&log.dir)?;
            }
            log.segments.push(Segment::create(
                &log.dir,
                log.log_start_offset,
                &log.config,
                now_ms,
            )?);
        }
        let first_recovered = recovered.first().copied();
        for base_offset in recovered {
            log.assign_epochs_of_segment(base_offset)?;
        }
        log.leader_epochs.truncate_from_end(log.log_end_offset());
        log.leader_epochs.truncate_from_start(log.log_start_offset);
        if checkpointed_epochs.as_deref() != Some(log.leader_epochs.entries()) {
            log.write_leader_epochs()?;
        }
        log.high_watermark = log.log_start_offset;
        if !clean_shutdown {
            // Their data may not have survived: only what lies below the recovery point is
            // known durable.
            log.remove_snapshots_above(recovery_point)?;
        }
        log.load_producer_state(now_ms, first_recovered)?;
        log.trim_snapshots()?;
        // Recovered segments are dirty: their bytes may only be in the page cache.
        log.flush()?;
        if log.log_start_offset != checkpointed_start {
            log.write_log_start_offset()?;
        }
        log.publish_segments();
        log.publish();
        if own_marker {
            checkpoint::remove_marker(&log.dir)?;
        }
        info!(
            dir = %log.dir.display(),
            clean_shutdown,
            segments = log.segments.len(),
            log_start_offset = log.log_start_offset,
            log_end_offset = log.log_end_offset(),
            "opened log"
        );
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The first offset a read_committed consumer may not read: the first offset of the
    /// oldest open transaction, or of a completed one whose marker is not yet below the
    /// high watermark, but never below the log start (retention or DeleteRecords may pass
    /// an open transaction's start, as in Kafka), and at most the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        match self.producers.first_unstable_offset() {
            Some(first) => first.max(self.log_start_offset).min(self.high_watermark),
            None => self.high_watermark,
        }
    }

    /// The producer state (DescribeProducers, tests).
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// Batches the last load of the producer state replayed after its snapshot (all of
    /// them from the log start when there was none).
    pub fn producer_state_replayed_batches(&self) -> u64 {
        self.producer_state_replayed_batches
    }

    /// Forgets producers idle for `expiration_ms` (`producer.id.expiration.ms`) without an
    /// open transaction; returns how many.
    pub fn remove_expired_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.remove_expired(now_ms, expiration_ms)
    }

    /// Writes a transaction marker (Kafka's EndTransactionMarker in a control batch) for
    /// `producer_id` as the leader in `leader_epoch`, ending its transaction. Refused as
    /// Kafka refuses it: an older producer epoch (INVALID_PRODUCER_EPOCH) or an older
    /// coordinator epoch (TRANSACTION_COORDINATOR_FENCED). An abort of a transaction that
    /// wrote data here is recorded in the active segment's `.txnindex`.
    pub fn append_control_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let mut batch = encode_marker_batch(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            commit,
            now_ms,
        )?;
        self.append(&mut batch, leader_epoch, now_ms)
    }

    /// Sets the high watermark (Kafka's updateHighWatermark), kept within [log start, log
    /// end]; returns the value set.
    pub fn set_high_watermark(&mut self, offset: i64) -> i64 {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset());
        self.producers
            .on_high_watermark_updated(self.high_watermark);
        self.publish();
        self.high_watermark
    }

    /// Raises the high watermark to `offset` (clamped to the log end); it never moves back
    /// this way. Returns whether it moved.
    pub fn maybe_increment_high_watermark(&mut self, offset: i64) -> bool {
        let offset = offset.min(self.log_end_offset());
        if offset <= self.high_watermark {
            return false;
        }
        self.high_watermark = offset;
        self.producers.on_high_watermark_updated(offset);
        self.publish();
        true
    }

    /// A handle that reads this log, and its published offsets, without its lock.
    pub fn reader(&self) -> LogReader {
        LogReader {
            shared: self.shared.clone(),
        }
    }

    /// Publishes the segment list to readers; called whenever segments come or go.
    pub(crate) fn publish_segments(&self) {
        for segment in &self.segments {
            segment.publish_extent();
        }
        let views = self.segments.iter().map(|s| s.view.clone()).collect();
        *self
            .shared
            .segments
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(views);
    }

    /// Publishes the active segment's extent and the offsets to readers.
    pub(crate) fn publish(&self) {
        self.active().publish_extent();
        self.publish_leader_epochs();
        let log_end_offset = self.log_end_offset();
        let high_watermark = self.high_watermark.min(log_end_offset);
        self.shared.offsets.publish(OffsetsSnapshot {
            log_start_offset: self.log_start_offset.min(log_end_offset),
            log_end_offset,
            high_watermark,
            last_stable_offset: self.last_stable_offset().min(high_watermark),
        });
    }

    /// Publishes the epoch cache to readers when it changed (rarely: a new epoch, a
    /// truncation, a new log start); an unchanged one costs an uncontended read lock.
    fn publish_leader_epochs(&self) {
        let shared = &self.shared.leader_epochs;
        if *shared.read().unwrap_or_else(|p| p.into_inner()) == self.leader_epochs {
            return;
        }
        *shared.write().unwrap_or_else(|p| p.into_inner()) = self.leader_epochs.clone();
    }

    /// Kafka's maybeAssignEpochStartOffset: a broker that becomes leader in `epoch`
    /// records that the epoch starts at `start_offset` (its log end offset) before it
    /// appends, so OffsetForLeaderEpoch answers for the epoch even before its first batch.
    /// The checkpoint is written now and synced before the recovery point passes it.
    pub fn assign_epoch_start(&mut self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        if self.leader_epochs.assign(epoch, start_offset) {
            self.write_leader_epochs_unsynced()?;
            self.publish();
        }
        Ok(())
    }

    pub fn leader_epochs(&self) -> &LeaderEpochCache {
        &self.leader_epochs
    }

    /// OffsetForLeaderEpoch on this log: the largest epoch <= `epoch` and where it ends,
    /// `None` when the cache cannot say (Kafka answers -1/-1 without an error then).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let (found_epoch, end_offset) = self
            .leader_epochs
            .end_offset_for(epoch, self.log_end_offset());
        (end_offset != crate::leader_epoch::UNDEFINED_EPOCH_OFFSET)
            .then_some((found_epoch, end_offset))
    }

    /// The leader-epoch checkpoint's lines: `<epoch> <start offset>`.
    fn leader_epoch_lines(&self) -> Vec<String> {
        self.leader_epochs
            .entries()
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect()
    }

    pub(crate) fn write_leader_epochs(&self) -> Result<(), LogError> {
        let lines = self.leader_epoch_lines();
        checkpoint::write_entries(&self.dir.join(LEADER_EPOCH_FILE), &lines)?;
        Ok(())
    }

    /// The checkpoint of a new epoch on the append path: written, not yet synced, so the
    /// first produce to each of many partitions does not wait for two fsyncs under the lock.
    /// Kafka's `assign` still fsyncs here (KAFKA-15046 moved only truncation's flush off the
    /// lock); strom syncs before the recovery point passes the epoch's start instead, since
    /// recovery rebuilds the epochs of everything past the recovery point.
    fn write_leader_epochs_unsynced(&mut self) -> Result<(), LogError> {
        let lines = self.leader_epoch_lines();
        checkpoint::write_entries_unsynced(&self.dir.join(LEADER_EPOCH_FILE), &lines)?;
        self.leader_epochs_unsynced = true;
        Ok(())
    }

    /// Makes an unsynced leader-epoch checkpoint durable; called before the recovery point
    /// moves.
    fn sync_leader_epochs(&mut self) -> Result<(), LogError> {
        if self.leader_epochs_unsynced {
            checkpoint::sync_file_and_dir(&self.dir.join(LEADER_EPOCH_FILE))?;
            self.leader_epochs_unsynced = false;
        }
        Ok(())
    }

    /// Adds the epochs stamped on a recovered segment's batches to the cache; as in Kafka's
    /// segment recovery, only epochs newer than the latest known one.
    fn assign_epochs_of_segment(&mut self, base_offset: i64) -> Result<(), LogError> {
        let Some(segment) = self.segments.iter().find(|s| s.base_offset == base_offset) else {
            return Ok(());
        };
        let file = segment.log()?;
        let mut scan = HeaderScan::new(&file, segment.log_path(), 0, segment.size_bytes);
        while let Some(meta) = scan.next_batch()? {
            if self
                .leader_epochs
                .latest_epoch()
                .is_none_or(|latest| meta.leader_epoch > latest)
            {
                self.leader_epochs
                    .assign(meta.leader_epoch, meta.base_offset);
            }
        }
        Ok(())
    }

    /// Offsets below this are fsynced.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size_bytes).sum()
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments
            .iter()
            .map(|s| SegmentInfo {
                base_offset: s.base_offset,
                next_offset: s.next_offset,
                size_bytes: s.size_bytes,
                max_timestamp_ms: s.max_timestamp_ms,
            })
            .collect()
    }

    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }

    /// Appends batches that passed `strom_wire::batch::validate` as the leader in
    /// `leader_epoch`: each base offset is rewritten from the log end offset and each batch
    /// stamped with the epoch, in place (neither field is covered by the CRC).
    pub fn append(
        &mut self,
        batches: &mut [u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let mut metas = split_batches(batches)?;
        let mut next_offset = self.log_end_offset();
        for meta in &mut metas {
            let start = meta.position as usize;
            next_offset = assign_offsets(&mut batches[start..], meta, next_offset, leader_epoch)?;
        }
        let staged = self.stage_producers(
            metas.iter().map(|m| {
                let at = m.position as usize;
                let end = at + m.size_bytes as usize;
                (
                    &batches[at..at + BATCH_HEADER_BYTES],
                    &batches[at + BATCH_HEADER_BYTES..end],
                )
            }),
            &metas,
            AppendOrigin::Client,
        )?;
        if let Some(original) = staged.duplicate {
            return Ok(AppendInfo::duplicate_of(original));
        }
        let info = self.append_metas(&[batches], &metas, now_ms)?;
        self.complete_producer_append(staged)?;
        Ok(info)
    }

    /// Checks the producer state of batches about to be appended (offsets assigned).
    fn stage_producers<'a>(
        &self,
        batches: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        metas: &[BatchMeta],
        origin: AppendOrigin,
    ) -> Result<StagedAppend, LogError> {
        let mut infos = Vec::new();
        for ((header, records), meta) in batches.zip(metas) {
            if let Some(info) = batch_producer_info(header, records, meta)? {
                infos.push(info);
            }
        }
        if infos.is_empty() {
            return Ok(StagedAppend::default());
        }
        Ok(self.producers.prepare(&infos, origin)?)
    }

    /// [`Self::append`] of batches split into a header copy and records left in the
    /// caller's buffer ([`SplitBatch`]): only the headers are rewritten, and each batch goes
    /// to the file as two parts of one vectored write, so the records are never copied.
    pub fn append_split(
        &mut self,
        batches: &mut [SplitBatch<'_>],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if batches.is_empty() {
            return Err(LogError::EmptyAppend);
        }
        let mut metas = Vec::with_capacity(batches.len());
        let mut position = 0u64;
        let mut next_offset = self.log_end_offset();
        for batch in batches.iter_mut() {
            let size = batch.len() as u64;
            let mut meta =
                BatchMeta::parse(&batch.header, position, size).map_err(LogError::InvalidBatch)?;
            if meta.size_bytes != size {
                return Err(LogError::InvalidBatch(format!(
                    "batch header says {} bytes, but {size} were given",
                    meta.size_bytes
                )));
            }
            next_offset = assign_offsets(&mut batch.header, &mut meta, next_offset, leader_epoch)?;
            position += size;
            metas.push(meta);
        }
        let staged = self.stage_producers(
            batches.iter().map(|b| (&b.header[..], b.records)),
            &metas,
            AppendOrigin::Client,
        )?;
        if let Some(original) = staged.duplicate {
            return Ok(AppendInfo::duplicate_of(original));
        }
        let parts: Vec<&[u8]> = batches
            .iter()
            .flat_map(|b| [&b.header[..], b.records])
            .collect();
        let info = self.append_metas(&parts, &metas, now_ms)?;
        self.complete_producer_append(staged)?;
        Ok(info)
    }

    /// Appends batches that keep their offsets and epochs (replication): the first base
    /// offset must be the log end offset and offsets must increase.
    pub fn append_with_offsets(
        &mut self,
        batches: &[u8],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let metas = split_batches(batches)?;
        let log_end_offset = self.log_end_offset();
        if metas[0].base_offset != log_end_offset {
            return Err(LogError::UnexpectedAppendOffset {
                first_offset: metas[0].base_offset,
                log_end_offset,
            });
        }
        for pair in metas.windows(2) {
            if pair[1].base_offset <= pair[0].last_offset {
                return Err(LogError::NonMonotonicOffsets {
                    base_offset: pair[1].base_offset,
                    previous_last_offset: pair[0].last_offset,
                });
            }
        }
        let staged = self.stage_producers(
            metas.iter().map(|m| {
                let at = m.position as usize;
                let end = at + m.size_bytes as usize;
                (
                    &batches[at..at + BATCH_HEADER_BYTES],
                    &batches[at + BATCH_HEADER_BYTES..end],
                )
            }),
            &metas,
            AppendOrigin::Replay,
        )?;
        let info = self.append_metas(&[batches], &metas, now_ms)?;
        self.complete_producer_append(staged)?;
        Ok(info)
    }

    /// Writes batches whose bytes are the concatenation of `parts` (the first part starts
    /// with the first batch's header), described by `metas`.
    fn append_metas(
        &mut self,
        parts: &[&[u8]],
        metas: &[BatchMeta],
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.check_usable()?;
        let size_bytes: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let segment_bytes = self.config.effective_segment_bytes();
        if size_bytes > segment_bytes {
            return Err(LogError::AppendTooLarge {
                size_bytes,
                segment_bytes,
            });
        }
        let first = metas[0];
        let last = metas[metas.len() - 1];
        let (mut max_timestamp, mut offset_of_max_timestamp) = (-1, -1);
        for meta in metas {
            if meta.max_timestamp_ms > max_timestamp {
                max_timestamp = meta.max_timestamp_ms;
                offset_of_max_timestamp = meta.last_offset;
            }
        }
        if self.active().should_roll(
            &self.config,
            size_bytes,
            max_timestamp,
            last.last_offset,
            now_ms,
        ) {
            self.roll(now_ms)?;
        }
        if !self.active().can_hold_offset(last.last_offset) {
            return Err(LogError::OffsetOverflow {
                offset: last.last_offset,
                base_offset: self.active().base_offset,
            });
        }
        // As Kafka does, a new epoch is checkpointed before its first batch is written.
        let mut new_epoch = false;
        for meta in metas {
            new_epoch |= self
                .leader_epochs
                .assign(meta.leader_epoch, meta.base_offset);
        }
        if new_epoch {
            self.write_leader_epochs_unsynced()?;
        }
        let index_interval_bytes = self.config.index_interval_bytes;
        if let Err(e) = self
            .active_mut()
            .append_parts(parts, metas, index_interval_bytes)
        {
            if new_epoch {
                let log_end_offset = self.log_end_offset();
                self.leader_epochs.truncate_from_end(log_end_offset);
            }
            if let LogError::Failed(reason) = &e {
                self.failed = Some(reason.clone());
            }
            return Err(e);
        }
        let log_append_time_ms = BatchHeader::new(parts[0])
            .ok()
            .filter(|h| h.timestamp_type() == TimestampType::LogAppendTime)
            .map_or(-1, |h| h.max_timestamp());
        self.publish();
        if self.log_end_offset() - self.recovery_point >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset: first.base_offset,
            last_offset: last.last_offset,
            max_timestamp,
            offset_of_max_timestamp,
            log_append_time_ms,
            duplicate: false,
        })
    }

    /// Starts a new active segment at the log end offset, unless the active one is empty.
    /// As in Kafka, the old segment is fsynced later, off the append path
    /// ([`Self::take_pending_flush`]): a roll never waits for a segment's worth of writeback.
    pub(crate) fn roll(&mut self, now_ms: i64) -> Result<bool, LogError> {
        if self.active().is_empty() {
            return Ok(false);
        }
        let new_base = self.log_end_offset();
        self.active_mut().on_become_inactive()?;
        let segment = Segment::create(&self.dir, new_base, &self.config, now_ms)?;
        self.segments.push(segment);
        self.publish_segments();
        // The producer state as of the new segment: fsynced with the rolled segment.
        self.write_producer_snapshot(new_base)?;
        self.trim_snapshots()?;
        info!(dir = %self.dir.display(), base_offset = new_base, "rolled new log segment");
        Ok(true)
    }

    /// Rolls when segment.ms has passed for a log that is not receiving appends (Kafka only
    /// checks on append; this lets idle partitions roll too). Uses `now_ms` as the timestamp.
    pub fn roll_if_due(&mut self, now_ms: i64) -> Result<bool, LogError> {
        let active = self.active();
        let due = !active.is_empty()
            && active.time_waited_for_roll_ms(now_ms, now_ms)
                > self.config.segment_ms.saturating_sub(active.roll_jitter_ms);
        if due {
            self.roll(now_ms)
        } else {
            Ok(false)
        }
    }

    /// Whole batches starting with the one holding `offset`, up to `max_bytes` (the first one
    /// whole regardless when `min_one_batch`), none whose last offset reaches `max_offset`,
    /// copied out.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        let slices = self
            .reader()
            .read(offset, max_bytes, max_offset, min_one_batch)?;
        Ok(ReadResult {
            bytes: slices.to_bytes()?,
            log_start_offset: slices.log_start_offset,
            log_end_offset: slices.log_end_offset,
        })
    }

    /// Index of the last segment whose base offset is <= `offset` (0 if none is).
    pub(crate) fn segment_index_for(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }

    /// fsyncs every segment written since the last flush and advances the recovery point.
    /// A failed fsync fails the log for good: after one, the kernel may have dropped the
    /// dirty pages it could not write, so a later fsync that succeeds proves nothing.
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.check_usable()?;
        let flushed = self.flush_segments();
        if let Err(e) = &flushed {
            self.failed = Some(format!("flush failed: {e}"));
        }
        flushed
    }

    /// The log's failure, if an earlier fsync or cut-off failed.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Fails the log (a [`PendingFlush`] whose sync failed, or the broker's own finding):
    /// it takes no more writes and its recovery point never moves again.
    pub fn mark_failed(&mut self, reason: String) {
        self.failed.get_or_insert(reason);
    }

    fn check_usable(&self) -> Result<(), LogError> {
        match &self.failed {
            Some(reason) => Err(LogError::Failed(reason.clone())),
            None => Ok(()),
        }
    }

    fn flush_segments(&mut self) -> Result<(), LogError> {
        for segment in &mut self.segments {
            segment.flush()?;
        }
        let log_end_offset = self.log_end_offset();
        if log_end_offset != self.recovery_point {
            self.sync_leader_epochs()?;
            checkpoint::write_offset(&self.dir, RECOVERY_POINT_FILE, log_end_offset)?;
            self.recovery_point = log_end_offset;
        }
        Ok(())
    }

    /// The fsync that rolled segments still need, to run without the log's lock: the
    /// caller syncs it, then hands it back to [`Self::complete_flush`]. `None` when every
    /// segment below the active one is already durable.
    pub fn take_pending_flush(&self) -> Result<Option<PendingFlush>, LogError> {
        self.check_usable()?;
        let up_to = self.active().base_offset;
        if self.recovery_point >= up_to {
            return Ok(None);
        }
        let mut files = Vec::new();
        for segment in &self.segments[..self.segments.len() - 1] {
            if segment.dirty {
                files.extend(segment.durable_handles()?);
            }
        }
        // Snapshots written at those rolls become durable with them.
        for offset in list_snapshots(&self.dir)? {
            if offset > self.recovery_point && offset <= up_to {
                match fs::File::open(crate::producer_snapshot::snapshot_path(&self.dir, offset)) {
                    Ok(file) => files.push(Arc::new(file)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(Some(PendingFlush { files, up_to }))
    }

    /// Records that a [`PendingFlush`] was synced: the segments below its offset are durable
    /// and the recovery point moves there.
    pub fn complete_flush(&mut self, flushed: PendingFlush) -> Result<(), LogError> {
        self.check_usable()?;
        let inactive = self.segments.len() - 1;
        for segment in &mut self.segments[..inactive] {
            if segment.next_offset <= flushed.up_to {
                segment.dirty = false;
            }
        }
        let up_to = flushed.up_to.min(self.log_end_offset());
        if up_to > self.recovery_point {
            self.sync_leader_epochs()?;
            self.recovery_point = up_to;
            checkpoint::write_offset(&self.dir, RECOVERY_POINT_FILE, up_to)?;
        }
        Ok(())
    }

    /// Flushes when flush.messages records or flush.ms have accumulated since the last flush.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<(), LogError> {
        let unflushed_messages = self.log_end_offset() - self.recovery_point;
        let due_by_count =
            unflushed_messages > 0 && unflushed_messages >= self.config.flush_messages;
        let due_by_time = now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms;
        if due_by_count || due_by_time {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    pub fn update_config(&mut self, config: LogConfig) {
        for segment in &mut self.segments {
            segment.update_config(&config);
        }
        self.producers.set_max_producer_ids(config.max_producer_ids);
        self.config = config;
    }

    pub(crate) fn write_log_start_offset(&self) -> Result<(), LogError> {
        checkpoint::write_offset(&self.dir, LOG_START_OFFSET_FILE, self.log_start_offset)?;
        Ok(())
    }

    /// Flushes and writes the clean-shutdown marker, so the next open skips recovery.
    /// Files already durable are left alone: a log closed with nothing written since its
    /// last flush costs one directory fsync (for the marker).
    pub fn close(mut self) -> Result<(), LogError> {
        let time_entries = self.active().time_index.len();
        self.active_mut().on_become_inactive()?;
        if self.active().time_index.len() != time_entries {
            self.active_mut().dirty = true;
        }
        self.flush()?;
        self.sync_leader_epochs()?;
        let snapshot = self.write_producer_snapshot(self.log_end_offset())?;
        fs::File::open(snapshot)?.sync_all()?;
        self.trim_snapshots()?;
        if checkpoint::read_offset(&self.dir, LOG_START_OFFSET_FILE)? != Some(self.log_start_offset)
        {
            self.write_log_start_offset()?;
        }
        checkpoint::write_marker(&self.dir)?;
        Ok(())
    }

    /// The first half of closing a log of a log dir, without any fsync: the active
    /// segment's last time index entry is written. Once every log of the dir got here, the
    /// caller makes the filesystem durable ([`crate::sync_filesystem`]), finishes each with
    /// [`UnsyncedClose::finish`], and writes the log dir's marker
    /// ([`crate::write_log_dir_clean_shutdown`], which syncs again first). A crash at any
    /// point before that marker leaves the log to recovery, as after a kill -9.
    pub fn close_unsynced(mut self) -> Result<UnsyncedClose, LogError> {
        self.active_mut().on_become_inactive()?;
        self.write_producer_snapshot(self.log_end_offset())?;
        self.trim_snapshots()?;
        Ok(UnsyncedClose { log: self })
    }
}

/// A log closed by [`PartitionLog::close_unsynced`] whose files the caller has yet to sync.
pub struct UnsyncedClose {
    log: PartitionLog,
}

impl UnsyncedClose {
    /// Called after the filesystem was synced: every byte of the log is durable, so the
    /// recovery point moves to the log end. Its checkpoint (and the log start offset's,
    /// when it changed) is written without an fsync: the next sync, before the log dir's
    /// marker, makes it durable, and until then the old value is merely more recovery.
    pub fn finish(&self) -> Result<(), LogError> {
        let log = &self.log;
        let log_end_offset = log.log_end_offset();
        if log_end_offset != log.recovery_point {
            checkpoint::write_offset_unsynced(&log.dir, RECOVERY_POINT_FILE, log_end_offset)?;
        }
        if checkpoint::read_offset(&log.dir, LOG_START_OFFSET_FILE)? != Some(log.log_start_offset) {
            checkpoint::write_offset_unsynced(
                &log.dir,
                LOG_START_OFFSET_FILE,
                log.log_start_offset,
            )?;
        }
        Ok(())
    }
}

/// Files of rolled segments to fsync without the log's lock.
pub struct PendingFlush {
    files: Vec<Arc<fs::File>>,
    up_to: i64,
}

impl PendingFlush {
    /// On failure, hand the error to [`PartitionLog::mark_failed`], never retry.
    pub fn sync(&self) -> Result<(), LogError> {
        for file in &self.files {
            crate::vectored::sync_data(file)?;
        }
        Ok(())
    }
}

/// The checkpointed epoch entries, `None` when there is no usable checkpoint.
fn read_epoch_checkpoint(dir: &Path) -> Result<Option<Vec<EpochEntry>>, LogError> {
    Ok(checkpoint::read_entries(
        &dir.join(LEADER_EPOCH_FILE),
        |line| {
            let (epoch, start_offset) = line.split_once(' ')?;
            Some(EpochEntry {
                epoch: epoch.parse().ok()?,
                start_offset: start_offset.parse().ok()?,
            })
        },
    )?)
}

/// Rewrites a batch's header (`header` starts at the batch) to start at `next_offset` in
/// `leader_epoch`, updates `meta` to match, and returns the offset after the batch.
fn assign_offsets(
    header: &mut [u8],
    meta: &mut BatchMeta,
    next_offset: i64,
    leader_epoch: i32,
) -> Result<i64, LogError> {
    let delta = meta.last_offset - meta.base_offset;
    set_base_offset(header, next_offset);
    set_partition_leader_epoch(header, leader_epoch);
    meta.leader_epoch = leader_epoch;
    meta.base_offset = next_offset;
    meta.last_offset = next_offset
        .checked_add(delta)
        .ok_or_else(|| LogError::InvalidBatch("offsets overflow i64".into()))?;
    Ok(meta.last_offset + 1)
}

/// Splits concatenated batches by their headers (the caller already validated CRCs).
fn split_batches(bytes: &[u8]) -> Result<Vec<BatchMeta>, LogError> {
    let mut metas = Vec::new();
    let mut position = 0usize;
    while position < bytes.len() {
        let meta = BatchMeta::parse(
            &bytes[position..],
            position as u64,
            (bytes.len() - position) as u64,
        )
        .map_err(LogError::InvalidBatch)?;
        position += meta.size_bytes as usize;
        metas.push(meta);
    }
    if metas.is_empty() {
        return Err(LogError::EmptyAppend);
    }
    Ok(metas)
}
