//! AddPartitionsToTxn: v0-3 from clients (one transaction: its partitions join it),
//! v4+ from brokers (several transactions, each possibly `verify_only`, KIP-890).
//! Partitions of unknown topics fail the request's transaction: those get
//! UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, TransactionalId,
};
use kafka_protocol::protocol::VersionRange;
use strom_transactions::{TxnPartitions, TxnReply};
use strom_types::ErrorCode;

use super::txn_common::topic_partitions;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct AddPartitionsToTxnHandler;

impl Handler for AddPartitionsToTxnHandler {
    type Request = AddPartitionsToTxnRequest;
    const KEY: ApiKey = ApiKey::AddPartitionsToTxn;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AddPartitionsToTxnRequest,
    ) -> AddPartitionsToTxnResponse {
        if ctx.api_version <= 3 {
            let authz = ctx.authz(&broker);
            let topics = &request.v3_and_below_topics;
            if !authz
                .allows_transactional_id(Operation::Write, &request.v3_and_below_transactional_id)
            {
                return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(
                    all_failed(topics, ErrorCode::TransactionalIdAuthorizationFailed),
                );
            }
            // Any topic not allowed: it fails with TOPIC_AUTHORIZATION_FAILED, the rest
            // are not attempted.
            if topics
                .iter()
                .any(|t| !authz.allows_topic(Operation::Write, &t.name))
            {
                let results = topics
                    .iter()
                    .flat_map(|t| {
                        let code = if authz.allows_topic(Operation::Write, &t.name) {
                            ErrorCode::OperationNotAttempted
                        } else {
                            ErrorCode::TopicAuthorizationFailed
                        };
                        all_failed(std::slice::from_ref(t), code)
                    })
                    .collect();
                return AddPartitionsToTxnResponse::default()
                    .with_results_by_topic_v3_and_below(results);
            }
            let results = add_for_client(&broker, ctx.api_version, &request).await;
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(results);
        }
        // v4+: brokers verifying their producers' partitions (KIP-890).
        if !ctx.authz(&broker).allows_cluster(Operation::ClusterAction) {
            return AddPartitionsToTxnResponse::default()
                .with_error_code(ErrorCode::ClusterAuthorizationFailed.code());
        }
        let mut results = Vec::with_capacity(request.transactions.len());
        for transaction in &request.transactions {
            results.push(add_batched(&broker, ctx.api_version, transaction).await);
        }
        AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
    }
}

fn topics_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topic_partitions(topics.iter().map(|t| (t.name.as_str(), &t.partitions[..])))
}

/// Every partition with `code`, in the request's shape.
fn all_failed(
    topics: &[AddPartitionsToTxnTopic],
    code: ErrorCode,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(code.code())
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Unknown partitions fail with UNKNOWN_TOPIC_OR_PARTITION and the rest are not tried.
fn unknown_partitions(
    broker: &Broker,
    topics: &[AddPartitionsToTxnTopic],
) -> Option<Vec<AddPartitionsToTxnTopicResult>> {
    let image = broker.image();
    let known = |topic: &str, partition: i32| {
        image
            .topic(topic)
            .is_some_and(|t| t.partitions.contains_key(&partition))
    };
    let any_unknown = topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| !known(&t.name, *p)));
    if !any_unknown {
        return None;
    }
    Some(
        topics
            .iter()
            .map(|t| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(
                        t.partitions
                            .iter()
                            .map(|p| {
                                let code = if known(&t.name, *p) {
                                    ErrorCode::OperationNotAttempted
                                } else {
                                    ErrorCode::UnknownTopicOrPartition
                                };
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(*p)
                                    .with_partition_error_code(code.code())
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

async fn add_for_client(
    broker: &Arc<Broker>,
    version: i16,
    request: &AddPartitionsToTxnRequest,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let topics = &request.v3_and_below_topics;
    if let Some(failed) = unknown_partitions(broker, topics) {
        return failed;
    }
    let transactional_id = request.v3_and_below_transactional_id.to_string();
    let partitions = topics_of(topics);
    let result = broker
        .transactions
        .call(broker, &transactional_id, |shard, now, id, _| {
            shard.add_partitions_to_txn(
                now,
                id,
                version,
                &transactional_id,
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch,
                &partitions,
            )
        })
        .await;
    match result {
        Ok(TxnReply::AddPartitionsToTxn(response)) => response.results_by_topic_v3_and_below,
        Ok(other) => {
            tracing::error!(reply = ?other, "transaction coordinator answered with the wrong reply kind");
            all_failed(topics, ErrorCode::UnknownServerError)
        }
        Err(code) => all_failed(topics, code),
    }
}

async fn add_batched(
    broker: &Arc<Broker>,
    version: i16,
    transaction: &kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTransaction,
) -> AddPartitionsToTxnResult {
    let failed = |results| {
        AddPartitionsToTxnResult::default()
            .with_transactional_id(transaction.transactional_id.clone())
            .with_topic_results(results)
    };
    if let Some(unknown) = unknown_partitions(broker, &transaction.topics) {
        return failed(unknown);
    }
    let partitions = TxnPartitions {
        transactional_id: transaction.transactional_id.to_string(),
        producer_id: transaction.producer_id.0,
        producer_epoch: transaction.producer_epoch,
        verify_only: transaction.verify_only,
        partitions: topics_of(&transaction.topics),
    };
    let result = broker
        .transactions
        .call(broker, &partitions.transactional_id, |shard, now, id, _| {
            shard.add_partitions_to_txn_batched(now, id, version, &partitions)
        })
        .await;
    match result {
        Ok(TxnReply::AddPartitionsToTxnResult(result)) => result,
        Ok(other) => {
            tracing::error!(reply = ?other, "transaction coordinator answered with the wrong reply kind");
            failed(all_failed(&transaction.topics, ErrorCode::UnknownServerError))
        }
        Err(code) => failed(all_failed(&transaction.topics, code)),
    }
    .with_transactional_id(TransactionalId(transaction.transactional_id.0.clone()))
}
