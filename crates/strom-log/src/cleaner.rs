//! The cleaner's work on segment contents: mapping the dirty range's keys to
//! their latest offsets, and copying a group of segments into one `.cleaned`
//! segment keeping only what Kafka's LogCleaner keeps.
//!
//! Transactions, as Kafka: the data batches of aborted transactions are never
//! mapped and are removed; committed transactional records are compacted like
//! plain ones; a marker stays while data of its transaction was read in the
//! round, and once none remains it gets a delete horizon (`delete.retention.ms`)
//! and goes at the first round after it ([`crate::cleaner_txn`]). A producer's
//! last batch (or, when its epoch moved past its data, its last marker) stays,
//! empty if need be, so its sequence and epoch survive. Nothing at or past the
//! round's end (bounded by the last stable offset) is touched.

use std::collections::HashMap;
use std::path::Path;

use tracing::warn;

use strom_wire::batch::{validate, BatchHeader, BATCH_HEADER_BYTES};
use strom_wire::record::{delete_horizon_ms, parse_records, rebuild_batch, records_section};
use strom_wire::validate::stored_batch_inflation_limit;

use crate::cleaner_txn::{control_kind, CleanedTransactions};
use crate::config::{LogConfig, MAX_SEGMENT_BYTES};
use crate::error::LogError;
use crate::offset_map::OffsetMap;
use crate::scan::{BatchMeta, HeaderScan};
use crate::segment::{Segment, SegmentSnapshot};
use crate::txn_index::TxnIndexEntry;

/// Bytes read from a segment at a time; a larger batch is read whole.
const READ_CHUNK_BYTES: u64 = 1 << 20;
/// Cleaned batches are buffered up to this before being written out.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// Consecutive whole batches of one segment, CRC-checked, read through a buffer.
pub(crate) struct SegmentBatches<'a> {
    segment: &'a SegmentSnapshot,
    position: u64,
    buffer: Vec<u8>,
    buffer_start: u64,
}

impl<'a> SegmentBatches<'a> {
    pub(crate) fn new(segment: &'a SegmentSnapshot, position: u64) -> Self {
        Self {
            segment,
            position,
            buffer: Vec::new(),
            buffer_start: position,
        }
    }

    /// Makes `[position, position + len)` available in the buffer; `len` lies in the file.
    fn fill(&mut self, len: u64) -> Result<(), LogError> {
        let buffer_end = self.buffer_start + self.buffer.len() as u64;
        if self.position >= self.buffer_start && self.position + len <= buffer_end {
            return Ok(());
        }
        let available = self.segment.size_bytes - self.position;
        let read = len.max(READ_CHUNK_BYTES).min(available);
        self.buffer = crate::scan::read_exact(&*self.segment.log()?, self.position, read)?;
        self.buffer_start = self.position;
        Ok(())
    }

    pub(crate) fn next_batch(&mut self) -> Result<Option<(BatchMeta, &[u8])>, LogError> {
        if self.position >= self.segment.size_bytes {
            return Ok(None);
        }
        let available = self.segment.size_bytes - self.position;
        self.fill(available.min(BATCH_HEADER_BYTES as u64))?;
        let at = (self.position - self.buffer_start) as usize;
        let meta = BatchMeta::parse(&self.buffer[at..], self.position, available)
            .map_err(|reason| self.segment.corrupt_at(self.position, reason))?;
        // parse checked the size against the file: the buffer can hold it.
        self.fill(meta.size_bytes)?;
        let at = (self.position - self.buffer_start) as usize;
        let bytes = &self.buffer[at..at + meta.size_bytes as usize];
        validate(bytes).map_err(|e| self.segment.corrupt_at(meta.position, e.to_string()))?;
        self.position = meta.end_position();
        Ok(Some((meta, bytes)))
    }
}

fn corrupt_records(segment: &SegmentSnapshot, position: u64, error: impl ToString) -> LogError {
    segment.corrupt_at(position, format!("bad records: {}", error.to_string()))
}

