//! ConsumerGroupHeartbeat: the KIP-848 consumer protocol, where the
//! coordinator assigns partitions and members reconcile by heartbeat.

use std::sync::Arc;

use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::protocol::VersionRange;

use super::group_common::{client_info, expect_reply};
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct ConsumerGroupHeartbeatHandler;

impl Handler for ConsumerGroupHeartbeatHandler {
    type Request = ConsumerGroupHeartbeatRequest;
    const KEY: ApiKey = ApiKey::ConsumerGroupHeartbeat;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ConsumerGroupHeartbeatRequest,
    ) -> ConsumerGroupHeartbeatResponse {
        tracing::debug!(?request, "consumer group heartbeat");
        let group = request.group_id.to_string();
        let client = client_info(&ctx);
        let version = ctx.api_version;
        let authz = ctx.authz(&broker);
        // Kafka 4: a member may only subscribe to topics it may DESCRIBE, or it would
        // learn of them through its assignment.
        let hidden_topic = request
            .subscribed_topic_names
            .iter()
            .flatten()
            .any(|topic| !authz.allows_topic(Operation::Describe, topic));
        let result = if !authz.allows_group(Operation::Read, &group) {
            Err(strom_types::ErrorCode::GroupAuthorizationFailed)
        } else if hidden_topic {
            Err(strom_types::ErrorCode::TopicAuthorizationFailed)
        } else {
            broker
                .groups
                .call(&broker, &group, |shard, now, id| {
                    shard.consumer_group_heartbeat(now, id, version, &client, request)
                })
                .await
        };
        let response = expect_reply!(
            result,
            ConsumerGroupHeartbeat,
            |code: strom_types::ErrorCode| {
                ConsumerGroupHeartbeatResponse::default().with_error_code(code.code())
            }
        );
        if response.error_code != 0 {
            tracing::debug!(code = response.error_code, message = ?response.error_message, "consumer group heartbeat refused");
        }
        response
    }
}
