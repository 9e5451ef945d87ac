//! Group-level consumer operations shared by heartbeats, timers and metadata
//! changes: subscription metadata, epoch bumps, target assignment, fencing.

use std::collections::BTreeMap;

use strom_types::TopicId;

use crate::assignor::{self, GroupSpec, MemberSpec};
use crate::output::Output;
use crate::shard::{Group, GroupCoordinatorShard};

use super::group::{ConsumerGroup, SubscriptionMetadata};
use super::persist::{group_record, remove_member_records, target_epoch_record, target_record};

impl GroupCoordinatorShard {
    pub(crate) fn consumer(&self, group_id: &str) -> Option<&ConsumerGroup> {
        self.groups.get(group_id).and_then(Group::as_consumer)
    }

    pub(crate) fn consumer_mut(&mut self, group_id: &str) -> Option<&mut ConsumerGroup> {
        self.groups
            .get_mut(group_id)
            .and_then(Group::as_consumer_mut)
    }

    /// The metadata of the topics `group`'s members subscribe to, as the cluster has
    /// them now. Before the runtime first provided topics, the group's own view stands.
    pub(crate) fn subscription_metadata_for(&self, group: &ConsumerGroup) -> SubscriptionMetadata {
        let source = if self.topics_known {
            &self.topics
        } else {
            &group.subscription_metadata
        };
        group
            .subscribed_topics()
            .into_iter()
            .filter_map(|name| source.get(name).map(|v| (name.to_owned(), *v)))
            .collect()
    }

    /// Resolves `group_id`'s regexes against the cluster's topics and bumps the
    /// epoch if the subscribed topics changed.
    pub(crate) fn refresh_regexes(&mut self, out: &mut Output, group_id: &str) {
        let topics = &self.topics;
        let Some(group) = self
            .groups
            .get_mut(group_id)
            .and_then(Group::as_consumer_mut)
        else {
            return;
        };
        group.resolve_regexes(topics.keys().map(String::as_str));
        let Some(group) = self.consumer(group_id) else {
            return;
        };
        if self.subscription_metadata_for(group) != group.subscription_metadata {
            self.bump_consumer_epoch(out, group_id);
        }
    }

    /// Writes a bumped group epoch with the group's current subscription metadata.
    pub(crate) fn bump_consumer_epoch(&mut self, out: &mut Output, group_id: &str) {
        let Some(group) = self.consumer(group_id) else {
            return;
        };
        let metadata = self.subscription_metadata_for(group);
        let record = group_record(group_id, group.epoch.saturating_add(1), &metadata);
        self.append(out, vec![record]);
    }

    /// Computes the target assignment for the group's epoch and writes what changed.
    pub(crate) fn update_target_assignment(&mut self, out: &mut Output, group_id: &str) {
        let Some(group) = self.consumer(group_id) else {
            return;
        };
        let default = self
            .config
            .consumer_assignors
            .first()
            .map_or(assignor::UNIFORM, String::as_str);
        let name = group
            .preferred_assignor()
            .filter(|n| assignor::is_known(n))
            .unwrap_or(default);
        let spec = group_spec(group);
        let result = assignor::assign(name, &spec);
        let mut records = Vec::new();
        for (member, target) in &result {
            if group.targets.get(member) != Some(target) {
                records.push(target_record(group_id, member, target));
            }
        }
        records.push(target_epoch_record(group_id, group.epoch));
        self.append(out, records);
    }

    /// Removes a member and bumps the epoch so the others rebalance.
    pub(crate) fn fence_consumer_member(
        &mut self,
        out: &mut Output,
        group_id: &str,
        member_id: &str,
    ) {
        if !self
            .consumer(group_id)
            .is_some_and(|g| g.members.contains_key(member_id))
        {
            return;
        }
        self.append(out, remove_member_records(group_id, member_id));
        self.bump_consumer_epoch(out, group_id);
    }

    /// New cluster topics: groups whose subscribed topics changed get a new epoch.
    pub fn set_topic_metadata(
        &mut self,
        now_ms: i64,
        topics: &BTreeMap<String, (TopicId, i32)>,
    ) -> Output {
        self.observe(now_ms);
        self.topics = topics.clone();
        self.topics_known = true;
        let mut out = Output::default();
        // Topic changes resolve every group's regexes again at once.
        let ids: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.as_consumer().is_some())
            .map(|(id, _)| id.clone())
            .collect();
        for group_id in ids {
            self.refresh_regexes(&mut out, &group_id);
        }
        out
    }

    /// Resolves the regexes of groups whose resolution is due.
    pub(crate) fn fire_regex_refreshes(&mut self, now_ms: i64, out: &mut Output) {
        let due: Vec<String> = self
            .groups
            .iter()
            .filter_map(|(id, g)| g.as_consumer().map(|c| (id, c)))
            .filter(|(_, c)| c.regex_refresh_due_ms.is_some_and(|d| d <= now_ms))
            .map(|(id, _)| id.clone())
            .collect();
        for group_id in due {
            self.refresh_regexes(out, &group_id);
        }
    }
}

/// The assignor's view of a group: subscriptions resolved to topic ids through the
/// group's subscription metadata, previous targets for stickiness.
fn group_spec(group: &ConsumerGroup) -> GroupSpec {
    let members = group
        .members
        .iter()
        .map(|(id, m)| {
            let spec = MemberSpec {
                instance_id: m.instance_id.clone(),
                subscribed: group
                    .subscription_metadata
                    .iter()
                    .filter(|(name, _)| group.member_subscribes_to(m, name))
                    .map(|(_, (tid, _))| *tid)
                    .collect(),
                current: group.targets.get(id).cloned().unwrap_or_default(),
            };
            (id.clone(), spec)
        })
        .collect();
    let partitions = group
        .subscription_metadata
        .values()
        .map(|(tid, count)| (*tid, *count))
        .collect();
    GroupSpec {
        members,
        partitions,
    }
}
