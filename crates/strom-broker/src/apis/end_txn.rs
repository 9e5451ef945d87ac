//! EndTxn: commits or aborts the producer's transaction. The reply goes out once the
//! PrepareCommit/PrepareAbort record is durable and the markers are written.
//! Version 5 is transaction version 2 (KIP-890): the reply carries the producer id and
//! epoch of the next transaction.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, EndTxnRequest, EndTxnResponse, ProducerId};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::txn_common::expect_txn_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct EndTxnHandler;

impl Handler for EndTxnHandler {
    type Request = EndTxnRequest;
    const KEY: ApiKey = ApiKey::EndTxn;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: EndTxnRequest,
    ) -> EndTxnResponse {
        let transactional_id = request.transactional_id.to_string();
        let result = if !ctx
            .authz(&broker)
            .allows_transactional_id(Operation::Write, &transactional_id)
        {
            Err(strom_types::ErrorCode::TransactionalIdAuthorizationFailed)
        } else {
            broker
                .transactions
                .call(&broker, &transactional_id, |shard, now, id, fresh| {
                    shard.end_txn(
                        now,
                        id,
                        ctx.api_version,
                        &transactional_id,
                        request.producer_id.0,
                        request.producer_epoch,
                        request.committed,
                        fresh,
                    )
                })
                .await
        };
        expect_txn_reply!(result, EndTxn, |code: ErrorCode| {
            EndTxnResponse::default()
                .with_error_code(code.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        })
    }
}
