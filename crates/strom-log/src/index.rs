//! The sparse offset index (`.index`): 8-byte entries of (offset relative to the segment base,
//! file position of the batch whose last offset that is). Entries live in memory and are
//! appended to the file as they are made; the file is only read back after a clean shutdown.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::config::OFFSET_INDEX_ENTRY_BYTES;
use crate::file_cache::{self, open_read_write, CachedFile};

/// An append-only file of fixed-size entries, shared by both index kinds. Its descriptor
/// lives in the process's file cache: inactive segments' indexes are rarely written.
pub(crate) struct EntryFile {
    file: CachedFile,
}

impl EntryFile {
    /// Opens `path` for writing, emptying it: the caller rewrites the entries it trusts.
    pub(crate) fn create(path: PathBuf) -> std::io::Result<Self> {
        let file = open_read_write(&path, true)?;
        Ok(Self {
            file: CachedFile::opened(file_cache::global(), path, file)?,
        })
    }

    /// An existing file whose entries the caller already read and validated; opened when
    /// first written.
    pub(crate) fn open_existing(path: PathBuf) -> Self {
        Self {
            file: CachedFile::closed(file_cache::global(), path),
        }
    }

    pub(crate) fn write_at(&self, bytes: &[u8], position: u64) -> std::io::Result<()> {
        self.file.get()?.write_all_at(bytes, position)
    }

    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.get()?.sync_data()
    }

    /// The open file, for an fsync elsewhere.
    pub(crate) fn handle(&self) -> std::io::Result<Arc<File>> {
        self.file.get()
    }

    /// Records the file's new name after a rename by path.
    pub(crate) fn set_path(&self, path: PathBuf) {
        self.file.set_path(path);
    }
}

/// Reads a whole index file if its length is a multiple of `entry_bytes` and at most
/// `max_len` bytes (an index is never larger than its log); `None` means "rebuild it".
pub(crate) fn read_index_file(
    path: &Path,
    entry_bytes: u32,
    max_len: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if len % u64::from(entry_bytes) != 0 || len > max_len {
        return Ok(None);
    }
    let mut bytes = vec![0u8; len as usize];
    File::open(path)?.read_exact_at(&mut bytes, 0)?;
    Ok(Some(bytes))
}

/// (relative offset, position), both strictly increasing. Shared with the segment's readers,
/// who hold the lock only for a binary search; the file is written outside it.
pub(crate) type SharedEntries = Arc<RwLock<Vec<(u32, u32)>>>;

pub(crate) struct OffsetIndex {
    base_offset: i64,
    entries: SharedEntries,
    file: EntryFile,
    max_entries: usize,
}

/// The entry with the largest offset <= `target`, or (base offset, 0) when none is.
pub(crate) fn lookup_entry(
    entries: &RwLock<Vec<(u32, u32)>>,
    base_offset: i64,
    target: i64,
) -> (i64, u32) {
    let Some(relative) = target.checked_sub(base_offset).filter(|r| *r >= 0) else {
        return (base_offset, 0);
    };
    let relative = u32::try_from(relative).unwrap_or(u32::MAX);
    let entries = entries.read().unwrap_or_else(|p| p.into_inner());
    let after = entries.partition_point(|&(r, _)| r <= relative);
    match after.checked_sub(1) {
        Some(i) => {
            let (r, p) = entries[i];
            (base_offset + i64::from(r), p)
        }
        None => (base_offset, 0),
    }
}

impl OffsetIndex {
    pub(crate) fn create(
        path: PathBuf,
        base_offset: i64,
        max_entries: usize,
    ) -> std::io::Result<Self> {
        Ok(Self {
            base_offset,
            entries: SharedEntries::default(),
            file: EntryFile::create(path)?,
            max_entries,
        })
    }

