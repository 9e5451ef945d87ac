//! Committed offsets, per group, topic and partition.

use std::collections::BTreeMap;

use crate::records::OffsetCommitValue;

type TopicOffsets = BTreeMap<i32, OffsetCommitValue>;

#[derive(Debug, Default, Clone)]
pub(crate) struct OffsetStore {
    by_group: BTreeMap<String, BTreeMap<String, TopicOffsets>>,
}

impl OffsetStore {
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&OffsetCommitValue> {
        self.by_group.get(group)?.get(topic)?.get(&partition)
    }

    pub fn put(&mut self, group: &str, topic: &str, partition: i32, value: OffsetCommitValue) {
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