/// Maps every key of the data batches wholly inside `[first_dirty, bound)` to
/// its latest offset, until the map's budget is spent, leaving out aborted
/// transactions (`aborted`: the log's `.txnindex` entries). `segments` start
/// with the one holding `first_dirty`.
pub(crate) fn build_offset_map(
    segments: &[SegmentSnapshot],
    first_dirty: i64,
    bound: i64,
    budget_bytes: usize,
    aborted: Vec<TxnIndexEntry>,
) -> Result<OffsetMap, LogError> {
    let mut map = OffsetMap::new(budget_bytes, first_dirty);
    let mut txns = CleanedTransactions::new(aborted);
    for (i, segment) in segments.iter().enumerate() {
        if segment.base_offset >= bound {
            break;
        }
        let (_, start) = segment.index_lookup(first_dirty);
        let start = if i == 0 { u64::from(start) } else { 0 };
        let mut batches = SegmentBatches::new(segment, start);
        while let Some((meta, bytes)) = batches.next_batch()? {
            if meta.last_offset >= bound {
                break;
            }
            if map.is_full() {
                return Ok(map);
            }
            let header =
                BatchHeader::new(bytes).map_err(|e| corrupt_records(segment, meta.position, e))?;
            let unmapped = if header.is_control() {
                let kind =
                    control_kind(bytes).map_err(|e| corrupt_records(segment, meta.position, e))?;
                txns.on_control_batch(&header, kind);
                true
            } else {
                txns.on_data_batch(&header)
            };
            if meta.last_offset < first_dirty {
                continue;
            }
            if !unmapped {
                let section = match records_section(
                    bytes,
                    stored_batch_inflation_limit(bytes.len()),
                ) {
                    Ok(section) => section,
                    // Left unmapped: its keys shadow nothing, so nothing is lost.
                    Err(e) if e.is_inflation_limit() => {
                        warn!(position = meta.position, %e, "batch too large to map, left as is");
                        map.advance_latest_offset(meta.last_offset);
                        continue;
                    }
                    Err(e) => return Err(corrupt_records(segment, meta.position, e)),
                };
                let records = parse_records(&section, header.records_count())
                    .map_err(|e| corrupt_records(segment, meta.position, e))?;
                for record in records {
                    let offset = meta.base_offset + i64::from(record.offset_delta());
                    if let Some(key) = record.key().filter(|_| offset >= first_dirty) {
                        map.put(key, offset);
                    }
                }
            }
            map.advance_latest_offset(meta.last_offset);
        }
        // Offsets missing at the end of a segment were mapped too, in effect.
        let segment_end = segments
            .get(i + 1)
            .map_or(bound, |next| next.base_offset.min(bound));
        map.advance_latest_offset(segment_end - 1);
    }
    Ok(map)
}

/// What must stay of an active producer (Kafka's LastRecord): the batch holding its last
/// data offset, or, when its epoch moved past its data (a marker bumped it), its last
/// marker in that epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LastRecord {
    pub last_data_offset: Option<i64>,
    pub epoch: i16,
}

/// The [`LastRecord`] of every producer in `active` (producer id => current epoch, from
/// the producer state when the round was planned): the last data batch of its current
/// epoch, which holds its last sequence.
pub(crate) fn last_records_of_active_producers(
    segments: &[SegmentSnapshot],
    active: &HashMap<i64, i16>,
) -> Result<HashMap<i64, LastRecord>, LogError> {
    let mut last_data: HashMap<i64, (i64, i16)> = HashMap::new();
    for segment in segments {
        let file = segment.log()?;
        let mut scan = HeaderScan::new(&file, segment.log_path(), 0, segment.size_bytes);
        while let Some((meta, header)) = scan.next_with_header()? {
            let header = BatchHeader::new(&header)
                .map_err(|e| segment.corrupt_at(meta.position, e.to_string()))?;
            if active.contains_key(&header.producer_id()) && !header.is_control() {
                last_data.insert(
                    header.producer_id(),
                    (meta.last_offset, header.producer_epoch()),
                );
            }
        }
    }
    Ok(active
        .iter()
        .map(|(&producer_id, &epoch)| {
            let last_data_offset = last_data
                .get(&producer_id)
                .filter(|(_, data_epoch)| *data_epoch == epoch)
                .map(|(offset, _)| *offset);
            (
                producer_id,
                LastRecord {
                    last_data_offset,
                    epoch,
                },
            )
        })
        .collect())
}

/// What the cleaning of one group needs to know.
pub(crate) struct CleanContext<'a> {
    pub map: &'a OffsetMap,
    pub now_ms: i64,
    pub delete_retention_ms: i64,
    pub active_producers: &'a HashMap<i64, LastRecord>,
}

/// What became of one batch.
enum Cleaned {
    Original,
    Rewritten(Vec<u8>),
    Dropped,
}

