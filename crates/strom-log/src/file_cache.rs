//! A bounded set of open segment files shared by every log of the process, so that the
//! number of descriptors does not grow with partitions × segments × 3.
//!
//! Each segment file is a [`CachedFile`]: its path and an id. Whoever needs the file asks
//! for it and gets an `Arc<File>`; the cache keeps up to its capacity of them open and
//! closes the least recently used beyond that (a clock sweep), while a caller holding an
//! `Arc<File>` keeps that descriptor open for as long as it needs it (a fetch being sent,
//! a scan). A closed file is reopened by its path on the next use. The reopened file must
//! be the one first opened: its device and inode are checked, and whoever renames or
//! deletes a segment file that readers may still use does it through the [`CachedFile`]
//! (`rename`, or `pin` first, which keeps a descriptor until the last reader is done).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

/// The capacity when nothing sets one: what a default 1024-descriptor process can afford.
const DEFAULT_CAPACITY: usize = 512;
/// Never fewer than this many: an active segment's three files plus a reader's.
const MIN_CAPACITY: usize = 8;

static GLOBAL: LazyLock<Arc<FileCache>> = LazyLock::new(|| FileCache::new(DEFAULT_CAPACITY));
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Sets how many segment files the process keeps open at most (`strom.log.max.open.files`).
/// Files already open beyond a lowered capacity close as others open.
pub fn set_max_open_files(capacity: usize) {
    GLOBAL.set_capacity(capacity);
}

/// How many segment files the cache holds open now (not counting those only readers hold).
pub fn open_file_count() -> usize {
    GLOBAL.len()
}

pub(crate) fn global() -> Arc<FileCache> {
    GLOBAL.clone()
}

struct Slot {
    file: Arc<File>,
    /// Used since the clock hand last passed.
    referenced: bool,
}

#[derive(Default)]
struct Slots {
    open: HashMap<u64, Slot>,
    /// The clock: ids in insertion order; ids no longer open are skipped and pruned.
    ring: VecDeque<u64>,
}

pub(crate) struct FileCache {
    slots: Mutex<Slots>,
    capacity: AtomicUsize,
}

impl FileCache {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Mutex::default(),
            capacity: AtomicUsize::new(capacity.max(MIN_CAPACITY)),
        })
    }

    fn set_capacity(&self, capacity: usize) {
        self.capacity
            .store(capacity.max(MIN_CAPACITY), Ordering::Relaxed);
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: u64) -> Option<Arc<File>> {
        let mut slots = self.lock();
        let slot = slots.open.get_mut(&id)?;
        slot.referenced = true;
        Some(slot.file.clone())
    }

    /// Adds an open file, closing the least recently used ones beyond the capacity.
    fn insert(&self, id: u64, file: Arc<File>) {
        let capacity = self.capacity.load(Ordering::Relaxed);
        let mut evicted = Vec::new();
        {
            let mut slots = self.lock();
            while slots.open.len() >= capacity {
                let Some(candidate) = slots.ring.pop_front() else {
                    break;
                };
                match slots.open.get_mut(&candidate) {
                    None => {}
                    Some(slot) if slot.referenced => {
                        slot.referenced = false;
                        slots.ring.push_back(candidate);
                    }
                    Some(_) => evicted.extend(slots.open.remove(&candidate)),
                }
            }
            if slots
                .open
                .insert(
                    id,
                    Slot {
                        file,
                        referenced: false,
                    },
                )
                .is_none()
            {
                slots.ring.push_back(id);
            }
            if slots.ring.len() > 2 * slots.open.len() + 64 {
                let Slots { open, ring } = &mut *slots;
                let mut seen = HashSet::with_capacity(open.len());
                ring.retain(|id| open.contains_key(id) && seen.insert(*id));
            }
        }
        // Closing is a system call: not under the lock.
        drop(evicted);
    }

    fn remove(&self, id: u64) -> Option<Arc<File>> {
        let removed = self.lock().open.remove(&id);
        removed.map(|slot| slot.file)
    }
}

struct FileState {
    path: PathBuf,
    /// Which file it is, checked when it is reopened.
    identity: Option<Identity>,
    /// Held outside the cache: the file's name is about to go or change under it.
    pinned: Option<Arc<File>>,
}

