//! Idempotent and transactional producer state of one partition, as Kafka's
//! ProducerStateManager / ProducerAppendInfo keep it: per producer id its epoch, the
//! sequence ranges of its last five batches (so a retried batch is answered with its
//! original offsets and a gap is refused), the time of its last batch, the epoch of the
//! transaction coordinator that last wrote a marker for it, and the first offset of its
//! open transaction. Open transactions, and completed ones whose marker is not yet below
//! the high watermark, hold the last stable offset back.
//!
//! Pure bookkeeping: [`crate::PartitionLog`] stages a check of the batches it is about to
//! append ([`ProducerStateManager::prepare`]) and applies it once they are written, all
//! under its lock. Snapshots of the table are encoded and decoded here; the files are the
//! log's (`producer_snapshot`).

use std::collections::{BTreeMap, HashMap, VecDeque};

use thiserror::Error;

/// Batches remembered per producer: the most a producer keeps in flight.
pub const BATCHES_REMEMBERED: usize = 5;

/// Kafka's RecordBatch.NO_PRODUCER_EPOCH: a producer the log has no epoch for.
const NO_PRODUCER_EPOCH: i16 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// What the log knows of one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub epoch: i16,
    /// Oldest first, at most [`BATCHES_REMEMBERED`].
    pub batches: VecDeque<ProducerBatch>,
    /// Max timestamp of its last batch or marker: expiry counts from it.
    pub last_timestamp_ms: i64,
    /// Epoch of the coordinator of its last marker, -1 before any.
    pub coordinator_epoch: i32,
    /// First offset of its open transaction.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerStateEntry {
    fn empty(producer_id: i64) -> Self {
        Self {
            producer_id,
            epoch: NO_PRODUCER_EPOCH,
            batches: VecDeque::new(),
            last_timestamp_ms: -1,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
        }
    }

    /// Sequence of the last record of its last batch, -1 when none is remembered.
    pub fn last_sequence(&self) -> i32 {
        self.batches.back().map_or(-1, |b| b.last_sequence)
    }

    /// Last offset of its last batch, -1 when none is remembered.
    pub fn last_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }

    fn find_duplicate(&self, epoch: i16, first: i32, last: i32) -> Option<ProducerBatch> {
        if epoch != self.epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_sequence == first && b.last_sequence == last)
            .copied()
    }

    /// Kafka's maybeUpdateProducerEpoch: a new epoch forgets the old epoch's batches.
    fn set_epoch(&mut self, epoch: i16) {
        if self.epoch != epoch {
            self.batches.clear();
            self.epoch = epoch;
        }
    }

    fn add_batch(&mut self, batch: ProducerBatch) {
        if self.batches.len() == BATCHES_REMEMBERED {
            self.batches.pop_front();
        }
        self.batches.push_back(batch);
    }
}

/// A transaction marker (Kafka's EndTransactionMarker) as read from a control batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// The producer facts of one batch header, with its assigned offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatchInfo {
    pub producer_id: i64,
    pub epoch: i16,
    /// -1 for batches without sequences (coordinator-written transactional batches).
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp_ms: i64,
    pub transactional: bool,
    /// Set for control batches: `None` inside means an empty control batch (the cleaner
    /// removed its record), which changes nothing.
    pub control: Option<Option<TxnMarker>>,
}

/// Who wrote the batches, which decides how much is checked (Kafka's AppendOrigin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer's request, or a marker or coordinator batch written by this broker:
    /// every rule applies.
    Client,
    /// Batches already in the log (recovery, replay after a snapshot) or copied from a
    /// leader: nothing is refused, the state follows the log.
    Replay,
}

/// A transaction ended by a marker that held data (Kafka's CompletedTxn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
}

