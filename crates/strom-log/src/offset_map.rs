//! The cleaner's key => latest offset map over the dirty part of a log.
//!
//! Kafka stores 16-byte MD5 digests of keys in a fixed buffer; a digest
//! collision there silently drops a live record. This map keeps whole keys,
//! so it is exact, and bounds its memory by a byte budget instead
//! (`log.cleaner.dedupe.buffer.size`).

use std::collections::HashMap;

/// Rough per-entry cost beyond the key bytes: the boxed slice, the offset and
/// the hash table's slot.
const ENTRY_OVERHEAD_BYTES: usize = 48;

pub(crate) struct OffsetMap {
    offsets: HashMap<Box<[u8]>, i64>,
    bytes: usize,
    budget_bytes: usize,
    /// Last offset whose batch was fully added: records past it were not mapped.
    latest_offset: i64,
}

impl OffsetMap {
    pub(crate) fn new(budget_bytes: usize, first_dirty_offset: i64) -> Self {
        Self {
            offsets: HashMap::new(),
            bytes: 0,
            // An empty map always takes one batch, so every cleaning makes progress.
            budget_bytes: budget_bytes.max(1),
            latest_offset: first_dirty_offset - 1,
        }
    }

    /// Full once the budget is spent: callers stop before the next batch.
    pub(crate) fn is_full(&self) -> bool {
        self.bytes >= self.budget_bytes
    }

    /// Records `offset` as the latest for `key` (offsets arrive in increasing order).
    pub(crate) fn put(&mut self, key: &[u8], offset: i64) {
        if let Some(existing) = self.offsets.get_mut(key) {
            *existing = offset;
            return;
        }
        self.bytes += key.len() + ENTRY_OVERHEAD_BYTES;
        self.offsets.insert(key.into(), offset);
    }

    /// The latest mapped offset of `key`, -1 when the dirty part never has it.
    pub(crate) fn get(&self, key: &[u8]) -> i64 {
        self.offsets.get(key).copied().unwrap_or(-1)
    }

    pub(crate) fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    pub(crate) fn advance_latest_offset(&mut self, offset: i64) {
        self.latest_offset = self.latest_offset.max(offset);
    }

    pub(crate) fn len(&self) -> usize {
        self.offsets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_per_key_within_a_budget() {
        let mut map = OffsetMap::new(2 * (1 + ENTRY_OVERHEAD_BYTES), 10);
        assert_eq!(map.latest_offset(), 9);
        assert!(!map.is_full());
        map.put(b"a", 10);
        map.put(b"a", 12);
        assert!(!map.is_full());
        map.put(b"b", 13);
        assert!(map.is_full());
        assert_eq!((map.get(b"a"), map.get(b"b"), map.get(b"c")), (12, 13, -1));
        assert_eq!(map.len(), 2);
        map.advance_latest_offset(20);
        map.advance_latest_offset(15);
        assert_eq!(map.latest_offset(), 20);
    }

    #[test]
    fn a_zero_budget_still_takes_one_batch() {
        let map = OffsetMap::new(0, 0);
        assert!(!map.is_full());
    }
}
