//! CreateTopics: each topic is checked and committed through the controller
//! path; validate_only stops after the checks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::controller::{create_topic, NewTopic, TopicDefaults};
use strom_metadata::topic_config::resolve_topic_configs;
use strom_types::{ErrorCode, TopicId};
use tracing::info;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::client_quotas::{within_request_limit, MutationQuota, MutationRefusal};

/// THROTTLING_QUOTA_EXCEEDED is known from v6; older versions are throttled without it.
const STRICT_QUOTA_VERSION: i16 = 6;

pub struct CreateTopicsHandler;

impl Handler for CreateTopicsHandler {
    type Request = CreateTopicsRequest;
    const KEY: ApiKey = ApiKey::CreateTopics;
    const VERSIONS: VersionRange = VersionRange { min: 2, max: 7 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: CreateTopicsRequest,
    ) -> CreateTopicsResponse {
        // num_partitions, replication_factor and configs exist from v5, topic_id from v7.
        let detailed = ctx.api_version >= 5;
        let mut name_counts: HashMap<String, usize> = HashMap::new();
        for topic in &request.topics {
            *name_counts.entry(topic.name.to_string()).or_default() += 1;
        }
        let defaults = TopicDefaults {
            num_partitions: broker.config.num_partitions,
            replication_factor: broker.config.default_replication_factor,
        };
        let mut results = Vec::with_capacity(request.topics.len());
        let authz = ctx.authz(&broker);
        let may_create_any = authz.allows_cluster(Operation::Create);
        let mut quota = MutationQuota::new(&broker, &ctx, STRICT_QUOTA_VERSION);
        // Kafka bounds the records of the whole request (MAX_RECORDS_PER_USER_OP); topics
        // are committed one by one here, so the bound counts across them.
        let mut request_records = 0usize;
        for topic in &request.topics {
            let name = topic.name.to_string();
            let result = CreatableTopicResult::default()
                .with_name(topic.name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            if !may_create_any && !authz.allows_topic(Operation::Create, &name) {
                results.push(error(
                    result,
                    ErrorCode::TopicAuthorizationFailed,
                    "Authorization failed.".into(),
                ));
                continue;
            }
            if name_counts[&name] > 1 {
                results.push(error(
                    result,
                    ErrorCode::InvalidRequest,
                    format!("Create topics request from client contains a duplicate topic: {name}"),
                ));
                continue;
            }
            let spec = NewTopic {
                name: name.clone(),
                num_partitions: topic.num_partitions,
                replication_factor: topic.replication_factor,
                assignments: topic
                    .assignments
                    .iter()
                    .map(|a| {
                        (
                            a.partition_index,
                            a.broker_ids.iter().map(|b| b.0).collect(),
                        )
                    })
                    .collect(),
                configs: topic
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect(),
            };
            let validate_only = request.validate_only;
            let written = broker
                .write_metadata(|image| {
                    let (records, created) =
                        create_topic(image, &spec, defaults, TopicId::new_v4())?;
                    request_records = within_request_limit(request_records, records.len())?;
                    quota.take(created.num_partitions.max(0) as u32)?;
                    Ok::<_, MutationRefusal>((
                        if validate_only { Vec::new() } else { records },
                        created,
                    ))
                })
                .await;
            let created = match written {
                Ok(created) => created,
                Err(e) => {
                    let (code, message) = e.into_error(|e| e.error());
                    results.push(error(result, code, message));
                    continue;
                }
            };
            if !validate_only {
                info!(topic = %name, partitions = created.num_partitions, "created topic");
            }
            if !detailed {
                results.push(result);
                continue;
            }
            let topic_id = if request.validate_only || ctx.api_version < 7 {
                TopicId::nil()
            } else {
                created.topic_id
            };
            let result = result.with_topic_id(topic_id);
            // As Kafka's controller: the partition count, replication factor and configs
            // only for a caller that may DESCRIBE_CONFIGS the topic.
            if !authz.allows_topic(Operation::DescribeConfigs, &name) {
                results.push(
                    result.with_topic_config_error_code(ErrorCode::TopicAuthorizationFailed.code()),
                );
                continue;
            }
            results.push(
                result
                    .with_num_partitions(created.num_partitions)
                    .with_replication_factor(created.replication_factor)
                    .with_configs(Some(configs_of(&broker, &created.configs))),
            );
        }
        CreateTopicsResponse::default()
            .with_topics(results)
            .with_throttle_time_ms(quota.throttle_time_ms())
    }
}

fn error(result: CreatableTopicResult, code: ErrorCode, message: String) -> CreatableTopicResult {
    result
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

fn configs_of(broker: &Broker, overrides: &BTreeMap<String, String>) -> Vec<CreatableTopicConfigs> {
    resolve_topic_configs(overrides, &broker.dynamic_configs().over(&broker.config))
        .into_iter()
        .map(|c| {
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(c.name))
                .with_value(Some(StrBytes::from_string(c.value)))
                .with_config_source(c.source as i8)
        })
        .collect()
}