/// One segment file, opened through the cache. Dropping it closes the cache's descriptor.
pub(crate) struct CachedFile {
    id: u64,
    cache: Arc<FileCache>,
    state: Mutex<FileState>,
}

/// Device, inode and birth time (where the file system keeps one: inode numbers are
/// reused at once).
type Identity = (u64, u64, Option<std::time::SystemTime>);

fn identity(file: &File) -> std::io::Result<Identity> {
    let meta = file.metadata()?;
    Ok((meta.dev(), meta.ino(), meta.created().ok()))
}

impl CachedFile {
    /// A file that was just opened (or created) at `path`.
    pub(crate) fn opened(
        cache: Arc<FileCache>,
        path: PathBuf,
        file: File,
    ) -> std::io::Result<Self> {
        let identity = identity(&file)?;
        let cached = Self::closed(cache, path);
        cached.lock().identity = Some(identity);
        cached.cache.insert(cached.id, Arc::new(file));
        Ok(cached)
    }

    /// An existing file at `path`, opened when first used.
    pub(crate) fn closed(cache: Arc<FileCache>, path: PathBuf) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cache,
            state: Mutex::new(FileState {
                path,
                identity: None,
                pinned: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, FileState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open file, reopened by its path if the cache closed it.
    pub(crate) fn get(&self) -> std::io::Result<Arc<File>> {
        let mut state = self.lock();
        if let Some(file) = &state.pinned {
            return Ok(file.clone());
        }
        if let Some(file) = self.cache.get(self.id) {
            return Ok(file);
        }
        // Opened under the file's own lock: a rename cannot slip in between, and two
        // readers do not both open it.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&state.path)?;
        let found = identity(&file)?;
        match state.identity {
            Some(expected) if expected != found => {
                return Err(std::io::Error::other(format!(
                    "{} was replaced by another file",
                    state.path.display()
                )))
            }
            _ => state.identity = Some(found),
        }
        let file = Arc::new(file);
        self.cache.insert(self.id, file.clone());
        Ok(file)
    }

    pub(crate) fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Renames the file on disk and here, atomically for anyone reopening it.
    pub(crate) fn rename(&self, to: PathBuf) -> std::io::Result<()> {
        let mut state = self.lock();
        std::fs::rename(&state.path, &to)?;
        state.path = to;
        Ok(())
    }

    /// Records where the file now is, when it was renamed by path while pinned.
    pub(crate) fn set_path(&self, to: PathBuf) {
        self.lock().path = to;
    }

    /// Keeps a descriptor outside the cache from now on, for files about to be deleted or
    /// renamed by path while readers may still use them.
    pub(crate) fn pin(&self) -> std::io::Result<()> {
        let file = self.get()?;
        self.lock().pinned = Some(file);
        Ok(())
    }

    /// Lets the cache manage the descriptor again (the file has its final name).
    pub(crate) fn unpin(&self) {
        let pinned = self.lock().pinned.take();
        if let Some(file) = pinned {
            self.cache.insert(self.id, file);
        }
    }

    #[cfg(test)]
    pub(crate) fn is_cached(&self) -> bool {
        self.cache.lock().open.contains_key(&self.id)
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        drop(self.cache.remove(self.id));
    }
}

impl std::fmt::Debug for CachedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedFile")
            .field("path", &self.path())
            .finish()
    }
}

