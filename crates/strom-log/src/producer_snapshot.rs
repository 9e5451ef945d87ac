//! The log's producer state on disk and its rebuild on open, as Kafka does it:
//! `<20-digit offset>.snapshot` files hold the state as of that offset (everything
//! below it applied). One is written when a segment rolls (at the new segment's base,
//! unsynced under the lock and fsynced with the rolled segment, off the lock) and one
//! when the log closes cleanly (at the log end). On open the newest readable snapshot
//! at or below the log end is loaded (a corrupt one falls back to the next older one)
//! and the batch headers after it are replayed; without any, the replay starts at the
//! log start. After an unclean shutdown snapshots above the recovery point are not
//! trusted (the data they describe may be gone) and are removed first.
//!
//! The same replay rebuilds the `.txnindex` of segments that recovery rebuilt: it then
//! starts at or before the first of them.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strom_wire::batch::{BatchHeader, BATCH_HEADER_BYTES};
use tracing::{info, warn};

use crate::error::LogError;
use crate::log::PartitionLog;
use crate::producer_state::{
    last_sequence_of_batch, snapshot_format, AppendOrigin, ProducerBatchInfo, StagedAppend,
    TxnMarker,
};
use crate::scan::{BatchMeta, HeaderScan};
use crate::segment::segment_file;
use crate::txn_index::TxnIndexEntry;

pub(crate) const SNAPSHOT_SUFFIX: &str = "snapshot";
/// Snapshots kept: enough that recovery after a crash finds one at or below the
/// segment it rebuilds (the newest is at the active segment's base or the log end).
pub(crate) const SNAPSHOTS_KEPT: usize = 3;

pub(crate) fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    segment_file(dir, offset, SNAPSHOT_SUFFIX)
}

/// Offsets of the snapshot files in `dir`, ascending.
pub(crate) fn list_snapshots(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut offsets = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(&format!(".{SNAPSHOT_SUFFIX}")) else {
            continue;
        };
        if let Ok(offset) = stem.parse::<i64>() {
            if stem.len() == 20 && offset >= 0 {
                offsets.push(offset);
            }
        }
    }
    offsets.sort_unstable();
    Ok(offsets)
}

fn remove_snapshot(dir: &Path, offset: i64) -> Result<(), LogError> {
    match fs::remove_file(snapshot_path(dir, offset)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// The producer facts of one batch; `records` are the bytes after its 61-byte header
/// (read only for control batches, whose one record is the transaction marker).
pub(crate) fn batch_producer_info(
    header: &[u8],
    records: &[u8],
    meta: &BatchMeta,
) -> Result<Option<ProducerBatchInfo>, LogError> {
    let header = BatchHeader::new(header).map_err(|e| LogError::InvalidBatch(e.to_string()))?;
    let producer_id = header.producer_id();
    if producer_id < 0 {
        return Ok(None);
    }
    let control = if header.is_control() {
        Some(read_marker(&header, records)?)
    } else {
        None
    };
    let first_sequence = if header.base_sequence() < 0 {
        -1
    } else {
        header.base_sequence()
    };
    Ok(Some(ProducerBatchInfo {
        producer_id,
        epoch: header.producer_epoch(),
        first_sequence,
        last_sequence: last_sequence_of_batch(first_sequence, header.last_offset_delta()),
        base_offset: meta.base_offset,
        last_offset: meta.last_offset,
        max_timestamp_ms: meta.max_timestamp_ms,
        transactional: header.is_transactional(),
        control,
    }))
}

/// Kafka's EndTransactionMarker from a control batch's first record: key = i16 version,
/// i16 type (0 abort, 1 commit); value = i16 version, i32 coordinator epoch. Other
/// control types, and empty control batches, are not markers.
fn read_marker(header: &BatchHeader<'_>, records: &[u8]) -> Result<Option<TxnMarker>, LogError> {
    if header.records_count() <= 0 {
        return Ok(None);
    }
    let bad = |why: &str| LogError::InvalidBatch(format!("control batch: {why}"));
    let parsed = strom_wire::record::parse_records(records, header.records_count())
        .map_err(|e| bad(&e.to_string()))?;
    let Some(record) = parsed.first() else {
        return Ok(None);
    };
    let key = record.key().ok_or_else(|| bad("no key"))?;
    if key.len() < 4 {
        return Err(bad("key too short"));
    }
    let kind = i16::from_be_bytes([key[2], key[3]]);
    if !(0..=1).contains(&kind) {
        return Ok(None);
    }
    let value = record.value().ok_or_else(|| bad("marker without value"))?;
    if value.len() < 6 {
        return Err(bad("marker value too short"));
    }
    Ok(Some(TxnMarker {
        commit: kind == 1,
        coordinator_epoch: i32::from_be_bytes([value[2], value[3], value[4], value[5]]),
    }))
}

/// The encoded control batch of a transaction marker, offsets from 0.
pub(crate) fn encode_marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    now_ms: i64,
) -> Result<Vec<u8>, LogError> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&i16::from(commit).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(key.into()),
        value: Some(value.into()),
        headers: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        std::slice::from_ref(&record),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::InvalidBatch(e.to_string()))?;
    Ok(buf.to_vec())
}

