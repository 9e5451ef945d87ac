//! OffsetFetch: one group (v0-7) or several (v8+), each routed to the shard
//! that owns it. Served up to v9: v10 names topics by id.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct OffsetFetchHandler;

impl Handler for OffsetFetchHandler {
    type Request = OffsetFetchRequest;
    const KEY: ApiKey = ApiKey::OffsetFetch;
    const VERSIONS: VersionRange = VersionRange { min: 1, max: 9 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: OffsetFetchRequest,
    ) -> OffsetFetchResponse {
        let version = ctx.api_version;
        if version < 8 {
            let group = request.group_id.to_string();
            let result = if !ctx.authz(&broker).allows_group(Operation::Describe, &group) {
                Err(strom_types::ErrorCode::GroupAuthorizationFailed)
            } else {
                broker
                    .groups
                    .call(&broker, &group, |shard, now, id| {
                        shard.offset_fetch(now, id, version, request)
                    })
                    .await
            };
            // The top-level error code exists from v2.
            return expect_reply!(result, OffsetFetch, |code: ErrorCode| {
                OffsetFetchResponse::default().with_error_code(if version >= 2 {
                    code.code()
                } else {
                    0
                })
            });
        }
        let mut groups = Vec::with_capacity(request.groups.len());
        for wanted in &request.groups {
            let group_id = wanted.group_id.clone();
            let single = OffsetFetchRequest::default()
                .with_groups(vec![wanted.clone()])
                .with_require_stable(request.require_stable);
            let result = if !ctx
                .authz(&broker)
                .allows_group(Operation::Describe, &group_id)
            {
                Err(strom_types::ErrorCode::GroupAuthorizationFailed)
            } else {
                broker
                    .groups
                    .call(&broker, &group_id, |shard, now, id| {
                        shard.offset_fetch(now, id, version, single)
                    })
                    .await
            };
            let response = expect_reply!(result, OffsetFetch, |code: ErrorCode| {
                OffsetFetchResponse::default()
                    .with_groups(vec![OffsetFetchResponseGroup::default()
                        .with_group_id(group_id.clone())
                        .with_error_code(code.code())])
            });
            groups.extend(response.groups);
        }
        OffsetFetchResponse::default().with_groups(groups)
    }
}