/// The checked effect of an append, applied with [`ProducerStateManager::apply`] once the
/// batches are written (and dropped if the write fails).
#[derive(Debug, Default)]
pub struct StagedAppend {
    entries: Vec<ProducerStateEntry>,
    pub completed: Vec<CompletedTxn>,
    /// A batch of the append is a retry of this earlier one: nothing is to be written.
    pub duplicate: Option<ProducerBatch>,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ProducerStateError {
    #[error("epoch of producer {producer_id} is {found}, which is smaller than the last seen epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        found: i16,
    },
    #[error(
        "out of order sequence number for producer {producer_id}: {found} (incoming seq. number), expected {expected}"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        found: i32,
    },
    #[error("expected a transactional write from producer {producer_id}, which has a transaction open since offset {first_offset}")]
    InvalidTxnState { producer_id: i64, first_offset: i64 },
    #[error("invalid coordinator epoch for producer {producer_id}: {found} (zombie), {current} (current)")]
    CoordinatorFenced {
        producer_id: i64,
        current: i32,
        found: i32,
    },
    #[error("this partition already tracks {limit} producer ids (strom.producer.ids.per.partition.max); producer {producer_id} cannot be added until idle producers expire (producer.id.expiration.ms)")]
    TooManyProducerIds { producer_id: i64, limit: usize },
}

/// The sequence after `sequence`; sequences wrap from i32::MAX to 0.
pub fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

/// The sequence of a batch's last record: `first` advanced by its last offset
/// delta, wrapping past i32::MAX to 0 as the producer's sequences do.
pub fn last_sequence_of_batch(first: i32, last_offset_delta: i32) -> i32 {
    if first < 0 {
        return -1;
    }
    first.wrapping_add(last_offset_delta) & i32::MAX
}

#[derive(Debug)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
    /// Open transactions: first offset -> producer id.
    ongoing: BTreeMap<i64, i64>,
    /// Completed transactions whose marker is not yet below the high watermark:
    /// first offset -> marker offset.
    unreplicated: BTreeMap<i64, i64>,
    /// `strom.producer.ids.per.partition.max`.
    max_producer_ids: usize,
}

impl Default for ProducerStateManager {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

impl ProducerStateManager {
    pub fn new(max_producer_ids: usize) -> Self {
        Self {
            producers: HashMap::new(),
            ongoing: BTreeMap::new(),
            unreplicated: BTreeMap::new(),
            max_producer_ids,
        }
    }

