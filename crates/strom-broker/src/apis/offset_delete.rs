//! OffsetDelete: removes a group's committed offsets for some partitions.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::protocol::VersionRange;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct OffsetDeleteHandler;

impl Handler for OffsetDeleteHandler {
    type Request = OffsetDeleteRequest;
    const KEY: ApiKey = ApiKey::OffsetDelete;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: OffsetDeleteRequest,
    ) -> OffsetDeleteResponse {
        let group = request.group_id.to_string();
        let version = ctx.api_version;
        let result = if !ctx.authz(&broker).allows_group(Operation::Delete, &group) {
            Err(strom_types::ErrorCode::GroupAuthorizationFailed)
        } else {
            broker
                .groups
                .call(&broker, &group, |shard, now, id| {
                    shard.offset_delete(now, id, version, request)
                })
                .await
        };
        expect_reply!(result, OffsetDelete, |code: strom_types::ErrorCode| {
            OffsetDeleteResponse::default().with_error_code(code.code())
        })
    }
}
