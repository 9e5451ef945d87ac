//! Heartbeat (classic protocol).

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};
use kafka_protocol::protocol::VersionRange;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct HeartbeatHandler;

impl Handler for HeartbeatHandler {
    type Request = HeartbeatRequest;
    const KEY: ApiKey = ApiKey::Heartbeat;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: HeartbeatRequest,
    ) -> HeartbeatResponse {
        let group = request.group_id.to_string();
        let version = ctx.api_version;
        let result = if !ctx.authz(&broker).allows_group(Operation::Read, &group) {
            Err(strom_types::ErrorCode::GroupAuthorizationFailed)
        } else {
            broker
                .groups
                .call(&broker, &group, |shard, now, id| {
                    shard.heartbeat(now, id, version, request)
                })
                .await
        };
        expect_reply!(result, Heartbeat, |code: strom_types::ErrorCode| {
            HeartbeatResponse::default().with_error_code(code.code())
        })
    }
}
