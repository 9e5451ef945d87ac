use std::path::PathBuf;

use thiserror::Error;

#[derive(Error, Debug)]
pub enum LogError {
    #[error("log I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("invalid record batches in append: {0}")]
    InvalidBatch(String),
    #[error("append carries no record batch")]
    EmptyAppend,
    #[error("append of {size_bytes} bytes exceeds segment.bytes {segment_bytes}")]
    AppendTooLarge { size_bytes: u64, segment_bytes: u64 },
    #[error("unexpected append offset {first_offset}: the log end offset is {log_end_offset}")]
    UnexpectedAppendOffset {
        first_offset: i64,
        log_end_offset: i64,
    },
    #[error("batch offsets are not increasing: base offset {base_offset} after last offset {previous_last_offset}")]
    NonMonotonicOffsets {
        base_offset: i64,
        previous_last_offset: i64,
    },
    #[error("offset {offset} cannot be stored relative to segment base offset {base_offset}")]
    OffsetOverflow { offset: i64, base_offset: i64 },
    /// The producer state refused the append (sequence, epoch, transaction rules).
    #[error(transparent)]
    ProducerState(#[from] crate::producer_state::ProducerStateError),
    /// An earlier fsync failed, or a failed write could not be cut off: what lies past the
    /// recovery point may not be on disk as the log believes, so it takes no more writes
    /// and never counts those bytes durable (fsyncgate). Reopening recovers it.
    #[error("the log failed earlier and takes no more writes until reopened: {0}")]
    Failed(String),
    #[error("corrupt segment {path} at position {position}: {reason}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        reason: String,
    },
}
