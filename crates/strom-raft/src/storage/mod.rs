//! Durable state of a node: the raft log, the vote, the last purged log id and the latest
//! snapshot. [`Backend`] is what a medium provides (files or memory); [`LogStore`] is
//! openraft's log storage over it, serving reads from an in-memory copy of the log (the
//! snapshot policy keeps the log short).

mod file;
mod mem;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    AnyError, EmptyNode, LogState, RaftLogReader, SnapshotMeta, StorageError, StorageIOError, Vote,
};
use serde::{Deserialize, Serialize};

pub use file::{FaultInjector, FileStorage, METADATA_LOG_DIR};
pub use mem::MemStorage;

use crate::{Entry, LogId, NodeId, TypeConfig};

/// Where a [`crate::Quorum`] keeps its state.
pub enum Storage {
    File(Box<FileStorage>),
    Mem(MemStorage),
}

impl From<FileStorage> for Storage {
    fn from(storage: FileStorage) -> Self {
        Storage::File(Box::new(storage))
    }
}

impl From<MemStorage> for Storage {
    fn from(storage: MemStorage) -> Self {
        Storage::Mem(storage)
    }
}

/// A snapshot as stored: its metadata and its records as one JSON array.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredSnapshot {
    pub meta: SnapshotMeta<NodeId, EmptyNode>,
    pub data: Vec<u8>,
}

/// The vote and the last purged log id: `quorum-state`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct QuorumState {
    pub vote: Option<Vote<NodeId>>,
    pub last_purged: Option<LogId>,
}

/// What a medium holds when a node starts.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub state: QuorumState,
    /// Entries after the last purged one, in index order.
    pub entries: Vec<Entry>,
    pub snapshot: Option<StoredSnapshot>,
}

impl Cache {
    /// The index of the last entry, also when the log was purged up to a snapshot.
    pub(crate) fn last_index(&self) -> Option<u64> {
        self.entries
            .last_key_value()
            .map(|(index, _)| *index)
            .or(self.last_purged.map(|l| l.index))
    }
}

/// Blocking operations of a medium. Each is durable when it returns `Ok`, except that
/// `append` reports durability through its callback.
pub(crate) trait Backend: Send + 'static {
    fn load(&mut self) -> io::Result<Loaded>;
    /// Appends entries (contiguous, starting at the log end) and calls `done` once they
    /// are durable.
    fn append(&mut self, entries: &[Entry], done: LogFlushed<TypeConfig>) -> io::Result<()>;
    /// Removes the entries at `index` and after.
    fn truncate(&mut self, index: u64) -> io::Result<()>;
    /// Records `upto` as purged, then removes the entries up to it.
    fn purge(&mut self, upto: LogId) -> io::Result<()>;
    fn save_vote(&mut self, vote: &Vote<NodeId>) -> io::Result<()>;
    /// Stores a snapshot durably, then drops older ones.
    fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> io::Result<()>;
    /// True when operations block on files (run them off the async workers).
    fn blocks(&self) -> bool;
    /// Closes the medium at shutdown without a sync: the caller syncs the filesystem and
    /// finishes the close, as for every log of the log dir.
    fn close(&mut self) -> io::Result<Option<strom_log::UnsyncedClose>> {
        Ok(None)
    }
}

/// The in-memory copy of a node's log and vote.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    pub entries: BTreeMap<u64, Entry>,
    pub vote: Option<Vote<NodeId>>,
    pub last_purged: Option<LogId>,
    pub snapshot: Option<StoredSnapshot>,
}

pub(crate) struct Shared {
    backend: Mutex<Box<dyn Backend>>,
    cache: Mutex<Cache>,
    blocks: bool,
}

fn poisoned() -> io::Error {
    io::Error::other("a storage operation panicked earlier")
}

impl Shared {
    /// Loads the medium's state into a new shared store.
    pub(crate) fn load(storage: Storage) -> io::Result<Arc<Self>> {
        let mut backend: Box<dyn Backend> = match storage {
            Storage::File(file) => file,
            Storage::Mem(mem) => Box::new(mem),
        };
        let loaded = backend.load()?;
        let cache = Cache {
            entries: loaded
                .entries
                .into_iter()
                .map(|e| (e.log_id.index, e))
                .collect(),
            vote: loaded.state.vote,
            last_purged: loaded.state.last_purged,
            snapshot: loaded.snapshot,
        };
        Ok(Arc::new(Self {
            blocks: backend.blocks(),
            backend: Mutex::new(backend),
            cache: Mutex::new(cache),
        }))
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, Cache> {
        // The cache is only changed after its backend operation succeeded, by code that
        // does not panic midway: a poisoned lock still holds a consistent cache.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a backend operation, off the async workers when it blocks on files.
    pub(crate) async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&mut dyn Backend) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let shared = self.clone();
        let call = move || {
            let mut backend = shared.backend.lock().map_err(|_| poisoned())?;
            op(&mut **backend)
        };
        if self.blocks {
            tokio::task::spawn_blocking(call)
                .await
                .map_err(io::Error::other)?
        } else {
            call()
        }
    }
}

