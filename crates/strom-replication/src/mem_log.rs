//! An in-memory partition log for tests and the deterministic simulation: real record
//! batches at their offsets, the leader-epoch cache with strom-log's (Kafka's) rules, a
//! high watermark, and a durable prefix so a simulated crash loses what was not flushed.

use bytes::{Bytes, BytesMut};
use strom_log::leader_epoch::LeaderEpochCache;
use thiserror::Error;

use crate::batches::RecordBatches;
use crate::error::ReplicationError;
use crate::log::ReplicaLog;

/// One stored batch: its offsets, the epoch of the leader that wrote it, and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub leader_epoch: i32,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MemLogError {
    #[error("batches start at {first_offset}, the log ends at {log_end_offset}")]
    UnexpectedAppendOffset {
        first_offset: i64,
        log_end_offset: i64,
    },
    #[error("offset {offset} is outside [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("invalid batches: {0}")]
    InvalidBatch(ReplicationError),
    #[error("nothing to append")]
    EmptyAppend,
}

/// Where two logs first differ below the compared offset.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("logs differ at offset {offset}: {reason}")]
pub struct PrefixMismatch {
    pub offset: i64,
    pub reason: String,
}

/// What survives a crash: the state as of the last flush, minus later truncations.
#[derive(Debug, Clone, Default)]
struct Durable {
    end_offset: i64,
    high_watermark: i64,
    epochs: LeaderEpochCache,
}

#[derive(Debug, Clone, Default)]
pub struct MemLog {
    batches: Vec<MemBatch>,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    epochs: LeaderEpochCache,
    durable: Durable,
}