impl PartitionLog {
    /// Writes the producer state as of `offset` (the log end: everything below it is
    /// applied) to `<offset>.snapshot`, through a temp file and a rename, without an
    /// fsync. Returns its path.
    pub(crate) fn write_producer_snapshot(&self, offset: i64) -> Result<PathBuf, LogError> {
        let entries = self.producers.entries();
        let bytes = snapshot_format::encode(&entries.iter().collect::<Vec<_>>());
        let path = snapshot_path(&self.dir, offset);
        let tmp = path.with_extension(format!("{SNAPSHOT_SUFFIX}.tmp"));
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// Removes snapshots below the log start offset and the oldest beyond
    /// [`SNAPSHOTS_KEPT`].
    pub(crate) fn trim_snapshots(&self) -> Result<(), LogError> {
        let offsets = list_snapshots(&self.dir)?;
        let keep_from = offsets.len().saturating_sub(SNAPSHOTS_KEPT);
        for (i, &offset) in offsets.iter().enumerate() {
            if i < keep_from || offset < self.log_start_offset {
                remove_snapshot(&self.dir, offset)?;
            }
        }
        Ok(())
    }

    /// Removes snapshots above `offset` (a truncation, or an unclean shutdown's
    /// recovery point).
    pub(crate) fn remove_snapshots_above(&self, offset: i64) -> Result<(), LogError> {
        for snapshot in list_snapshots(&self.dir)? {
            if snapshot > offset {
                remove_snapshot(&self.dir, snapshot)?;
            }
        }
        Ok(())
    }

    /// Offsets of the snapshot files (tests and operators).
    pub fn producer_snapshot_offsets(&self) -> Result<Vec<i64>, LogError> {
        list_snapshots(&self.dir)
    }

    /// Loads the newest readable snapshot at or below `limit` (and the log end) and
    /// replays the batches after it. Segments at or above `rebuild_txn_from` get the
    /// `.txnindex` entries of the aborts the replay finds (recovery emptied theirs).
    pub(crate) fn load_producer_state(
        &mut self,
        now_ms: i64,
        rebuild_txn_from: Option<i64>,
    ) -> Result<(), LogError> {
        let limit = rebuild_txn_from
            .unwrap_or(i64::MAX)
            .min(self.log_end_offset());
        let expiration_ms = self.config.producer_id_expiration_ms;
        self.producers.clear();
        self.producers
            .set_max_producer_ids(self.config.max_producer_ids);
        let mut start = None;
        for offset in list_snapshots(&self.dir)?.into_iter().rev() {
            if offset > limit || offset < self.log_start_offset {
                continue;
            }
            let path = snapshot_path(&self.dir, offset);
            match fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| snapshot_format::decode(&bytes))
            {
                Ok(entries) => {
                    self.producers.load_entries(entries, now_ms, expiration_ms);
                    start = Some(offset);
                    break;
                }
                Err(reason) => {
                    warn!(file = %path.display(), reason, "removing unreadable producer snapshot");
                    remove_snapshot(&self.dir, offset)?;
                }
            }
        }
        let from = start.unwrap_or(self.log_start_offset);
        let replayed = self.replay_producer_batches(from, rebuild_txn_from)?;
        // Producers loaded from an old snapshot may have expired meanwhile.
        self.producers.remove_expired(now_ms, expiration_ms);
        self.producer_state_replayed_batches = replayed;
        info!(
            dir = %self.dir.display(),
            snapshot = start.unwrap_or(-1),
            replayed_batches = replayed,
            producers = self.producers.len(),
            "loaded producer state"
        );
        Ok(())
    }

