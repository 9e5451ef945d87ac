//! ListTransactions: every loaded transaction shard's transactions that match the
//! filters, merged.

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, ListTransactionsRequest, ListTransactionsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_transactions::{ListTransactionsFilter, TxnReply};

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct ListTransactionsHandler;

impl Handler for ListTransactionsHandler {
    type Request = ListTransactionsRequest;
    const KEY: ApiKey = ApiKey::ListTransactions;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ListTransactionsRequest,
    ) -> ListTransactionsResponse {
        let filter = ListTransactionsFilter {
            states: request
                .state_filters
                .iter()
                .map(|s| s.to_string())
                .collect(),
            producer_ids: request.producer_id_filters.iter().map(|p| p.0).collect(),
            duration_filter_ms: if ctx.api_version >= 1 {
                request.duration_filter
            } else {
                -1
            },
            transactional_id_pattern: (ctx.api_version >= 2)
                .then(|| {
                    request
                        .transactional_id_pattern
                        .as_ref()
                        .map(|p| p.to_string())
                })
                .flatten(),
        };
        let replies = match broker
            .transactions
            .call_all(&broker, |shard, now, id| {
                shard.list_transactions(now, id, &filter)
            })
            .await
        {
            Ok(replies) => replies,
            Err(code) => return ListTransactionsResponse::default().with_error_code(code.code()),
        };
        let mut merged = ListTransactionsResponse::default();
        for reply in replies {
            let TxnReply::ListTransactions(part) = reply else {
                continue;
            };
            if part.error_code != 0 {
                merged.error_code = part.error_code;
            }
            for unknown in part.unknown_state_filters {
                if !merged.unknown_state_filters.contains(&unknown) {
                    merged.unknown_state_filters.push(unknown);
                }
            }
            merged.transaction_states.extend(part.transaction_states);
        }
        // Only the transactional ids the caller may describe are listed.
        let authz = ctx.authz(&broker);
        merged
            .transaction_states
            .retain(|t| authz.allows_transactional_id(Operation::Describe, &t.transactional_id));
        merged
    }
}
