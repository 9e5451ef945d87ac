//! AlterConfigs (legacy): the given configs replace all of a topic's overrides.

use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::protocol::StrBytes;
use strom_metadata::controller::replace_topic_configs;
use strom_metadata::MetadataRecord;
use strom_types::ErrorCode;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{Handler, RequestContext};
use crate::broker::Broker;
use crate::errors::{controller_error_code, log_error_code};

pub struct AlterConfigsHandler;

impl Handler for AlterConfigsHandler {
    type Request = AlterConfigsRequest;
    const KEY: ApiKey = ApiKey::AlterConfigs;
    const VERSIONS: super::VersionRange = super::VersionRange { min: 0, max: 2 };

    async fn handle(
        broker: Arc<Broker>,
        _ctx: RequestContext,
        request: AlterConfigsRequest,
    ) -> AlterConfigsResponse {
        let mut responses = Vec::with_capacity(request.resources.len());
        for resource in &request.resources {
            let configs: Vec<(String, Option<String>)> = resource
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect();
            let outcome = alter(
                &broker,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |image| replace_topic_configs(image, &resource.resource_name, &configs),
            )
            .await;
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
    resource_type: i8,
    resource_name: &str,
    validate_only: bool,
    decide: impl FnOnce(
        &strom_metadata::MetadataImage,
    ) -> Result<Vec<MetadataRecord>, strom_metadata::ControllerError>,
) -> Result<(), (ErrorCode, String)> {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return Err((
                ErrorCode::InvalidRequest,
                "Dynamic broker configs are not supported yet; set broker configs in the config file, environment or flags".into(),
            ))
        }
        other => return Err((ErrorCode::InvalidRequest, format!("Unsupported resource type {other}"))),
    }
    let mut controller = broker.controller().await;
    let image = broker.image();
    let records = decide(&image).map_err(|e| (controller_error_code(&e), e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    broker
        .commit(&mut controller, records)
        .map_err(|e| (log_error_code(&e), e.to_string()))?;
    tracing::info!(topic = resource_name, "altered topic configs");
    Ok(())
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