    pub fn set_max_producer_ids(&mut self, max: usize) {
        self.max_producer_ids = max;
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer, by id (DescribeProducers).
    pub fn entries(&self) -> Vec<ProducerStateEntry> {
        let mut all: Vec<_> = self.producers.values().cloned().collect();
        all.sort_by_key(|e| e.producer_id);
        all
    }

    /// First offset of the oldest open transaction, or of a completed one whose marker
    /// is not yet replicated (Kafka's firstUnstableOffset).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let ongoing = self.ongoing.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        match (ongoing, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The last stable offset recorded with an aborted transaction in the `.txnindex`:
    /// the first offset of the next open transaction of another producer, else the
    /// offset after the marker. Called before the completion is applied.
    pub fn last_stable_offset_after(&self, txn: &CompletedTxn) -> i64 {
        self.ongoing
            .iter()
            .find(|(_, &pid)| pid != txn.producer_id)
            .map_or(txn.last_offset + 1, |(&first, _)| first)
    }

    /// Checks `batches` (offsets already assigned) against the state and returns their
    /// effect without changing anything. A retry of a remembered batch comes back as
    /// `duplicate` (Kafka checks this before the other rules).
    pub fn prepare(
        &self,
        batches: &[ProducerBatchInfo],
        origin: AppendOrigin,
    ) -> Result<StagedAppend, ProducerStateError> {
        let mut staged = StagedAppend::default();
        let mut updated: Vec<ProducerStateEntry> = Vec::new();
        let mut new_ids = 0usize;
        for batch in batches {
            if batch.producer_id < 0 {
                continue;
            }
            let at = match updated
                .iter()
                .position(|e| e.producer_id == batch.producer_id)
            {
                Some(at) => at,
                None => {
                    let current = match self.producers.get(&batch.producer_id) {
                        Some(entry) => entry.clone(),
                        None => {
                            if origin == AppendOrigin::Client
                                && self.producers.len() + new_ids >= self.max_producer_ids
                            {
                                return Err(ProducerStateError::TooManyProducerIds {
                                    producer_id: batch.producer_id,
                                    limit: self.max_producer_ids,
                                });
                            }
                            new_ids += 1;
                            ProducerStateEntry::empty(batch.producer_id)
                        }
                    };
                    updated.push(current);
                    updated.len() - 1
                }
            };
            let entry = &mut updated[at];
            match batch.control {
                Some(marker) => {
                    if let Some(marker) = marker {
                        if let Some(done) = end_txn(entry, batch, marker, origin)? {
                            staged.completed.push(done);
                        }
                    }
                }
                None => {
                    if origin == AppendOrigin::Client && batch.first_sequence >= 0 {
                        if let Some(original) =
                            self.producers.get(&batch.producer_id).and_then(|e| {
                                e.find_duplicate(
                                    batch.epoch,
                                    batch.first_sequence,
                                    batch.last_sequence,
                                )
                            })
                        {
                            staged.duplicate = Some(original);
                            return Ok(staged);
                        }
                    }
                    append_data(entry, batch, origin)?;
                }
            }
        }
        staged.entries = updated;
        Ok(staged)
    }

    /// Applies a staged append whose batches are now in the log. Completed transactions
    /// stay unstable until the high watermark passes their marker.
    pub fn apply(&mut self, staged: StagedAppend, high_watermark: i64) {
        for entry in staged.entries {
            let before = self
                .producers
                .get(&entry.producer_id)
                .and_then(|e| e.current_txn_first_offset);
            if before != entry.current_txn_first_offset {
                if let Some(first) = before {
                    self.ongoing.remove(&first);
                }
                if let Some(first) = entry.current_txn_first_offset {
                    self.ongoing.insert(first, entry.producer_id);
                }
            }
            self.producers.insert(entry.producer_id, entry);
        }
        for txn in staged.completed {
            if txn.last_offset >= high_watermark {
                self.unreplicated.insert(txn.first_offset, txn.last_offset);
            }
        }
    }

    /// Kafka's onHighWatermarkUpdated: completed transactions whose marker is below it
    /// no longer hold the last stable offset.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        self.unreplicated.retain(|_, last| *last >= high_watermark);
    }

    /// Kafka's onLogStartOffsetIncremented: completed transactions wholly gone from the
    /// log are forgotten. Open ones stay (the log clamps the unstable offset to its start).
    pub fn on_log_start_offset_incremented(&mut self, log_start_offset: i64) {
        self.unreplicated
            .retain(|_, last| *last >= log_start_offset);
    }

    /// Producers idle for `expiration_ms` (from their last batch's timestamp) and without
    /// an open transaction are forgotten, as Kafka's removeExpiredProducers does. Returns
    /// how many went.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| !is_expired(e, now_ms, expiration_ms));
        before - self.producers.len()
    }

    /// Forgets everything (before a reload).
    pub fn clear(&mut self) {
        self.producers.clear();
        self.ongoing.clear();
        self.unreplicated.clear();
    }

    /// Loads the entries of a snapshot, leaving out expired producers.
    pub(crate) fn load_entries(
        &mut self,
        entries: Vec<ProducerStateEntry>,
        now_ms: i64,
        expiration_ms: i64,
    ) {
        self.clear();
        for entry in entries {
            if is_expired(&entry, now_ms, expiration_ms) {
                continue;
            }
            if let Some(first) = entry.current_txn_first_offset {
                self.ongoing.insert(first, entry.producer_id);
            }
            self.producers.insert(entry.producer_id, entry);
        }
    }

    /// Producer id => epoch of every producer `remove_expired` would keep at `now_ms`
    /// (Kafka's activeProducers, for the cleaner).
    pub(crate) fn active_epochs(&self, now_ms: i64, expiration_ms: i64) -> HashMap<i64, i16> {
        self.producers
            .values()
            .filter(|e| !is_expired(e, now_ms, expiration_ms))
            .map(|e| (e.producer_id, e.epoch))
            .collect()
    }

