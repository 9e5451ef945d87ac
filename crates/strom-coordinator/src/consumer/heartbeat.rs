//! ConsumerGroupHeartbeat: joining, heartbeating and leaving a consumer group.
//!
//! Every check runs before the first record is written, so a refused request
//! changes nothing.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as OwnedTopic;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use strom_types::ErrorCode;

use crate::assignor::{self, Assignment};
use crate::classic::responses::str_bytes;
use crate::output::{Output, Reply};
use crate::records::{CoordinatorRecord, MemberState};
use crate::shard::{ClientInfo, Group, GroupCoordinatorShard};

use super::group::{ConsumerGroup, ConsumerMember, LEAVE_EPOCH, LEAVE_STATIC_EPOCH};
use super::persist::{current_record, member_record, remove_member_records, target_record};
use super::reconcile::{is_subset, reconcile};

/// From v1 the client generates its member id.
const CLIENT_MEMBER_ID_VERSION: i16 = 1;

/// A refused heartbeat: the code and the message sent with it.
pub(crate) struct Refusal(ErrorCode, String);

fn refuse<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(code, message.into()))
}

/// The request with wire types turned into ours.
struct Heartbeat {
    group_id: String,
    member_id: String,
    member_epoch: i32,
    instance_id: Option<String>,
    rack_id: Option<String>,
    rebalance_timeout_ms: i32,
    topic_names: Option<BTreeSet<String>>,
    topic_regex: Option<String>,
    server_assignor: Option<String>,
    owned: Option<Assignment>,
}

fn owned_partitions(list: &[OwnedTopic]) -> Assignment {
    let mut owned = Assignment::new();
    for topic in list {
        owned
            .entry(topic.topic_id)
            .or_default()
            .extend(topic.partitions.iter().copied());
    }
    owned
}

impl Heartbeat {
    fn from_request(request: ConsumerGroupHeartbeatRequest) -> Self {
        let text = |s: Option<StrBytes>| s.map(|s| s.to_string());
        Self {
            group_id: request.group_id.0.to_string(),
            member_id: request.member_id.to_string(),
            member_epoch: request.member_epoch,
            instance_id: text(request.instance_id),
            rack_id: text(request.rack_id),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            topic_names: request
                .subscribed_topic_names
                .map(|names| names.into_iter().map(|n| n.0.to_string()).collect()),
            // "" clears the regex (librdkafka sends it when subscribing by name); null keeps it.
            topic_regex: text(request.subscribed_topic_regex),
            server_assignor: text(request.server_assignor),
            owned: request.topic_partitions.as_deref().map(owned_partitions),
        }
    }