/// Counters of one group's cleaning.
#[derive(Default)]
pub(crate) struct GroupStats {
    pub records_removed: u64,
    /// The latest delete horizon of any tombstone or removable marker kept in the round.
    pub latest_delete_horizon_ms: Option<i64>,
}

/// Kafka's isBatchLastRecordOfProducer: the batch keeps an active producer's sequence
/// (its last data batch) or epoch (its last marker, when no data is in its epoch).
fn is_last_record_of_producer(header: &BatchHeader<'_>, ctx: &CleanContext<'_>) -> bool {
    ctx.active_producers
        .get(&header.producer_id())
        .is_some_and(|last| match last.last_data_offset {
            Some(offset) => header.last_offset() == offset,
            None => header.is_control() && header.producer_epoch() == last.epoch,
        })
}

/// Kafka's record filter for one batch (LogCleaner's checkBatchRetention and
/// shouldRetainRecord). `keep_even_if_empty` marks a batch that must stay (as an
/// empty batch at least) for its offset. Batches past the key map's end are not looked
/// at: they may belong to transactions not yet stable.
fn clean_batch(
    bytes: &[u8],
    ctx: &CleanContext<'_>,
    txns: &mut CleanedTransactions,
    keep_even_if_empty: bool,
    stats: &mut GroupStats,
) -> Result<Cleaned, String> {
    let header = BatchHeader::new(bytes).map_err(|e| e.to_string())?;
    if header.last_offset() > ctx.map.latest_offset() {
        return Ok(Cleaned::Original);
    }
    let horizon = delete_horizon_ms(&header);
    let horizon_passed = horizon.is_some_and(|h| h <= ctx.now_ms);
    let (can_discard, discard_records) = if header.is_control() {
        let can_discard = txns.on_control_batch(&header, control_kind(bytes)?);
        // A marker guarding no data goes only after its delete horizon.
        (can_discard, can_discard && horizon_passed)
    } else {
        let aborted = txns.on_data_batch(&header);
        (aborted, aborted)
    };
    let retain_empty = (header.producer_id() >= 0 && is_last_record_of_producer(&header, ctx))
        || keep_even_if_empty;
    if discard_records {
        stats.records_removed += header.records_count().max(0) as u64;
        if !retain_empty {
            return Ok(Cleaned::Dropped);
        }
        let empty = rebuild_batch(bytes, &[], None).map_err(|e| e.to_string())?;
        return Ok(Cleaned::Rewritten(empty));
    }
    let marker_of_empty_txn = can_discard && header.is_control();
    let section = match records_section(bytes, stored_batch_inflation_limit(bytes.len())) {
        Ok(section) => section,
        // Too large to inflate within the bound: kept whole, as it was never mapped.
        Err(e) if e.is_inflation_limit() => return Ok(Cleaned::Original),
        Err(e) => return Err(e.to_string()),
    };
    let records = parse_records(&section, header.records_count()).map_err(|e| e.to_string())?;
    let tombstones_expired = horizon_passed;
    let mut retained = Vec::with_capacity(records.len());
    let mut has_tombstone = false;
    for record in &records {
        let offset = header.base_offset() + i64::from(record.offset_delta());
        let keep = header.is_control()
            || match record.key() {
                // Kafka drops keyless records here; they can only exist if produced before
                // the topic became compacted, so we keep them rather than lose data.
                None => true,
                Some(key) => {
                    offset >= ctx.map.get(key) && !(record.is_tombstone() && tombstones_expired)
                }
            };
        if keep {
            has_tombstone |= record.is_tombstone() && !header.is_control();
            retained.push(*record);
        }
    }
    stats.records_removed += (records.len() - retained.len()) as u64;
    let wants_horizon = has_tombstone || marker_of_empty_txn;
    let needs_horizon = wants_horizon && !retained.is_empty() && horizon.is_none();
    // A batch emptied now goes, and so does a producer's batch emptied before once
    // nothing needs it (its producer expired, its marker's horizon passed). An empty
    // plain batch (kept as the end of an earlier group) stays as it is, so cleaning
    // again changes nothing.
    if retained.is_empty() && !retain_empty && (!records.is_empty() || header.producer_id() >= 0) {
        return Ok(Cleaned::Dropped);
    }
    if retained.len() == records.len() && !needs_horizon {
        if wants_horizon {
            stats.latest_delete_horizon_ms = stats.latest_delete_horizon_ms.max(horizon);
        }
        return Ok(Cleaned::Original);
    }
    let new_horizon = needs_horizon.then(|| ctx.now_ms.saturating_add(ctx.delete_retention_ms));
    if wants_horizon && !retained.is_empty() {
        stats.latest_delete_horizon_ms =
            stats.latest_delete_horizon_ms.max(new_horizon.or(horizon));
    }
    let rebuilt = rebuild_batch(bytes, &retained, new_horizon).map_err(|e| e.to_string())?;
    Ok(Cleaned::Rewritten(rebuilt))
}

