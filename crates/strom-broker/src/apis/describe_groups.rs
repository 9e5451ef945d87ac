//! DescribeGroups: each group from the shard that owns it.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct DescribeGroupsHandler;

impl Handler for DescribeGroupsHandler {
    type Request = DescribeGroupsRequest;
    const KEY: ApiKey = ApiKey::DescribeGroups;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 6 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeGroupsRequest,
    ) -> DescribeGroupsResponse {
        let version = ctx.api_version;
        let mut groups = Vec::with_capacity(request.groups.len());
        for group_id in &request.groups {
            let single = DescribeGroupsRequest::default()
                .with_groups(vec![group_id.clone()])
                .with_include_authorized_operations(request.include_authorized_operations);
            let result = if !ctx
                .authz(&broker)
                .allows_group(Operation::Describe, group_id)
            {
                Err(strom_types::ErrorCode::GroupAuthorizationFailed)
            } else {
                broker
                    .groups
                    .call(&broker, group_id, |shard, now, id| {
                        shard.describe_groups(now, id, version, single)
                    })
                    .await
            };
            let response = expect_reply!(result, DescribeGroups, |code: ErrorCode| {
                DescribeGroupsResponse::default().with_groups(vec![DescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(code.code())])
            });
            groups.extend(response.groups);
        }
        // v3+ may ask which operations the caller has on each group (else Kafka's MIN).
        let authz = ctx.authz(&broker);
        for group in &mut groups {
            group.authorized_operations = if request.include_authorized_operations && version >= 3 {
                authz.authorized_operations(super::ResourceType::Group, &group.group_id)
            } else {
                super::AUTHORIZED_OPERATIONS_OMITTED
            };
        }
        DescribeGroupsResponse::default().with_groups(groups)
    }
}
