//! AllocateProducerIds (key 67) on a CONTROLLER listener: a broker claims the next block
//! of producer ids, committed through the metadata quorum so no id is handed out twice.

use std::sync::Arc;

use kafka_protocol::messages::{AllocateProducerIdsRequest, AllocateProducerIdsResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::{Broker, PRODUCER_ID_BLOCK_SIZE};

pub struct AllocateProducerIdsHandler;

impl Handler for AllocateProducerIdsHandler {
    type Request = AllocateProducerIdsRequest;
    const KEY: ApiKey = ApiKey::AllocateProducerIds;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AllocateProducerIdsRequest,
    ) -> AllocateProducerIdsResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::ClusterAction) {
            return AllocateProducerIdsResponse::default()
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code());
        }
        let broker_id = request.broker_id.0;
        let image = broker.image();
        let registered = image
            .broker(broker_id)
            .is_some_and(|b| b.epoch == request.broker_epoch);
        if !registered {
            return AllocateProducerIdsResponse::default()
                .with_error_code(ErrorCode::StaleBrokerEpoch.code());
        }
        match broker.allocate_producer_id_block(broker_id).await {
            Ok(start) => AllocateProducerIdsResponse::default()
                .with_producer_id_start(kafka_protocol::messages::ProducerId(start))
                .with_producer_id_len(PRODUCER_ID_BLOCK_SIZE as i32),
            Err(code) => AllocateProducerIdsResponse::default().with_error_code(code.code()),
        }
    }
}