    /// Applies every batch from `from` to the log end to the producer state; returns
    /// how many batches were read.
    fn replay_producer_batches(
        &mut self,
        from: i64,
        rebuild_txn_from: Option<i64>,
    ) -> Result<u64, LogError> {
        let mut replayed = 0u64;
        let first = self.segment_index_for(from);
        for i in first..self.segments.len() {
            let segment = &self.segments[i];
            let start = if i == first {
                match segment.translate_offset(from)? {
                    Some(meta) => meta.position,
                    None => continue,
                }
            } else {
                0
            };
            let rebuild = rebuild_txn_from.is_some_and(|b| segment.base_offset >= b);
            let file: Arc<fs::File> = segment.log()?;
            let path = segment.log_path().to_path_buf();
            let mut scan = HeaderScan::new(&file, &path, start, segment.size_bytes);
            let mut aborted = Vec::new();
            while let Some((meta, header)) = scan.next_with_header()? {
                replayed += 1;
                let header_view =
                    BatchHeader::new(&header).map_err(|e| LogError::InvalidBatch(e.to_string()))?;
                let records = if header_view.is_control() && header_view.producer_id() >= 0 {
                    let len = meta.size_bytes.saturating_sub(BATCH_HEADER_BYTES as u64);
                    // A control batch holds one small record; its length was checked
                    // against the file when the segment was loaded.
                    let mut bytes = vec![0u8; len as usize];
                    std::os::unix::fs::FileExt::read_exact_at(
                        &*file,
                        &mut bytes,
                        meta.position + BATCH_HEADER_BYTES as u64,
                    )?;
                    bytes
                } else {
                    Vec::new()
                };
                let Some(info) = batch_producer_info(&header, &records, &meta)? else {
                    continue;
                };
                let staged = self
                    .producers
                    .prepare(&[info], AppendOrigin::Replay)
                    .map_err(LogError::from)?;
                if rebuild {
                    for txn in staged.completed.iter().filter(|t| t.aborted) {
                        aborted.push(TxnIndexEntry {
                            producer_id: txn.producer_id,
                            first_offset: txn.first_offset,
                            last_offset: txn.last_offset,
                            last_stable_offset: self.producers.last_stable_offset_after(txn),
                        });
                    }
                }
                self.producers.apply(staged, self.high_watermark);
            }
            for entry in aborted {
                self.segments[i].append_aborted_txn(entry)?;
            }
        }
        Ok(replayed)
    }

    /// Applies an append's staged producer state once its batches are written: aborted
    /// transactions go to the active segment's `.txnindex` (it holds their markers).
    pub(crate) fn complete_producer_append(
        &mut self,
        staged: StagedAppend,
    ) -> Result<(), LogError> {
        let aborted: Vec<TxnIndexEntry> = staged
            .completed
            .iter()
            .filter(|t| t.aborted)
            .map(|txn| TxnIndexEntry {
                producer_id: txn.producer_id,
                first_offset: txn.first_offset,
                last_offset: txn.last_offset,
                last_stable_offset: self.producers.last_stable_offset_after(txn),
            })
            .collect();
        self.producers.apply(staged, self.high_watermark);
        self.publish();
        for entry in aborted {
            self.active_mut().append_aborted_txn(entry)?;
        }
        Ok(())
    }
}