    /// Open transactions: (producer id, first offset), oldest first.
    pub fn open_transactions(&self) -> Vec<(i64, i64)> {
        self.ongoing
            .iter()
            .map(|(&first, &pid)| (pid, first))
            .collect()
    }
}

fn is_expired(entry: &ProducerStateEntry, now_ms: i64, expiration_ms: i64) -> bool {
    entry.current_txn_first_offset.is_none()
        && now_ms.saturating_sub(entry.last_timestamp_ms) >= expiration_ms
}

fn check_epoch(
    entry: &ProducerStateEntry,
    epoch: i16,
    origin: AppendOrigin,
) -> Result<(), ProducerStateError> {
    if origin == AppendOrigin::Client && epoch < entry.epoch {
        return Err(ProducerStateError::InvalidProducerEpoch {
            producer_id: entry.producer_id,
            current: entry.epoch,
            found: epoch,
        });
    }
    Ok(())
}

/// Kafka's checkSequence: a new epoch starts at 0 (unless the producer has no epoch
/// here, whose first batch may start anywhere); the same epoch continues from its
/// last sequence.
fn check_sequence(
    entry: &ProducerStateEntry,
    batch: &ProducerBatchInfo,
) -> Result<(), ProducerStateError> {
    let found = batch.first_sequence;
    let out_of_order = |expected| ProducerStateError::OutOfOrderSequence {
        producer_id: entry.producer_id,
        expected,
        found,
    };
    if batch.epoch != entry.epoch {
        if found != 0 && entry.epoch != NO_PRODUCER_EPOCH {
            return Err(out_of_order(0));
        }
        return Ok(());
    }
    let last = entry.last_sequence();
    // No remembered batch (only markers or coordinator batches so far): any start.
    if last < 0 {
        return Ok(());
    }
    if found != next_sequence(last) {
        return Err(out_of_order(next_sequence(last)));
    }
    Ok(())
}

fn append_data(
    entry: &mut ProducerStateEntry,
    batch: &ProducerBatchInfo,
    origin: AppendOrigin,
) -> Result<(), ProducerStateError> {
    check_epoch(entry, batch.epoch, origin)?;
    if origin == AppendOrigin::Client && batch.first_sequence >= 0 {
        check_sequence(entry, batch)?;
    }
    match entry.current_txn_first_offset {
        // Replayed batches are in the log already: the state follows them.
        Some(first_offset) if !batch.transactional && origin == AppendOrigin::Client => {
            return Err(ProducerStateError::InvalidTxnState {
                producer_id: entry.producer_id,
                first_offset,
            });
        }
        None if batch.transactional => entry.current_txn_first_offset = Some(batch.base_offset),
        _ => {}
    }
    entry.set_epoch(batch.epoch);
    if batch.first_sequence >= 0 {
        entry.add_batch(ProducerBatch {
            first_sequence: batch.first_sequence,
            last_sequence: batch.last_sequence,
            base_offset: batch.base_offset,
            last_offset: batch.last_offset,
        });
    }
    entry.last_timestamp_ms = batch.max_timestamp_ms;
    Ok(())
}

/// Kafka's appendEndTxnMarker.
fn end_txn(
    entry: &mut ProducerStateEntry,
    batch: &ProducerBatchInfo,
    marker: TxnMarker,
    origin: AppendOrigin,
) -> Result<Option<CompletedTxn>, ProducerStateError> {
    check_epoch(entry, batch.epoch, origin)?;
    if origin == AppendOrigin::Client && entry.coordinator_epoch > marker.coordinator_epoch {
        return Err(ProducerStateError::CoordinatorFenced {
            producer_id: entry.producer_id,
            current: entry.coordinator_epoch,
            found: marker.coordinator_epoch,
        });
    }
    let completed = entry
        .current_txn_first_offset
        .map(|first_offset| CompletedTxn {
            producer_id: entry.producer_id,
            first_offset,
            last_offset: batch.base_offset,
            aborted: !marker.commit,
        });
    entry.set_epoch(batch.epoch);
    entry.coordinator_epoch = marker.coordinator_epoch;
    entry.current_txn_first_offset = None;
    entry.last_timestamp_ms = batch.max_timestamp_ms;
    Ok(completed)
}

