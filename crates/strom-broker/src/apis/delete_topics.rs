//! DeleteTopics, by name (all versions) or by topic id (v6+).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::controller::{delete_topic, delete_topic_by_id};
use strom_types::{ErrorCode, TopicId};
use tracing::info;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::client_quotas::{MutationQuota, MutationRefusal};

/// THROTTLING_QUOTA_EXCEEDED is known from v5; older versions are throttled without it.
const STRICT_QUOTA_VERSION: i16 = 5;

pub struct DeleteTopicsHandler;

impl Handler for DeleteTopicsHandler {
    type Request = DeleteTopicsRequest;
    const KEY: ApiKey = ApiKey::DeleteTopics;
    const VERSIONS: VersionRange = VersionRange { min: 1, max: 6 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DeleteTopicsRequest,
    ) -> DeleteTopicsResponse {
        let targets: Vec<(Option<TopicName>, TopicId)> = if ctx.api_version >= 6 {
            request
                .topics
                .into_iter()
                .map(|t| (t.name, t.topic_id))
                .collect()
        } else {
            request
                .topic_names
                .into_iter()
                .map(|n| (Some(n), TopicId::nil()))
                .collect()
        };
        let mut responses = Vec::with_capacity(targets.len());
        let authz = ctx.authz(&broker);
        let mut quota = MutationQuota::new(&broker, &ctx, STRICT_QUOTA_VERSION);
        for (name, topic_id) in targets {
            let named = name.as_ref().map(|n| n.to_string()).or_else(|| {
                broker
                    .image()
                    .topic_by_id(&topic_id)
                    .map(|t| t.name.clone())
            });
            if named.is_some_and(|n| !authz.allows_topic(Operation::Delete, &n)) {
                responses.push(
                    DeletableTopicResult::default()
                        .with_name(name.clone())
                        .with_topic_id(topic_id)
                        .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                        .with_error_message(
                            (ctx.api_version >= 5)
                                .then(|| StrBytes::from_static_str("Authorization failed.")),
                        ),
                );
                continue;
            }
            let decided = broker
                .write_metadata(|image| {
                    let (records, (name, id)) = match &name {
                        Some(name) => delete_topic(image, name).map(|records| {
                            let id = image.topic(name).map_or(TopicId::nil(), |t| t.id);
                            (records, (name.to_string(), id))
                        })?,
                        None => delete_topic_by_id(image, topic_id)
                            .map(|(name, records)| (records, (name, topic_id)))?,
                    };
                    let partitions = image.topic(&name).map_or(0, |t| t.partitions.len());
                    quota.take(partitions as u32)?;
                    Ok::<_, MutationRefusal>((records, (name, id)))
                })
                .await;
            // error_message exists from v5, topic_id from v6.
            let message =
                |text: String| (ctx.api_version >= 5).then(|| StrBytes::from_string(text));
            let by_id = ctx.api_version >= 6;
            let result = DeletableTopicResult::default()
                .with_name(name.clone())
                .with_topic_id(topic_id);
            let result = match decided {
                Err(e) => {
                    let (code, text) = e.into_error(|e| e.error());
                    result
                        .with_error_code(code.code())
                        .with_error_message(message(text))
                }
                Ok((deleted_name, deleted_id)) => {
                    info!(topic = %deleted_name, "deleted topic");
                    result
                        .with_name(Some(TopicName(StrBytes::from_string(deleted_name))))
                        .with_topic_id(if by_id { deleted_id } else { TopicId::nil() })
                }
            };
            responses.push(result);
        }
        DeleteTopicsResponse::default()
            .with_responses(responses)
            .with_throttle_time_ms(quota.throttle_time_ms())
    }
}
