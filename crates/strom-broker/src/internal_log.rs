//! Logs the broker writes for itself (the metadata log, `__consumer_offsets`):
//! key/value records encoded into ordinary batches with `kafka-protocol`, and
//! replayed in offset order on load.

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

/// One batch holding `entries` as (key, value) records, offsets from 0 (the
/// log assigns the real ones).
pub fn encode_batch(
    entries: &[(Option<Bytes>, Option<Bytes>)],
    now_ms: i64,
) -> Result<BytesMut, LogError> {
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
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

/// Calls `apply` with every record from the log start to the end, in order.
pub fn replay<E: std::error::Error>(
    log: &LogReader,
    mut apply: impl FnMut(i64, Option<Bytes>, Option<Bytes>) -> Result<(), E>,
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
                if record.control || record.offset < offset {
                    continue;
                }
                let at = record.offset;
                apply(at, record.key, record.value)
                    .map_err(|source| ReplayError::Record { offset: at, source })?;
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