/// The snapshot file format, version 1, all integers big-endian:
/// `"STPS"` magic, u16 version, u32 CRC32C of everything after it, u32 entry count, then
/// per entry: i64 producer id, i16 epoch, i32 coordinator epoch, i64 last timestamp,
/// i64 open transaction's first offset (-1: none), u8 batch count, and per batch i32
/// first sequence, i32 last sequence, i64 base offset, i64 last offset.
pub(crate) mod snapshot_format {
    use super::*;

    const MAGIC: &[u8; 4] = b"STPS";
    const VERSION: u16 = 1;
    const HEADER_BYTES: usize = 4 + 2 + 4 + 4;
    const ENTRY_FIXED_BYTES: usize = 8 + 2 + 4 + 8 + 8 + 1;
    const BATCH_BYTES: usize = 4 + 4 + 8 + 8;

    pub(crate) fn encode(entries: &[&ProducerStateEntry]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            HEADER_BYTES + entries.len() * (ENTRY_FIXED_BYTES + BATCHES_REMEMBERED * BATCH_BYTES),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for e in entries {
            out.extend_from_slice(&e.producer_id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            out.extend_from_slice(&e.last_timestamp_ms.to_be_bytes());
            out.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_sequence.to_be_bytes());
                out.extend_from_slice(&b.last_sequence.to_be_bytes());
                out.extend_from_slice(&b.base_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out[10..]);
        out[6..10].copy_from_slice(&crc.to_be_bytes());
        out
    }

    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl Reader<'_> {
        fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
            let end = self.at + N;
            let slice = self.bytes.get(self.at..end).ok_or_else(|| {
                format!("snapshot ends at byte {} inside a field", self.bytes.len())
            })?;
            self.at = end;
            Ok(slice.try_into().expect("N bytes"))
        }
        fn i16(&mut self) -> Result<i16, String> {
            self.take().map(i16::from_be_bytes)
        }
        fn i32(&mut self) -> Result<i32, String> {
            self.take().map(i32::from_be_bytes)
        }
        fn i64(&mut self) -> Result<i64, String> {
            self.take().map(i64::from_be_bytes)
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<ProducerStateEntry>, String> {
        if bytes.len() < HEADER_BYTES || &bytes[..4] != MAGIC {
            return Err("not a producer state snapshot".into());
        }
        let version = u16::from_be_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(format!("unknown snapshot version {version}"));
        }
        let crc = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        if crc32c::crc32c(&bytes[10..]) != crc {
            return Err("snapshot CRC mismatch".into());
        }
        let count = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
        // The count is checked against the bytes before anything is allocated for it.
        if count > (bytes.len() - HEADER_BYTES) / ENTRY_FIXED_BYTES {
            return Err(format!(
                "snapshot claims {count} entries in {} bytes",
                bytes.len()
            ));
        }
        let mut reader = Reader {
            bytes,
            at: HEADER_BYTES,
        };
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let producer_id = reader.i64()?;
            let epoch = reader.i16()?;
            let coordinator_epoch = reader.i32()?;
            let last_timestamp_ms = reader.i64()?;
            let txn_first = reader.i64()?;
            let [batch_count] = reader.take::<1>()?;
            if usize::from(batch_count) > BATCHES_REMEMBERED {
                return Err(format!("snapshot entry holds {batch_count} batches"));
            }
            let mut batches = VecDeque::with_capacity(usize::from(batch_count));
            for _ in 0..batch_count {
                batches.push_back(ProducerBatch {
                    first_sequence: reader.i32()?,
                    last_sequence: reader.i32()?,
                    base_offset: reader.i64()?,
                    last_offset: reader.i64()?,
                });
            }
            entries.push(ProducerStateEntry {
                producer_id,
                epoch,
                batches,
                last_timestamp_ms,
                coordinator_epoch,
                current_txn_first_offset: (txn_first >= 0).then_some(txn_first),
            });
        }
        if reader.at != bytes.len() {
            return Err("trailing bytes after the snapshot's entries".into());
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pid: i64, epoch: i16, first: i32, last: i32, base: i64) -> ProducerBatchInfo {
        ProducerBatchInfo {
            producer_id: pid,
            epoch,
            first_sequence: first,
            last_sequence: last,
            base_offset: base,
            last_offset: base + i64::from(last - first),
            max_timestamp_ms: 1000,
            transactional: false,
            control: None,
        }
    }

