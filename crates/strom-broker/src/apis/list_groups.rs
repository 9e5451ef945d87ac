//! ListGroups: every shard's groups, merged.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_coordinator::Reply;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct ListGroupsHandler;

impl Handler for ListGroupsHandler {
    type Request = ListGroupsRequest;
    const KEY: ApiKey = ApiKey::ListGroups;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ListGroupsRequest,
    ) -> ListGroupsResponse {
        let version = ctx.api_version;
        let replies = broker
            .groups
            .call_all(&broker, |shard, now, id| {
                shard.list_groups(now, id, version, request.clone())
            })
            .await;
        match replies {
            Err(code) => ListGroupsResponse::default().with_error_code(code.code()),
            Ok(replies) => {
                let mut merged = ListGroupsResponse::default();
                for reply in replies {
                    if let Reply::ListGroups(response) = reply {
                        if merged.error_code == 0 {
                            merged.error_code = response.error_code;
                        }
                        merged.groups.extend(response.groups);
                    }
                }
                // DESCRIBE on the cluster lists every group; else those the caller may describe.
                let authz = ctx.authz(&broker);
                if !authz.allows_cluster(Operation::Describe) {
                    merged
                        .groups
                        .retain(|g| authz.allows_group(Operation::Describe, &g.group_id));
                }
                merged.groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
                merged
            }
        }
    }
}
