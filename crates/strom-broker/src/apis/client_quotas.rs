//! DescribeClientQuotas (key 48) and AlterClientQuotas (key 49): client quotas kept
//! in the metadata log (`strom_metadata::quotas`). Describe is answered from this
//! broker's image and needs DESCRIBE_CONFIGS on the cluster; Alter is forwarded to the
//! active controller and needs ALTER_CONFIGS on the cluster, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredEntity, EntryData as AlteredEntry,
};
use kafka_protocol::messages::describe_client_quotas_response::{
    EntityData as DescribedEntity, EntryData as DescribedEntry, ValueData,
};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::quotas::{
    alter_client_quotas, describe_client_quotas, QuotaAlteration, QuotaFilterComponent,
    QuotaFilterError, WireEntity,
};
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

const CLUSTER_REFUSED: &str = "Cluster authorization failed.";

pub struct DescribeClientQuotasHandler;

impl Handler for DescribeClientQuotasHandler {
    type Request = DescribeClientQuotasRequest;
    const KEY: ApiKey = ApiKey::DescribeClientQuotas;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeClientQuotasRequest,
    ) -> DescribeClientQuotasResponse {
        let refused = |code: ErrorCode, message: String| {
            DescribeClientQuotasResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)))
                .with_entries(None)
        };
        if !ctx
            .authz(&broker)
            .allows_cluster(Operation::DescribeConfigs)
        {
            return refused(
                ErrorCode::ClusterAuthorizationFailed,
                CLUSTER_REFUSED.into(),
            );
        }
        let components: Vec<QuotaFilterComponent> = request
            .components
            .iter()
            .map(|c| QuotaFilterComponent {
                entity_type: c.entity_type.to_string(),
                match_type: c.match_type,
                name: c._match.as_ref().map(|m| m.to_string()),
            })
            .collect();
        let image = broker.image();
        match describe_client_quotas(image.client_quotas(), &components, request.strict) {
            Err(e @ QuotaFilterError::Invalid(_)) => {
                refused(ErrorCode::InvalidRequest, e.to_string())
            }
            Err(e @ QuotaFilterError::UnsupportedEntityType(_)) => {
                refused(ErrorCode::UnsupportedVersion, e.to_string())
            }
            Ok(found) => DescribeClientQuotasResponse::default().with_entries(Some(
                found
                    .into_iter()
                    .map(|(entity, values)| {
                        DescribedEntry::default()
                            .with_entity(
                                entity
                                    .components()
                                    .into_iter()
                                    .map(|(kind, name)| {
                                        DescribedEntity::default()
                                            .with_entity_type(StrBytes::from_static_str(kind))
                                            .with_entity_name(
                                                name.map(|n| StrBytes::from_string(n.into())),
                                            )
                                    })
                                    .collect(),
                            )
                            .with_values(
                                values
                                    .into_iter()
                                    .map(|(key, value)| {
                                        ValueData::default()
                                            .with_key(StrBytes::from_string(key))
                                            .with_value(value)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )),
        }
    }
}

pub struct AlterClientQuotasHandler;

fn altered_entry(entity: &WireEntity, outcome: Result<(), (ErrorCode, String)>) -> AlteredEntry {
    let entry = AlteredEntry::default().with_entity(
        entity
            .iter()
            .map(|(kind, name)| {
                AlteredEntity::default()
                    .with_entity_type(StrBytes::from_string(kind.clone()))
                    .with_entity_name(name.clone().map(StrBytes::from_string))
            })
            .collect(),
    );
    match outcome {
        Ok(()) => entry,
        Err((code, message)) => entry
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}

impl Handler for AlterClientQuotasHandler {
    type Request = AlterClientQuotasRequest;
    const KEY: ApiKey = ApiKey::AlterClientQuotas;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AlterClientQuotasRequest,
    ) -> AlterClientQuotasResponse {
        let alterations: Vec<QuotaAlteration> = request
            .entries
            .iter()
            .map(|e| QuotaAlteration {
                entity: e
                    .entity
                    .iter()
                    .map(|d| {
                        (
                            d.entity_type.to_string(),
                            d.entity_name.as_ref().map(|n| n.to_string()),
                        )
                    })
                    .collect(),
                ops: e
                    .ops
                    .iter()
                    .map(|op| (op.key.to_string(), (!op.remove).then_some(op.value)))
                    .collect(),
            })
            .collect();
        let every_entry_fails = |code: ErrorCode, message: &str| {
            AlterClientQuotasResponse::default().with_entries(
                alterations
                    .iter()
                    .map(|a| altered_entry(&a.entity, Err((code, message.to_string()))))
                    .collect(),
            )
        };
        if !ctx.authz(&broker).allows_cluster(Operation::AlterConfigs) {
            return every_entry_fails(ErrorCode::ClusterAuthorizationFailed, CLUSTER_REFUSED);
        }
        let validate_only = request.validate_only;
        let written = broker
            .write_metadata(|image| {
                let (records, outcomes) = alter_client_quotas(image, &alterations)?;
                Ok::<_, String>((if validate_only { Vec::new() } else { records }, outcomes))
            })
            .await;
        match written {
            Ok(outcomes) => AlterClientQuotasResponse::default().with_entries(
                outcomes
                    .iter()
                    .map(|(entity, outcome)| {
                        altered_entry(
                            entity,
                            outcome
                                .clone()
                                .map_err(|message| (ErrorCode::InvalidRequest, message)),
                        )
                    })
                    .collect(),
            ),
            Err(e) => {
                let (code, message) = e.into_error(|message| (ErrorCode::InvalidRequest, message));
                every_entry_fails(code, &message)
            }
        }
    }
}