impl MemLog {
    /// An empty log starting at offset 0.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn batches(&self) -> &[MemBatch] {
        &self.batches
    }

    pub fn epochs(&self) -> &LeaderEpochCache {
        &self.epochs
    }

    /// The end of the durable prefix: a crash keeps the batches below it.
    pub fn durable_end_offset(&self) -> i64 {
        self.durable.end_offset
    }

    /// Appends producer batches as the leader in `leader_epoch`: each batch gets the next
    /// offsets and the epoch is stamped on it and recorded where it starts. Returns the
    /// first and last offsets written.
    pub fn append_as_leader(
        &mut self,
        batches: &[u8],
        leader_epoch: i32,
    ) -> Result<(i64, i64), MemLogError> {
        let parsed = RecordBatches::parse(Bytes::copy_from_slice(batches))
            .map_err(MemLogError::InvalidBatch)?;
        if parsed.is_empty() {
            return Err(MemLogError::EmptyAppend);
        }
        let first = self.log_end_offset;
        for (span, bytes) in parsed.iter() {
            let base_offset = self.log_end_offset;
            let last_offset = base_offset + (span.last_offset - span.base_offset);
            let mut stamped = BytesMut::from(&bytes[..]);
            strom_wire::batch::set_base_offset(&mut stamped, base_offset);
            strom_wire::batch::set_partition_leader_epoch(&mut stamped, leader_epoch);
            self.epochs.assign(leader_epoch, base_offset);
            self.batches.push(MemBatch {
                base_offset,
                last_offset,
                leader_epoch,
                bytes: stamped.freeze(),
            });
            self.log_end_offset = last_offset + 1;
        }
        Ok((first, self.log_end_offset - 1))
    }

    /// Appends fetched batches keeping their offsets and epochs (a follower). The first
    /// must start at the log end offset.
    pub fn append_as_follower(&mut self, batches: &RecordBatches) -> Result<(), MemLogError> {
        let Some(first_offset) = batches.base_offset() else {
            return Err(MemLogError::EmptyAppend);
        };
        if first_offset != self.log_end_offset {
            return Err(MemLogError::UnexpectedAppendOffset {
                first_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        for (span, bytes) in batches.iter() {
            self.epochs.assign(span.leader_epoch, span.base_offset);
            self.batches.push(MemBatch {
                base_offset: span.base_offset,
                last_offset: span.last_offset,
                leader_epoch: span.leader_epoch,
                bytes,
            });
            self.log_end_offset = span.last_offset + 1;
        }
        Ok(())
    }

    /// Records that `epoch` starts at `offset` (a new leader, before its first append, so
    /// followers with a newer epoch can find where they diverge).
    pub fn assign_epoch_start(&mut self, epoch: i32, offset: i64) {
        self.epochs.assign(epoch, offset);
    }

    /// Removes every batch holding an offset at or past `offset` (a straddling batch goes
    /// whole), as strom-log does; below the log start it empties the log and restarts it
    /// at `offset`. Truncation is durable at once.
    pub fn truncate_to(&mut self, offset: i64) {
        if offset >= self.log_end_offset {
            self.epochs.truncate_from_end(self.log_end_offset);
            return;
        }
        if offset < self.log_start_offset {
            self.truncate_fully_and_start_at(offset);
            return;
        }
        let keep = self.batches.partition_point(|b| b.last_offset < offset);
        self.batches.truncate(keep);
        self.log_end_offset = self
            .batches
            .last()
            .map_or(self.log_start_offset, |b| b.last_offset + 1)
            .max(self.log_start_offset);
        self.epochs.truncate_from_end(self.log_end_offset);
        self.high_watermark = self.high_watermark.min(self.log_end_offset);
        self.durable.end_offset = self.durable.end_offset.min(self.log_end_offset);
        self.durable.high_watermark = self.durable.high_watermark.min(self.log_end_offset);
        self.durable.epochs.truncate_from_end(self.log_end_offset);
    }

    /// Empties the log and restarts it at `offset`. Durable at once.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) {
        self.batches.clear();
        self.log_start_offset = offset;
        self.log_end_offset = offset;
        self.high_watermark = offset;
        self.epochs.clear();
        self.durable = Durable {
            end_offset: offset,
            high_watermark: offset,
            epochs: LeaderEpochCache::default(),
        };
    }

    /// Sets the high watermark within [log start, log end]; returns the value set.
    pub fn set_high_watermark(&mut self, offset: i64) -> i64 {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset);
        self.high_watermark
    }

    /// Raises the high watermark (clamped to the log end); returns whether it moved.
    pub fn maybe_increment_high_watermark(&mut self, offset: i64) -> bool {
        let offset = offset.min(self.log_end_offset);
        if offset <= self.high_watermark {
            return false;
        }
        self.high_watermark = offset;
        true
    }

    /// Raises the log start offset (never past the high watermark), dropping the batches
    /// wholly below it. Returns whether it moved.
    pub fn maybe_increment_log_start_offset(&mut self, offset: i64) -> bool {
        let offset = offset.min(self.high_watermark);
        if offset <= self.log_start_offset {
            return false;
        }
        self.log_start_offset = offset;
        let below = self.batches.partition_point(|b| b.last_offset < offset);
        self.batches.drain(..below);
        self.epochs.truncate_from_start(offset);
        self.durable.epochs.truncate_from_start(offset);
        true
    }

    /// Whole batches from the one holding `offset`, up to `max_bytes` but at least one,
    /// concatenated as a Fetch response carries them.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, MemLogError> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(MemLogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset,
            });
        }
        let first = self.batches.partition_point(|b| b.last_offset < offset);
        let mut out = BytesMut::new();
        for batch in &self.batches[first..] {
            if !out.is_empty() && out.len() + batch.bytes.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&batch.bytes);
        }
        Ok(out.freeze())
    }

    /// Makes everything written so far durable (and checkpoints the high watermark).
    pub fn flush(&mut self) {
        self.durable = Durable {
            end_offset: self.log_end_offset,
            high_watermark: self.high_watermark,
            epochs: self.epochs.clone(),
        };
    }

    /// A crash and restart: the log keeps its durable prefix, the epochs checkpointed with
    /// it, and the checkpointed high watermark.
    pub fn crash(&mut self) {
        let end = self.durable.end_offset.max(self.log_start_offset);
        let keep = self.batches.partition_point(|b| b.last_offset < end);
        self.batches.truncate(keep);
        self.log_end_offset = self
            .batches
            .last()
            .map_or(self.log_start_offset, |b| b.last_offset + 1);
        self.epochs = self.durable.epochs.clone();
        self.epochs.truncate_from_end(self.log_end_offset);
        self.high_watermark = self
            .durable
            .high_watermark
            .clamp(self.log_start_offset, self.log_end_offset);
        self.durable.end_offset = self.log_end_offset;
    }

    /// Checks that both logs hold the same batches (offsets, epochs, bytes) below
    /// `end_offset`, from the later of their log starts.
    pub fn same_prefix(&self, other: &MemLog, end_offset: i64) -> Result<(), PrefixMismatch> {
        let start = self.log_start_offset.max(other.log_start_offset);
        for (name, log) in [("left", self), ("right", other)] {
            if log.log_end_offset < end_offset {
                return Err(PrefixMismatch {
                    offset: log.log_end_offset,
                    reason: format!("the {name} log ends at {}", log.log_end_offset),
                });
            }
        }
        let ours = self.batches_in(start, end_offset);
        let theirs = other.batches_in(start, end_offset);
        for (a, b) in ours.iter().zip(theirs.iter()) {
            if a != b {
                return Err(PrefixMismatch {
                    offset: a.base_offset.min(b.base_offset),
                    reason: format!(
                        "batch [{}, {}] epoch {} against [{}, {}] epoch {}{}",
                        a.base_offset,
                        a.last_offset,
                        a.leader_epoch,
                        b.base_offset,
                        b.last_offset,
                        b.leader_epoch,
                        if a.bytes != b.bytes {
                            ", bytes differ"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
        if ours.len() != theirs.len() {
            let offset = ours
                .get(theirs.len())
                .or(theirs.get(ours.len()))
                .map_or(start, |b| b.base_offset);
            return Err(PrefixMismatch {
                offset,
                reason: format!("{} batches against {}", ours.len(), theirs.len()),
            });
        }
        Ok(())
    }

    fn batches_in(&self, start: i64, end: i64) -> &[MemBatch] {
        let from = self.batches.partition_point(|b| b.last_offset < start);
        let to = self.batches.partition_point(|b| b.base_offset < end);
        &self.batches[from..to.max(from)]
    }
}

impl ReplicaLog for MemLog {
    fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }
    fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let (found, end) = self.epochs.end_offset_for(epoch, self.log_end_offset);
        (end != strom_log::leader_epoch::UNDEFINED_EPOCH_OFFSET).then_some((found, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::batch_bytes;

    fn values(n: usize) -> Vec<&'static [u8]> {
        vec![b"v".as_slice(); n]
    }

    #[test]
    fn the_leader_stamps_offsets_and_epochs() {
        let mut log = MemLog::new();
        assert_eq!(
            log.append_as_leader(&batch_bytes(0, 0, &values(3)), 2),
            Ok((0, 2))
        );
        log.assign_epoch_start(4, 3);
        assert_eq!(
            log.append_as_leader(&batch_bytes(0, 0, &values(2)), 4),
            Ok((3, 4))
        );
        let batches: Vec<(i64, i64, i32)> = log
            .batches()
            .iter()
            .map(|b| (b.base_offset, b.last_offset, b.leader_epoch))
            .collect();
        assert_eq!(batches, vec![(0, 2, 2), (3, 4, 4)]);
        let parsed = RecordBatches::parse(log.read(3, 1).unwrap()).unwrap();
        assert_eq!(
            (
                parsed.base_offset(),
                parsed.last_offset(),
                parsed.last_epoch()
            ),
            (Some(3), Some(4), Some(4))
        );
        assert_eq!(log.end_offset_for_epoch(2), Some((2, 3)));
        assert_eq!(log.end_offset_for_epoch(3), Some((2, 3)));
        assert_eq!(log.end_offset_for_epoch(4), Some((4, 5)));
        assert_eq!(log.end_offset_for_epoch(5), None);
        assert_eq!(log.latest_epoch(), Some(4));
        // Reads: from the batch holding the offset, at least one batch.
        assert_eq!(log.read(1, 0).unwrap(), log.batches()[0].bytes);
        assert_eq!(log.read(5, 100).unwrap().len(), 0);
        assert_eq!(
            log.read(6, 100),
            Err(MemLogError::OffsetOutOfRange {
                offset: 6,
                log_start_offset: 0,
                log_end_offset: 5
            })
        );
    }

    #[test]
    fn a_follower_keeps_offsets_and_truncates() {
        let mut leader = MemLog::new();
        leader
            .append_as_leader(&batch_bytes(0, 0, &values(3)), 1)
            .unwrap();
        leader
            .append_as_leader(&batch_bytes(0, 0, &values(3)), 2)
            .unwrap();
        let mut follower = MemLog::new();
        let fetched = RecordBatches::parse(leader.read(0, 1 << 20).unwrap()).unwrap();
        follower.append_as_follower(&fetched).unwrap();
        assert_eq!(follower.same_prefix(&leader, 6), Ok(()));
        assert_eq!(
            follower.append_as_follower(&fetched),
            Err(MemLogError::UnexpectedAppendOffset {
                first_offset: 0,
                log_end_offset: 6
            })
        );
        follower.set_high_watermark(5);
        follower.truncate_to(4);
        assert_eq!(
            (follower.log_end_offset(), follower.high_watermark()),
            (3, 3)
        );
        assert_eq!(follower.end_offset_for_epoch(1), Some((1, 3)));
        assert_eq!(follower.end_offset_for_epoch(2), None);
        assert_eq!(follower.same_prefix(&leader, 3), Ok(()));
        assert_eq!(
            follower.same_prefix(&leader, 4),
            Err(PrefixMismatch {
                offset: 3,
                reason: "the left log ends at 3".into()
            })
        );
        follower.truncate_fully_and_start_at(20);
        assert_eq!(
            (
                follower.log_start_offset(),
                follower.log_end_offset(),
                follower.high_watermark(),
                follower.latest_epoch()
            ),
            (20, 20, 20, None)
        );
    }

    #[test]
    fn a_crash_keeps_the_flushed_prefix() {
        let mut log = MemLog::new();
        log.append_as_leader(&batch_bytes(0, 0, &values(2)), 1)
            .unwrap();
        log.set_high_watermark(2);
        log.flush();
        log.append_as_leader(&batch_bytes(0, 0, &values(2)), 3)
            .unwrap();
        log.set_high_watermark(4);
        let before = log.clone();
        log.crash();
        assert_eq!(
            (
                log.log_end_offset(),
                log.high_watermark(),
                log.latest_epoch()
            ),
            (2, 2, Some(1))
        );
        assert_eq!(log.same_prefix(&before, 2), Ok(()));
        // A batch with other bytes at the same offsets is a mismatch.
        let mut other = log.clone();
        other.truncate_to(0);
        other
            .append_as_leader(&batch_bytes(0, 0, &[b"w", b"w"]), 1)
            .unwrap();
        let mismatch = log.same_prefix(&other, 2).unwrap_err();
        assert_eq!(mismatch.offset, 0);
        assert_eq!(
            mismatch.reason,
            "batch [0, 1] epoch 1 against [0, 1] epoch 1, bytes differ"
        );
        // Truncation below the durable end is durable.
        log.truncate_to(1);
        log.crash();
        assert_eq!(log.log_end_offset(), 0);
    }
}
