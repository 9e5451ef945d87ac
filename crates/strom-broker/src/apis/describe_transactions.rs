//! DescribeTransactions: each transactional id's state from the shard that owns it.

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::TransactionState;
use kafka_protocol::messages::{ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::txn_common::expect_txn_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct DescribeTransactionsHandler;

impl Handler for DescribeTransactionsHandler {
    type Request = DescribeTransactionsRequest;
    const KEY: ApiKey = ApiKey::DescribeTransactions;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeTransactionsRequest,
    ) -> DescribeTransactionsResponse {
        let mut states = Vec::with_capacity(request.transactional_ids.len());
        for transactional_id in request.transactional_ids {
            let id = transactional_id.to_string();
            let result = if !ctx
                .authz(&broker)
                .allows_transactional_id(Operation::Describe, &id)
            {
                Err(ErrorCode::TransactionalIdAuthorizationFailed)
            } else {
                broker
                    .transactions
                    .call(&broker, &id, |shard, now, request_id, _| {
                        shard.describe_transaction(now, request_id, &id)
                    })
                    .await
            };
            states.push(expect_txn_reply!(
                result,
                DescribeTransaction,
                |code: ErrorCode| TransactionState::default()
                    .with_transactional_id(transactional_id.clone())
                    .with_error_code(code.code())
            ));
        }
        DescribeTransactionsResponse::default().with_transaction_states(states)
    }
}
