//! What replication reads of a partition's log.

use strom_log::{LogReader, PartitionLog};

/// The offsets and leader epochs replication decides from. Mutations (append, truncate,
/// high watermark) stay with the caller, which applies the steps the state machines return.
pub trait ReplicaLog {
    fn log_start_offset(&self) -> i64;
    fn log_end_offset(&self) -> i64;
    fn high_watermark(&self) -> i64;
    /// The newest leader epoch in the log's epoch cache.
    fn latest_epoch(&self) -> Option<i32>;
    /// Kafka's `endOffsetFor` on the epoch cache: the largest epoch <= `epoch` that the log
    /// knows and the offset where the epoch after it starts (the log end offset for the
    /// latest epoch); for an epoch older than every entry, `epoch` and the first entry's
    /// start. `None` when the cache cannot say (an undefined epoch, one newer than every
    /// entry, or an empty cache).
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)>;
}

impl<T: ReplicaLog + ?Sized> ReplicaLog for &T {
    fn log_start_offset(&self) -> i64 {
        (**self).log_start_offset()
    }
    fn log_end_offset(&self) -> i64 {
        (**self).log_end_offset()
    }
    fn high_watermark(&self) -> i64 {
        (**self).high_watermark()
    }
    fn latest_epoch(&self) -> Option<i32> {
        (**self).latest_epoch()
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        (**self).end_offset_for_epoch(epoch)
    }
}

impl ReplicaLog for PartitionLog {
    fn log_start_offset(&self) -> i64 {
        PartitionLog::log_start_offset(self)
    }
    fn log_end_offset(&self) -> i64 {
        PartitionLog::log_end_offset(self)
    }
    fn high_watermark(&self) -> i64 {
        PartitionLog::high_watermark(self)
    }
    fn latest_epoch(&self) -> Option<i32> {
        self.leader_epochs().latest_epoch()
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        PartitionLog::end_offset_for_epoch(self, epoch)
    }
}

/// The log's published state, read without its lock: what a leader decides a follower's
/// fetch from while appends go on.
impl ReplicaLog for LogReader {
    fn log_start_offset(&self) -> i64 {
        self.offsets().log_start_offset()
    }
    fn log_end_offset(&self) -> i64 {
        self.offsets().log_end_offset()
    }
    fn high_watermark(&self) -> i64 {
        self.offsets().high_watermark()
    }
    fn latest_epoch(&self) -> Option<i32> {
        LogReader::latest_epoch(self)
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        LogReader::end_offset_for_epoch(self, epoch)
    }
}