    fn txn(pid: i64, epoch: i16, first: i32, last: i32, base: i64) -> ProducerBatchInfo {
        ProducerBatchInfo {
            transactional: true,
            ..data(pid, epoch, first, last, base)
        }
    }

    fn marker(
        pid: i64,
        epoch: i16,
        offset: i64,
        commit: bool,
        coordinator_epoch: i32,
    ) -> ProducerBatchInfo {
        ProducerBatchInfo {
            producer_id: pid,
            epoch,
            first_sequence: -1,
            last_sequence: -1,
            base_offset: offset,
            last_offset: offset,
            max_timestamp_ms: 1000,
            transactional: true,
            control: Some(Some(TxnMarker {
                commit,
                coordinator_epoch,
            })),
        }
    }

    fn append(
        m: &mut ProducerStateManager,
        b: ProducerBatchInfo,
    ) -> Result<StagedAppend, ProducerStateError> {
        let staged = m.prepare(&[b], AppendOrigin::Client)?;
        let dup = staged.duplicate;
        let completed = staged.completed.clone();
        if dup.is_none() {
            m.apply(staged, 0);
        }
        Ok(StagedAppend {
            entries: Vec::new(),
            completed,
            duplicate: dup,
        })
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut m = ProducerStateManager::default();
        assert_eq!(
            append(&mut m, data(7, 0, 0, 4, 100)).unwrap().duplicate,
            None
        );
        assert_eq!(
            append(&mut m, data(7, 0, 5, 9, 105)).unwrap().duplicate,
            None
        );
        let first = ProducerBatch {
            first_sequence: 0,
            last_sequence: 4,
            base_offset: 100,
            last_offset: 104,
        };
        assert_eq!(
            append(&mut m, data(7, 0, 0, 4, 110)).unwrap().duplicate,
            Some(first)
        );
    }

