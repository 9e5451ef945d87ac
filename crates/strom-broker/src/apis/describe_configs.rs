//! DescribeConfigs for topics (every topic config with its effective value
//! and source) and for this broker.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_metadata::topic_config::{
    resolve_topic_configs, topic_config_def, ConfigSource, ResolvedConfig, TOPIC_CONFIGS,
};
use strom_metadata::ConfigResource;
use strom_types::{validate_topic_name, ErrorCode};

use super::{Handler, RequestContext};
use crate::broker::Broker;
use crate::config::BROKER_CONFIGS;

pub struct DescribeConfigsHandler;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

impl Handler for DescribeConfigsHandler {
    type Request = DescribeConfigsRequest;
    const KEY: ApiKey = ApiKey::DescribeConfigs;
    const VERSIONS: super::VersionRange = super::VersionRange { min: 1, max: 4 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeConfigsRequest,
    ) -> DescribeConfigsResponse {
        // config_type and documentation exist from v3.
        let typed = ctx.api_version >= 3;
        let results = request
            .resources
            .iter()
            .map(|resource| {
                let result = DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                let entries = match resource.resource_type {
                    RESOURCE_TOPIC => topic_entries(&broker, &resource.resource_name),
                    RESOURCE_BROKER => broker_entries(&broker, &resource.resource_name),
                    other => Err((
                        ErrorCode::InvalidRequest,
                        format!("Unsupported resource type {other}"),
                    )),
                };
                match entries {
                    Ok(entries) => {
                        let wanted = resource.configuration_keys.as_ref();
                        let configs = entries
                            .into_iter()
                            .filter(|e| {
                                wanted.is_none_or(|keys| {
                                    keys.iter().any(|k| k.as_str() == e.name.as_str())
                                })
                            })
                            .map(|mut e| {
                                if !request.include_synonyms {
                                    e.synonyms.clear();
                                }
                                if !request.include_documentation || !typed {
                                    e.documentation = None;
                                }
                                if !typed {
                                    e.config_type = 0;
                                }
                                e
                            })
                            .collect();
                        result.with_configs(configs)
                    }
                    Err((code, message)) => result
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(message))),
                }
            })
            .collect();
        DescribeConfigsResponse::default().with_results(results)
    }
}

type Entries = Result<Vec<DescribeConfigsResourceResult>, (ErrorCode, String)>;

fn topic_entries(broker: &Broker, name: &str) -> Entries {
    if validate_topic_name(name).is_err() {
        return Err((
            ErrorCode::InvalidTopicException,
            format!("Topic name {name} is invalid"),
        ));
    }
    let image = broker.image();
    if image.topic(name).is_none() {
        return Err((
            ErrorCode::UnknownTopicOrPartition,
            format!("Topic {name} does not exist"),
        ));
    }
    let overrides = image.configs(&ConfigResource::Topic(name.to_string()));
    Ok(resolve_topic_configs(&overrides, &broker.config)
        .into_iter()
        .map(topic_entry)
        .collect())
}

fn topic_entry(resolved: ResolvedConfig) -> DescribeConfigsResourceResult {
    let def = topic_config_def(resolved.name);
    let synonyms = resolved
        .synonyms
        .iter()
        .map(|(name, value, source)| {
            DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_value(Some(StrBytes::from_string(value.clone())))
                .with_source(*source as i8)
        })
        .collect();
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(resolved.name))
        .with_value(Some(StrBytes::from_string(resolved.value)))
        .with_config_source(resolved.source as i8)
        .with_synonyms(synonyms)
        .with_config_type(def.map_or(0, |d| d.config_type as i8))
        .with_documentation(def.map(|d| StrBytes::from_static_str(d.doc)))
}

fn broker_entries(broker: &Broker, name: &str) -> Entries {
    if name.is_empty() {
        // Cluster-wide dynamic defaults: none are set.
        return Ok(Vec::new());
    }
    if name.parse::<i32>().ok() != Some(broker.config.node_id) {
        return Err((
            ErrorCode::InvalidRequest,
            format!(
                "Broker {name} is not this broker ({})",
                broker.config.node_id
            ),
        ));
    }
    let explicit = &broker.config.explicit;
    let entry = |name: &str, default: Option<String>, config_type: i8| {
        let (value, source) = match explicit.get(name) {
            Some(v) => (Some(v.clone()), ConfigSource::StaticBrokerConfig),
            None => (default, ConfigSource::DefaultConfig),
        };
        DescribeConfigsResourceResult::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_value(value.clone().map(StrBytes::from_string))
            .with_read_only(true)
            .with_config_source(source as i8)
            .with_config_type(config_type)
            .with_synonyms(vec![DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_string(name.to_string()))
                .with_value(value.map(StrBytes::from_string))
                .with_source(source as i8)])
    };
    let mut entries: Vec<DescribeConfigsResourceResult> = BROKER_CONFIGS
        .iter()
        .map(|d| entry(d.name, d.default.map(str::to_string), d.config_type as i8))
        .collect();
    for def in TOPIC_CONFIGS {
        for synonym in def.synonyms.iter().filter(|s| s.multiplier == 1) {
            if !entries.iter().any(|e| e.name.as_str() == synonym.name) {
                entries.push(entry(
                    synonym.name,
                    Some(def.default.to_string()),
                    def.config_type as i8,
                ));
            }
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}
