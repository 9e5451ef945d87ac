//! The leader-epoch cache: for each leader epoch that wrote to the log, the offset of its first
//! batch. Followers find where their log diverges from the leader's with it
//! (OffsetForLeaderEpoch, KIP-101/KIP-279), and consumers check their position after a
//! leader change (KIP-320). Kept as Kafka keeps it, in `leader-epoch-checkpoint`.
//!
//! This module is the pure part: the entries and Kafka's rules for changing and querying
//! them. The log decides when to write the checkpoint.

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The first offset written in a leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Entries in increasing epoch and start offset order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Builds the cache from checkpointed entries, applying `assign`'s rules to each so a
    /// hand-edited or stale file still yields a monotonic cache.
    pub fn from_entries(entries: impl IntoIterator<Item = EpochEntry>) -> Self {
        let mut cache = Self::default();
        for entry in entries {
            cache.assign(entry.epoch, entry.start_offset);
        }
        cache
    }

    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest().map(|e| e.epoch)
    }

    pub fn earliest(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Records that `epoch` starts at `start_offset`. As in Kafka, a new entry replaces every
    /// entry it conflicts with (an epoch at least as new, or one starting at or after it).
    /// Returns whether the cache changed, i.e. whether the checkpoint must be written.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        let needed = self
            .latest()
            .is_none_or(|last| last.epoch != epoch || start_offset < last.start_offset);
        if !needed {
            return false;
        }
        while self
            .entries
            .last()
            .is_some_and(|last| last.epoch >= epoch || last.start_offset >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Removes the entries starting at or after `end_offset` (the log was cut there).
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log now starts at `start_offset`: entries starting at or before it collapse into
    /// the newest of them, moved to `start_offset`.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if below == 0 {
            return false;
        }
        let kept = EpochEntry {
            epoch: self.entries[below - 1].epoch,
            start_offset,
        };
        let changed = below > 1 || self.entries[0] != kept;
        self.entries.drain(..below - 1);
        self.entries[0] = kept;
        changed
    }

    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// Kafka's `endOffsetFor`: the largest epoch <= `requested` and the offset where the epoch
    /// after it starts (the log end offset for the latest epoch). Undefined (-1, -1) for an
    /// undefined epoch or one newer than every entry; for one older than every entry, the
    /// requested epoch and the first entry's start offset.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let Some(next) = self.entries.get(higher) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match higher.checked_sub(1) {
            Some(floor) => (self.entries[floor].epoch, next.start_offset),
            None => (requested, next.start_offset),
        }
    }

    /// The epoch that wrote `offset`, if the cache knows one.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let at_or_before = self.entries.partition_point(|e| e.start_offset <= offset);
        at_or_before.checked_sub(1).map(|i| self.entries[i].epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        LeaderEpochCache::from_entries(entries.iter().map(|&(epoch, start_offset)| EpochEntry {
            epoch,
            start_offset,
        }))
    }

    fn pairs(cache: &LeaderEpochCache) -> Vec<(i32, i64)> {
        cache
            .entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_keeps_the_cache_monotonic() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(0, 0));
        assert!(!c.assign(0, 5), "the same epoch later changes nothing");
        assert!(c.assign(2, 10));
        assert!(!c.assign(-1, 12), "batches without an epoch are ignored");
        assert_eq!(pairs(&c), vec![(0, 0), (2, 10)]);
        // An older epoch after a newer one replaces the conflicting entries.
        assert!(c.assign(1, 8));
        assert_eq!(pairs(&c), vec![(0, 0), (1, 8)]);
        // The same epoch with a smaller start moves it back.
        assert!(c.assign(1, 6));
        assert_eq!(pairs(&c), vec![(0, 0), (1, 6)]);
        // A newer epoch starting before an entry replaces that entry.
        assert!(c.assign(3, 3));
        assert_eq!(pairs(&c), vec![(0, 0), (3, 3)]);
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(1, 0), (3, 100), (5, 200)]);
        let log_end = 250;
        assert_eq!(c.end_offset_for(-1, log_end), (-1, -1));
        // The latest epoch ends at the log end.
        assert_eq!(c.end_offset_for(5, log_end), (5, 250));
        // A known older epoch ends where the next one starts.
        assert_eq!(c.end_offset_for(3, log_end), (3, 200));
        assert_eq!(c.end_offset_for(1, log_end), (1, 100));
        // An unknown epoch between two known ones: the floor epoch and the next start.
        assert_eq!(c.end_offset_for(2, log_end), (1, 100));
        assert_eq!(c.end_offset_for(4, log_end), (3, 200));
        // Older than everything: the requested epoch and the first start.
        assert_eq!(c.end_offset_for(0, log_end), (0, 0));
        // Newer than everything.
        assert_eq!(c.end_offset_for(6, log_end), (-1, -1));
        assert_eq!(
            LeaderEpochCache::default().end_offset_for(0, log_end),
            (-1, -1)
        );
    }

    #[test]
    fn truncation_from_either_end() {
        let mut c = cache(&[(1, 0), (3, 100), (5, 200)]);
        assert!(!c.truncate_from_end(201));
        assert!(c.truncate_from_end(200));
        assert_eq!(pairs(&c), vec![(1, 0), (3, 100)]);
        let mut c = cache(&[(1, 0), (3, 100), (5, 200)]);
        assert!(c.truncate_from_start(150));
        assert_eq!(pairs(&c), vec![(3, 150), (5, 200)]);
        assert!(!c.truncate_from_start(150));
        assert!(c.truncate_from_start(200));
        assert_eq!(pairs(&c), vec![(5, 200)]);
        assert!(!c.truncate_from_start(10));
        assert_eq!(c.epoch_for_offset(199), None);
        assert_eq!(c.epoch_for_offset(200), Some(5));
        assert!(c.clear());
        assert!(!c.clear());
    }

    #[test]
    fn epoch_for_offset_finds_the_writer() {
        let c = cache(&[(1, 0), (3, 100)]);
        assert_eq!(c.epoch_for_offset(0), Some(1));
        assert_eq!(c.epoch_for_offset(99), Some(1));
        assert_eq!(c.epoch_for_offset(100), Some(3));
        assert_eq!(c.epoch_for_offset(1_000), Some(3));
    }
}
