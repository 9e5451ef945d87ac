//! Idempotent-producer state of one partition: per producer id, its epoch and
//! the sequence ranges of its last few batches, so a retried batch is
//! recognised (and answered with its original offsets) and a gap in
//! sequences is refused. Pure bookkeeping; the broker calls it under the
//! partition's lock, around the append.

use std::collections::{HashMap, VecDeque};

use thiserror::Error;

/// Batches remembered per producer: the most a producer keeps in flight.
pub const BATCHES_REMEMBERED: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<ProducerBatch>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// The batch is new and in order: append it.
    Append,
    /// The batch was appended before (a retry): answer with these offsets.
    Duplicate(ProducerBatch),
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ProducerStateError {
    #[error(
        "producer {producer_id} has epoch {current}, the batch carries the older epoch {found}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        found: i16,
    },
    #[error(
        "out of order sequence for producer {producer_id}: expected {expected}, found {found}"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        found: i32,
    },
}

/// The sequence after `sequence`; sequences wrap from i32::MAX to 0.
pub fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

/// The sequence of a batch's last record: `first` advanced by its last offset
/// delta, wrapping past i32::MAX to 0 as the producer's sequences do.
pub fn last_sequence_of_batch(first: i32, last_offset_delta: i32) -> i32 {
    first.wrapping_add(last_offset_delta) & i32::MAX
}

#[derive(Debug, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    pub fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        first_sequence: i32,
        last_sequence: i32,
    ) -> Result<SequenceCheck, ProducerStateError> {
        // An unknown producer (new, or known before a restart) starts anywhere,
        // as Kafka accepts a producer whose state it does not have.
        let Some(entry) = self.producers.get(&producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(ProducerStateError::InvalidProducerEpoch {
                producer_id,
                current: entry.epoch,
                found: epoch,
            });
        }
        if epoch > entry.epoch {
            if first_sequence != 0 {
                return Err(ProducerStateError::OutOfOrderSequence {
                    producer_id,
                    expected: 0,
                    found: first_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(batch) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate(*batch));
        }
        let expected = entry
            .batches
            .back()
            .map_or(first_sequence, |last| next_sequence(last.last_sequence));
        if first_sequence != expected {
            return Err(ProducerStateError::OutOfOrderSequence {
                producer_id,
                expected,
                found: first_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records an appended batch (after a successful `check`).
    pub fn record(&mut self, producer_id: i64, epoch: i16, batch: ProducerBatch) {
        let entry = self.producers.entry(producer_id).or_insert(ProducerEntry {
            epoch,
            batches: VecDeque::with_capacity(BATCHES_REMEMBERED),
        });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == BATCHES_REMEMBERED {
            entry.batches.pop_front();
        }
        entry.batches.push_back(batch);
    }

    /// Drops what is known of a producer (expired): its next batch starts anew.
    pub fn forget(&mut self, producer_id: i64) {
        self.producers.remove(&producer_id);
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i32, last: i32, base: i64) -> ProducerBatch {
        ProducerBatch {
            first_sequence: first,
            last_sequence: last,
            base_offset: base,
            last_offset: base + (last - first) as i64,
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut table = ProducerStateTable::default();
        assert_eq!(table.check(7, 0, 0, 4), Ok(SequenceCheck::Append));
        table.record(7, 0, batch(0, 4, 100));
        assert_eq!(table.check(7, 0, 5, 9), Ok(SequenceCheck::Append));
        table.record(7, 0, batch(5, 9, 105));
        assert_eq!(
            table.check(7, 0, 0, 4),
            Ok(SequenceCheck::Duplicate(batch(0, 4, 100)))
        );
        assert_eq!(
            table.check(7, 0, 5, 9),
            Ok(SequenceCheck::Duplicate(batch(5, 9, 105)))
        );
    }

    #[test]
    fn gaps_and_stale_epochs_are_refused() {
        let mut table = ProducerStateTable::default();
        table.record(7, 3, batch(0, 0, 0));
        assert_eq!(
            table.check(7, 3, 2, 2),
            Err(ProducerStateError::OutOfOrderSequence {
                producer_id: 7,
                expected: 1,
                found: 2
            })
        );
        assert_eq!(
            table.check(7, 2, 1, 1),
            Err(ProducerStateError::InvalidProducerEpoch {
                producer_id: 7,
                current: 3,
                found: 2
            })
        );
        assert!(matches!(
            table.check(7, 4, 5, 5),
            Err(ProducerStateError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(table.check(7, 4, 0, 0), Ok(SequenceCheck::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut table = ProducerStateTable::default();
        for i in 0..6 {
            table.record(1, 0, batch(i, i, i as i64));
        }
        assert_eq!(
            table.check(1, 0, 0, 0),
            Err(ProducerStateError::OutOfOrderSequence {
                producer_id: 1,
                expected: 6,
                found: 0
            })
        );
        assert!(matches!(
            table.check(1, 0, 1, 1),
            Ok(SequenceCheck::Duplicate(_))
        ));
        let mut wrapping = ProducerStateTable::default();
        wrapping.record(2, 0, batch(i32::MAX - 1, i32::MAX, 0));
        assert_eq!(wrapping.check(2, 0, 0, 3), Ok(SequenceCheck::Append));
        assert_eq!(table.len(), 1);
    }
}
