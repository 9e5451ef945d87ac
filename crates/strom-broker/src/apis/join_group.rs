//! JoinGroup (classic protocol); the reply may wait for the rebalance.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::VersionRange;

use super::group_common::{client_info, expect_reply};
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct JoinGroupHandler;

impl Handler for JoinGroupHandler {
    type Request = JoinGroupRequest;
    const KEY: ApiKey = ApiKey::JoinGroup;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 9 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: JoinGroupRequest,
    ) -> JoinGroupResponse {
        let group = request.group_id.to_string();
        let member_id = request.member_id.clone();
        let client = client_info(&ctx);
        let version = ctx.api_version;
        let result = if !ctx.authz(&broker).allows_group(Operation::Read, &group) {
            Err(strom_types::ErrorCode::GroupAuthorizationFailed)
        } else {
            broker
                .groups
                .call(&broker, &group, |shard, now, id| {
                    shard.join_group(now, id, version, &client, request)
                })
                .await
        };
        expect_reply!(result, JoinGroup, |code: strom_types::ErrorCode| {
            JoinGroupResponse::default()
                .with_error_code(code.code())
                .with_generation_id(-1)
                .with_member_id(member_id.clone())
        })
    }
}
