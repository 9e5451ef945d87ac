//! ListGroups, DescribeGroups and DeleteGroups.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ListGroupsRequest, ListGroupsResponse,
};
use strom_types::ErrorCode;

use crate::classic::group::{ClassicGroup, CONSUMER_PROTOCOL_TYPE};
use crate::classic::responses::{code_of, str_bytes};
use crate::classic::ClassicGroupState;
use crate::consumer::ConsumerGroupState;
use crate::offsets_api::group_id;
use crate::output::{Output, Reply};
use crate::shard::{Group, GroupCoordinatorShard};

/// ListGroups v4+ filters by state.
const STATES_FILTER_VERSION: i16 = 4;
/// ListGroups v5+ filters by group type.
const TYPES_FILTER_VERSION: i16 = 5;
/// DescribeGroups v6+ reports unknown groups as GROUP_ID_NOT_FOUND.
const DESCRIBE_NOT_FOUND_VERSION: i16 = 6;

impl Group {
    /// Kafka's group type name, as in ListGroups v5.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Group::Classic(_) => "classic",
            Group::Consumer(_) => "consumer",
        }
    }

    fn state_name(&self) -> &'static str {
        match self {
            Group::Classic(group) => group.state.name(),
            Group::Consumer(group) => group.state().name(),
        }
    }

    fn protocol_type(&self) -> &str {
        match self {
            Group::Classic(group) => group.protocol_type.as_deref().unwrap_or(""),
            Group::Consumer(_) => CONSUMER_PROTOCOL_TYPE,
        }
    }
}

fn describe_classic(group: &ClassicGroup) -> DescribedGroup {
    // Member metadata is shown only once a protocol is in force (Stable).
    let protocol = group
        .is_state(ClassicGroupState::Stable)
        .then_some(group.protocol_name.as_deref())
        .flatten();
    let members = group
        .members
        .iter()
        .map(|m| {
            DescribedGroupMember::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host))
                .with_member_metadata(protocol.map(|p| m.metadata(Some(p))).unwrap_or_default())
                .with_member_assignment(m.assignment.clone())
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(group_id(&group.group_id))
        .with_group_state(str_bytes(group.state.name()))
        .with_protocol_type(str_bytes(group.protocol_type.as_deref().unwrap_or("")))
        .with_protocol_data(str_bytes(protocol.unwrap_or("")))
        .with_members(members)
}

impl GroupCoordinatorShard {
    /// ListGroups, with the v4 state filter (case-insensitive) and v5 type filter.
    pub fn list_groups(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        request: ListGroupsRequest,
    ) -> Output {
        self.observe(now_ms);
        let states: Vec<String> = if api_version >= STATES_FILTER_VERSION {
            request
                .states_filter
                .iter()
                .map(|s| s.trim().to_lowercase())
                .collect()
        } else {
            Vec::new()
        };
        let types: Vec<String> = if api_version >= TYPES_FILTER_VERSION {
            request
                .types_filter
                .iter()
                .map(|s| s.trim().to_lowercase())
                .collect()
        } else {
            Vec::new()
        };
        let groups = self
            .groups
            .iter()
            .filter(|(_, g)| states.is_empty() || states.contains(&g.state_name().to_lowercase()))
            .filter(|(_, g)| types.is_empty() || types.iter().any(|t| t == g.type_name()))
            .map(|(id, g)| {
                ListedGroup::default()
                    .with_group_id(group_id(id))
                    .with_protocol_type(str_bytes(g.protocol_type()))
                    .with_group_state(str_bytes(g.state_name()))
                    .with_group_type(str_bytes(g.type_name()))
            })
            .collect();
        let mut out = Output::default();
        out.reply(
            request_id,
            Reply::ListGroups(ListGroupsResponse::default().with_groups(groups)),
        );
        out
    }

    /// DescribeGroups: members with metadata and assignments; unknown groups are `Dead`.
    pub fn describe_groups(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        request: DescribeGroupsRequest,
    ) -> Output {
        self.observe(now_ms);
        let groups = request
            .groups
            .iter()
            .map(|id| {
                let name = id.0.as_str();
                match self.groups.get(name) {
                    _ if name.is_empty() => DescribedGroup::default()
                        .with_group_id(id.clone())
                        .with_error_code(ErrorCode::InvalidGroupId.code()),
                    Some(Group::Classic(group)) => describe_classic(group),
                    // Kafka describes only classic groups here; others look Dead.
                    other => {
                        let dead = DescribedGroup::default()
                            .with_group_id(id.clone())
                            .with_group_state(str_bytes(ClassicGroupState::Dead.name()));
                        let message = match other {
                            Some(_) => format!("Group {name} is not a classic group."),
                            None => format!("Group {name} not found."),
                        };
                        if api_version >= DESCRIBE_NOT_FOUND_VERSION {
                            dead.with_error_code(ErrorCode::GroupIdNotFound.code())
                                .with_error_message(Some(str_bytes(&message)))
                        } else {
                            dead
                        }
                    }
                }
            })
            .collect();
        let mut out = Output::default();
        out.reply(
            request_id,
            Reply::DescribeGroups(DescribeGroupsResponse::default().with_groups(groups)),
        );
        out
    }

    /// DeleteGroups: only empty groups; their offsets go with them.
    pub fn delete_groups(
        &mut self,
        now_ms: i64,
        request_id: u64,
        _api_version: i16,
        request: DeleteGroupsRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let mut results = Vec::with_capacity(request.groups_names.len());
        for id in &request.groups_names {
            let name = id.0.as_str();
            let result = match self.groups.get(name) {
                _ if name.is_empty() => Err(ErrorCode::InvalidGroupId),
                None => Err(ErrorCode::GroupIdNotFound),
                Some(Group::Classic(group)) => match group.state {
                    ClassicGroupState::Empty => Ok(()),
                    ClassicGroupState::Dead => Err(ErrorCode::GroupIdNotFound),
                    _ => Err(ErrorCode::NonEmptyGroup),
                },
                Some(Group::Consumer(group)) => match group.state() {
                    ConsumerGroupState::Empty => Ok(()),
                    _ => Err(ErrorCode::NonEmptyGroup),
                },
            };
            if result.is_ok() {
                let records = self.delete_group_records(name);
                self.append(&mut out, records);
            }
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(id.clone())
                    .with_error_code(code_of(result)),
            );
        }
        out.reply(
            request_id,
            Reply::DeleteGroups(DeleteGroupsResponse::default().with_results(results)),
        );
        out
    }
}
