//! [`MemStorage`]: the in-memory model of a node's disk, for tests and the simulation.
//! It outlives the [`crate::Quorum`] using it (a restart opens the same one) and tells
//! written entries from durable ones: while flushes are held, appends are written but not
//! durable, and [`MemStorage::crash`] loses them, as a power cut loses the page cache.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::LogFlushed;
use openraft::Vote;

use super::{Backend, Loaded, QuorumState, StoredSnapshot};
use crate::{Entry, LogId, NodeId, TypeConfig};

#[derive(Default)]
struct Disk {
    /// Entries as written (what a reader of the running node sees).
    written: BTreeMap<u64, Entry>,
    /// Entries that survive a crash.
    durable: BTreeMap<u64, Entry>,
    state: QuorumState,
    snapshot: Option<StoredSnapshot>,
    hold_flushes: bool,
    /// Flush callbacks of appends made while flushes were held.
    pending: Vec<LogFlushed<TypeConfig>>,
    fail_writes: bool,
}

/// A cloneable handle on one simulated disk.
#[derive(Clone, Default)]
pub struct MemStorage {
    disk: Arc<Mutex<Disk>>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// While held, appends are written but neither durable nor reported flushed. A node
    /// waiting for a held flush does not shut down: release the flushes or `crash` first.
    pub fn hold_flushes(&self, hold: bool) {
        let pending = {
            let mut disk = self.disk();
            disk.hold_flushes = hold;
            if hold {
                return;
            }
            disk.durable = disk.written.clone();
            std::mem::take(&mut disk.pending)
        };
        for done in pending {
            done.log_io_completed(Ok(()));
        }
    }

    /// Loses whatever was written but not flushed, as a power cut does. Flushes still
    /// held fail, which stops the node using this disk; shut it down, then start a new
    /// node on the disk.
    pub fn crash(&self) {
        let pending = {
            let mut disk = self.disk();
            disk.written = disk.durable.clone();
            disk.hold_flushes = false;
            std::mem::take(&mut disk.pending)
        };
        for done in pending {
            done.log_io_completed(Err(io::Error::other("simulated crash")));
        }
    }

    /// Every write from now on fails (a broken disk).
    pub fn fail_writes(&self, fail: bool) {
        self.disk().fail_writes = fail;
    }

    /// The written entries' log ids (durable or not), in order.
    pub fn written_log_ids(&self) -> Vec<LogId> {
        self.disk().written.values().map(|e| e.log_id).collect()
    }

    /// The durable entries' log ids, in order.
    pub fn durable_log_ids(&self) -> Vec<LogId> {
        self.disk().durable.values().map(|e| e.log_id).collect()
    }

    /// The last log id of the stored snapshot.
    pub fn snapshot_log_id(&self) -> Option<LogId> {
        self.disk()
            .snapshot
            .as_ref()
            .and_then(|s| s.meta.last_log_id)
    }
}

impl Disk {
    fn check(&self) -> io::Result<()> {
        if self.fail_writes {
            return Err(io::Error::other("injected storage fault"));
        }
        Ok(())
    }
}

impl Backend for MemStorage {
    fn load(&mut self) -> io::Result<Loaded> {
        let mut disk = self.disk();
        disk.written = disk.durable.clone();
        Ok(Loaded {
            state: disk.state.clone(),
            entries: disk.durable.values().cloned().collect(),
            snapshot: disk.snapshot.clone(),
        })
    }

    fn append(&mut self, entries: &[Entry], done: LogFlushed<TypeConfig>) -> io::Result<()> {
        {
            let mut disk = self.disk();
            disk.check()?;
            for entry in entries {
                disk.written.insert(entry.log_id.index, entry.clone());
            }
            if disk.hold_flushes {
                disk.pending.push(done);
                return Ok(());
            }
            disk.durable = disk.written.clone();
        }
        done.log_io_completed(Ok(()));
        Ok(())
    }

    fn truncate(&mut self, index: u64) -> io::Result<()> {
        let mut disk = self.disk();
        disk.check()?;
        disk.written.split_off(&index);
        disk.durable.split_off(&index);
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> io::Result<()> {
        let mut disk = self.disk();
        disk.check()?;
        disk.state.last_purged = Some(upto);
        disk.written = disk.written.split_off(&(upto.index + 1));
        disk.durable = disk.durable.split_off(&(upto.index + 1));
        Ok(())
    }

    fn save_vote(&mut self, vote: &Vote<NodeId>) -> io::Result<()> {
        let mut disk = self.disk();
        disk.check()?;
        disk.state.vote = Some(*vote);
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> io::Result<()> {
        let mut disk = self.disk();
        disk.check()?;
        disk.snapshot = Some(snapshot.clone());
        Ok(())
    }

    fn blocks(&self) -> bool {
        false
    }
}