/// Opens `path` read-write, creating and emptying it when `create`.
pub(crate) fn open_read_write(path: &Path, create: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(create)
        .open(path)
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::os::unix::fs::FileExt;

    use super::*;

    fn read_all(file: &CachedFile) -> Vec<u8> {
        let file = file.get().unwrap();
        let mut bytes = vec![0u8; file.metadata().unwrap().len() as usize];
        file.read_exact_at(&mut bytes, 0).unwrap();
        bytes
    }

    fn create(cache: &Arc<FileCache>, path: PathBuf, content: &[u8]) -> CachedFile {
        let file = open_read_write(&path, true).unwrap();
        file.write_all_at(content, 0).unwrap();
        CachedFile::opened(cache.clone(), path, file).unwrap()
    }

    #[test]
    fn holds_at_most_its_capacity_and_reopens_identical_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_CAPACITY);
        let files: Vec<CachedFile> = (0..40)
            .map(|i| {
                let content = format!("file {i} ").repeat(i + 1);
                create(
                    &cache,
                    dir.path().join(format!("{i}.log")),
                    content.as_bytes(),
                )
            })
            .collect();
        assert_eq!(cache.len(), MIN_CAPACITY);
        assert!(!files[0].is_cached());
        for round in 0..3 {
            for (i, file) in files.iter().enumerate() {
                assert_eq!(
                    read_all(file),
                    format!("file {i} ").repeat(i + 1).as_bytes(),
                    "file {i}, round {round}"
                );
                assert!(cache.len() <= MIN_CAPACITY);
            }
        }
        // Dropping a file closes the cache's descriptor.
        let open = cache.len();
        drop(files);
        assert!(open > 0);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn recently_used_files_stay_open() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_CAPACITY);
        let hot = create(&cache, dir.path().join("hot.log"), b"hot");
        for i in 0..100 {
            let cold = create(&cache, dir.path().join(format!("{i}.log")), b"cold");
            read_all(&hot);
            drop(cold);
            assert!(hot.is_cached(), "evicted at {i}");
        }
    }

    #[test]
    fn a_held_file_reads_intact_bytes_across_eviction_and_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_CAPACITY);
        let path = dir.path().join("a.log");
        let file = create(&cache, path.clone(), b"the bytes of a");
        let held = file.get().unwrap();
        let others: Vec<CachedFile> = (0..2 * MIN_CAPACITY)
            .map(|i| create(&cache, dir.path().join(format!("{i}.log")), b"x"))
            .collect();
        assert!(!file.is_cached());
        std::fs::remove_file(&path).unwrap();
        let mut bytes = [0u8; 14];
        held.read_exact_at(&mut bytes, 0).unwrap();
        assert_eq!(&bytes, b"the bytes of a");
        // Without a holder or a pin, the name no longer opens it.
        drop(held);
        assert_eq!(file.get().unwrap_err().kind(), ErrorKind::NotFound);
        drop(others);
    }

    #[test]
    fn a_pinned_file_survives_eviction_deletion_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_CAPACITY);
        let path = dir.path().join("a.log");
        let file = create(&cache, path.clone(), b"pinned");
        file.pin().unwrap();
        let _others: Vec<CachedFile> = (0..2 * MIN_CAPACITY)
            .map(|i| create(&cache, dir.path().join(format!("{i}.log")), b"x"))
            .collect();
        std::fs::rename(&path, dir.path().join("a.log.swap")).unwrap();
        assert_eq!(read_all(&file), b"pinned");
        file.set_path(dir.path().join("a.log.swap"));
        file.unpin();
        let _more: Vec<CachedFile> = (0..2 * MIN_CAPACITY)
            .map(|i| create(&cache, dir.path().join(format!("more{i}.log")), b"x"))
            .collect();
        assert!(!file.is_cached());
        assert_eq!(read_all(&file), b"pinned");
    }

    #[test]
    fn a_renamed_file_is_reopened_by_its_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_CAPACITY);
        let path = dir.path().join("a.log");
        let file = create(&cache, path.clone(), b"renamed");
        file.rename(dir.path().join("a.log.deleted")).unwrap();
        let _others: Vec<CachedFile> = (0..2 * MIN_CAPACITY)
            .map(|i| create(&cache, dir.path().join(format!("{i}.log")), b"x"))
            .collect();
        assert!(!file.is_cached());
        assert_eq!(read_all(&file), b"renamed");
        assert_eq!(file.path(), dir.path().join("a.log.deleted"));
    }

    #[test]
    fn another_file_at_the_same_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(MIN_CAPACITY);
        let path = dir.path().join("a.log");
        let file = create(&cache, path.clone(), b"original");
        let _others: Vec<CachedFile> = (0..2 * MIN_CAPACITY)
            .map(|i| create(&cache, dir.path().join(format!("{i}.log")), b"x"))
            .collect();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"impostor").unwrap();
        let err = file.get().unwrap_err();
        assert!(
            err.to_string().contains("replaced by another file"),
            "{err}"
        );
    }
}
