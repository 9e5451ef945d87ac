//! InitProducerId: without a transactional id, a fresh producer id at epoch 0 for an
//! idempotent producer; with one, the transaction coordinator's answer (a new id, or the
//! transactional id's next epoch, fencing its previous producer).

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::txn_common::expect_txn_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::log_error_code;

pub struct InitProducerIdHandler;

fn error_response(code: ErrorCode) -> InitProducerIdResponse {
    InitProducerIdResponse::default()
        .with_error_code(code.code())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

impl Handler for InitProducerIdHandler {
    type Request = InitProducerIdRequest;
    const KEY: ApiKey = ApiKey::InitProducerId;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        if let Some(transactional_id) = request.transactional_id.as_ref() {
            let transactional_id = transactional_id.to_string();
            let result = if !ctx
                .authz(&broker)
                .allows_transactional_id(Operation::Write, &transactional_id)
            {
                Err(strom_types::ErrorCode::TransactionalIdAuthorizationFailed)
            } else {
                broker
                    .transactions
                    .call(&broker, &transactional_id, |shard, now, id, fresh| {
                        shard.init_producer_id(
                            now,
                            id,
                            ctx.api_version,
                            &transactional_id,
                            request.transaction_timeout_ms,
                            request.producer_id.0,
                            request.producer_epoch,
                            fresh,
                        )
                    })
                    .await
            };
            return expect_txn_reply!(result, InitProducerId, error_response);
        }
        // Idempotence needs WRITE on some topic or IDEMPOTENT_WRITE on the cluster.
        let authz = ctx.authz(&broker);
        if !authz.allows_any(Operation::Write, super::ResourceType::Topic)
            && !authz.allows_cluster(Operation::IdempotentWrite)
        {
            return error_response(strom_types::ErrorCode::ClusterAuthorizationFailed);
        }
        // Without a transactional id Kafka always hands out a new id, even
        // when the producer names its old one (KIP-360 epoch bumps).
        match broker.next_producer_id().await {
            Ok(id) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
            Err(e) => error_response(log_error_code(&e)),
        }
    }
}
