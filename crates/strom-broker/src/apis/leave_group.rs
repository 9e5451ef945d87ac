//! LeaveGroup, one member (v0-2) or a batch (v3+).

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::VersionRange;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct LeaveGroupHandler;

impl Handler for LeaveGroupHandler {
    type Request = LeaveGroupRequest;
    const KEY: ApiKey = ApiKey::LeaveGroup;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: LeaveGroupRequest,
    ) -> LeaveGroupResponse {
        let group = request.group_id.to_string();
        let version = ctx.api_version;
        let result = if !ctx.authz(&broker).allows_group(Operation::Read, &group) {
            Err(strom_types::ErrorCode::GroupAuthorizationFailed)
        } else {
            broker
                .groups
                .call(&broker, &group, |shard, now, id| {
                    shard.leave_group(now, id, version, request)
                })
                .await
        };
        expect_reply!(result, LeaveGroup, |code: strom_types::ErrorCode| {
            LeaveGroupResponse::default().with_error_code(code.code())
        })
    }
}
