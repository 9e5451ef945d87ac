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
        // Offsets of topics the caller may not DESCRIBE: left out of an all-topics fetch,
        // TOPIC_AUTHORIZATION_FAILED when asked for by name.
        if version < 8 {
            let all_topics = request.topics.is_none();
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
            let mut response = expect_reply!(result, OffsetFetch, |code: ErrorCode| {
                OffsetFetchResponse::default().with_error_code(if version >= 2 {
                    code.code()
                } else {
                    0
                })
            });
            let authz = ctx.authz(&broker);
            let allowed = |t: &str| authz.allows_topic(Operation::Describe, t);
            if all_topics {
                response.topics.retain(|t| allowed(&t.name));
            }
            for topic in response.topics.iter_mut().filter(|t| !allowed(&t.name)) {
                for p in &mut topic.partitions {
                    p.committed_offset = -1;
                    p.committed_leader_epoch = -1;
                    p.metadata = None;
                    p.error_code = ErrorCode::TopicAuthorizationFailed.code();
                }
            }
            return response;
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
            let mut response = expect_reply!(result, OffsetFetch, |code: ErrorCode| {
                OffsetFetchResponse::default()
                    .with_groups(vec![OffsetFetchResponseGroup::default()
                        .with_group_id(group_id.clone())
                        .with_error_code(code.code())])
            });
            let authz = ctx.authz(&broker);
            let allowed = |t: &str| authz.allows_topic(Operation::Describe, t);
            for group in &mut response.groups {
                if wanted.topics.is_none() {
                    group.topics.retain(|t| allowed(&t.name));
                }
                for topic in group.topics.iter_mut().filter(|t| !allowed(&t.name)) {
                    for p in &mut topic.partitions {
                        p.committed_offset = -1;
                        p.committed_leader_epoch = -1;
                        p.metadata = None;
                        p.error_code = ErrorCode::TopicAuthorizationFailed.code();
                    }
                }
            }
            groups.extend(response.groups);
        }
        OffsetFetchResponse::default().with_groups(groups)
    }
}
