//! ConsumerGroupDescribe: KIP-848 groups, each from the shard that owns it.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse,
};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct ConsumerGroupDescribeHandler;

impl Handler for ConsumerGroupDescribeHandler {
    type Request = ConsumerGroupDescribeRequest;
    const KEY: ApiKey = ApiKey::ConsumerGroupDescribe;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ConsumerGroupDescribeRequest,
    ) -> ConsumerGroupDescribeResponse {
        let version = ctx.api_version;
        let mut groups = Vec::with_capacity(request.group_ids.len());
        for group_id in &request.group_ids {
            let single = ConsumerGroupDescribeRequest::default()
                .with_group_ids(vec![group_id.clone()])
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
                        shard.consumer_group_describe(now, id, version, single)
                    })
                    .await
            };
            let response = expect_reply!(result, ConsumerGroupDescribe, |code: ErrorCode| {
                ConsumerGroupDescribeResponse::default()
                    .with_groups(vec![DescribedGroup::default()
                        .with_group_id(group_id.clone())
                        .with_error_code(code.code())])
            });
            groups.extend(response.groups);
        }
        let authz = ctx.authz(&broker);
        for group in &mut groups {
            group.authorized_operations = if request.include_authorized_operations {
                authz.authorized_operations(super::ResourceType::Group, &group.group_id)
            } else {
                super::AUTHORIZED_OPERATIONS_OMITTED
            };
        }
        ConsumerGroupDescribeResponse::default().with_groups(groups)
    }
}
