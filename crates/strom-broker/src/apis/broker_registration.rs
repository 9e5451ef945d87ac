//! BrokerRegistration (key 62) on a CONTROLLER listener: a broker announces a new
//! incarnation and gets its broker epoch from the active controller.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, BrokerRegistrationRequest, BrokerRegistrationResponse};
use kafka_protocol::protocol::VersionRange;
use strom_metadata::cluster_control::BrokerRegistrationRequest as Registration;
use strom_metadata::BrokerEndpoint;
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::controller_error_code;

pub struct BrokerRegistrationHandler;

impl Handler for BrokerRegistrationHandler {
    type Request = BrokerRegistrationRequest;
    const KEY: ApiKey = ApiKey::BrokerRegistration;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: BrokerRegistrationRequest,
    ) -> BrokerRegistrationResponse {
        let response = BrokerRegistrationResponse::default().with_broker_epoch(-1);
        if !ctx.authz(&broker).allows_cluster(Operation::ClusterAction) {
            return response.with_error_code(ErrorCode::ClusterAuthorizationFailed.code());
        }
        if request.cluster_id.as_str() != broker.cluster_id {
            return response.with_error_code(ErrorCode::InconsistentClusterId.code());
        }
        let registration = Registration {
            broker_id: request.broker_id.0,
            incarnation_id: request.incarnation_id,
            endpoints: request
                .listeners
                .iter()
                .map(|l| BrokerEndpoint {
                    listener: l.name.to_string(),
                    host: l.host.to_string(),
                    port: l.port,
                })
                .collect(),
            rack: request.rack.as_ref().map(|r| r.to_string()),
            previous_broker_epoch: request.previous_broker_epoch,
            log_dirs: request.log_dirs.clone(),
        };
        match broker.controller_register(registration).await {
            Ok(reply) => response.with_broker_epoch(reply.broker_epoch),
            Err(e) => {
                let (code, _) = e.into_error(|e| (controller_error_code(&e), e.to_string()));
                response.with_error_code(code.code())
            }
        }
    }
}
