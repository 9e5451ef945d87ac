//! One segment: `<base offset>.log` plus its `.index` and `.timeindex`.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::UNIX_EPOCH;

use tracing::warn;

use crate::config::{LogConfig, OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES};
use crate::error::LogError;
use crate::file_cache::{self, open_read_write, CachedFile};
use crate::index::{lookup_entry, OffsetIndex, SharedEntries};
use crate::scan::{BatchMeta, HeaderScan};
use crate::time_index::TimeIndex;
use crate::txn_index::{self, AbortedTxn, TxnIndexEntry, TXN_INDEX_SUFFIX};

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";

/// `<20-digit zero-padded base offset>.<suffix>`, as Kafka names segment files.
pub(crate) fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// Every file a segment may have; the `.txnindex` only once a transaction aborted in it.
pub(crate) const SEGMENT_SUFFIXES: [&str; 4] = [
    LOG_SUFFIX,
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
];

/// Removes a segment's `.log`, `.index`, `.timeindex` and `.txnindex`, whichever exist.
pub(crate) fn delete_segment_files(dir: &Path, base_offset: i64) -> std::io::Result<()> {
    for suffix in SEGMENT_SUFFIXES {
        match fs::remove_file(segment_file(dir, base_offset, suffix)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Kafka spreads segment.ms rolls over [0, segment.jitter.ms) so partitions do not all roll
/// at once.
fn roll_jitter_ms(config: &LogConfig, base_offset: i64) -> i64 {
    let bound = config.segment_jitter_ms.min(config.segment_ms);
    if bound <= 0 {
        return 0;
    }
    (RandomState::new().hash_one(base_offset) % bound as u64) as i64
}

/// Where a read of a segment ends.
pub(crate) struct SegmentRange {
    pub end_position: u64,
    /// The offset after the last batch in the range; `None` when the range is empty.
    pub next_offset: Option<i64>,
    /// True when the read stopped at a limit (bytes or max offset) rather than at the end of
    /// the segment, so the next segment must not be read.
    pub stopped_at_limit: bool,
}

/// What a segment's readers share with its writer: the log file (through the process's
/// file cache), how far it holds whole batches, and its offset index. Readers keep it alive
/// as long as they need it, even after the segment left the log: a segment removed while
/// readers hold it keeps a descriptor for them ([`Segment::retire`]).
pub struct SegmentView {
    pub(crate) base_offset: i64,
    /// The file's name when the segment was opened, for messages.
    pub(crate) log_path: PathBuf,
    log: CachedFile,
    /// Published by the writer after the bytes are written.
    size_bytes: AtomicU64,
    index: SharedEntries,
    /// The `.txnindex` entries: the writer appends under the log's lock, readers copy
    /// what they need.
    aborted: RwLock<Vec<TxnIndexEntry>>,
}

impl SegmentView {
    pub(crate) fn txn_entries(&self) -> Vec<TxnIndexEntry> {
        self.aborted
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Kafka's collectAbortedTxns over this segment; true when the search is complete.
    pub(crate) fn collect_aborted(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
        out: &mut Vec<AbortedTxn>,
    ) -> bool {
        let entries = self.aborted.read().unwrap_or_else(|p| p.into_inner());
        txn_index::collect(&entries, fetch_offset, upper_bound_offset, out)
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.size_bytes.load(Ordering::Acquire)
    }

    /// The segment's log file, reopened if the file cache closed it. The descriptor stays
    /// open while the handle lives, whatever the cache or the log does meanwhile.
    pub fn file(&self) -> std::io::Result<Arc<File>> {
        self.log.get()
    }

    pub(crate) fn corrupt_at(&self, position: u64, reason: String) -> LogError {
        LogError::Corrupt {
            path: self.log_path.clone(),
            position,
            reason,
        }
    }

    /// The first batch whose last offset is >= `target` among the batches below `size`,
    /// starting from the index's hint.
    pub(crate) fn translate_offset(
        &self,
        target: i64,
        size: u64,
    ) -> Result<Option<BatchMeta>, LogError> {
        self.translate_offset_in(&*self.file()?, target, size)
    }

    /// [`Self::translate_offset`] in the already open `file`.
    pub(crate) fn translate_offset_in(
        &self,
        file: &File,
        target: i64,
        size: u64,
    ) -> Result<Option<BatchMeta>, LogError> {
        let (_, start) = lookup_entry(&self.index, self.base_offset, target);
        let mut scan = HeaderScan::new(file, &self.log_path, u64::from(start), size);
        while let Some(meta) = scan.next_batch()? {
            if meta.last_offset >= target {
                return Ok(Some(meta));
            }
        }
        Ok(None)
    }

    /// Walks whole batches from `start_position` (below `size`) while their total stays
    /// within `max_bytes` and their last offsets stay below `max_offset`; with
    /// `min_one_batch` the first batch counts even if larger than `max_bytes`. Reads headers
    /// only: the bytes are sent or copied by the caller.
    pub(crate) fn range_from(
        &self,
        file: &File,
        start_position: u64,
        size: u64,
        max_bytes: u64,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<SegmentRange, LogError> {
        let mut scan = HeaderScan::new(file, &self.log_path, start_position, size);
        let mut end_position = start_position;
        let mut next_offset = None;
        loop {
            let Some(meta) = scan.next_batch()? else {
                return Ok(SegmentRange {
                    end_position,
                    next_offset,
                    stopped_at_limit: false,
                });
            };
            let first = end_position == start_position;
            let over_budget = meta.end_position() - start_position > max_bytes;
            if meta.last_offset >= max_offset || (over_budget && !(first && min_one_batch)) {
                return Ok(SegmentRange {
                    end_position,
                    next_offset,
                    stopped_at_limit: true,
                });
            }
            end_position = meta.end_position();
            next_offset = Some(meta.last_offset + 1);
            if over_budget {
                // The oversized first batch alone.
                return Ok(SegmentRange {
                    end_position,
                    next_offset,
                    stopped_at_limit: true,
                });
            }
        }
    }
}

/// Whether `offset` fits the 4-byte relative offsets of a segment starting at `base_offset`.
pub(crate) fn offset_fits(base_offset: i64, offset: i64) -> bool {
    offset
        .checked_sub(base_offset)
        .is_some_and(|relative| (0..=i64::from(i32::MAX)).contains(&relative))
}

/// An inactive segment as the cleaner found it when it planned a round. Inactive
/// segments take no appends, so these figures hold while the round reads it without the
/// log's lock; before swapping, the log checks the segment is still this view.
#[derive(Clone)]
pub(crate) struct SegmentSnapshot {
    pub(crate) base_offset: i64,
    pub(crate) view: Arc<SegmentView>,
    pub(crate) size_bytes: u64,
    /// Last offset + 1 of the last batch, or the base offset while empty.
    pub(crate) next_offset: i64,
    pub(crate) index_bytes: u64,
    pub(crate) time_index_bytes: u64,
}

impl SegmentSnapshot {
    pub(crate) fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    pub(crate) fn log(&self) -> std::io::Result<Arc<File>> {
        self.view.file()
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.view.log_path
    }

    pub(crate) fn corrupt_at(&self, position: u64, reason: String) -> LogError {
        self.view.corrupt_at(position, reason)
    }

    /// The index's (offset, position) hint at or before `target`.
    pub(crate) fn index_lookup(&self, target: i64) -> (i64, u32) {
        lookup_entry(&self.view.index, self.base_offset, target)
    }

    /// Whether `segment` is still the segment this snapshot was taken of, unchanged.
    pub(crate) fn is_same_as(&self, segment: &Segment) -> bool {
        Arc::ptr_eq(&self.view, &segment.view) && self.size_bytes == segment.size_bytes
    }
}

pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) view: Arc<SegmentView>,
    pub(crate) size_bytes: u64,
    /// Last offset + 1 of the last batch, or the base offset while empty.
    pub(crate) next_offset: i64,
    pub(crate) index: OffsetIndex,
    pub(crate) time_index: TimeIndex,
    /// -1 when no batch carries a timestamp (Kafka's NO_TIMESTAMP).
    pub(crate) max_timestamp_ms: i64,
    /// Last offset of the first batch holding `max_timestamp_ms` (Kafka's shallow offset).
    pub(crate) offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch: segment.ms is measured from it.
    pub(crate) rolling_timestamp_ms: Option<i64>,
    pub(crate) created_ms: i64,
    pub(crate) bytes_since_index_entry: u64,
    pub(crate) roll_jitter_ms: i64,
    /// Bytes were written since the last fsync.
    pub(crate) dirty: bool,
    pub(crate) txn_index_path: PathBuf,
}

impl Segment {
    /// Opens the segment's three files. `fresh_indexes` empties the index files (a new
    /// segment, or one about to be rebuilt); otherwise they are loaded and sanity checked,
    /// and `None` comes back when they cannot be trusted.
    #[allow(clippy::too_many_arguments)]
    fn open_files(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        create_log: bool,
        fresh_indexes: bool,
        name_tail: &str,
    ) -> Result<Option<Self>, LogError> {
        let file = |suffix: &str| segment_file(dir, base_offset, &format!("{suffix}{name_tail}"));
        let log_path = file(LOG_SUFFIX);
        let log = open_read_write(&log_path, create_log)?;
        let size_bytes = log.metadata()?.len();
        let log = CachedFile::opened(file_cache::global(), log_path.clone(), log)?;
        let index_path = file(INDEX_SUFFIX);
        let time_index_path = file(TIME_INDEX_SUFFIX);
        let txn_index_path = file(TXN_INDEX_SUFFIX);
        if create_log {
            txn_index::remove(&txn_index_path)?;
        }
        let aborted = txn_index::load(&txn_index_path)?;
        let (index, time_index) = if fresh_indexes {
            (
                OffsetIndex::create(index_path, base_offset, config.max_offset_index_entries())?,
                TimeIndex::create(
                    time_index_path,
                    base_offset,
                    config.max_time_index_entries(),
                )?,
            )
        } else {
            let index = OffsetIndex::load(
                index_path,
                base_offset,
                config.max_offset_index_entries(),
                size_bytes,
            )?;
            let time_index = TimeIndex::load(
                time_index_path,
                base_offset,
                config.max_time_index_entries(),
                size_bytes,
            )?;
            match (index, time_index) {
                (Some(i), Some(t)) => (i, t),
                _ => return Ok(None),
            }
        };
        let view = Arc::new(SegmentView {
            base_offset,
            log_path,
            log,
            size_bytes: AtomicU64::new(0),
            index: index.shared_entries(),
            aborted: RwLock::new(aborted),
        });
        Ok(Some(Self {
            base_offset,
            view,
            size_bytes,
            next_offset: base_offset,
            index,
            time_index,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: -1,
            rolling_timestamp_ms: None,
            created_ms: now_ms,
            bytes_since_index_entry: 0,
            roll_jitter_ms: roll_jitter_ms(config, base_offset),
            dirty: false,
            txn_index_path,
        }))
    }

    /// Creates an empty segment, replacing any leftover files of the same name.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        Self::open_files(dir, base_offset, config, now_ms, true, true, "")?.ok_or_else(|| {
            LogError::Corrupt {
                path: segment_file(dir, base_offset, LOG_SUFFIX),
                position: 0,
                reason: "fresh indexes could not be created".into(),
            }
        })
    }

    /// Creates an empty segment whose three files carry `name_tail` after their usual
    /// names (`.cleaned` for the log cleaner's output), replacing leftovers.
    pub(crate) fn create_named(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
        name_tail: &str,
    ) -> Result<Self, LogError> {
        Self::open_files(dir, base_offset, config, now_ms, true, true, name_tail)?.ok_or_else(
            || LogError::Corrupt {
                path: segment_file(dir, base_offset, LOG_SUFFIX),
                position: 0,
                reason: "fresh indexes could not be created".into(),
            },
        )
    }

    /// Opens an existing segment with empty indexes, for [`crate::recovery`] to rebuild.
    pub(crate) fn open_for_recovery(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Self, LogError> {
        Self::open_files(dir, base_offset, config, now_ms, false, true, "")?.ok_or_else(|| {
            LogError::Corrupt {
                path: segment_file(dir, base_offset, LOG_SUFFIX),
                position: 0,
                reason: "fresh indexes could not be created".into(),
            }
        })
    }

    /// Opens a segment that was flushed before a clean shutdown (or before the recovery
    /// point): trusts its indexes and walks only the headers after the last index entry.
    /// `None` when anything looks wrong, so the caller recovers it instead.
    pub(crate) fn open_trusted(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: i64,
    ) -> Result<Option<Self>, LogError> {
        let Some(mut segment) =
            Self::open_files(dir, base_offset, config, now_ms, false, false, "")?
        else {
            return Ok(None);
        };
        if let Some((timestamp_ms, offset)) = segment.time_index.last_entry() {
            segment.max_timestamp_ms = timestamp_ms;
            segment.offset_of_max_timestamp = offset;
        }
        let (last_indexed_offset, start) = segment.index.lookup(i64::MAX);
        let file = segment.log()?;
        let mut scan = HeaderScan::new(
            &file,
            segment.log_path(),
            u64::from(start),
            segment.size_bytes,
        );
        let mut last_offset = None;
        let mut tail = Vec::new();
        loop {
            match scan.next_batch() {
                Ok(Some(meta)) => {
                    tail.push(meta);
                    last_offset = Some(meta.last_offset);
                }
                Ok(None) => break,
                Err(LogError::Corrupt {
                    position, reason, ..
                }) => {
                    warn!(segment = %segment.log_path().display(), position, reason, "segment needs recovery");
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        if start > 0
            && tail
                .first()
                .is_none_or(|m| m.last_offset != last_indexed_offset)
        {
            return Ok(None);
        }
        for meta in &tail {
            if meta.max_timestamp_ms > segment.max_timestamp_ms {
                segment.max_timestamp_ms = meta.max_timestamp_ms;
                segment.offset_of_max_timestamp = meta.last_offset;
            }
        }
        segment.next_offset = last_offset.map_or(base_offset, |o| o + 1);
        // The indexed batch itself counts: the interval restarts before its bytes are added.
        segment.bytes_since_index_entry = tail.iter().map(|m| m.size_bytes).sum();
        let mut first = HeaderScan::new(&file, segment.log_path(), 0, segment.size_bytes);
        segment.rolling_timestamp_ms = first
            .next_batch()
            .ok()
            .flatten()
            .map(|m| m.max_timestamp_ms);
        Ok(Some(segment))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    /// The log file, open (through the file cache).
    pub(crate) fn log(&self) -> std::io::Result<Arc<File>> {
        self.view.log.get()
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.view.log_path
    }

    /// Keeps the log file's descriptor out of the cache while its name changes by path
    /// (the cleaner's swap); [`Self::install_as_final`] lets it back.
    pub(crate) fn pin_log(&self) -> std::io::Result<()> {
        self.view.log.pin()
    }

    /// Gives the segment its final file names once the log cleaner's swap renamed its
    /// files there, and lets the cache manage its log file again. Only before the swap
    /// is complete may the file be reopened by a stale name, so the log was pinned.
    pub(crate) fn set_final_names(&mut self, dir: &Path) {
        let final_log = segment_file(dir, self.base_offset, LOG_SUFFIX);
        self.index
            .set_path(segment_file(dir, self.base_offset, INDEX_SUFFIX));
        self.time_index
            .set_path(segment_file(dir, self.base_offset, TIME_INDEX_SUFFIX));
        self.txn_index_path = segment_file(dir, self.base_offset, TXN_INDEX_SUFFIX);
        self.view.log.set_path(final_log.clone());
        Arc::get_mut(&mut self.view)
            .expect("a segment is renamed before readers can see it")
            .log_path = final_log;
    }

    /// The cleaner's swap is complete: the log file has its final name.
    pub(crate) fn unpin_log(&self) {
        self.view.log.unpin();
    }

    /// Called on a segment leaving the log whose files are about to be deleted: readers
    /// still holding its view keep a descriptor, since the name will no longer open it.
    pub(crate) fn retire(self) {
        if Arc::strong_count(&self.view) > 1 {
            if let Err(e) = self.view.log.pin() {
                warn!(segment = %self.log_path().display(), error = %e, "cannot keep a removed segment open for its readers");
            }
        }
    }

    /// Lets readers see what the writer has written.
    pub(crate) fn publish_extent(&self) {
        self.view
            .size_bytes
            .store(self.size_bytes, Ordering::Release);
    }

    /// Records a batch now stored at `meta.position` in the segment: size, next offset, max
    /// timestamp, and an index entry once `index.interval.bytes` have passed since the last.
    pub(crate) fn track_batch(
        &mut self,
        meta: &BatchMeta,
        index_interval_bytes: u32,
    ) -> std::io::Result<()> {
        if self.rolling_timestamp_ms.is_none() {
            self.rolling_timestamp_ms = Some(meta.max_timestamp_ms);
        }
        if meta.max_timestamp_ms > self.max_timestamp_ms {
            self.max_timestamp_ms = meta.max_timestamp_ms;
            self.offset_of_max_timestamp = meta.last_offset;
        }
        if self.bytes_since_index_entry > u64::from(index_interval_bytes) {
            // Positions fit: segment.bytes is capped at i32::MAX.
            self.index.append(meta.last_offset, meta.position as u32)?;
            self.time_index
                .maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp)?;
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += meta.size_bytes;
        self.size_bytes = meta.end_position();
        self.next_offset = meta.last_offset + 1;
        Ok(())
    }

    /// Writes already-offset-assigned batches at the end of the segment. `metas` describe
    /// them with positions relative to the start of `bytes`; a failed write is cut off.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        metas: &[BatchMeta],
        index_interval_bytes: u32,
    ) -> Result<(), LogError> {
        self.append_parts(&[bytes], metas, index_interval_bytes)
    }

    /// [`Self::append`] of the concatenation of `parts`, written with one `pwritev`.
    pub(crate) fn append_parts(
        &mut self,
        parts: &[&[u8]],
        metas: &[BatchMeta],
        index_interval_bytes: u32,
    ) -> Result<(), LogError> {
        let start = self.size_bytes;
        let file = self.log()?;
        if let Err(e) = crate::vectored::write_all_vectored_at(&file, parts, start) {
            // Drop whatever part of the write landed so the file matches what we track;
            // if even that fails, the file holds bytes the log does not know of.
            if let Err(cut) = file.set_len(start) {
                return Err(LogError::Failed(format!(
                    "a write failed ({e}) and cutting it off failed ({cut})"
                )));
            }
            return Err(e.into());
        }
        self.dirty = true;
        for meta in metas {
            let stored = BatchMeta {
                position: start + meta.position,
                ..*meta
            };
            self.track_batch(&stored, index_interval_bytes)?;
        }
        Ok(())
    }

    /// Kafka's LogSegment.shouldRoll: full by size, old by segment.ms, an index full, or an
    /// offset that no longer fits 4 bytes relative to the base.
    pub(crate) fn should_roll(
        &self,
        config: &LogConfig,
        messages_bytes: u64,
        max_timestamp_in_messages_ms: i64,
        max_offset_in_messages: i64,
        now_ms: i64,
    ) -> bool {
        let waited_ms = self.time_waited_for_roll_ms(now_ms, max_timestamp_in_messages_ms);
        let reached_roll_ms = waited_ms > config.segment_ms.saturating_sub(self.roll_jitter_ms);
        let full = self.size_bytes + messages_bytes > config.effective_segment_bytes();
        !self.is_empty()
            && (full
                || reached_roll_ms
                || self.index.is_full()
                || self.time_index.is_full()
                || !self.can_hold_offset(max_offset_in_messages))
    }

    pub(crate) fn time_waited_for_roll_ms(&self, now_ms: i64, message_timestamp_ms: i64) -> i64 {
        match self.rolling_timestamp_ms {
            Some(ts) if ts >= 0 => message_timestamp_ms.saturating_sub(ts),
            _ => now_ms.saturating_sub(self.created_ms),
        }
    }

    pub(crate) fn can_hold_offset(&self, offset: i64) -> bool {
        offset_fits(self.base_offset, offset)
    }

    /// Called when a newer segment takes over (and on close and recovery): the time index
    /// gets the final max timestamp, so lookups of it need no scan of the index's tail.
    pub(crate) fn on_become_inactive(&mut self) -> std::io::Result<()> {
        if self.max_timestamp_ms >= 0 {
            self.time_index
                .maybe_append(self.max_timestamp_ms, self.offset_of_max_timestamp)?;
        }
        Ok(())
    }

    pub(crate) fn update_config(&mut self, config: &LogConfig) {
        self.index
            .set_max_entries(config.max_offset_index_entries());
        self.time_index
            .set_max_entries(config.max_time_index_entries());
        self.roll_jitter_ms = roll_jitter_ms(config, self.base_offset);
    }

    pub(crate) fn flush(&mut self) -> Result<(), LogError> {
        if self.dirty {
            crate::vectored::sync_data(self.log()?.as_ref())?;
            self.index.sync()?;
            self.time_index.sync()?;
            txn_index::sync(&self.txn_index_path)?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Records an aborted transaction whose marker this segment holds.
    pub(crate) fn append_aborted_txn(&mut self, entry: TxnIndexEntry) -> Result<(), LogError> {
        txn_index::append(&self.txn_index_path, &entry)?;
        self.view
            .aborted
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
        self.dirty = true;
        Ok(())
    }

    /// Keeps only the entries whose marker lies below `offset` (truncation); with `offset`
    /// at or below the base, the index empties (recovery rebuilds it).
    pub(crate) fn cut_txn_index(&mut self, offset: i64) -> Result<(), LogError> {
        let mut entries = self.view.aborted.write().unwrap_or_else(|p| p.into_inner());
        let before = entries.len();
        entries.retain(|e| e.last_offset < offset);
        if entries.len() != before || offset <= self.base_offset {
            txn_index::rewrite(&self.txn_index_path, &entries)?;
        }
        Ok(())
    }

    /// Retention's notion of age: the max timestamp, or the file's mtime when no batch has one.
    pub(crate) fn largest_timestamp_ms(&self) -> i64 {
        if self.max_timestamp_ms >= 0 {
            return self.max_timestamp_ms;
        }
        self.log()
            .and_then(|f| f.metadata())
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64)
    }

    /// The first batch whose last offset is >= `target`, starting from the index's hint.
    pub(crate) fn translate_offset(&self, target: i64) -> Result<Option<BatchMeta>, LogError> {
        self.view.translate_offset(target, self.size_bytes)
    }

    pub(crate) fn corrupt_at(&self, position: u64, reason: String) -> LogError {
        self.view.corrupt_at(position, reason)
    }

    /// What the log cleaner reads of an inactive segment without the log's lock.
    pub(crate) fn snapshot(&self) -> SegmentSnapshot {
        SegmentSnapshot {
            base_offset: self.base_offset,
            view: self.view.clone(),
            size_bytes: self.size_bytes,
            next_offset: self.next_offset,
            index_bytes: self.index.len() as u64 * u64::from(OFFSET_INDEX_ENTRY_BYTES),
            time_index_bytes: self.time_index.len() as u64 * u64::from(TIME_INDEX_ENTRY_BYTES),
        }
    }

    /// Handles on the segment's three files, for an fsync that does not hold the log's lock.
    pub(crate) fn durable_handles(&self) -> std::io::Result<Vec<Arc<File>>> {
        let mut handles = vec![
            self.log()?,
            self.index.file_handle()?,
            self.time_index.file_handle()?,
        ];
        match File::open(&self.txn_index_path) {
            Ok(file) => handles.push(Arc::new(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(handles)
    }

    /// Removes the segment's files.
    pub(crate) fn delete(self, dir: &Path) -> std::io::Result<()> {
        let base_offset = self.base_offset;
        self.retire();
        delete_segment_files(dir, base_offset)
    }

    /// Kafka's asynchronous delete: the files get the `.deleted` suffix now (the segment's
    /// name is free, and `open` removes such leftovers) and are removed later by
    /// [`PendingDeletion`]. Readers holding the view keep reading meanwhile.
    pub(crate) fn schedule_deletion(self, dir: &Path) -> std::io::Result<PendingDeletion> {
        for suffix in SEGMENT_SUFFIXES {
            let from = segment_file(dir, self.base_offset, suffix);
            let to = from.with_extension(format!("{suffix}.{DELETED}"));
            // The log is renamed through its cache entry: readers reopen it by the new name.
            let renamed = if suffix == LOG_SUFFIX {
                self.view.log.rename(to)
            } else {
                fs::rename(&from, to)
            };
            match renamed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(PendingDeletion {
            base_offset: self.base_offset,
            view: self.view.clone(),
            due_ms: None,
        })
    }
}

/// The suffix of a segment's files between its removal from the log and their deletion.
pub(crate) const DELETED: &str = "deleted";

/// A segment out of the log whose `.deleted` files wait for `file.delete.delay.ms`.
pub(crate) struct PendingDeletion {
    pub(crate) base_offset: i64,
    pub(crate) view: Arc<SegmentView>,
    /// Set by the first sweep after the removal (the log keeps no clock).
    pub(crate) due_ms: Option<i64>,
}

impl PendingDeletion {
    /// Deletes the files once the delay has passed and no reader holds the segment; says
    /// whether it did.
    pub(crate) fn delete_if_due(
        &mut self,
        dir: &Path,
        now_ms: i64,
        delay_ms: i64,
    ) -> std::io::Result<bool> {
        let due = *self
            .due_ms
            .get_or_insert(now_ms.saturating_add(delay_ms.max(0)));
        if now_ms < due || Arc::strong_count(&self.view) > 1 {
            return Ok(false);
        }
        for suffix in SEGMENT_SUFFIXES {
            let path = segment_file(dir, self.base_offset, &format!("{suffix}.{DELETED}"));
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}
