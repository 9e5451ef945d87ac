//! Logs the broker's coordinators write for themselves (`__consumer_offsets`,
//! `__transaction_state`): key/value records encoded into ordinary batches with
//! `kafka-protocol` (transactional ones for a producer's pending offsets), and
//! replayed in offset order on load, control records included.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_log::{LogError, LogReader};

const REPLAY_CHUNK_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError<E: std::error::Error> {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("batch at offset {offset} cannot be decoded: {why}")]
    Decode { offset: i64, why: String },
    #[error("record at offset {offset}: {source}")]
    Record { offset: i64, source: E },
}

/// The producer a transactional batch is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
}

/// One item of a replayed log.
#[derive(Debug)]
pub enum ReplayItem {
    /// A data record; `producer` is set for records of transactional batches.
    Record {
        offset: i64,
        producer: Option<BatchProducer>,
        key: Option<Bytes>,
        value: Option<Bytes>,
    },
    /// A transaction marker (control record) of `producer_id`.
    Marker {
        offset: i64,
        producer_id: i64,
        commit: bool,
    },
}

/// One batch holding `entries` as (key, value) records, offsets from 0 (the log assigns
/// the real ones); a transactional batch of `producer` when given. Its base sequence is -1: the coordinator writes it, so the log checks no sequence.
pub fn encode_batch_for(
    entries: &[(Option<Bytes>, Option<Bytes>)],
    producer: Option<BatchProducer>,
    now_ms: i64,
) -> Result<BytesMut, LogError> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.map_or(-1, |p| p.producer_id),
            producer_epoch: producer.map_or(-1, |p| p.producer_epoch),
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant.
            sequence: i as i32 - 1,
            timestamp: now_ms,
            key: key.clone(),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))?;
    Ok(buf)
}

/// A control record's type from its key (Kafka's ControlRecordType: version i16, type i16):
/// `Some(true)` for COMMIT, `Some(false)` for ABORT, `None` for other kinds.
fn marker_kind(key: Option<&Bytes>) -> Option<bool> {
    let key = key?;
    let kind = i16::from_be_bytes(key.get(2..4)?.try_into().ok()?);
    match kind {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Calls `apply` with every record, data and transaction markers, from the log start to
/// the end, in order. Returns the number of items applied.
pub fn replay_items<E: std::error::Error>(
    log: &LogReader,
    mut apply: impl FnMut(ReplayItem) -> Result<(), E>,
) -> Result<usize, ReplayError<E>> {
    let mut offset = log.offsets().log_start_offset();
    let end = log.offsets().log_end_offset();
    let mut count = 0;
    while offset < end {
        let read = log.read(offset, REPLAY_CHUNK_BYTES, end, true)?;
        if read.is_empty() {
            break;
        }
        let mut bytes: Bytes = read.to_bytes()?;
        let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| ReplayError::Decode {
            offset,
            why: format!("{e:#}"),
        })?;
        let mut progressed = false;
        for set in sets {
            for record in set.records {
                if record.offset < offset {
                    continue;
                }
                let at = record.offset;
                let item = if record.control {
                    match marker_kind(record.key.as_ref()) {
                        Some(commit) => ReplayItem::Marker {
                            offset: at,
                            producer_id: record.producer_id,
                            commit,
                        },
                        None => {
                            offset = at + 1;
                            progressed = true;
                            continue;
                        }
                    }
                } else {
                    ReplayItem::Record {
                        offset: at,
                        producer: record.transactional.then_some(BatchProducer {
                            producer_id: record.producer_id,
                            producer_epoch: record.producer_epoch,
                        }),
                        key: record.key,
                        value: record.value,
                    }
                };
                apply(item).map_err(|source| ReplayError::Record { offset: at, source })?;
                offset = at + 1;
                count += 1;
                progressed = true;
            }
        }
        if !progressed {
            // A read that yields no new record (e.g. only control batches) must still move on.
            offset += 1;
        }
    }
    Ok(count)
}