pub(crate) fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// openraft's log storage (and log reader) over a [`Shared`] store.
#[derive(Clone)]
pub(crate) struct LogStore {
    pub(crate) shared: Arc<Shared>,
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let cache = self.shared.cache();
        Ok(cache
            .entries
            .range(range)
            .map(|(_, entry)| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let cache = self.shared.cache();
        let last_purged_log_id = cache.last_purged;
        let last_log_id = cache
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let owned = *vote;
        self.shared
            .run(move |backend| backend.save_vote(&owned))
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        self.shared.cache().vote = Some(owned);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.shared.cache().vote)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        // Readers see the entries once append returns (openraft's contract); they count
        // as durable only once the callback reports the flush.
        {
            let mut cache = self.shared.cache();
            for entry in &entries {
                cache.entries.insert(entry.log_id.index, entry.clone());
            }
        }
        self.shared
            .run(move |backend| backend.append(&entries, callback))
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        let index = log_id.index;
        self.shared
            .run(move |backend| backend.truncate(index))
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        self.shared.cache().entries.split_off(&index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError<NodeId>> {
        self.shared
            .run(move |backend| backend.purge(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        let mut cache = self.shared.cache();
        cache.entries = cache.entries.split_off(&(log_id.index + 1));
        cache.last_purged = Some(log_id);
        Ok(())
    }
}

/// A snapshot file's bytes: `crc32c (u32 BE) | meta length (u32 BE) | meta JSON | records`,
/// the CRC covering everything after it.
pub(crate) fn encode_snapshot(snapshot: &StoredSnapshot) -> io::Result<Vec<u8>> {
    let meta = serde_json::to_vec(&snapshot.meta).map_err(io_error)?;
    let meta_len = u32::try_from(meta.len()).map_err(io_error)?;
    let mut out = Vec::with_capacity(8 + meta.len() + snapshot.data.len());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&meta_len.to_be_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(&snapshot.data);
    let crc = crc32c::crc32c(&out[4..]);
    out[..4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

pub(crate) fn decode_snapshot(bytes: &[u8]) -> io::Result<StoredSnapshot> {
    let corrupt = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    if bytes.len() < 8 {
        return Err(corrupt("snapshot file shorter than its header"));
    }
    let crc = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&bytes[4..]) != crc {
        return Err(corrupt("snapshot file CRC mismatch"));
    }
    let meta_len = u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let meta_end = 8usize
        .checked_add(meta_len)
        .filter(|end| *end <= bytes.len())
        .ok_or_else(|| corrupt("snapshot metadata length past the file end"))?;
    let meta = serde_json::from_slice(&bytes[8..meta_end]).map_err(io_error)?;
    Ok(StoredSnapshot {
        meta,
        data: bytes[meta_end..].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, Membership, StoredMembership};

    use super::*;

    #[test]
    fn snapshot_file_round_trips_and_detects_corruption() {
        let last = LogId::new(CommittedLeaderId::new(3, 1), 41);
        let snapshot = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: Some(last),
                last_membership: StoredMembership::new(
                    Some(last),
                    Membership::new(vec![[1, 2, 3].into()], ()),
                ),
                snapshot_id: "41-3".into(),
            },
            data: br#"["a","b"]"#.to_vec(),
        };
        let bytes = encode_snapshot(&snapshot).unwrap();
        assert_eq!(decode_snapshot(&bytes).unwrap(), snapshot);
        for at in [0, 5, 9, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 1;
            let err = decode_snapshot(&flipped).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "byte {at}");
        }
        assert!(decode_snapshot(&bytes[..7]).is_err());
    }

    #[test]
    fn malformed_raft_messages_are_errors() {
        assert!(crate::RaftRequest::decode(b"{\"Vote\":").is_err());
        assert!(crate::RaftResponse::decode(b"[1,2]").is_err());
    }
}
