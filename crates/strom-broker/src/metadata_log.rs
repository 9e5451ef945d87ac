//! The metadata log: `__cluster_metadata-0`, an ordinary partition log whose
//! record values are JSON metadata records. Every metadata change is appended
//! and fsynced here before it is applied; on start the log is replayed into
//! the image. (The cluster issue puts a Raft quorum in front of this log.)

use std::path::Path;

use bytes::Bytes;
use strom_log::{LogConfig, LogError, PartitionLog};
use strom_metadata::{MetadataImage, MetadataRecord};

use crate::internal_log::{encode_batch, replay, ReplayError};

pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
/// The leader epoch stamped on metadata batches: a single voter never changes leader.
const SINGLE_VOTER_EPOCH: i32 = 0;

pub type MetadataLogError = ReplayError<serde_json::Error>;

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
        let count = replay(&log.reader(), |_, _, value| {
            records.push(MetadataRecord::from_json(&value.unwrap_or_default())?);
            Ok(())
        })?;
        let image = MetadataImage::default().apply(&records);
        Ok((Self { log }, image, count))
    }

    /// Appends records as one batch and fsyncs them.
    pub fn append(&mut self, records: &[MetadataRecord], now_ms: i64) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        let entries: Vec<(Option<Bytes>, Option<Bytes>)> = records
            .iter()
            .map(|r| (None, Some(Bytes::from(r.to_json()))))
            .collect();
        let mut batch = encode_batch(&entries, now_ms)?;
        self.log.append(&mut batch, SINGLE_VOTER_EPOCH, now_ms)?;
        self.log.flush()?;
        // Committed once fsynced: a one-voter quorum is its own majority.
        let end = self.log.log_end_offset();
        self.log.maybe_increment_high_watermark(end);
        Ok(())
    }

    pub fn close(self) -> Result<(), LogError> {
        self.log.close()
    }
}
