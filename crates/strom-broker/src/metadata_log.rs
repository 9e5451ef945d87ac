//! The metadata log: `__cluster_metadata-0`, an ordinary partition log whose
//! record values are JSON metadata records. Every metadata change is appended
//! and fsynced here before it is applied; on start the log is replayed into
//! the image. (The cluster issue puts a Raft quorum in front of this log.)

use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_log::{LogConfig, LogError, PartitionLog};
use strom_metadata::{MetadataImage, MetadataRecord};

pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
const REPLAY_CHUNK_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    #[error("metadata log: {0}")]
    Log(#[from] LogError),
    #[error("metadata log batch at offset {offset} cannot be decoded: {why}")]
    Decode { offset: i64, why: String },
    #[error("metadata record at offset {offset} cannot be parsed: {why}")]
    Record { offset: i64, why: String },
}

pub struct MetadataLog {
    log: PartitionLog,
}

fn metadata_log_config() -> LogConfig {
    LogConfig {
        retention_ms: -1,
        retention_bytes: -1,
        ..LogConfig::default()
    }
}

impl MetadataLog {
    /// Opens the log and replays every record into an image.
    pub fn open(
        log_dir: &Path,
        now_ms: i64,
    ) -> Result<(Self, MetadataImage, usize), MetadataLogError> {
        let log = PartitionLog::open(
            log_dir.join(METADATA_LOG_DIR),
            metadata_log_config(),
            now_ms,
        )?;
        let mut records = Vec::new();
        let mut offset = log.log_start_offset();
        let end = log.log_end_offset();
        while offset < end {
            let read = log.read(offset, REPLAY_CHUNK_BYTES, end, true)?;
            if read.bytes.is_empty() {
                break;
            }
            let mut bytes: Bytes = read.bytes;
            let sets = RecordBatchDecoder::decode_all(&mut bytes).map_err(|e| {
                MetadataLogError::Decode {
                    offset,
                    why: format!("{e:#}"),
                }
            })?;
            for set in sets {
                for record in set.records {
                    if record.offset < offset {
                        continue;
                    }
                    let value = record.value.unwrap_or_default();
                    let parsed = MetadataRecord::from_json(&value).map_err(|e| {
                        MetadataLogError::Record {
                            offset: record.offset,
                            why: e.to_string(),
                        }
                    })?;
                    records.push(parsed);
                    offset = record.offset + 1;
                }
            }
        }
        let count = records.len();
        let image = MetadataImage::default().apply(&records);
        Ok((Self { log }, image, count))
    }

    /// Appends records as one batch and fsyncs them.
    pub fn append(&mut self, records: &[MetadataRecord], now_ms: i64) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let base = self.log.log_end_offset();
        let encoded: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, record)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base + i as i64,
                // The encoder keeps records in one batch while offset - sequence is constant.
                sequence: i as i32 - 1,
                timestamp: now_ms,
                key: None,
                value: Some(Bytes::from(record.to_json())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &encoded,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| LogError::Io(std::io::Error::other(e.to_string())))?;
        self.log.append(&mut buf, now_ms)?;
        self.log.flush()
    }

    pub fn close(self) -> Result<(), LogError> {
        self.log.close()
    }
}
