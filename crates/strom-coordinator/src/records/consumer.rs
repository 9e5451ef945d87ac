//! Record values of consumer groups (KIP-848). One key per piece of state that
//! changes on its own (group epoch, member metadata, a member's target and current
//! assignment, the target assignment epoch), so compaction keeps the latest of each.

use serde::{Deserialize, Serialize};
use strom_types::TopicId;

use super::{to_json, CoordinatorRecord, RecordKey};

/// One topic of a consumer group's subscription metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadataValue {
    pub topic: String,
    pub topic_id: TopicId,
    pub partitions: i32,
}

/// The group epoch, with the metadata of the subscribed topics it was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroupValue {
    pub version: u16,
    pub epoch: i32,
    /// Sorted by topic name.
    pub subscription_metadata: Vec<TopicMetadataValue>,
}

/// A member's subscription and identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerMemberValue {
    pub version: u16,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted.
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
}

/// Partitions of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartitionsValue {
    pub topic_id: TopicId,
    /// Sorted.
    pub partitions: Vec<i32>,
}

/// A member's target assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerTargetAssignmentValue {
    pub version: u16,
    pub partitions: Vec<TopicPartitionsValue>,
}

/// The group epoch the target assignment was computed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerTargetAssignmentEpochValue {
    pub version: u16,
    pub assignment_epoch: i32,
}

/// Where a member is on its way to its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Owns exactly its assigned partitions at its epoch.
    Stable,
    /// Must give up `pending_revocation` before it moves to a new epoch.
    UnrevokedPartitions,
    /// Waits for partitions that other members still own.
    UnreleasedPartitions,
}

/// A member's current assignment and epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerCurrentAssignmentValue {
    pub version: u16,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Vec<TopicPartitionsValue>,
    pub pending_revocation: Vec<TopicPartitionsValue>,
}

impl CoordinatorRecord {
    fn keyed<V: Serialize>(key: RecordKey, value: Option<&V>) -> Self {
        Self {
            key: to_json(&key),
            value: value.map(to_json),
        }
    }

    pub fn consumer_group(group: &str, value: Option<&ConsumerGroupValue>) -> Self {
        let key = RecordKey::ConsumerGroup {
            group: group.to_owned(),
        };
        Self::keyed(key, value)
    }

    pub fn consumer_member(group: &str, member: &str, value: Option<&ConsumerMemberValue>) -> Self {
        let key = RecordKey::ConsumerGroupMember {
            group: group.to_owned(),
            member: member.to_owned(),
        };
        Self::keyed(key, value)
    }

    pub fn consumer_target_assignment(
        group: &str,
        member: &str,
        value: Option<&ConsumerTargetAssignmentValue>,
    ) -> Self {
        let key = RecordKey::ConsumerGroupTargetAssignment {
            group: group.to_owned(),
            member: member.to_owned(),
        };
        Self::keyed(key, value)
    }

    pub fn consumer_target_assignment_epoch(
        group: &str,
        value: Option<&ConsumerTargetAssignmentEpochValue>,
    ) -> Self {
        let key = RecordKey::ConsumerGroupTargetAssignmentEpoch {
            group: group.to_owned(),
        };
        Self::keyed(key, value)
    }

    pub fn consumer_current_assignment(
        group: &str,
        member: &str,
        value: Option<&ConsumerCurrentAssignmentValue>,
    ) -> Self {
        let key = RecordKey::ConsumerGroupCurrentAssignment {
            group: group.to_owned(),
            member: member.to_owned(),
        };
        Self::keyed(key, value)
    }
}