    /// Kafka's request checks, in Kafka's order.
    fn validate(&self, api_version: i16, assignors: &[String]) -> Result<(), Refusal> {
        let invalid = |m: &str| refuse(ErrorCode::InvalidRequest, m);
        if self.group_id.is_empty() {
            return invalid("GroupId can't be empty.");
        }
        if self.instance_id.as_deref() == Some("") {
            return invalid("InstanceId can't be empty.");
        }
        if self.rack_id.as_deref() == Some("") {
            return invalid("RackId can't be empty.");
        }
        if let Some(pattern) = self.topic_regex.as_deref().filter(|p| !p.is_empty()) {
            if !super::group::regex_is_valid(pattern) {
                return refuse(
                    ErrorCode::InvalidRegularExpression,
                    format!("SubscribedTopicRegex `{pattern}` is not a valid regular expression."),
                );
            }
        }
        let needs_member_id = api_version >= CLIENT_MEMBER_ID_VERSION || self.member_epoch != 0;
        if needs_member_id && self.member_id.is_empty() {
            return invalid("MemberId can't be empty.");
        }
        match self.member_epoch {
            0 => {
                if self.rebalance_timeout_ms == -1 {
                    return invalid("RebalanceTimeoutMs must be provided in first request.");
                }
                if !self.owned.as_ref().is_some_and(Assignment::is_empty) {
                    return invalid("TopicPartitions must be empty when (re-)joining.");
                }
                let has_regex = self.topic_regex.as_deref().is_some_and(|r| !r.is_empty());
                if self.topic_names.as_ref().is_none_or(|n| n.is_empty()) && !has_regex {
                    return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
                }
            }
            LEAVE_STATIC_EPOCH if self.instance_id.is_none() => {
                return invalid("InstanceId can't be null.");
            }
            e if e < LEAVE_STATIC_EPOCH => return invalid("MemberEpoch is invalid."),
            _ => {}
        }
        if let Some(name) = &self.server_assignor {
            if !assignors.contains(name) || !assignor::is_known(name) {
                return refuse(
                    ErrorCode::UnsupportedAssignor,
                    format!(
                        "ServerAssignor {name} is not supported. Supported assignors: {}.",
                        assignors.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }

    /// Kafka sends the assignment back on full requests (a join, or a request after
    /// an error that carries every field) and whenever it changed.
    fn is_full(&self) -> bool {
        self.member_epoch == 0
            || (self.rebalance_timeout_ms != -1
                && self.topic_names.is_some()
                && self.owned.is_some())
    }
}

/// Kafka's epoch rule: a newer epoch is fenced; an older one only passes if it is
/// the previous epoch and the member owns nothing beyond its assignment (the
/// response carrying the new epoch may have been lost).
fn check_epoch(member: &ConsumerMember, hb: &Heartbeat) -> Result<(), Refusal> {
    let received = hb.member_epoch;
    let fenced = received > member.member_epoch
        || (received < member.member_epoch
            && (received != member.previous_member_epoch
                || !is_subset(hb.owned.as_ref(), &member.assigned)));
    if fenced {
        return refuse(
            ErrorCode::FencedMemberEpoch,
            format!(
                "The consumer group member has a member epoch ({received}) that does not match the coordinator's ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            ),
        );
    }
    Ok(())
}

fn wire_assignment(assigned: &Assignment) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        assigned
            .iter()
            .map(|(topic_id, ps)| {
                TopicPartitions::default()
                    .with_topic_id(*topic_id)
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

/// Who the heartbeat is from, once checked.
struct Resolved {
    member: ConsumerMember,
    /// Member id of the static member this one replaces.
    replaces: Option<String>,
}

impl GroupCoordinatorShard {
    /// ConsumerGroupHeartbeat (KIP-848). `client` comes from the request header and
    /// the connection, as for `join_group`.
    pub fn consumer_group_heartbeat(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        client: &ClientInfo,
        request: ConsumerGroupHeartbeatRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let hb = Heartbeat::from_request(request);
        let result = match hb.validate(api_version, &self.config.consumer_assignors) {
            Err(refusal) => Err(refusal),
            Ok(()) if !self.topics_known => refuse(
                ErrorCode::CoordinatorLoadInProgress,
                "The coordinator has no topic metadata yet.",
            ),
            Ok(()) if hb.member_epoch == LEAVE_EPOCH || hb.member_epoch == LEAVE_STATIC_EPOCH => {
                self.consumer_leave(&mut out, &hb)
            }
            Ok(()) => self.consumer_heartbeat(now_ms, &mut out, &hb, client),
        };
        let response = result.unwrap_or_else(|Refusal(code, message)| {
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(&message)))
        });
        out.reply(request_id, Reply::ConsumerGroupHeartbeat(response));
        out
    }

    fn consumer_leave(
        &mut self,
        out: &mut Output,
        hb: &Heartbeat,
    ) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
        let group_id = hb.group_id.as_str();
        let Some(group) = self.consumer(group_id) else {
            return refuse(
                ErrorCode::GroupIdNotFound,
                format!("Group {group_id} not found."),
            );
        };
        let member_id = match &hb.instance_id {
            None => match group.members.get(&hb.member_id) {
                Some(m) => m.member_id.clone(),
                None => return unknown_member(&hb.member_id, group_id),
            },
            Some(instance) => {
                let Some(member) = group.static_member(instance) else {
                    return refuse(
                        ErrorCode::UnknownMemberId,
                        format!("Instance id {instance} is unknown."),
                    );
                };
                fenced_instance(member, hb)?;
                if hb.member_epoch == LEAVE_STATIC_EPOCH {
                    // Temporarily gone: keeps its partitions until its session expires.
                    let mut away = member.clone();
                    away.member_epoch = LEAVE_STATIC_EPOCH;
                    away.pending_revocation.clear();
                    let record = current_record(group_id, &away);
                    self.append(out, vec![record]);
                    if let Some(m) = self
                        .consumer_mut(group_id)
                        .and_then(|g| g.members.get_mut(&hb.member_id))
                    {
                        m.rebalance_deadline = None;
                    }
                    return Ok(leave_response(&hb.member_id, LEAVE_STATIC_EPOCH));
                }
                member.member_id.clone()
            }
        };
        self.fence_consumer_member(out, group_id, &member_id);
        Ok(leave_response(&hb.member_id, hb.member_epoch))
    }

    /// Finds the member the heartbeat is from, or who it becomes; writes nothing.
    fn resolve_member(
        &self,
        group: &ConsumerGroup,
        hb: &Heartbeat,
        member_id: &str,
    ) -> Result<Resolved, Refusal> {
        let joining = hb.member_epoch == 0;
        let existing = group.members.get(member_id);
        let Some(instance) = &hb.instance_id else {
            return match existing {
                Some(member) => {
                    check_epoch(member, hb)?;
                    Ok(Resolved {
                        member: member.clone(),
                        replaces: None,
                    })
                }
                None if joining => Ok(Resolved {
                    member: ConsumerMember::new(member_id),
                    replaces: None,
                }),
                None => unknown_member(member_id, &group.group_id),
            };
        };
        let holder = group.static_member(instance);
        if !joining {
            let Some(holder) = holder else {
                return refuse(
                    ErrorCode::UnknownMemberId,
                    format!("Instance id {instance} is unknown."),
                );
            };
            fenced_instance(holder, hb)?;
            check_epoch(holder, hb)?;
            return Ok(Resolved {
                member: holder.clone(),
                replaces: None,
            });
        }
        match holder {
            None => Ok(Resolved {
                member: existing.cloned().unwrap_or_else(|| ConsumerMember::new(member_id)),
                replaces: None,
            }),
            Some(holder) if holder.member_epoch != LEAVE_STATIC_EPOCH => refuse(
                ErrorCode::UnreleasedInstanceId,
                format!(
                    "Static member {member_id} with instance id {instance} cannot join the group because the instance id is owned by member {}.",
                    holder.member_id
                ),
            ),
            Some(holder) => {
                // The new incarnation takes over the old one's assignment.
                let mut member = holder.clone();
                member.member_id = member_id.to_owned();
                member.member_epoch = 0;
                member.previous_member_epoch = 0;
                member.session_deadline_ms = None;
                member.rebalance_deadline = None;
                Ok(Resolved { member, replaces: Some(holder.member_id.clone()) })
            }
        }
    }

    fn consumer_heartbeat(
        &mut self,
        now_ms: i64,
        out: &mut Output,
        hb: &Heartbeat,
        client: &ClientInfo,
    ) -> Result<ConsumerGroupHeartbeatResponse, Refusal> {
        let group_id = hb.group_id.as_str();
        let joining = hb.member_epoch == 0;
        let mut records = Vec::new();
        let fresh = ConsumerGroup::new(group_id);
        let group = match self.groups.get(group_id) {
            None if !joining => return refuse(ErrorCode::GroupIdNotFound, format!("Consumer group {group_id} not found.")),
            None => &fresh,
            Some(Group::Consumer(group)) => group,
            Some(Group::Classic(classic)) if joining && classic.is_empty_group() => {
                // An empty classic group (e.g. offsets only) becomes a consumer group; offsets stay.
                records.push(CoordinatorRecord::classic_group(group_id, None));
                &fresh
            }
            Some(Group::Classic(_)) => {
                return refuse(
                    ErrorCode::GroupIdNotFound,
                    format!("Group {group_id} is not a consumer group; online upgrade of classic groups is not supported."),
                )
            }
        };
        let max = usize::try_from(self.config.consumer_max_size).unwrap_or(0);
        if group.members.len() >= max
            && (hb.member_id.is_empty() || !group.members.contains_key(&hb.member_id))
        {
            return refuse(
                ErrorCode::GroupMaxSizeReached,
                format!("The consumer group has reached its maximum capacity of {max} members."),
            );
        }
        let member_id = if hb.member_id.is_empty() {
            self.ids.uuid()
        } else {
            hb.member_id.clone()
        };
        let Resolved {
            member: old,
            replaces,
        } = self.resolve_member(group, hb, &member_id)?;
        if let Some(previous) = &replaces {
            records.extend(remove_member_records(group_id, previous));
            records.push(member_record(group_id, &old));
            let target = group.targets.get(previous).cloned().unwrap_or_default();
            records.push(target_record(group_id, &member_id, &target));
            records.push(current_record(group_id, &old));
        }
        let is_new = !group.members.contains_key(&member_id) && replaces.is_none();

        // 1. Member metadata; a changed subscription bumps the group epoch.
        let mut updated = old.clone();
        if let Some(instance) = &hb.instance_id {
            updated.instance_id = Some(instance.clone());
        }
        if let Some(rack) = &hb.rack_id {
            updated.rack_id = Some(rack.clone());
        }
        if hb.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = hb.rebalance_timeout_ms;
        }
        if let Some(name) = &hb.server_assignor {
            updated.server_assignor = Some(name.clone());
        }
        if let Some(names) = &hb.topic_names {
            updated.subscribed_topic_names = names.clone();
        }
        if let Some(pattern) = &hb.topic_regex {
            updated.subscribed_topic_regex = (!pattern.is_empty()).then(|| pattern.clone());
        }
        updated.client_id = client.client_id.clone();
        updated.client_host = client.client_host.clone();
        // As in Kafka: new topic names bump the epoch; a new regex does only if another
        // member already uses it (it is resolved). Otherwise it is resolved after this
        // heartbeat, so this assignment counts only the named topics.
        let mut bump =
            group.epoch == 0 || updated.subscribed_topic_names != old.subscribed_topic_names;
        let mut resolve_regex = None;
        if updated.subscribed_topic_regex != old.subscribed_topic_regex {
            if let Some(regex) = &updated.subscribed_topic_regex {
                if group.regex_used_by_other(regex, &member_id) {
                    bump = true;
                } else {
                    resolve_regex = Some(regex.clone());
                }
            }
        }
        if is_new || !updated.same_metadata(&old) {
            records.push(member_record(group_id, &updated));
        }
        self.append(out, records);
        if let Some(regex) = resolve_regex {
            if let Some(group) = self.consumer_mut(group_id) {
                group.resolved_regexes.remove(&regex);
                group.regex_refresh_due_ms.get_or_insert(now_ms);
            }
        }

        // 2. Epoch and target assignment.
        let Some(group) = self.consumer(group_id) else {
            return refuse(ErrorCode::UnknownServerError, "The group vanished.");
        };
        bump |= self.subscription_metadata_for(group) != group.subscription_metadata;
        if bump {
            self.bump_consumer_epoch(out, group_id);
        }
        if self
            .consumer(group_id)
            .is_some_and(|g| g.epoch > g.assignment_epoch)
        {
            self.update_target_assignment(out, group_id);
        }

        // 3. One reconciliation step.
        let Some(group) = self.consumer(group_id) else {
            return refuse(ErrorCode::UnknownServerError, "The group vanished.");
        };
        let Some(member) = group.members.get(&member_id) else {
            return refuse(ErrorCode::UnknownServerError, "The member vanished.");
        };
        let next = if member.is_reconciled_to(group.assignment_epoch) {
            member.clone()
        } else {
            let empty = Assignment::new();
            let target = group.targets.get(&member_id).unwrap_or(&empty);
            reconcile(
                member,
                group.assignment_epoch,
                target,
                &group.partition_owners(),
                hb.owned.as_ref(),
            )
        };
        let changed = !next.same_assignment(member);
        if changed {
            let record = current_record(group_id, &next);
            self.append(out, vec![record]);
        }
        let session_ms = i64::from(self.consumer_session_timeout_ms(group_id));
        if let Some(m) = self
            .consumer_mut(group_id)
            .and_then(|g| g.members.get_mut(&member_id))
        {
            m.session_deadline_ms = Some(now_ms.saturating_add(session_ms));
            if changed {
                m.rebalance_deadline = (m.state == MemberState::UnrevokedPartitions).then(|| {
                    (
                        now_ms.saturating_add(i64::from(m.rebalance_timeout_ms.max(0))),
                        m.member_epoch,
                    )
                });
            }
        }
        let mut response = ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(str_bytes(&member_id)))
            .with_member_epoch(next.member_epoch)
            .with_heartbeat_interval_ms(self.consumer_heartbeat_interval_ms(group_id));
        if hb.is_full() || next.assigned != old.assigned {
            response = response.with_assignment(Some(wire_assignment(&next.assigned)));
        }
        Ok(response)
    }
}

fn unknown_member<T>(member_id: &str, group_id: &str) -> Result<T, Refusal> {
    refuse(
        ErrorCode::UnknownMemberId,
        format!("Member {member_id} is not a member of group {group_id}."),
    )
}

fn fenced_instance(holder: &ConsumerMember, hb: &Heartbeat) -> Result<(), Refusal> {
    if holder.member_id != hb.member_id {
        return refuse(
            ErrorCode::FencedInstanceId,
            format!(
                "Static member {} with instance id {} was fenced by member {}.",
                hb.member_id,
                hb.instance_id.as_deref().unwrap_or(""),
                holder.member_id
            ),
        );
    }
    Ok(())
}

fn leave_response(member_id: &str, epoch: i32) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(str_bytes(member_id)))
        .with_member_epoch(epoch)
}
