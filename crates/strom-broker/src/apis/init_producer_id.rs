//! InitProducerId for idempotent producers: a fresh producer id at epoch 0.
//! Transactional ids need the transaction coordinator (a later issue).

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{Handler, RequestContext};
use crate::broker::Broker;
use crate::errors::log_error_code;

pub struct InitProducerIdHandler;

impl Handler for InitProducerIdHandler {
    type Request = InitProducerIdRequest;
    const KEY: ApiKey = ApiKey::InitProducerId;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

    async fn handle(
        broker: Arc<Broker>,
        _ctx: RequestContext,
        request: InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let response = InitProducerIdResponse::default()
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        if request.transactional_id.is_some() {
            return response.with_error_code(ErrorCode::NotCoordinator.code());
        }
        // Without a transactional id Kafka always hands out a new id, even
        // when the producer names its old one (KIP-360 epoch bumps).
        match broker.next_producer_id().await {
            Ok(id) => response
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
            Err(e) => response.with_error_code(log_error_code(&e).code()),
        }
    }
}