/// Output of a group being written: batches buffered, then appended to the segment.
struct CleanedWriter {
    segment: Segment,
    pending: Vec<u8>,
    metas: Vec<BatchMeta>,
    index_interval_bytes: u32,
}

impl CleanedWriter {
    fn push(&mut self, batch: &[u8]) -> Result<(), LogError> {
        let total = self.segment.size_bytes + (self.pending.len() + batch.len()) as u64;
        if total > MAX_SEGMENT_BYTES {
            return Err(self.segment.corrupt_at(
                self.segment.size_bytes,
                "cleaned segment would exceed the largest segment size".into(),
            ));
        }
        let meta = BatchMeta::parse(batch, self.pending.len() as u64, batch.len() as u64)
            .map_err(|reason| self.segment.corrupt_at(self.segment.size_bytes, reason))?;
        self.pending.extend_from_slice(batch);
        self.metas.push(meta);
        if self.pending.len() >= WRITE_CHUNK_BYTES {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<(), LogError> {
        if !self.metas.is_empty() {
            self.segment
                .append(&self.pending, &self.metas, self.index_interval_bytes)?;
        }
        self.pending.clear();
        self.metas.clear();
        Ok(())
    }
}

/// Cleans `group` into a new segment written as `.cleaned` files (indexes
/// included), fsynced, with the mtime of the group's last segment. The group's
/// last batch always stays (empty if need be): the cleaned segment then ends
/// where the group did, which is what recovery relies on to find the segments a
/// `.swap` replaces.
pub(crate) fn clean_group(
    dir: &Path,
    config: &LogConfig,
    group: &[SegmentSnapshot],
    ctx: &CleanContext<'_>,
    txns: &mut CleanedTransactions,
    stats: &mut GroupStats,
) -> Result<Segment, LogError> {
    let base_offset = group[0].base_offset;
    let last_offset = group
        .iter()
        .rev()
        .find(|s| !s.is_empty())
        .map_or(base_offset - 1, |s| s.next_offset - 1);
    let segment =
        Segment::create_named(dir, base_offset, config, ctx.now_ms, crate::swap::CLEANED)?;
    let mut writer = CleanedWriter {
        segment,
        pending: Vec::new(),
        metas: Vec::new(),
        index_interval_bytes: config.index_interval_bytes,
    };
    let result = (|| {
        for source in group {
            let mut batches = SegmentBatches::new(source, 0);
            while let Some((meta, bytes)) = batches.next_batch()? {
                let keep_even_if_empty = meta.last_offset == last_offset;
                match clean_batch(bytes, ctx, txns, keep_even_if_empty, stats)
                    .map_err(|e| corrupt_records(source, meta.position, e))?
                {
                    Cleaned::Original => writer.push(bytes)?,
                    Cleaned::Rewritten(rebuilt) => writer.push(&rebuilt)?,
                    Cleaned::Dropped => {}
                }
            }
        }
        writer.flush_pending()?;
        let segment = &mut writer.segment;
        // As Kafka's cleaner does, the cleaned segment indexes the aborted transactions
        // whose markers stay for data of theirs, so read_committed fetches still filter
        // what remains of them; markers past the cleaned range keep their entries as is.
        let untouched = group
            .iter()
            .flat_map(|source| source.view.txn_entries())
            .filter(|entry| entry.last_offset > ctx.map.latest_offset());
        for entry in txns.take_retained_entries().into_iter().chain(untouched) {
            segment.append_aborted_txn(entry)?;
        }
        segment.on_become_inactive()?;
        if let Some(modified) = group
            .last()
            .and_then(|s| s.log().ok()?.metadata().ok()?.modified().ok())
        {
            segment.log()?.set_modified(modified)?;
        }
        segment.dirty = true;
        segment.flush()
    })();
    match result {
        Ok(()) => Ok(writer.segment),
        Err(e) => {
            drop(writer);
            let _ = crate::swap::remove_cleaned(dir, base_offset);
            Err(e)
        }
    }
}
