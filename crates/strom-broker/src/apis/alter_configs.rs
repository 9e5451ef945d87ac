//! AlterConfigs (legacy): the given configs replace all of a topic's
//! overrides, or all of a broker's dynamic configs.

use crate::broker::MetadataWriteError;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;
use strom_metadata::controller::{replace_broker_configs, replace_topic_configs};
use strom_metadata::MetadataRecord;
use strom_types::{ErrorCode, NodeId};

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::controller_error_code;

pub struct AlterConfigsHandler;

impl Handler for AlterConfigsHandler {
    type Request = AlterConfigsRequest;
    const KEY: ApiKey = ApiKey::AlterConfigs;
    const VERSIONS: super::VersionRange = super::VersionRange { min: 0, max: 2 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AlterConfigsRequest,
    ) -> AlterConfigsResponse {
        let mut responses = Vec::with_capacity(request.resources.len());
        let authz = ctx.authz(&broker);
        for resource in &request.resources {
            let configs: Vec<(String, Option<String>)> = resource
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            let name = resource.resource_name.as_str();
            let refused =
                authz.config_refusal(resource.resource_type, name, Operation::AlterConfigs);
            let outcome = match resource.resource_type {
                _ if refused.is_some() => Err(refused
                    .clone()
                    .unwrap_or((ErrorCode::UnknownServerError, String::new()))),
                RESOURCE_TOPIC => {
                    alter(&broker, request.validate_only, |image| {
                        replace_topic_configs(image, name, &configs)
                    })
                    .await
                }
                RESOURCE_BROKER => match broker_resource(name) {
                    Ok(node) => {
                        alter(&broker, request.validate_only, |image| {
                            replace_broker_configs(image, node, &configs)
                        })
                        .await
                    }
                    Err(e) => Err(e),
                },
                other => Err(unsupported_resource(other)),
            };
            responses.push(response(
                resource.resource_type,
                &resource.resource_name,
                outcome,
            ));
        }
        AlterConfigsResponse::default().with_responses(responses)
    }
}

/// Shared by both alter APIs: decide the records under the controller lock
/// and commit them unless validate_only.
pub async fn alter(
    broker: &Broker,
    validate_only: bool,
    decide: impl FnOnce(
        &strom_metadata::MetadataImage,
    ) -> Result<Vec<MetadataRecord>, strom_metadata::ControllerError>,
) -> Result<(), (ErrorCode, String)> {
    broker
        .write_metadata(|image| {
            let records = decide(image)?;
            if validate_only {
                return Ok((Vec::new(), ()));
            }
            for record in &records {
                if let MetadataRecord::Config {
                    resource,
                    name,
                    value,
                } = record
                {
                    tracing::info!(?resource, config = %name, set = value.is_some(), "altering config");
                }
            }
            Ok((records, ()))
        })
        .await
        .map_err(|e: MetadataWriteError<_>| {
            e.into_error(|e| (controller_error_code(&e), e.to_string()))
        })
}

/// A BROKER resource's name: a broker id, or empty for the cluster-wide default.
pub fn broker_resource(name: &str) -> Result<Option<NodeId>, (ErrorCode, String)> {
    if name.is_empty() {
        return Ok(None);
    }
    match name.parse::<NodeId>() {
        Ok(id) if id >= 0 => Ok(Some(id)),
        Ok(_) => Err((
            ErrorCode::InvalidRequest,
            "Invalid negative broker ID.".into(),
        )),
        Err(_) => Err((
            ErrorCode::InvalidRequest,
            "Unable to parse broker name as a base 10 number.".into(),
        )),
    }
}

pub fn unsupported_resource(resource_type: i8) -> (ErrorCode, String) {
    (
        ErrorCode::InvalidRequest,
        format!("Unsupported resource type {resource_type}"),
    )
}

pub fn response(
    resource_type: i8,
    resource_name: &StrBytes,
    outcome: Result<(), (ErrorCode, String)>,
) -> AlterConfigsResourceResponse {
    let response = AlterConfigsResourceResponse::default()
        .with_resource_type(resource_type)
        .with_resource_name(resource_name.clone());
    match outcome {
        Ok(()) => response,
        Err((code, message)) => response
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}
