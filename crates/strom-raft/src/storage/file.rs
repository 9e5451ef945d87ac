//! [`FileStorage`]: the metadata log dir `<log dir>/__cluster_metadata-0`.
//!
//! - Raft entries are records of a strom-log `PartitionLog`, one batch per entry: the
//!   entry's index is its offset, the batch's leader epoch its term, the record's key
//!   [`ENTRY_KEY`] and its value the entry as JSON. Appends are fsynced before openraft
//!   hears they are durable.
//! - `quorum-state`: the vote and the last purged log id (JSON, written to a temporary
//!   file, fsynced, renamed, directory fsynced).
//! - `<offset>-<term>.checkpoint`: snapshots (CRC-checked), the newest kept; the log is
//!   purged up to a snapshot only once it is durable.
//!
//! A dir written by strom before the quorum (batches of bare JSON records, keyless) is
//! migrated on open: its records become a snapshot at its last offset, then the log is
//! purged up to it. Every step is durable before the next starts and each is redone or
//! skipped on the next open, so a crash at any point opens to the same result.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use openraft::storage::LogFlushed;
use openraft::{CommittedLeaderId, Membership, SnapshotMeta, StoredMembership, Vote};
use serde_json::value::RawValue;
use strom_log::{LogConfig, PartitionLog};
use tracing::info;

use super::{
    decode_snapshot, encode_snapshot, io_error, Backend, Loaded, QuorumState, StoredSnapshot,
};
use crate::{Entry, LogId, NodeId, QuorumConfig, TypeConfig};

/// The metadata log's directory inside a log dir.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
const QUORUM_STATE_FILE: &str = "quorum-state";
const SNAPSHOT_SUFFIX: &str = ".checkpoint";
const TMP_SUFFIX: &str = ".tmp";
/// The key of every record holding a raft entry; records of the old format have none.
pub const ENTRY_KEY: &[u8] = b"raft-entry";
const READ_CHUNK_BYTES: usize = 1 << 20;

/// Makes the next write of a [`FileStorage`] fail with an I/O error, or the next append's
/// fsync after its entries were written (for tests of the fatal path; a real disk fails
/// the same way).
#[derive(Debug, Clone, Default)]
pub struct FaultInjector(Arc<AtomicBool>, Arc<AtomicBool>);

