//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction,
//! so its TxnOffsetCommit records are committed or aborted with it.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::txn_common::expect_txn_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct AddOffsetsToTxnHandler;

impl Handler for AddOffsetsToTxnHandler {
    type Request = AddOffsetsToTxnRequest;
    const KEY: ApiKey = ApiKey::AddOffsetsToTxn;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AddOffsetsToTxnRequest,
    ) -> AddOffsetsToTxnResponse {
        let transactional_id = request.transactional_id.to_string();
        let result = if !ctx
            .authz(&broker)
            .allows_transactional_id(Operation::Write, &transactional_id)
        {
            Err(strom_types::ErrorCode::TransactionalIdAuthorizationFailed)
        } else if !ctx
            .authz(&broker)
            .allows_group(Operation::Read, &request.group_id)
        {
            Err(strom_types::ErrorCode::GroupAuthorizationFailed)
        } else {
            broker
                .transactions
                .call(&broker, &transactional_id, |shard, now, id, _| {
                    shard.add_offsets_to_txn(
                        now,
                        id,
                        ctx.api_version,
                        &transactional_id,
                        request.producer_id.0,
                        request.producer_epoch,
                        &request.group_id,
                    )
                })
                .await
        };
        expect_txn_reply!(result, AddOffsetsToTxn, |code: ErrorCode| {
            AddOffsetsToTxnResponse::default().with_error_code(code.code())
        })
    }
}
