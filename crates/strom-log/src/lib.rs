//! The storage engine: one segmented commit log per partition, laid out on disk as Kafka
//! does (`<base offset>.log` with sparse `.index` and `.timeindex` files, a log start offset
//! checkpoint and a recovery point). Plain blocking std I/O; the broker serialises access.
//!
//! Appends take batches that already passed `strom_wire::batch::validate` and only rewrite
//! their base offsets; reads hand back whole stored batches without decoding them.
//!
//! Compaction (`PartitionLog::compact`, cleanup.policy=compact) follows Kafka's LogCleaner:
//! it rewrites inactive segments keeping the latest record per key, swapping the cleaned
//! segments in through `.cleaned`/`.swap` files that `open` rolls back or completes.

mod checkpoint;
mod cleaner;
mod cleaner_txn;
mod compaction;
mod config;
mod error;
mod file_cache;
mod index;
pub mod leader_epoch;
mod log;
mod offset_map;
mod offsets;
mod producer_snapshot;
pub mod producer_state;
mod reader;
mod recovery;
mod retention;
mod scan;
mod segment;
mod swap;
mod time_index;
mod timestamp;
mod truncation;
mod txn_index;
mod vectored;

pub use checkpoint::{
    log_dir_had_clean_shutdown, read_high_watermarks, remove_log_dir_clean_shutdown,
    sync_filesystem, write_high_watermarks, write_log_dir_clean_shutdown, HighWatermarkEntry,
};
pub use compaction::{
    run_round, CleanedGroup, CompactionOutcome, CompactionPolicy, CompactionRound, LogLock,
    Planned, PRODUCER_ID_EXPIRATION_MS,
};
pub use config::{LogConfig, DEFAULT_MAX_PRODUCER_IDS};
pub use error::LogError;
pub use file_cache::{open_file_count, set_max_open_files};
pub use log::{AppendInfo, PartitionLog, PendingFlush, ReadResult, SegmentInfo, UnsyncedClose};
pub use offsets::{LogOffsets, OffsetsSnapshot};
pub use reader::{FileSlice, LogReader, LogSlices};
pub use retention::RetentionOutcome;
pub use segment::SegmentView;
pub use swap::{SwapHook, SwapStep};
pub use txn_index::AbortedTxn;

#[cfg(test)]
mod tests;
