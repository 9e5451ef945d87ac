//! What the cleaner knows of transactions while it walks a log in offset order, as
//! Kafka's CleanedTransactionMetadata: which data batches belong to aborted
//! transactions (removed, and never mapped), and which markers still guard data of
//! their transaction (kept) or guard none any more (removable once their delete
//! horizon has passed).

use std::collections::{HashMap, HashSet, VecDeque};

use strom_wire::batch::BatchHeader;
use strom_wire::record::{parse_records, records_section};

use crate::txn_index::TxnIndexEntry;

/// A control record's type, from its key (i16 version, i16 type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlKind {
    Abort,
    Commit,
    /// Any other control record (leader change, snapshot markers...): always kept.
    Other,
}

/// The type of a control batch's first record; `None` for an empty control batch (one
/// already cleaned down to its header).
pub(crate) fn control_kind(batch: &[u8]) -> Result<Option<ControlKind>, String> {
    let header = BatchHeader::new(batch).map_err(|e| e.to_string())?;
    if header.records_count() <= 0 {
        return Ok(None);
    }
    // Control batches hold one small record; anything inflating further is corrupt.
    let section = records_section(batch, 1 << 20).map_err(|e| e.to_string())?;
    let records = parse_records(&section, header.records_count()).map_err(|e| e.to_string())?;
    let Some(record) = records.first() else {
        return Ok(None);
    };
    match record.key() {
        Some(key) if key.len() >= 4 => Ok(Some(match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlKind::Abort,
            1 => ControlKind::Commit,
            _ => ControlKind::Other,
        })),
        _ => Err("control record key shorter than 4 bytes".into()),
    }
}

/// An aborted transaction reached by the walk, before its marker.
struct AbortedInProgress {
    entry: TxnIndexEntry,
    /// A data batch of it was read (and is removed, or kept empty).
    data_seen: bool,
}

pub(crate) struct CleanedTransactions {
    /// Aborted transactions not reached yet, by first offset.
    pending: VecDeque<TxnIndexEntry>,
    ongoing_aborted: HashMap<i64, AbortedInProgress>,
    /// Producers with a committed (or not aborted) transaction whose data was read.
    ongoing_committed: HashSet<i64>,
    /// `.txnindex` entries of the aborted transactions whose marker stays because data
    /// of theirs was read, in marker order.
    retained_entries: Vec<TxnIndexEntry>,
}

impl CleanedTransactions {
    /// `aborted`: every `.txnindex` entry of the log (their order does not matter).
    pub(crate) fn new(mut aborted: Vec<TxnIndexEntry>) -> Self {
        aborted.sort_by_key(|e| (e.first_offset, e.producer_id, e.last_offset));
        aborted.dedup();
        Self {
            pending: aborted.into(),
            ongoing_aborted: HashMap::new(),
            ongoing_committed: HashSet::new(),
            retained_entries: Vec::new(),
        }
    }

    fn reach(&mut self, offset: i64) {
        while self
            .pending
            .front()
            .is_some_and(|e| e.first_offset <= offset)
        {
            let entry = self.pending.pop_front().expect("front exists");
            self.ongoing_aborted
                .entry(entry.producer_id)
                .or_insert(AbortedInProgress {
                    entry,
                    data_seen: false,
                });
        }
    }

    /// A data batch was read; true when it belongs to an aborted transaction.
    pub(crate) fn on_data_batch(&mut self, header: &BatchHeader<'_>) -> bool {
        self.reach(header.last_offset());
        if !header.is_transactional() {
            return false;
        }
        match self.ongoing_aborted.get_mut(&header.producer_id()) {
            Some(aborted) => {
                aborted.data_seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(header.producer_id());
                false
            }
        }
    }

    /// A control batch was read; true when it may go (no data of its transaction was
    /// read, or it is already empty). A kept abort marker keeps its `.txnindex` entry.
    pub(crate) fn on_control_batch(
        &mut self,
        header: &BatchHeader<'_>,
        kind: Option<ControlKind>,
    ) -> bool {
        self.reach(header.last_offset());
        let producer_id = header.producer_id();
        match kind {
            None => true,
            Some(ControlKind::Abort) => match self.ongoing_aborted.remove(&producer_id) {
                Some(aborted) if aborted.data_seen => {
                    self.retained_entries.push(aborted.entry);
                    false
                }
                _ => true,
            },
            Some(ControlKind::Commit) => !self.ongoing_committed.remove(&producer_id),
            Some(ControlKind::Other) => false,
        }
    }

    /// The entries retained since the last call.
    pub(crate) fn take_retained_entries(&mut self) -> Vec<TxnIndexEntry> {
        std::mem::take(&mut self.retained_entries)
    }
}
