//! The metadata log: `__cluster_metadata-0`, an ordinary partition log whose
//! record values are JSON metadata records. Every metadata change is appended
//! and fsynced here before it is applied; on start the log is replayed into
//! the image. (The cluster issue puts a Raft quorum in front of this log.)

use std::path::Path;

use bytes::Bytes;
use strom_log::{LogConfig, LogError, PartitionLog, UnsyncedClose};
use strom_metadata::{MetadataImage, MetadataRecord};
use tracing::{error, warn};

use crate::internal_log::{encode_batch, replay, ReplayError};

pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";
/// The leader epoch stamped on metadata batches: a single voter never changes leader.
const SINGLE_VOTER_EPOCH: i32 = 0;

pub type MetadataLogError = ReplayError<serde_json::Error>;

pub struct MetadataLog {
    log: PartitionLog,
    /// Set when records that failed to commit could not be taken back out: the log's
    /// content is uncertain, so it takes no more changes until a restart replays it.
    failed: Option<String>,
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
    /// `log_dir_clean`: the log dir's clean-shutdown marker was there.
    pub fn open(
        log_dir: &Path,
        now_ms: i64,
        log_dir_clean: bool,
    ) -> Result<(Self, MetadataImage, usize), MetadataLogError> {
        let log = PartitionLog::open_in_log_dir(
            log_dir.join(METADATA_LOG_DIR),
            metadata_log_config(),
            now_ms,
            log_dir_clean,
        )?;
        let mut records = Vec::new();
        let count = replay(&log.reader(), |_, _, value| {
            records.push(MetadataRecord::from_json(&value.unwrap_or_default())?);
            Ok(())
        })?;
        let image = MetadataImage::default().apply(&records);
        Ok((Self { log, failed: None }, image, count))
    }

    /// Appends records as one batch and fsyncs them: on `Ok` they are committed, on `Err`
    /// they are not in the log (a replay will not see them either).
    pub fn append(&mut self, records: &[MetadataRecord], now_ms: i64) -> Result<(), LogError> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(reason) = &self.failed {
            return Err(LogError::Io(std::io::Error::other(format!(
                "the metadata log failed earlier ({reason}); restart the broker"
            ))));
        }
        let entries: Vec<(Option<Bytes>, Option<Bytes>)> = records
            .iter()
            .map(|r| (None, Some(Bytes::from(r.to_json()))))
            .collect();
        let mut batch = encode_batch(&entries, now_ms)?;
        let end_before = self.log.log_end_offset();
        // A failed append writes nothing: the segment is cut back to where it was.
        self.log.append(&mut batch, SINGLE_VOTER_EPOCH, now_ms)?;
        if let Err(e) = self.log.flush() {
            // The recovery point only passes fsynced data: past the records, they are
            // durable and only its checkpoint file failed, which costs a longer recovery.
            if self.log.recovery_point() < self.log.log_end_offset() {
                if let Err(undo) = self.log.truncate_to(end_before, now_ms) {
                    error!(error = %e, undo_error = %undo, "metadata records that failed to fsync could not be removed; the metadata log takes no more changes");
                    self.failed = Some(undo.to_string());
                }
                return Err(e);
            }
            warn!(error = %e, "metadata records are durable, but checkpointing the recovery point failed");
        }
        // Committed once fsynced: a one-voter quorum is its own majority.
        let end = self.log.log_end_offset();
        self.log.maybe_increment_high_watermark(end);
        Ok(())
    }

    /// Closes the log as one of the log dir's (see [`PartitionLog::close_unsynced`]).
    pub fn close_unsynced(self) -> Result<UnsyncedClose, LogError> {
        self.log.close_unsynced()
    }
}
