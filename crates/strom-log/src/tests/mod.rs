//! Tests of `PartitionLog` on real files in temp dirs.

mod append_read;
mod compaction;
mod compaction_batches;
mod compaction_crash;
mod compaction_txn;
mod concurrency;
mod epochs;
mod faults;
mod index_lookup;
mod producer_state;
mod recovery;
mod retention;
mod split_append;
mod timestamps;
mod truncation;

use std::path::Path;

use bytes::BytesMut;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_wire::batch::{set_base_offset, BatchHeader};

use crate::{LogConfig, PartitionLog};

pub(crate) const NOW_MS: i64 = 1_700_000_000_000;

/// One uncompressed batch with a record per timestamp, values `v0`, `v1`, ... of
/// `value_bytes` bytes each (padded with `x`).
pub(crate) fn batch_with(timestamps_ms: &[i64], value_bytes: usize) -> Vec<u8> {
    encode(timestamps_ms, value_bytes, Compression::None)
}

pub(crate) fn encode(
    timestamps_ms: &[i64],
    value_bytes: usize,
    compression: Compression,
) -> Vec<u8> {
    let records: Vec<Record> = timestamps_ms
        .iter()
        .enumerate()
        .map(|(i, &timestamp)| {
            let mut value = format!("v{i}").into_bytes();
            value.resize(value_bytes.max(value.len()), b'x');
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // Keeps offset - sequence constant so the encoder emits a single batch.
                sequence: i as i32 - 1,
                timestamp,
                key: None,
                value: Some(bytes::Bytes::from(value)),
                headers: Default::default(),
            }
        })
        .collect();
    encode_records(&records, compression)
}

/// `records` as one magic-2 batch (the encoder splits batches where offset - sequence changes).
pub(crate) fn encode_records(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode test batch");
    strom_wire::batch::validate(&buf).expect("encoder output is a valid batch");
    buf.to_vec()
}

/// A batch of `count` records stamped NOW_MS with small values.
pub(crate) fn batch(count: usize) -> Vec<u8> {
    batch_with(&vec![NOW_MS; count], 4)
}

/// The bytes the log must hold for `batch` once given `base_offset`.
pub(crate) fn stored(batch: &[u8], base_offset: i64) -> Vec<u8> {
    let mut copy = batch.to_vec();
    set_base_offset(&mut copy, base_offset);
    copy
}

/// Opens the log as a single replica's leader does: its high watermark is its log end.
pub(crate) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    let mut log = PartitionLog::open(dir, config, NOW_MS).expect("open log");
    log.set_high_watermark(log.log_end_offset());
    log
}

/// Appends `batch` in leader epoch 0 as a single replica does (the high watermark follows
/// the log end) and returns the bytes as stored.
pub(crate) fn append(log: &mut PartitionLog, batch: &[u8]) -> Vec<u8> {
    let mut copy = batch.to_vec();
    let info = log.append(&mut copy, 0, NOW_MS).expect("append");
    log.maybe_increment_high_watermark(info.last_offset + 1);
    assert_eq!(
        BatchHeader::new(&copy).unwrap().base_offset(),
        info.base_offset
    );
    copy
}

/// Everything from `offset` to the end of the log.
pub(crate) fn read_all(log: &PartitionLog, offset: i64) -> Vec<u8> {
    log.read(offset, usize::MAX, i64::MAX, true)
        .expect("read")
        .bytes
        .to_vec()
}

/// Base offsets of the batches in `bytes`.
pub(crate) fn base_offsets(bytes: &[u8]) -> Vec<i64> {
    strom_wire::batch::Batches::new(bytes)
        .map(|b| b.expect("valid batch").1.base_offset)
        .collect()
}

pub(crate) fn segment_bases(log: &PartitionLog) -> Vec<i64> {
    log.segments().iter().map(|s| s.base_offset).collect()
}

/// A step hook that stops an operation when `step` is reached for the `nth` time (0-based),
/// leaving the files as a crash there would.
pub(crate) fn stop_at<S: PartialEq>(step: S, nth: usize) -> impl FnMut(S) -> bool {
    let mut seen = 0;
    move |reached| {
        if reached != step {
            return true;
        }
        seen += 1;
        seen <= nth
    }
}

/// Appends `batch` as the leader in `epoch`, the high watermark following.
pub(crate) fn append_in_epoch(log: &mut PartitionLog, epoch: i32, batch: &[u8]) -> Vec<u8> {
    let mut copy = batch.to_vec();
    let info = log.append(&mut copy, epoch, NOW_MS).expect("append");
    log.maybe_increment_high_watermark(info.last_offset + 1);
    copy
}

/// The leader-epoch cache as (epoch, start offset) pairs.
pub(crate) fn epoch_pairs(log: &PartitionLog) -> Vec<(i32, i64)> {
    log.leader_epochs()
        .entries()
        .iter()
        .map(|e| (e.epoch, e.start_offset))
        .collect()
}

/// What the broker's housekeeping does every second: fsyncs rolled segments (off the lock
/// there) and moves the recovery point past them.
pub(crate) fn flush_rolled(log: &mut PartitionLog) {
    if let Some(pending) = log.take_pending_flush().expect("pending flush") {
        pending.sync().expect("fsync");
        log.complete_flush(pending).expect("complete flush");
    }
}
