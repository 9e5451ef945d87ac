//! DescribeConfigs for topics (every topic config with its effective value
//! and source), for this broker or the cluster-wide dynamic defaults, and for
//! groups (KIP-848 group configs).

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_metadata::broker_config::{DescribedBrokerConfig, GROUP_CONFIGS};
use strom_metadata::topic_config::{
    resolve_topic_configs, topic_config_def, ConfigSource, ConfigType, ResolvedConfig,
};
use strom_metadata::ConfigResource;
use strom_types::{validate_topic_name, ErrorCode};

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct DescribeConfigsHandler;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_GROUP: i8 = 32;

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
        let authz = ctx.authz(&broker);
        let results = request
            .resources
            .iter()
            .map(|resource| {
                let result = DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                let refused = authz.config_refusal(
                    resource.resource_type,
                    &resource.resource_name,
                    Operation::DescribeConfigs,
                );
                let entries = match resource.resource_type {
                    _ if refused.is_some() => Err(refused
                        .clone()
                        .unwrap_or((ErrorCode::UnknownServerError, String::new()))),
                    RESOURCE_TOPIC => topic_entries(&broker, &resource.resource_name),
                    RESOURCE_BROKER => broker_entries(&broker, &resource.resource_name),
                    RESOURCE_GROUP => group_entries(&broker, &resource.resource_name),
                    other => Err((
                        ErrorCode::InvalidRequest,
                        format!("Unsupported resource type: {other}"),
                    )),
                };
                match entries {
                    Ok(entries) => {
                        let wanted = resource.configuration_keys.as_ref();
                        let configs = entries
                            .into_iter()
                            .filter(|e| {
                                wanted.is_none_or(|keys| {
                                    keys.is_empty()
                                        || keys.iter().any(|k| k.as_str() == e.name.as_str())
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
    Ok(
        resolve_topic_configs(&overrides, &broker.dynamic_configs().over(&broker.config))
            .into_iter()
            .map(topic_entry)
            .collect(),
    )
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
    // The cluster-wide default lists only what is set there, as Kafka does.
    let per_broker = !name.is_empty();
    if per_broker {
        let id = name.parse::<i32>().map_err(|_| {
            (
                ErrorCode::InvalidRequest,
                format!("Broker id must be an integer, but it is: {name}"),
            )
        })?;
        if id != broker.config.node_id {
            return Err((
                ErrorCode::InvalidRequest,
                format!(
                    "Unexpected broker id, expected {} or empty string, but received {name}",
                    broker.config.node_id
                ),
            ));
        }
    }
    let dynamic = broker.dynamic_configs();
    let layers = dynamic.over(&broker.config);
    let names = if per_broker {
        layers.names()
    } else {
        layers.dynamic_default.keys().cloned().collect()
    };
    Ok(names
        .iter()
        .map(|n| broker_entry(layers.describe(n, per_broker)))
        .collect())
}

fn broker_entry(described: DescribedBrokerConfig) -> DescribeConfigsResourceResult {
    let synonyms = described
        .synonyms
        .into_iter()
        .map(|(name, value, source)| {
            DescribeConfigsSynonym::default()
                .with_name(StrBytes::from_string(name))
                .with_value(value.map(StrBytes::from_string))
                .with_source(source as i8)
        })
        .collect();
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(described.name))
        .with_value(described.value.map(StrBytes::from_string))
        .with_read_only(described.read_only)
        .with_is_sensitive(described.sensitive)
        .with_config_source(described.source as i8)
        .with_config_type(described.config_type.map_or(0, |t| t as i8))
        .with_synonyms(synonyms)
}

/// A group's configs: its own value (GROUP_CONFIG) or the broker's default
/// (DEFAULT_CONFIG); any group name works, whether the group exists or not.
fn group_entries(broker: &Broker, group: &str) -> Entries {
    if group.is_empty() {
        return Err((
            ErrorCode::InvalidRequest,
            "Group name must not be empty".into(),
        ));
    }
    let image = broker.image();
    let overrides = image.configs(&ConfigResource::Group(group.to_string()));
    let dynamic = broker.dynamic_configs();
    let layers = dynamic.over(&broker.config);
    Ok(GROUP_CONFIGS
        .iter()
        .map(|(name, broker_name)| {
            let (value, source) = match overrides.get(*name) {
                Some(v) => (Some(v.clone()), ConfigSource::GroupConfig),
                None => (layers.effective(broker_name), ConfigSource::DefaultConfig),
            };
            let value = value.map(StrBytes::from_string);
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_static_str(name))
                .with_value(value.clone())
                .with_config_source(source as i8)
                .with_config_type(ConfigType::Int as i8)
                .with_synonyms(vec![DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_static_str(name))
                    .with_value(value)
                    .with_source(source as i8)])
        })
        .collect())
}