    #[test]
    fn gaps_and_stale_epochs_are_refused() {
        let mut m = ProducerStateManager::default();
        append(&mut m, data(7, 3, 0, 0, 0)).unwrap();
        assert_eq!(
            append(&mut m, data(7, 3, 2, 2, 1)).unwrap_err(),
            ProducerStateError::OutOfOrderSequence {
                producer_id: 7,
                expected: 1,
                found: 2
            }
        );
        assert_eq!(
            append(&mut m, data(7, 2, 1, 1, 1)).unwrap_err(),
            ProducerStateError::InvalidProducerEpoch {
                producer_id: 7,
                current: 3,
                found: 2
            }
        );
        assert!(matches!(
            append(&mut m, data(7, 4, 5, 5, 1)),
            Err(ProducerStateError::OutOfOrderSequence { expected: 0, .. })
        ));
        append(&mut m, data(7, 4, 0, 0, 1)).unwrap();
        // An unknown producer may start anywhere.
        append(&mut m, data(8, 0, 42, 42, 2)).unwrap();
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut m = ProducerStateManager::default();
        for i in 0..6 {
            append(&mut m, data(1, 0, i, i, i64::from(i))).unwrap();
        }
        assert!(matches!(
            append(&mut m, data(1, 0, 0, 0, 9)),
            Err(ProducerStateError::OutOfOrderSequence { expected: 6, .. })
        ));
        assert!(append(&mut m, data(1, 0, 1, 1, 9))
            .unwrap()
            .duplicate
            .is_some());
        append(&mut m, data(2, 0, i32::MAX - 1, i32::MAX, 10)).unwrap();
        append(&mut m, data(2, 0, 0, 3, 12)).unwrap();
        assert_eq!(last_sequence_of_batch(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn transactions_open_end_and_hold_the_unstable_offset() {
        let mut m = ProducerStateManager::default();
        append(&mut m, txn(1, 0, 0, 1, 10)).unwrap();
        append(&mut m, txn(1, 0, 2, 2, 12)).unwrap();
        append(&mut m, txn(2, 0, 0, 0, 13)).unwrap();
        assert_eq!(m.first_unstable_offset(), Some(10));
        assert_eq!(
            append(&mut m, data(1, 0, 3, 3, 14)).unwrap_err(),
            ProducerStateError::InvalidTxnState {
                producer_id: 1,
                first_offset: 10
            }
        );
        let staged = m
            .prepare(&[marker(1, 0, 14, false, 5)], AppendOrigin::Client)
            .unwrap();
        let done = staged.completed[0];
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 14,
                aborted: true
            }
        );
        assert_eq!(m.last_stable_offset_after(&done), 13);
        m.apply(staged, 14);
        // The marker is not below the high watermark yet.
        assert_eq!(m.first_unstable_offset(), Some(10));
        m.on_high_watermark_updated(15);
        assert_eq!(m.first_unstable_offset(), Some(13));
        assert_eq!(
            append(&mut m, marker(1, 0, 15, true, 4)).unwrap_err(),
            ProducerStateError::CoordinatorFenced {
                producer_id: 1,
                current: 5,
                found: 4
            }
        );
        assert!(matches!(
            append(&mut m, marker(2, -1, 15, true, 5)),
            Err(ProducerStateError::InvalidProducerEpoch { .. })
        ));
        let done = append(&mut m, marker(2, 0, 15, true, 5)).unwrap().completed;
        assert_eq!(done.len(), 1);
        assert!(!done[0].aborted);
        m.on_high_watermark_updated(16);
        assert_eq!(m.first_unstable_offset(), None);
        // Coordinator batches (sequence -1) open a transaction without sequence checks.
        append(&mut m, txn(3, 0, -1, -1, 16)).unwrap();
        append(&mut m, txn(3, 0, -1, -1, 17)).unwrap();
        assert_eq!(m.open_transactions(), vec![(3, 16)]);
    }

    #[test]
    fn expiry_spares_open_transactions_and_the_bound_counts_new_ids() {
        let mut m = ProducerStateManager::new(2);
        append(&mut m, data(1, 0, 0, 0, 0)).unwrap();
        append(&mut m, txn(2, 0, 0, 0, 1)).unwrap();
        assert_eq!(
            append(&mut m, data(3, 0, 0, 0, 2)).unwrap_err(),
            ProducerStateError::TooManyProducerIds {
                producer_id: 3,
                limit: 2
            }
        );
        // Known producers still append.
        append(&mut m, data(1, 0, 1, 1, 2)).unwrap();
        assert_eq!(m.remove_expired(1000 + 99, 100), 0);
        assert_eq!(m.remove_expired(1000 + 100, 100), 1);
        assert!(m.get(1).is_none() && m.get(2).is_some());
        append(&mut m, data(3, 0, 0, 0, 3)).unwrap();
    }

    #[test]
    fn snapshots_round_trip_and_refuse_corruption() {
        let mut m = ProducerStateManager::default();
        for i in 0..7 {
            append(&mut m, data(1, 2, i, i, i64::from(i))).unwrap();
        }
        append(&mut m, txn(9, 0, 0, 0, 20)).unwrap();
        let entries = m.entries();
        let bytes = snapshot_format::encode(&entries.iter().collect::<Vec<_>>());
        assert_eq!(snapshot_format::decode(&bytes).unwrap(), entries);
        for at in [0, 5, 8, 20, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(snapshot_format::decode(&bad).is_err(), "flip at {at}");
        }
        assert!(snapshot_format::decode(&bytes[..bytes.len() - 3]).is_err());
        let mut loaded = ProducerStateManager::default();
        loaded.load_entries(snapshot_format::decode(&bytes).unwrap(), 1000, 86_400_000);
        assert_eq!(loaded.entries(), entries);
        assert_eq!(loaded.first_unstable_offset(), Some(20));
    }
}
