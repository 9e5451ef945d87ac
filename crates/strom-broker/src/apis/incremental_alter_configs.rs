//! IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT per config, on
//! topics, brokers (one or the cluster-wide default) and groups.

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use strom_metadata::controller::{
    incremental_alter_broker_configs, incremental_alter_group_configs,
    incremental_alter_topic_configs, AlterOp,
};
use strom_metadata::topic_config::resolve_topic_config;
use strom_metadata::{ConfigResource, ControllerError};

use super::alter_configs::{alter, broker_resource, response, unsupported_resource};
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::config::DynamicBrokerConfigs;
use strom_types::ErrorCode;

pub struct IncrementalAlterConfigsHandler;

impl Handler for IncrementalAlterConfigsHandler {
    type Request = IncrementalAlterConfigsRequest;
    const KEY: ApiKey = ApiKey::IncrementalAlterConfigs;
    const VERSIONS: super::VersionRange = super::VersionRange { min: 0, max: 1 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: IncrementalAlterConfigsRequest,
    ) -> IncrementalAlterConfigsResponse {
        let mut responses = Vec::with_capacity(request.resources.len());
        let authz = ctx.authz(&broker);
        for resource in &request.resources {
            let name = resource.resource_name.to_string();
            let ops: Result<Vec<(String, AlterOp, Option<String>)>, ControllerError> = resource
                .configs
                .iter()
                .map(|c| {
                    let op = AlterOp::from_code(c.config_operation).ok_or_else(|| {
                        ControllerError::InvalidRequest(format!(
                            "Unknown config operation {}",
                            c.config_operation
                        ))
                    })?;
                    Ok((
                        c.name.to_string(),
                        op,
                        c.value.as_ref().map(|v| v.to_string()),
                    ))
                })
                .collect();
            let validate_only = request.validate_only;
            let refused =
                authz.config_refusal(resource.resource_type, &name, Operation::AlterConfigs);
            let outcome = match resource.resource_type {
                _ if refused.is_some() => Err(refused
                    .clone()
                    .unwrap_or((ErrorCode::UnknownServerError, String::new()))),
                RESOURCE_TOPIC => {
                    alter(&broker, validate_only, |image| {
                        let overrides = image.configs(&ConfigResource::Topic(name.clone()));
                        let dynamic =
                            DynamicBrokerConfigs::from_image(image, broker.config.node_id);
                        let layers = dynamic.over(&broker.config);
                        let current = |config: &str| {
                            resolve_topic_config(config, &overrides, &layers).map(|r| r.value)
                        };
                        incremental_alter_topic_configs(image, &name, &ops?, &current)
                    })
                    .await
                }
                RESOURCE_BROKER => match broker_resource(&name) {
                    Ok(node) => {
                        alter(&broker, validate_only, |image| {
                            incremental_alter_broker_configs(image, node, &ops?)
                        })
                        .await
                    }
                    Err(e) => Err(e),
                },
                RESOURCE_GROUP => {
                    let limits = broker.config.group_config_limits();
                    alter(&broker, validate_only, |image| {
                        incremental_alter_group_configs(image, &name, &ops?, &limits)
                    })
                    .await
                }
                other => Err(unsupported_resource(other)),
            };
            let r = response(resource.resource_type, &resource.resource_name, outcome);
            responses.push(
                AlterConfigsResourceResponse::default()
                    .with_error_code(r.error_code)
                    .with_error_message(r.error_message)
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name),
            );
        }
        IncrementalAlterConfigsResponse::default().with_responses(responses)
    }
}
