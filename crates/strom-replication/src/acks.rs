//! acks=all produce requests waiting for the high watermark (Kafka's DelayedProduce in
//! its purgatory), bounded, keyed by partition, each with a deadline.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::error::ReplicationError;
use crate::leader::AckStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{capacity} acks=all produce requests are already waiting")]
pub struct AckWaitersFull {
    pub capacity: usize,
}

/// A wait that ended: its caller-chosen id and the answer for its partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedAck<I> {
    pub id: I,
    pub result: Result<(), ReplicationError>,
}

#[derive(Debug, Clone)]
struct Waiter<I> {
    id: I,
    deadline_ms: i64,
}

/// Waits of partition key `K` (e.g. topic id and partition) with caller ids `I`.
#[derive(Debug, Clone)]
pub struct AckWaiters<K: Ord + Clone, I> {
    capacity: usize,
    next_seq: u64,
    /// By partition, then required offset, then arrival.
    waits: BTreeMap<(K, i64, u64), Waiter<I>>,
    deadlines: BTreeSet<(i64, u64)>,
    /// Arrival number -> where the wait is in `waits`.
    keys: BTreeMap<u64, (K, i64)>,
}

impl<K: Ord + Clone, I> AckWaiters<K, I> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next_seq: 0,
            waits: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            keys: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.waits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }

    /// Waits until partition `key`'s high watermark reaches `required_offset` (the last
    /// appended offset + 1), at most until `deadline_ms`.
    pub fn insert(
        &mut self,
        key: K,
        required_offset: i64,
        deadline_ms: i64,
        id: I,
    ) -> Result<(), AckWaitersFull> {
        if self.waits.len() >= self.capacity {
            return Err(AckWaitersFull {
                capacity: self.capacity,
            });
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.waits.insert(
            (key.clone(), required_offset, seq),
            Waiter { id, deadline_ms },
        );
        self.deadlines.insert((deadline_ms, seq));
        self.keys.insert(seq, (key, required_offset));
        Ok(())
    }

    /// After partition `key`'s high watermark or ISR changed: `check` says for a required
    /// offset whether the wait is over (usually [`crate::LeaderState::acks_all_result`]).
    /// Waits are checked in offset order and the first still waiting stops the walk.
    pub fn complete(
        &mut self,
        key: &K,
        mut check: impl FnMut(i64) -> AckStatus,
    ) -> Vec<CompletedAck<I>> {
        let mut done = Vec::new();
        for &(_, required_offset, seq) in self.keys_of(key).iter() {
            let result = match check(required_offset) {
                AckStatus::Waiting => break,
                AckStatus::Done => Ok(()),
                AckStatus::Failed(error) => Err(error),
            };
            done.push((key.clone(), required_offset, seq, result));
        }
        done.into_iter()
            .filter_map(|(key, offset, seq, result)| {
                self.remove(key, offset, seq)
                    .map(|id| CompletedAck { id, result })
            })
            .collect()
    }

    /// Ends every wait of partition `key` with `error` (e.g. NOT_LEADER_OR_FOLLOWER when
    /// leadership moved away).
    pub fn fail_partition(&mut self, key: &K, error: ReplicationError) -> Vec<CompletedAck<I>> {
        self.keys_of(key)
            .into_iter()
            .filter_map(|(key, offset, seq)| {
                self.remove(key, offset, seq).map(|id| CompletedAck {
                    id,
                    result: Err(error.clone()),
                })
            })
            .collect()
    }

    /// Ends the waits whose deadline is at or before `now_ms` with REQUEST_TIMED_OUT.
    pub fn expire(&mut self, now_ms: i64) -> Vec<CompletedAck<I>> {
        let due: Vec<u64> = self
            .deadlines
            .range(..=(now_ms, u64::MAX))
            .map(|&(_, seq)| seq)
            .collect();
        due.into_iter()
            .filter_map(|seq| {
                let (key, offset) = self.keys.get(&seq)?.clone();
                self.remove(key, offset, seq).map(|id| CompletedAck {
                    id,
                    result: Err(ReplicationError::RequestTimedOut),
                })
            })
            .collect()
    }

    /// The earliest deadline, for the caller's timer.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    fn keys_of(&self, key: &K) -> Vec<(K, i64, u64)> {
        self.waits
            .range((key.clone(), i64::MIN, 0)..=(key.clone(), i64::MAX, u64::MAX))
            .map(|(k, _)| k.clone())
            .collect()
    }

    fn remove(&mut self, key: K, required_offset: i64, seq: u64) -> Option<I> {
        let waiter = self.waits.remove(&(key, required_offset, seq))?;
        self.deadlines.remove(&(waiter.deadline_ms, seq));
        self.keys.remove(&seq);
        Some(waiter.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_high_watermark(hw: i64) -> impl FnMut(i64) -> AckStatus {
        move |required| {
            if hw >= required {
                AckStatus::Done
            } else {
                AckStatus::Waiting
            }
        }
    }

    fn ids(done: &[CompletedAck<u32>]) -> Vec<u32> {
        done.iter().map(|c| c.id).collect()
    }

    #[test]
    fn waits_complete_in_offset_order_per_partition() {
        let mut waiters: AckWaiters<&str, u32> = AckWaiters::new(10);
        waiters.insert("a", 5, 1_000, 1).unwrap();
        waiters.insert("a", 3, 2_000, 2).unwrap();
        waiters.insert("b", 3, 500, 3).unwrap();
        waiters.insert("a", 9, 1_500, 4).unwrap();
        assert_eq!(waiters.next_deadline_ms(), Some(500));
        let done = waiters.complete(&"a", by_high_watermark(5));
        assert_eq!(ids(&done), vec![2, 1]);
        assert!(done.iter().all(|c| c.result.is_ok()));
        assert_eq!(waiters.len(), 2);
        // Failing the partition's waits (an ISR below the minimum when the high
        // watermark passed them).
        let error = ReplicationError::NotEnoughReplicasAfterAppend {
            isr_size: 1,
            min_insync_replicas: 2,
        };
        let done = waiters.complete(&"a", |_| AckStatus::Failed(error.clone()));
        assert_eq!(
            done,
            vec![CompletedAck {
                id: 4,
                result: Err(error)
            }]
        );
        assert_eq!(waiters.next_deadline_ms(), Some(500));
    }

    #[test]
    fn deadlines_time_waits_out_and_capacity_bounds_them() {
        let mut waiters: AckWaiters<u8, u32> = AckWaiters::new(3);
        waiters.insert(0, 5, 1_000, 1).unwrap();
        waiters.insert(0, 6, 1_000, 2).unwrap();
        waiters.insert(1, 6, 3_000, 3).unwrap();
        assert_eq!(
            waiters.insert(1, 7, 3_000, 4),
            Err(AckWaitersFull { capacity: 3 })
        );
        assert!(waiters.expire(999).is_empty());
        let done = waiters.expire(1_000);
        assert_eq!(ids(&done), vec![1, 2]);
        assert!(done
            .iter()
            .all(|c| c.result == Err(ReplicationError::RequestTimedOut)));
        assert_eq!(waiters.next_deadline_ms(), Some(3_000));
        waiters.insert(1, 7, 2_000, 4).unwrap();
        let done = waiters.fail_partition(&1, ReplicationError::NotLeaderOrFollower);
        assert_eq!(ids(&done), vec![3, 4]);
        assert!(waiters.is_empty());
        assert_eq!(waiters.next_deadline_ms(), None);
    }
}
