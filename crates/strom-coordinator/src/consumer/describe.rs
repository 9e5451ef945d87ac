//! ConsumerGroupDescribe.

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use strom_types::ErrorCode;

use crate::assignor::{self, Assignment};
use crate::classic::responses::str_bytes;
use crate::offsets_api::group_id as wire_group_id;
use crate::output::{Output, Reply};
use crate::shard::{Group, GroupCoordinatorShard};

use super::group::{topic_name, ConsumerGroup};

/// ConsumerGroupDescribe v1 `member_type` of a member using the consumer protocol.
const CONSUMER_MEMBER_TYPE: i8 = 1;

impl GroupCoordinatorShard {
    /// Topics by id with their names; topics whose name is unknown are left out, as Kafka does.
    fn describe_assignment(
        &self,
        group: &ConsumerGroup,
        assignment: &Assignment,
    ) -> WireAssignment {
        let topics = assignment
            .iter()
            .filter_map(|(id, ps)| {
                let name = topic_name(&group.subscription_metadata, &self.topics, id)?;
                Some(
                    TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_topic_name(TopicName(str_bytes(name)))
                        .with_partitions(ps.iter().copied().collect()),
                )
            })
            .collect();
        WireAssignment::default().with_topic_partitions(topics)
    }

    fn describe_consumer(&self, group: &ConsumerGroup, api_version: i16) -> DescribedGroup {
        let default = self
            .config
            .consumer_assignors
            .first()
            .map_or(assignor::UNIFORM, String::as_str);
        let empty = Assignment::new();
        let members = group
            .members
            .values()
            .map(|m| {
                let target = group.targets.get(&m.member_id).unwrap_or(&empty);
                let member = Member::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_instance_id(m.instance_id.as_deref().map(str_bytes))
                    .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                    .with_member_epoch(m.member_epoch)
                    .with_client_id(str_bytes(&m.client_id))
                    .with_client_host(str_bytes(&m.client_host))
                    .with_subscribed_topic_names(
                        m.subscribed_topic_names
                            .iter()
                            .map(|t| TopicName(str_bytes(t)))
                            .collect(),
                    )
                    .with_subscribed_topic_regex(m.subscribed_topic_regex.as_deref().map(str_bytes))
                    .with_assignment(self.describe_assignment(group, &m.assigned))
                    .with_target_assignment(self.describe_assignment(group, target));
                if api_version >= 1 {
                    member.with_member_type(CONSUMER_MEMBER_TYPE)
                } else {
                    member
                }
            })
            .collect();
        DescribedGroup::default()
            .with_group_id(wire_group_id(&group.group_id))
            .with_group_state(str_bytes(group.state().name()))
            .with_group_epoch(group.epoch)
            .with_assignment_epoch(group.assignment_epoch)
            .with_assignor_name(str_bytes(group.preferred_assignor().unwrap_or(default)))
            .with_members(members)
    }

    /// ConsumerGroupDescribe: members with current and target assignments.
    pub fn consumer_group_describe(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        request: ConsumerGroupDescribeRequest,
    ) -> Output {
        self.observe(now_ms);
        let groups = request
            .group_ids
            .iter()
            .map(|id| {
                let name = id.0.as_str();
                let error = |code: ErrorCode, message: String| {
                    DescribedGroup::default()
                        .with_group_id(id.clone())
                        .with_error_code(code.code())
                        .with_error_message(Some(str_bytes(&message)))
                };
                match self.groups.get(name) {
                    _ if name.is_empty() => {
                        error(ErrorCode::InvalidGroupId, "Group id can't be empty.".into())
                    }
                    Some(Group::Consumer(group)) => self.describe_consumer(group, api_version),
                    Some(Group::Classic(_)) => error(
                        ErrorCode::GroupIdNotFound,
                        format!("Group {name} is not a consumer group."),
                    ),
                    None => error(
                        ErrorCode::GroupIdNotFound,
                        format!("Group {name} not found."),
                    ),
                }
            })
            .collect();
        let mut out = Output::default();
        out.reply(
            request_id,
            Reply::ConsumerGroupDescribe(
                ConsumerGroupDescribeResponse::default().with_groups(groups),
            ),
        );
        out
    }
}
