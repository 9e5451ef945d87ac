//! Reading a log without its writer's lock. The writer publishes an immutable list of segment
//! views (on roll, deletion, cleaning and truncation) and the offsets (after each append);
//! a reader takes both, walks batch headers to find the byte ranges it wants, and hands back
//! file slices. The slices keep their segment's file open, so a segment that retention or
//! the cleaner removes meanwhile still reads whole.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};

use crate::error::LogError;
use crate::leader_epoch::{LeaderEpochCache, UNDEFINED_EPOCH_OFFSET};
use crate::offsets::LogOffsets;
use crate::segment::SegmentView;
use crate::txn_index::AbortedTxn;

/// What a log shares with its readers.
#[derive(Default)]
pub(crate) struct LogShared {
    pub(crate) offsets: LogOffsets,
    pub(crate) segments: RwLock<Arc<Vec<Arc<SegmentView>>>>,
    /// The leader-epoch cache as of the last publish; it changes only with a new epoch,
    /// a truncation or a new log start, so readers take a read lock nobody holds long.
    pub(crate) leader_epochs: RwLock<LeaderEpochCache>,
}

/// A cheap, cloneable handle for reading a log from any thread.
#[derive(Clone)]
pub struct LogReader {
    pub(crate) shared: Arc<LogShared>,
}

/// A run of whole batches in one segment file. It holds the file open (whatever the file
/// cache closes meanwhile) and the segment (so retention does not delete it yet).
#[derive(Clone)]
pub struct FileSlice {
    pub segment: Arc<SegmentView>,
    pub file: Arc<File>,
    pub position: u64,
    pub len: u64,
}

/// Whole batches read from the log, as byte ranges of its files (never decoded).
#[derive(Clone, Default)]
pub struct LogSlices {
    pub slices: Vec<FileSlice>,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// The offset after the last batch read (the read's offset when nothing was read): the
    /// upper bound of the aborted transactions a read_committed reader needs.
    pub next_offset: i64,
}

impl LogSlices {
    pub fn len(&self) -> u64 {
        self.slices.iter().map(|s| s.len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks the kernel to start reading the slices into the page cache
    /// (`posix_fadvise(WILLNEED)`), so that sending them later with sendfile on an
    /// async worker finds them cached instead of waiting on the disk. Advice only:
    /// it never fails and changes no bytes.
    pub fn prefetch(&self) {
        for slice in &self.slices {
            let (Ok(position), Ok(len)) = (
                libc::off_t::try_from(slice.position),
                libc::off_t::try_from(slice.len),
            ) else {
                continue;
            };
            // SAFETY: posix_fadvise only reads its arguments; a bad descriptor or range is
            // an error code, which advice can ignore.
            unsafe {
                libc::posix_fadvise(
                    slice.file.as_raw_fd(),
                    position,
                    len,
                    libc::POSIX_FADV_WILLNEED,
                );
            }
        }
    }

    /// Copies the bytes into one buffer of exactly their size.
    pub fn to_bytes(&self) -> Result<Bytes, LogError> {
        let total = usize::try_from(self.len())
            .map_err(|_| LogError::Io(std::io::Error::other("read larger than memory")))?;
        let mut out = BytesMut::zeroed(total);
        let mut at = 0usize;
        for slice in &self.slices {
            let len = slice.len as usize;
            slice
                .file
                .read_exact_at(&mut out[at..at + len], slice.position)?;
            at += len;
        }
        Ok(out.freeze())
    }
}

impl LogReader {
    /// A reader of no log: empty, all offsets 0 (a partition whose log dir is offline).
    pub fn unopened() -> Self {
        Self {
            shared: Arc::new(LogShared::default()),
        }
    }

    pub fn offsets(&self) -> &LogOffsets {
        &self.shared.offsets
    }

    /// The newest leader epoch in the published epoch cache.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.shared
            .leader_epochs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .latest_epoch()
    }

    /// [`crate::PartitionLog::end_offset_for_epoch`] on the published epoch cache and log
    /// end offset, without the log's lock.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let epochs = self
            .shared
            .leader_epochs
            .read()
            .unwrap_or_else(|p| p.into_inner());
        // Read under the cache's lock: the writer publishes the cache before the offsets,
        // so the end read here is at least as new as the cache.
        let log_end_offset = self.shared.offsets.log_end_offset();
        let (found, end_offset) = epochs.end_offset_for(epoch, log_end_offset);
        (end_offset != UNDEFINED_EPOCH_OFFSET).then_some((found, end_offset))
    }

    fn segments(&self) -> Arc<Vec<Arc<SegmentView>>> {
        self.shared
            .segments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The aborted transactions a read_committed fetch of `[fetch_offset,
    /// upper_bound_offset)` must filter, from the segments' `.txnindex` entries (Kafka's
    /// collectAbortedTransactions): from the segment holding `fetch_offset` on, until an
    /// entry's last stable offset reaches the bound.
    pub fn aborted_transactions(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
    ) -> Vec<AbortedTxn> {
        let segments = self.segments();
        let first = segments
            .partition_point(|s| s.base_offset <= fetch_offset)
            .saturating_sub(1);
        let mut out = Vec::new();
        for segment in segments.iter().skip(first) {
            if segment.base_offset >= upper_bound_offset
                || segment.collect_aborted(fetch_offset, upper_bound_offset, &mut out)
            {
                break;
            }
        }
        out
    }

    /// Whole batches starting with the one holding `offset`, up to `max_bytes` (the first one
    /// whole regardless when `min_one_batch`), none whose last offset reaches `max_offset`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_batch: bool,
    ) -> Result<LogSlices, LogError> {
        // Offsets first: the writer publishes the segment list before offsets that need it.
        let log_start_offset = self.shared.offsets.log_start_offset();
        let log_end_offset = self.shared.offsets.log_end_offset();
        if offset < log_start_offset || offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let mut out = LogSlices {
            slices: Vec::new(),
            log_start_offset,
            log_end_offset,
            next_offset: offset,
        };
        if offset >= log_end_offset || offset >= max_offset {
            return Ok(out);
        }
        let segments = self.segments();
        let first = segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1);
        let mut budget = max_bytes as u64;
        for (i, segment) in segments.iter().enumerate().skip(first) {
            let size = segment.size_bytes();
            let file = segment.file()?;
            let start = if i == first {
                match segment.translate_offset_in(&file, offset, size)? {
                    Some(meta) => meta.position,
                    None => continue,
                }
            } else {
                0
            };
            let range = segment.range_from(
                &file,
                start,
                size,
                budget,
                max_offset,
                min_one_batch && out.slices.is_empty(),
            )?;
            let len = range.end_position - start;
            if let Some(next) = range.next_offset {
                out.next_offset = next;
            }
            if len > 0 {
                budget = budget.saturating_sub(len);
                out.slices.push(FileSlice {
                    segment: segment.clone(),
                    file,
                    position: start,
                    len,
                });
            }
            if range.stopped_at_limit {
                break;
            }
        }
        Ok(out)
    }
}
