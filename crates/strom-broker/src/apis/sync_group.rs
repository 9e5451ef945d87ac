//! SyncGroup: the leader hands out assignments; followers wait for them.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::VersionRange;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct SyncGroupHandler;

impl Handler for SyncGroupHandler {
    type Request = SyncGroupRequest;
    const KEY: ApiKey = ApiKey::SyncGroup;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: SyncGroupRequest,
    ) -> SyncGroupResponse {
        let group = request.group_id.to_string();
        let version = ctx.api_version;
        let result = if !ctx.authz(&broker).allows_group(Operation::Read, &group) {
            Err(strom_types::ErrorCode::GroupAuthorizationFailed)
        } else {
            broker
                .groups
                .call(&broker, &group, |shard, now, id| {
                    shard.sync_group(now, id, version, request)
                })
                .await
        };
        expect_reply!(result, SyncGroup, |code: strom_types::ErrorCode| {
            SyncGroupResponse::default().with_error_code(code.code())
        })
    }
}
