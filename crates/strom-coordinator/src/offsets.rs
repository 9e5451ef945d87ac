//! Committed offsets, per group, topic and partition, and the pending offsets of
//! open transactions.

use std::collections::{BTreeMap, BTreeSet};

use crate::records::OffsetCommitValue;

/// An offset with the log position of the record that wrote it: when a transaction
/// commits, its offset replaces a committed one only if it was written later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredOffset {
    pub value: OffsetCommitValue,
    pub position: i64,
}

type TopicOffsets = BTreeMap<i32, StoredOffset>;

#[derive(Debug, Default, Clone)]
pub(crate) struct OffsetStore {
    by_group: BTreeMap<String, BTreeMap<String, TopicOffsets>>,
}

impl OffsetStore {
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&StoredOffset> {
        self.by_group.get(group)?.get(topic)?.get(&partition)
    }

    pub fn put(&mut self, group: &str, topic: &str, partition: i32, value: StoredOffset) {
        self.by_group
            .entry(group.to_owned())
            .or_default()
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, value);
    }

    pub fn remove(&mut self, group: &str, topic: &str, partition: i32) {
        let Some(topics) = self.by_group.get_mut(group) else {
            return;
        };
        if let Some(partitions) = topics.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                topics.remove(topic);
            }
        }
        if topics.is_empty() {
            self.by_group.remove(group);
        }
    }

    /// All offsets of a group, by topic then partition.
    pub fn group(&self, group: &str) -> Option<&BTreeMap<String, TopicOffsets>> {
        self.by_group.get(group)
    }

    /// Every (group, partition) with an offset for `topic`.
    pub fn holders_of(&self, topic: &str) -> Vec<(String, i32)> {
        self.by_group
            .iter()
            .filter_map(|(group, topics)| topics.get(topic).map(|partitions| (group, partitions)))
            .flat_map(|(group, partitions)| partitions.keys().map(move |p| (group.clone(), *p)))
            .collect()
    }

    /// Every (topic, partition) the group has an offset for.
    pub fn partitions_of(&self, group: &str) -> Vec<(String, i32)> {
        self.by_group
            .get(group)
            .into_iter()
            .flat_map(|topics| {
                topics.iter().flat_map(|(topic, partitions)| {
                    partitions.keys().map(move |p| (topic.clone(), *p))
                })
            })
            .collect()
    }

    /// Every (group, topic, partition, offset), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, i32, &StoredOffset)> {
        self.by_group.iter().flat_map(|(group, topics)| {
            topics.iter().flat_map(move |(topic, partitions)| {
                partitions
                    .iter()
                    .map(move |(p, v)| (group.as_str(), topic.as_str(), *p, v))
            })
        })
    }
}

/// Offsets written by TxnOffsetCommit, per producer id, until the producer's
/// transaction ends: a commit marker moves them into the committed store, an abort
/// marker drops them.
#[derive(Debug, Default, Clone)]
pub(crate) struct PendingOffsets {
    by_producer: BTreeMap<i64, OffsetStore>,
    /// Producer ids with pending offsets, per group (kept until the marker even if a
    /// tombstone emptied them, as Kafka does: the group stays while a txn is open).
    open_by_group: BTreeMap<String, BTreeSet<i64>>,
}

impl PendingOffsets {
    pub fn put(
        &mut self,
        producer_id: i64,
        group: &str,
        topic: &str,
        partition: i32,
        value: StoredOffset,
    ) {
        self.by_producer
            .entry(producer_id)
            .or_default()
            .put(group, topic, partition, value);
        self.open_by_group
            .entry(group.to_owned())
            .or_default()
            .insert(producer_id);
    }

    /// A tombstone for the partition removes every open transaction's offset for it.
    pub fn remove_partition(&mut self, group: &str, topic: &str, partition: i32) {
        let Some(producers) = self.open_by_group.get(group) else {
            return;
        };
        for producer_id in producers {
            if let Some(store) = self.by_producer.get_mut(producer_id) {
                store.remove(group, topic, partition);
            }
        }
    }

    /// Ends the producer's transaction: its pending offsets, if any.
    pub fn take(&mut self, producer_id: i64) -> Option<OffsetStore> {
        let store = self.by_producer.remove(&producer_id);
        self.open_by_group.retain(|_, producers| {
            producers.remove(&producer_id);
            !producers.is_empty()
        });
        store
    }

    /// Whether any open transaction holds an offset for the partition.
    pub fn has_pending(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.open_by_group.get(group).is_some_and(|producers| {
            producers.iter().any(|producer_id| {
                self.by_producer
                    .get(producer_id)
                    .is_some_and(|store| store.get(group, topic, partition).is_some())
            })
        })
    }

    /// Whether a transaction with offsets for the group is open.
    pub fn has_open_transaction(&self, group: &str) -> bool {
        self.open_by_group.contains_key(group)
    }

    /// Every (topic, partition) of the group with a pending offset, deduplicated.
    pub fn partitions_of(&self, group: &str) -> BTreeSet<(String, i32)> {
        self.open_by_group
            .get(group)
            .into_iter()
            .flatten()
            .filter_map(|producer_id| self.by_producer.get(producer_id))
            .flat_map(|store| store.partitions_of(group))
            .collect()
    }

    /// Every (group, partition) with a pending offset for `topic`, deduplicated.
    pub fn holders_of(&self, topic: &str) -> BTreeSet<(String, i32)> {
        self.by_producer
            .values()
            .flat_map(|store| store.holders_of(topic))
            .collect()
    }
}

/// When a group's offsets may expire, and from which timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryBase {
    /// Counted from each offset's commit time.
    CommitTime,
    /// Counted from when the group became empty (falls back to commit time).
    StateTime(Option<i64>),
}

/// Kafka's retention rule: an explicit v2-4 expire timestamp wins; otherwise the
/// offset expires `retention_ms` after its base time.
pub(crate) fn is_expired(
    value: &OffsetCommitValue,
    base: ExpiryBase,
    now_ms: i64,
    retention_ms: i64,
) -> bool {
    if let Some(expire_ms) = value.expire_timestamp_ms {
        return now_ms >= expire_ms;
    }
    let base_ms = match base {
        ExpiryBase::CommitTime => value.commit_timestamp_ms,
        ExpiryBase::StateTime(state_ms) => state_ms.unwrap_or(value.commit_timestamp_ms),
    };
    now_ms.saturating_sub(base_ms) >= retention_ms
}
