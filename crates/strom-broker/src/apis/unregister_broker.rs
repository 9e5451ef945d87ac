//! UnregisterBroker (key 64, `kafka-cluster.sh unregister`): decommissions a broker. The
//! active controller commits Kafka's records (the broker leaves every ISR and ELR, then its
//! registration goes) and stops sending it the metadata log. As in Kafka 4, a live broker
//! is not refused (its next heartbeat finds its epoch gone and it registers again); an id
//! that is not registered gets BROKER_ID_NOT_REGISTERED. Brokers forward it to the active
//! controller.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::controller_error_code;

pub struct UnregisterBrokerHandler;

impl Handler for UnregisterBrokerHandler {
    type Request = UnregisterBrokerRequest;
    const KEY: ApiKey = ApiKey::UnregisterBroker;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: UnregisterBrokerRequest,
    ) -> UnregisterBrokerResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::Alter) {
            return UnregisterBrokerResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        match broker.controller_unregister(request.broker_id.0).await {
            Ok(()) => UnregisterBrokerResponse::default(),
            Err(e) => {
                let (code, message) = e.into_error(|e| (controller_error_code(&e), e.to_string()));
                UnregisterBrokerResponse::default()
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message)))
            }
        }
    }
}
