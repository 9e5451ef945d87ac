//! Offsets a log publishes for readers that do not hold its lock: the broker answers
//! ListOffsets, lag and produce responses from here, and later readers of the segments
//! will bound their reads by the published high watermark.

use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug, Default)]
pub struct LogOffsets {
    log_start_offset: AtomicI64,
    log_end_offset: AtomicI64,
    high_watermark: AtomicI64,
    last_stable_offset: AtomicI64,
}

/// One consistent-enough reading of [`LogOffsets`]: each value is exact, and a reader that
/// needs them to agree (fetch) reads them under the log's lock instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetsSnapshot {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

impl LogOffsets {
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn last_stable_offset(&self) -> i64 {
        self.last_stable_offset.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> OffsetsSnapshot {
        OffsetsSnapshot {
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
            high_watermark: self.high_watermark(),
            last_stable_offset: self.last_stable_offset(),
        }
    }

    pub(crate) fn publish(&self, offsets: OffsetsSnapshot) {
        // The end first and the start last: a reader never sees a start above the end.
        self.log_end_offset
            .store(offsets.log_end_offset, Ordering::Release);
        self.high_watermark
            .store(offsets.high_watermark, Ordering::Release);
        self.last_stable_offset
            .store(offsets.last_stable_offset, Ordering::Release);
        self.log_start_offset
            .store(offsets.log_start_offset, Ordering::Release);
    }
}