    /// Loads an index written before a clean shutdown. `None` when it fails the sanity check
    /// (not a whole number of entries, not increasing, or pointing past `log_size_bytes`).
    pub(crate) fn load(
        path: PathBuf,
        base_offset: i64,
        max_entries: usize,
        log_size_bytes: u64,
    ) -> std::io::Result<Option<Self>> {
        let Some(bytes) = read_index_file(&path, OFFSET_INDEX_ENTRY_BYTES, log_size_bytes)? else {
            return Ok(None);
        };
        let mut entries = Vec::with_capacity(bytes.len() / OFFSET_INDEX_ENTRY_BYTES as usize);
        for chunk in bytes.chunks_exact(OFFSET_INDEX_ENTRY_BYTES as usize) {
            let relative = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let position = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            let increasing = entries
                .last()
                .is_none_or(|&(r, p)| relative > r && position > p);
            if relative > i32::MAX as u32 || u64::from(position) >= log_size_bytes || !increasing {
                return Ok(None);
            }
            entries.push((relative, position));
        }
        Ok(Some(Self {
            base_offset,
            entries: Arc::new(RwLock::new(entries)),
            file: EntryFile::open_existing(path),
            max_entries,
        }))
    }

    /// Adds an entry; ignored unless both offset and position are past the last entry.
    pub(crate) fn append(&mut self, offset: i64, position: u32) -> std::io::Result<()> {
        let Ok(relative) = u32::try_from(offset - self.base_offset) else {
            return Ok(());
        };
        let len = {
            let entries = self.read_entries();
            if entries
                .last()
                .is_some_and(|&(r, p)| relative <= r || position <= p)
            {
                return Ok(());
            }
            entries.len()
        };
        let mut entry = [0u8; OFFSET_INDEX_ENTRY_BYTES as usize];
        entry[..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..].copy_from_slice(&position.to_be_bytes());
        let at = len as u64 * u64::from(OFFSET_INDEX_ENTRY_BYTES);
        self.file.write_at(&entry, at)?;
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((relative, position));
        Ok(())
    }

    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, Vec<(u32, u32)>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The entries, for the segment's readers.
    pub(crate) fn shared_entries(&self) -> SharedEntries {
        self.entries.clone()
    }

    /// The entry with the largest offset <= `target`, or (base offset, 0) when none is.
    pub(crate) fn lookup(&self, target: i64) -> (i64, u32) {
        lookup_entry(&self.entries, self.base_offset, target)
    }

    #[cfg(test)]
    pub(crate) fn last_entry(&self) -> Option<(i64, u32)> {
        self.read_entries()
            .last()
            .map(|&(r, p)| (self.base_offset + i64::from(r), p))
    }

    pub(crate) fn len(&self) -> usize {
        self.read_entries().len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.len() >= self.max_entries
    }

    pub(crate) fn set_max_entries(&mut self, max_entries: usize) {
        self.max_entries = max_entries;
    }

    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync()
    }

    pub(crate) fn file_handle(&self) -> std::io::Result<Arc<File>> {
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
    fn lookup_finds_largest_entry_not_above_target() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.index");
        let mut index = OffsetIndex::create(path.clone(), 100, 10).unwrap();
        assert_eq!(index.lookup(150), (100, 0));
        index.append(109, 4200).unwrap();
        index.append(120, 8400).unwrap();
        index.append(115, 9000).unwrap(); // not increasing: ignored
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup(99), (100, 0));
        assert_eq!(index.lookup(108), (100, 0));
        assert_eq!(index.lookup(109), (109, 4200));
        assert_eq!(index.lookup(119), (109, 4200));
        assert_eq!(index.lookup(120), (120, 8400));
        assert_eq!(index.lookup(i64::MAX), (120, 8400));

        let loaded = OffsetIndex::load(path.clone(), 100, 10, 10_000)
            .unwrap()
            .unwrap();
        assert_eq!(loaded.last_entry(), Some((120, 8400)));
        assert_eq!(loaded.lookup(110), (109, 4200));
        // A position beyond the log fails the sanity check.
        assert!(OffsetIndex::load(path.clone(), 100, 10, 8400)
            .unwrap()
            .is_none());
        std::fs::write(&path, [0u8; 7]).unwrap();
        assert!(OffsetIndex::load(path, 100, 10, 10_000).unwrap().is_none());
    }

    #[test]
    fn full_when_max_entries_reached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.index");
        let mut index = OffsetIndex::create(path.clone(), 0, 2).unwrap();
        index.append(1, 10).unwrap();
        assert!(!index.is_full());
        index.append(2, 20).unwrap();
        assert!(index.is_full());
        assert_eq!(
            std::fs::read(&path).unwrap(),
            [0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 20]
        );
    }
}
