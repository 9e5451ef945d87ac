//! Classic group <-> `ClassicGroupValue` record. `apply_value` is the one way a
//! group's persisted metadata changes in memory, on load and live alike.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::group::{ClassicGroup, ClassicGroupState, ClassicMember, Protocol};
use super::Ctx;
use crate::records::{
    ClassicGroupValue, ClassicMemberValue, CoordinatorRecord, RECORD_VALUE_VERSION,
};

impl ClassicGroup {
    /// The group as a record value; `assignments` replaces members' current assignments.
    pub(crate) fn to_value(
        &self,
        now_ms: i64,
        assignments: Option<&BTreeMap<String, Bytes>>,
    ) -> ClassicGroupValue {
        let protocol = self.protocol_name.as_deref();
        ClassicGroupValue {
            version: RECORD_VALUE_VERSION,
            protocol_type: self.protocol_type.clone(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp_ms: now_ms,
            members: self
                .members
                .iter()
                .map(|m| ClassicMemberValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol),
                    assignment: match assignments {
                        Some(map) => map.get(&m.member_id).cloned().unwrap_or_default(),
                        None => m.assignment.clone(),
                    },
                })
                .collect(),
        }
    }

    /// Writes the group's metadata: emits the record and applies it to this group.
    pub(crate) fn persist(
        &mut self,
        ctx: &mut Ctx<'_>,
        assignments: Option<&BTreeMap<String, Bytes>>,
    ) {
        let value = self.to_value(ctx.now_ms, assignments);
        ctx.out.records.push(CoordinatorRecord::classic_group(
            &self.group_id,
            Some(&value),
        ));
        self.apply_value(&value);
    }

    /// A group as loaded from its latest record.
    pub(crate) fn from_value(group_id: &str, value: &ClassicGroupValue) -> Self {
        let mut group = ClassicGroup::new(group_id);
        group.apply_value(value);
        group
    }

    /// Brings the group to the state `value` describes: Stable with those members and
    /// assignments, or Empty. Transient state (parked requests, deadlines, the live
    /// members' full protocol lists) is kept for members that stay.
    pub(crate) fn apply_value(&mut self, value: &ClassicGroupValue) {
        self.generation_id = value.generation;
        self.protocol_type = value.protocol_type.clone();
        self.protocol_name = value.protocol.clone();
        let mut members = Vec::with_capacity(value.members.len());
        for v in &value.members {
            let mut member = match self.members.iter().position(|m| m.member_id == v.member_id) {
                Some(index) => self.members.remove(index),
                None => ClassicMember {
                    member_id: v.member_id.clone(),
                    instance_id: v.group_instance_id.clone(),
                    client_id: v.client_id.clone(),
                    client_host: v.client_host.clone(),
                    rebalance_timeout_ms: v.rebalance_timeout_ms,
                    session_timeout_ms: v.session_timeout_ms,
                    protocol_type: value.protocol_type.clone().unwrap_or_default(),
                    protocols: value
                        .protocol
                        .iter()
                        .map(|name| Protocol {
                            name: name.clone(),
                            metadata: v.subscription.clone(),
                        })
                        .collect(),
                    assignment: Bytes::new(),
                    awaiting_join: None,
                    awaiting_sync: None,
                    is_new: false,
                    heartbeat_deadline_ms: None,
                },
            };
            member.assignment = v.assignment.clone();
            members.push(member);
        }
        self.members = members;
        self.static_members = self
            .members
            .iter()
            .filter_map(|m| m.instance_id.clone().map(|i| (i, m.member_id.clone())))
            .collect();
        self.leader_id = value
            .leader
            .clone()
            .filter(|leader| self.has_member(leader))
            .or_else(|| self.members.first().map(|m| m.member_id.clone()));
        let state = if self.members.is_empty() {
            ClassicGroupState::Empty
        } else {
            ClassicGroupState::Stable
        };
        self.transition_to(state, value.current_state_timestamp_ms);
        self.subscribed_topics = self.compute_subscribed_topics();
    }
}
