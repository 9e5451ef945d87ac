//! Consumer group <-> records. Applying a record is the one way persisted consumer
//! group state changes in memory, on load and live alike.

use crate::assignor::Assignment;
use crate::records::{
    ConsumerCurrentAssignmentValue, ConsumerGroupValue, ConsumerMemberValue,
    ConsumerTargetAssignmentEpochValue, ConsumerTargetAssignmentValue, CoordinatorRecord,
    DecodedRecord, TopicMetadataValue, TopicPartitionsValue, RECORD_VALUE_VERSION,
};
use crate::shard::{Group, GroupCoordinatorShard};

use super::group::{ConsumerGroup, ConsumerMember, SubscriptionMetadata, LEAVE_EPOCH};

pub(crate) fn to_partitions(assignment: &Assignment) -> Vec<TopicPartitionsValue> {
    assignment
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(topic_id, ps)| TopicPartitionsValue {
            topic_id: *topic_id,
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

pub(crate) fn from_partitions(list: &[TopicPartitionsValue]) -> Assignment {
    let mut assignment = Assignment::new();
    for tp in list {
        if !tp.partitions.is_empty() {
            assignment
                .entry(tp.topic_id)
                .or_default()
                .extend(tp.partitions.iter().copied());
        }
    }
    assignment
}

pub(crate) fn group_record(
    group: &str,
    epoch: i32,
    metadata: &SubscriptionMetadata,
) -> CoordinatorRecord {
    let value = ConsumerGroupValue {
        version: RECORD_VALUE_VERSION,
        epoch,
        subscription_metadata: metadata
            .iter()
            .map(|(topic, (topic_id, partitions))| TopicMetadataValue {
                topic: topic.clone(),
                topic_id: *topic_id,
                partitions: *partitions,
            })
            .collect(),
    };
    CoordinatorRecord::consumer_group(group, Some(&value))
}

pub(crate) fn member_record(group: &str, member: &ConsumerMember) -> CoordinatorRecord {
    let value = ConsumerMemberValue {
        version: RECORD_VALUE_VERSION,
        instance_id: member.instance_id.clone(),
        rack_id: member.rack_id.clone(),
        client_id: member.client_id.clone(),
        client_host: member.client_host.clone(),
        subscribed_topic_names: member.subscribed_topic_names.iter().cloned().collect(),
        subscribed_topic_regex: member.subscribed_topic_regex.clone(),
        server_assignor: member.server_assignor.clone(),
        rebalance_timeout_ms: member.rebalance_timeout_ms,
    };
    CoordinatorRecord::consumer_member(group, &member.member_id, Some(&value))
}

pub(crate) fn target_record(group: &str, member: &str, target: &Assignment) -> CoordinatorRecord {
    let value = ConsumerTargetAssignmentValue {
        version: RECORD_VALUE_VERSION,
        partitions: to_partitions(target),
    };
    CoordinatorRecord::consumer_target_assignment(group, member, Some(&value))
}

pub(crate) fn target_epoch_record(group: &str, epoch: i32) -> CoordinatorRecord {
    let value = ConsumerTargetAssignmentEpochValue {
        version: RECORD_VALUE_VERSION,
        assignment_epoch: epoch,
    };
    CoordinatorRecord::consumer_target_assignment_epoch(group, Some(&value))
}

pub(crate) fn current_record(group: &str, member: &ConsumerMember) -> CoordinatorRecord {
    let value = ConsumerCurrentAssignmentValue {
        version: RECORD_VALUE_VERSION,
        member_epoch: member.member_epoch,
        previous_member_epoch: member.previous_member_epoch,
        state: member.state,
        assigned: to_partitions(&member.assigned),
        pending_revocation: to_partitions(&member.pending_revocation),
    };
    CoordinatorRecord::consumer_current_assignment(group, &member.member_id, Some(&value))
}

/// Tombstones that remove a member, in the order that keeps replay consistent.
pub(crate) fn remove_member_records(group: &str, member: &str) -> Vec<CoordinatorRecord> {
    vec![
        CoordinatorRecord::consumer_current_assignment(group, member, None),
        CoordinatorRecord::consumer_target_assignment(group, member, None),
        CoordinatorRecord::consumer_member(group, member, None),
    ]
}

impl ConsumerGroup {
    /// Tombstones for the whole group: members first, then the epochs.
    pub(crate) fn delete_records(&self) -> Vec<CoordinatorRecord> {
        let mut records = Vec::new();
        for member in self.members.keys() {
            records.push(CoordinatorRecord::consumer_current_assignment(
                &self.group_id,
                member,
                None,
            ));
        }
        for member in self.members.keys().chain(self.targets.keys()) {
            records.push(CoordinatorRecord::consumer_target_assignment(
                &self.group_id,
                member,
                None,
            ));
        }
        for member in self.members.keys() {
            records.push(CoordinatorRecord::consumer_member(
                &self.group_id,
                member,
                None,
            ));
        }
        records.push(CoordinatorRecord::consumer_target_assignment_epoch(
            &self.group_id,
            None,
        ));
        records.push(CoordinatorRecord::consumer_group(&self.group_id, None));
        records
    }

    fn member_mut_or_new(&mut self, member_id: &str) -> &mut ConsumerMember {
        self.members
            .entry(member_id.to_owned())
            .or_insert_with(|| ConsumerMember::new(member_id))
    }

    fn apply_member(&mut self, member_id: &str, value: Option<&ConsumerMemberValue>) {
        let Some(value) = value else {
            self.members.remove(member_id);
            return;
        };
        let member = self.member_mut_or_new(member_id);
        member.instance_id = value.instance_id.clone();
        member.rack_id = value.rack_id.clone();
        member.client_id = value.client_id.clone();
        member.client_host = value.client_host.clone();
        member.subscribed_topic_names = value.subscribed_topic_names.iter().cloned().collect();
        member.subscribed_topic_regex = value.subscribed_topic_regex.clone();
        member.server_assignor = value.server_assignor.clone();
        member.rebalance_timeout_ms = value.rebalance_timeout_ms;
    }

    fn apply_current(&mut self, member_id: &str, value: Option<&ConsumerCurrentAssignmentValue>) {
        match value {
            Some(value) => {
                let member = self.member_mut_or_new(member_id);
                member.member_epoch = value.member_epoch;
                member.previous_member_epoch = value.previous_member_epoch;
                member.state = value.state;
                member.assigned = from_partitions(&value.assigned);
                member.pending_revocation = from_partitions(&value.pending_revocation);
            }
            None => {
                // The member gives everything up; its metadata tombstone follows.
                if let Some(member) = self.members.get_mut(member_id) {
                    member.member_epoch = LEAVE_EPOCH;
                    member.previous_member_epoch = LEAVE_EPOCH;
                    member.assigned.clear();
                    member.pending_revocation.clear();
                    member.rebalance_deadline = None;
                }
            }
        }
    }
}

impl GroupCoordinatorShard {
    /// The consumer group `group_id` for a record to apply to, created if `create`.
    /// An empty classic group of that id (e.g. one holding only offsets) gives way,
    /// as Kafka converts it; a classic group with members keeps the id.
    fn consumer_for_replay(&mut self, group_id: &str, create: bool) -> Option<&mut ConsumerGroup> {
        let replace = match self.groups.get(group_id) {
            None => create,
            Some(Group::Consumer(_)) => false,
            Some(Group::Classic(classic)) => create && classic.is_empty_group(),
        };
        if replace {
            self.groups.insert(
                group_id.to_owned(),
                Group::Consumer(ConsumerGroup::new(group_id)),
            );
        }
        self.groups
            .get_mut(group_id)
            .and_then(Group::as_consumer_mut)
    }

    /// Applies a consumer group record (the other kinds are ignored here).
    pub(crate) fn replay_consumer(&mut self, record: DecodedRecord) {
        match record {
            DecodedRecord::ConsumerGroup { group, value } => {
                let Some(value) = value else {
                    if matches!(self.groups.get(&group), Some(Group::Consumer(_))) {
                        self.groups.remove(&group);
                    }
                    return;
                };
                if let Some(g) = self.consumer_for_replay(&group, true) {
                    g.epoch = value.epoch;
                    g.subscription_metadata = value
                        .subscription_metadata
                        .iter()
                        .map(|t| (t.topic.clone(), (t.topic_id, t.partitions)))
                        .collect();
                }
            }
            DecodedRecord::ConsumerGroupMember {
                group,
                member,
                value,
            } => {
                if let Some(g) = self.consumer_for_replay(&group, value.is_some()) {
                    g.apply_member(&member, value.as_ref());
                }
            }
            DecodedRecord::ConsumerGroupTargetAssignment {
                group,
                member,
                value,
            } => {
                if let Some(g) = self.consumer_for_replay(&group, value.is_some()) {
                    match value {
                        Some(v) => {
                            g.targets.insert(member, from_partitions(&v.partitions));
                        }
                        None => {
                            g.targets.remove(&member);
                        }
                    }
                }
            }
            DecodedRecord::ConsumerGroupTargetAssignmentEpoch { group, value } => {
                if let Some(g) = self.consumer_for_replay(&group, value.is_some()) {
                    g.assignment_epoch = value.map_or(0, |v| v.assignment_epoch);
                }
            }
            DecodedRecord::ConsumerGroupCurrentAssignment {
                group,
                member,
                value,
            } => {
                if let Some(g) = self.consumer_for_replay(&group, value.is_some()) {
                    g.apply_current(&member, value.as_ref());
                }
            }
            DecodedRecord::OffsetCommit { .. } | DecodedRecord::ClassicGroup { .. } => {}
        }
    }
}