impl FaultInjector {
    pub fn fail_next_write(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn fail_next_flush(&self) {
        self.1.store(true, Ordering::SeqCst);
    }
}

/// The metadata quorum's files in one log dir.
pub struct FileStorage {
    dir: PathBuf,
    /// `None` once closed at shutdown.
    log: Option<PartitionLog>,
    state: QuorumState,
    loaded: Option<Loaded>,
    faults: FaultInjector,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn log_config() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `dir/name` atomically and durably.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

fn snapshot_file_name(log_id: &LogId) -> String {
    format!(
        "{:020}-{:010}{SNAPSHOT_SUFFIX}",
        log_id.index, log_id.leader_id.term
    )
}

/// `(offset, term)` of a snapshot file name.
fn parse_snapshot_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    let (offset, term) = stem.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(offset) || !digits(term) {
        return None;
    }
    Some((offset.parse().ok()?, term.parse().ok()?))
}

/// Snapshot files in `dir`, oldest first.
fn snapshot_files(dir: &Path) -> io::Result<Vec<((u64, u64), PathBuf)>> {
    let mut found = Vec::new();
    for item in fs::read_dir(dir)? {
        let item = item?;
        if let Some(key) = item.file_name().to_str().and_then(parse_snapshot_file_name) {
            found.push((key, item.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// What the log holds: raft entries, and records of the format before the quorum.
#[derive(Default)]
struct Scanned {
    entries: Vec<Entry>,
    /// (offset, JSON value) of keyless records.
    old_records: Vec<(u64, Bytes)>,
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn scan(log: &PartitionLog) -> io::Result<Scanned> {
    let reader = log.reader();
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut scanned = Scanned::default();
    while offset < end {
        let read = reader
            .read(offset, READ_CHUNK_BYTES, end, true)
            .map_err(io_error)?;
        if read.is_empty() {
            break;
        }
        let mut bytes = read.to_bytes().map_err(io_error)?;
        let sets = RecordBatchDecoder::decode_all(&mut bytes)
            .map_err(|e| invalid(format!("metadata log batch at {offset}: {e:#}")))?;
        let before = offset;
        for record in sets.into_iter().flat_map(|set| set.records) {
            if record.offset < offset {
                continue;
            }
            offset = record.offset + 1;
            if record.control {
                continue;
            }
            let at = u64::try_from(record.offset).map_err(io_error)?;
            match record.key.as_deref() {
                Some(ENTRY_KEY) => {
                    let value = record.value.unwrap_or_default();
                    let entry: Entry = serde_json::from_slice(&value)
                        .map_err(|e| invalid(format!("raft entry at offset {at}: {e}")))?;
                    if entry.log_id.index != at {
                        return Err(invalid(format!(
                            "raft entry at offset {at} names index {}",
                            entry.log_id.index
                        )));
                    }
                    scanned.entries.push(entry);
                }
                None => {
                    if !scanned.entries.is_empty() {
                        return Err(invalid(format!(
                            "record of the old format at offset {at} after raft entries"
                        )));
                    }
                    scanned
                        .old_records
                        .push((at, record.value.unwrap_or_default()));
                }
                Some(other) => {
                    return Err(invalid(format!(
                        "record at offset {at} has the unknown key {:?}",
                        String::from_utf8_lossy(other)
                    )))
                }
            }
        }
        if offset == before {
            offset += 1;
        }
    }
    Ok(scanned)
}

/// One batch per entry, appended to `buf`.
fn encode_entry(buf: &mut BytesMut, entry: &Entry, now_ms: i64) -> io::Result<()> {
    let value = serde_json::to_vec(entry).map_err(io_error)?;
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(Bytes::from_static(ENTRY_KEY)),
        value: Some(Bytes::from(value)),
        headers: Default::default(),
    };
    RecordBatchEncoder::encode(
        buf,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(io_error)
}

/// The JSON array of `prefix`'s records (a snapshot's) followed by `values`.
fn join_records(prefix: Option<&[u8]>, values: &[(u64, Bytes)]) -> io::Result<Vec<u8>> {
    let mut records: Vec<Box<RawValue>> = match prefix {
        Some(data) => serde_json::from_slice(data).map_err(io_error)?,
        None => Vec::new(),
    };
    for (offset, value) in values {
        let text = std::str::from_utf8(value)
            .map_err(|e| invalid(format!("old metadata record at offset {offset}: {e}")))?;
        records.push(
            RawValue::from_string(text.to_owned())
                .map_err(|e| invalid(format!("old metadata record at offset {offset}: {e}")))?,
        );
    }
    serde_json::to_vec(&records).map_err(io_error)
}

impl FileStorage {
    /// Opens (creating if need be) `<log_dir>/__cluster_metadata-0`, migrating a dir of the
    /// format before the quorum. `config` names the voters a migrated snapshot records as
    /// the membership, and the local node as the writer of the migrated entries.
    pub fn open(log_dir: &Path, config: &QuorumConfig) -> io::Result<Self> {
        Self::open_in_log_dir(log_dir, config, false)
    }

    /// [`Self::open`] as one log of a log dir whose clean-shutdown marker says whether
    /// every log in it was closed cleanly (see `PartitionLog::open_in_log_dir`).
    pub fn open_in_log_dir(
        log_dir: &Path,
        config: &QuorumConfig,
        log_dir_clean: bool,
    ) -> io::Result<Self> {
        let dir = log_dir.join(METADATA_LOG_DIR);
        fs::create_dir_all(&dir)?;
        for item in fs::read_dir(&dir)? {
            let name = item?.file_name();
            let name = name.to_string_lossy();
            // Half-written files of ours; strom-log cleans its own.
            if name == format!("{QUORUM_STATE_FILE}{TMP_SUFFIX}")
                || name.ends_with(&format!("{SNAPSHOT_SUFFIX}{TMP_SUFFIX}"))
            {
                fs::remove_file(dir.join(name.as_ref()))?;
            }
        }
        let mut state = match fs::read(dir.join(QUORUM_STATE_FILE)) {
            Ok(bytes) => serde_json::from_slice::<QuorumState>(&bytes)
                .map_err(|e| invalid(format!("{QUORUM_STATE_FILE}: {e}")))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => QuorumState::default(),
            Err(e) => return Err(e),
        };
        let mut snapshot = match snapshot_files(&dir)?.pop() {
            Some((_, path)) => {
                let snapshot = decode_snapshot(&fs::read(&path)?)
                    .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
                Some(snapshot)
            }
            None => None,
        };
        let log = PartitionLog::open_in_log_dir(&dir, log_config(), now_ms(), log_dir_clean)
            .map_err(io_error)?;
        let scanned = scan(&log)?;
        let mut storage = Self {
            dir,
            log: Some(log),
            state: QuorumState::default(),
            loaded: None,
            faults: FaultInjector::default(),
        };

        let mut purged = state
            .last_purged
            .max(snapshot.as_ref().and_then(|s| s.meta.last_log_id));
        let old: Vec<(u64, Bytes)> = scanned
            .old_records
            .into_iter()
            .filter(|(offset, _)| purged.is_none_or(|p| *offset > p.index))
            .collect();
        if let Some((last_offset, _)) = old.last() {
            let last = LogId::new(CommittedLeaderId::new(0, config.node_id), *last_offset);
            let membership = match &snapshot {
                Some(s) => s.meta.last_membership.membership().clone(),
                None => Membership::new(vec![config.voter_ids()], ()),
            };
            let migrated = StoredSnapshot {
                meta: SnapshotMeta {
                    last_log_id: Some(last),
                    last_membership: StoredMembership::new(Some(last), membership),
                    snapshot_id: crate::state_machine::snapshot_id(&Some(last)),
                },
                data: join_records(snapshot.as_ref().map(|s| s.data.as_slice()), &old)?,
            };
            info!(
                records = old.len(),
                last_offset, "migrating the metadata log into a snapshot"
            );
            storage.write_snapshot(&migrated)?;
            snapshot = Some(migrated);
            purged = Some(last);
        }
        if state.last_purged != purged {
            state.last_purged = purged;
            storage.write_state(&state)?;
        }
        storage.state = state;
        if let Some(purged) = purged {
            storage.remove_log_up_to(purged.index)?;
        }
        let first = purged.map_or(0, |p| p.index + 1);
        let entries: Vec<Entry> = scanned
            .entries
            .into_iter()
            .filter(|e| e.log_id.index >= first)
            .collect();
        if let Some(entry) = entries.first() {
            if entry.log_id.index != first {
                return Err(invalid(format!(
                    "the metadata log starts at {} but the last purged index is {:?}",
                    entry.log_id.index, purged
                )));
            }
        }
        storage.loaded = Some(Loaded {
            state: storage.state.clone(),
            entries,
            snapshot,
        });
        Ok(storage)
    }

    fn log(&mut self) -> io::Result<&mut PartitionLog> {
        self.log
            .as_mut()
            .ok_or_else(|| io::Error::other("the metadata log is closed"))
    }

    /// A handle that makes the next write fail (see [`FaultInjector`]).
    pub fn fault_injector(&self) -> FaultInjector {
        self.faults.clone()
    }

    fn check_fault(&self) -> io::Result<()> {
        if self.faults.0.swap(false, Ordering::SeqCst) {
            return Err(io::Error::other("injected storage fault"));
        }
        Ok(())
    }

    fn write_state(&self, state: &QuorumState) -> io::Result<()> {
        let bytes = serde_json::to_vec(state).map_err(io_error)?;
        write_durably(&self.dir, QUORUM_STATE_FILE, &bytes)
    }

    /// Stores a snapshot durably, then removes every other snapshot file.
    fn write_snapshot(&self, snapshot: &StoredSnapshot) -> io::Result<()> {
        let Some(last) = snapshot.meta.last_log_id else {
            return Ok(());
        };
        let name = snapshot_file_name(&last);
        write_durably(&self.dir, &name, &encode_snapshot(snapshot)?)?;
        for (_, path) in snapshot_files(&self.dir)? {
            if path.file_name().is_some_and(|n| n != name.as_str()) {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }

    /// Removes the log's entries up to `index`: the log then starts at `index + 1`.
    fn remove_log_up_to(&mut self, index: u64) -> io::Result<()> {
        let start = i64::try_from(index + 1).map_err(io_error)?;
        if start <= self.log()?.log_start_offset() {
            return Ok(());
        }
        if start >= self.log()?.log_end_offset() {
            self.log()?
                .truncate_fully_and_start_at(start, now_ms())
                .map_err(io_error)?;
        } else {
            let end = self.log()?.log_end_offset();
            self.log()?.set_high_watermark(end);
            self.log()?.delete_records_before(start).map_err(io_error)?;
        }
        Ok(())
    }
}

impl FileStorage {
    /// Appends and fsyncs `entries`, reporting to openraft; after a failure the entries
    /// not known durable are cut off.
    fn append_entries(
        &mut self,
        entries: &[Entry],
        done: LogFlushed<TypeConfig>,
    ) -> io::Result<()> {
        self.check_fault()?;
        let durable_end = self.log()?.log_end_offset();
        match self.append_and_flush(entries) {
            Ok(()) => {
                done.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                // Entries that are not known durable must not be applied by the next start
                // either (the request failed): cut them off while this process still owns
                // the file, then stop (openraft treats the error as fatal).
                if let Err(cut) = self.log()?.cut_after_failure(durable_end) {
                    tracing::error!(error = %cut, "cutting unsynced metadata entries off after a failed append; the next start may recover them");
                }
                done.log_io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    fn append_and_flush(&mut self, entries: &[Entry]) -> io::Result<()> {
        let now = now_ms();
        let mut next = u64::try_from(self.log()?.log_end_offset()).map_err(io_error)?;
        // Entries of one term go in one append, stamped with the term as leader epoch.
        for run in entries.chunk_by(|a, b| a.log_id.leader_id.term == b.log_id.leader_id.term) {
            let term = run[0].log_id.leader_id.term;
            let epoch = i32::try_from(term)
                .map_err(|_| io::Error::other(format!("term {term} exceeds a leader epoch")))?;
            let mut buf = BytesMut::new();
            for entry in run {
                if entry.log_id.index != next {
                    return Err(io::Error::other(format!(
                        "entry {} appended at offset {next}",
                        entry.log_id
                    )));
                }
                encode_entry(&mut buf, entry, now)?;
                next += 1;
            }
            self.log()?.append(&mut buf, epoch, now).map_err(io_error)?;
        }
        if self.faults.1.swap(false, Ordering::SeqCst) {
            let reason = "injected fsync failure";
            self.log()?.mark_failed(reason.into());
            return Err(io::Error::other(reason));
        }
        self.log()?.flush().map_err(io_error)
    }
}

impl Backend for FileStorage {
    fn load(&mut self) -> io::Result<Loaded> {
        self.loaded
            .take()
            .ok_or_else(|| io::Error::other("the metadata log was loaded already"))
    }

    fn append(&mut self, entries: &[Entry], done: LogFlushed<TypeConfig>) -> io::Result<()> {
        self.append_entries(entries, done)
    }

    fn truncate(&mut self, index: u64) -> io::Result<()> {
        self.check_fault()?;
        let offset = i64::try_from(index).map_err(io_error)?;
        self.log()?
            .truncate_to(offset, now_ms())
            .map_err(io_error)?;
        Ok(())
    }

    fn purge(&mut self, upto: LogId) -> io::Result<()> {
        self.check_fault()?;
        // The purge is recorded first: a crash before the log is cut redoes it on open.
        let mut state = self.state.clone();
        state.last_purged = Some(upto);
        self.write_state(&state)?;
        self.state = state;
        self.remove_log_up_to(upto.index)
    }

    fn save_vote(&mut self, vote: &Vote<NodeId>) -> io::Result<()> {
        self.check_fault()?;
        let mut state = self.state.clone();
        state.vote = Some(*vote);
        self.write_state(&state)?;
        self.state = state;
        Ok(())
    }

    fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> io::Result<()> {
        self.check_fault()?;
        self.write_snapshot(snapshot)
    }

    fn blocks(&self) -> bool {
        true
    }

    fn close(&mut self) -> io::Result<Option<strom_log::UnsyncedClose>> {
        match self.log.take() {
            Some(log) => log.close_unsynced().map(Some).map_err(io_error),
            None => Ok(None),
        }
    }
}

impl std::fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStorage")
            .field("dir", &self.dir)
            .finish()
    }
}
