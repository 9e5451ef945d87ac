//! DeleteGroups: each group through the shard that owns it.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct DeleteGroupsHandler;

impl Handler for DeleteGroupsHandler {
    type Request = DeleteGroupsRequest;
    const KEY: ApiKey = ApiKey::DeleteGroups;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DeleteGroupsRequest,
    ) -> DeleteGroupsResponse {
        let version = ctx.api_version;
        let mut results = Vec::with_capacity(request.groups_names.len());
        for group_id in &request.groups_names {
            let single = DeleteGroupsRequest::default().with_groups_names(vec![group_id.clone()]);
            let result = if !ctx.authz(&broker).allows_group(Operation::Delete, group_id) {
                Err(strom_types::ErrorCode::GroupAuthorizationFailed)
            } else {
                broker
                    .groups
                    .call(&broker, group_id, |shard, now, id| {
                        shard.delete_groups(now, id, version, single)
                    })
                    .await
            };
            let response = expect_reply!(result, DeleteGroups, |code: ErrorCode| {
                DeleteGroupsResponse::default().with_results(vec![DeletableGroupResult::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(code.code())])
            });
            results.extend(response.results);
        }
        DeleteGroupsResponse::default().with_results(results)
    }
}
