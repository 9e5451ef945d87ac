//! The time index (`.timeindex`): 12-byte entries of (largest timestamp so far, offset
//! relative to the segment base of the batch holding it). Timestamps strictly increase.

use std::path::PathBuf;

use crate::config::TIME_INDEX_ENTRY_BYTES;
use crate::index::{read_index_file, EntryFile};

pub(crate) struct TimeIndex {
    base_offset: i64,
    /// (timestamp ms, relative offset); timestamps strictly and offsets weakly increasing.
    entries: Vec<(i64, u32)>,
    file: EntryFile,
    max_entries: usize,
}

impl TimeIndex {
    pub(crate) fn create(
        path: PathBuf,
        base_offset: i64,
        max_entries: usize,
    ) -> std::io::Result<Self> {
        Ok(Self {
            base_offset,
            entries: Vec::new(),
            file: EntryFile::create(path)?,
            max_entries,
        })
    }

    /// Loads a time index written before a clean shutdown; `None` when it fails the sanity
    /// check (so the caller rebuilds it from the log).
    pub(crate) fn load(
        path: PathBuf,
        base_offset: i64,
        max_entries: usize,
        log_size_bytes: u64,
    ) -> std::io::Result<Option<Self>> {
        let Some(bytes) = read_index_file(&path, TIME_INDEX_ENTRY_BYTES, log_size_bytes)? else {
            return Ok(None);
        };
        let mut entries = Vec::with_capacity(bytes.len() / TIME_INDEX_ENTRY_BYTES as usize);
        for chunk in bytes.chunks_exact(TIME_INDEX_ENTRY_BYTES as usize) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let timestamp_ms = i64::from_be_bytes(ts);
            let relative = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            let increasing = entries
                .last()
                .is_none_or(|&(t, r)| timestamp_ms > t && relative >= r);
            if relative > i32::MAX as u32 || !increasing {
                return Ok(None);
            }
            entries.push((timestamp_ms, relative));
        }
        Ok(Some(Self {
            base_offset,
            entries,
            file: EntryFile::open_existing(path),
            max_entries,
        }))
    }

    /// Adds an entry when `timestamp_ms` is larger than the last one's.
    pub(crate) fn maybe_append(&mut self, timestamp_ms: i64, offset: i64) -> std::io::Result<()> {
        let Ok(relative) = u32::try_from(offset - self.base_offset) else {
            return Ok(());
        };
        if self
            .entries
            .last()
            .is_some_and(|&(t, r)| timestamp_ms <= t || relative < r)
        {
            return Ok(());
        }
        let mut entry = [0u8; TIME_INDEX_ENTRY_BYTES as usize];
        entry[..8].copy_from_slice(&timestamp_ms.to_be_bytes());
        entry[8..].copy_from_slice(&relative.to_be_bytes());
        let at = self.entries.len() as u64 * u64::from(TIME_INDEX_ENTRY_BYTES);
        self.file.write_at(&entry, at)?;
        self.entries.push((timestamp_ms, relative));
        Ok(())
    }

    /// The entry with the largest timestamp <= `target_ms`, or (-1, base offset) when none is.
    pub(crate) fn lookup(&self, target_ms: i64) -> (i64, i64) {
        let after = self.entries.partition_point(|&(t, _)| t <= target_ms);
        match after.checked_sub(1) {
            Some(i) => {
                let (t, r) = self.entries[i];
                (t, self.base_offset + i64::from(r))
            }
            None => (-1, self.base_offset),
        }
    }

    pub(crate) fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(t, r)| (t, self.base_offset + i64::from(r)))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub(crate) fn set_max_entries(&mut self, max_entries: usize) {
        self.max_entries = max_entries;
    }

    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync()
    }

    pub(crate) fn file_handle(&self) -> std::io::Result<std::sync::Arc<std::fs::File>> {
        self.file.handle()
    }

    pub(crate) fn set_path(&self, path: PathBuf) {
        self.file.set_path(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_increasing_timestamps_and_looks_up_lower_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.timeindex");
        let mut index = TimeIndex::create(path.clone(), 50, 10).unwrap();
        assert_eq!(index.lookup(1_000), (-1, 50));
        index.maybe_append(1_000, 55).unwrap();
        index.maybe_append(1_000, 56).unwrap(); // same timestamp: skipped
        index.maybe_append(900, 57).unwrap(); // older: skipped
        index.maybe_append(2_000, 60).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup(999), (-1, 50));
        assert_eq!(index.lookup(1_000), (1_000, 55));
        assert_eq!(index.lookup(1_999), (1_000, 55));
        assert_eq!(index.lookup(5_000), (2_000, 60));
        assert_eq!(index.last_entry(), Some((2_000, 60)));

        let loaded = TimeIndex::load(path.clone(), 50, 10, 1_000)
            .unwrap()
            .unwrap();
        assert_eq!(loaded.lookup(1_500), (1_000, 55));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
        std::fs::write(&path, [0u8; 13]).unwrap();
        assert!(TimeIndex::load(path, 50, 10, 1_000).unwrap().is_none());
    }
}
