//! KIP-890: before a transactional batch starts a transaction on a partition, the
//! transaction coordinator confirms that the partition belongs to the producer's open
//! transaction (transaction version 1: AddPartitionsToTxn must have added it), or adds
//! it (version 2, Produce v12+: partitions join implicitly). So a late or stray batch
//! cannot open a transaction nobody will ever end (a "hanging" transaction). Batches of
//! a transaction already open on the partition need no check.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::ProduceRequest;
use strom_transactions::{produce_verification_error, TransactionVersion, TxnReply};
use strom_types::ErrorCode;
use strom_wire::batch::{self, BatchHeader};

use crate::broker::Broker;
use crate::txn_coordinator::TRANSACTION_VERSION_LEVEL;

/// Partitions whose batch the coordinator refused, with the error code to answer.
pub type Refused = HashMap<(String, i32), i16>;

/// Produce versions from which partitions join a transaction implicitly (KIP-890 part 2).
const IMPLICIT_ADD_MIN_VERSION: i16 = 12;

/// Checks the partitions whose transactional batch would start a transaction.
pub async fn verify(broker: &Arc<Broker>, version: i16, request: &ProduceRequest) -> Refused {
    let mut refused = Refused::new();
    if !broker.config.transaction_partition_verification_enable {
        return refused;
    }
    let Some(transactional_id) = request.transactional_id.as_ref().map(|t| t.to_string()) else {
        return refused;
    };
    let image = broker.image();
    // (producer id, epoch) -> partitions to check.
    let mut to_check: HashMap<(i64, i16), Vec<(String, i32)>> = HashMap::new();
    for topic in &request.topic_data {
        let name = if version >= 13 {
            image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
        } else {
            Some(topic.name.to_string())
        };
        let Some(name) = name else { continue };
        for data in &topic.partition_data {
            let Some(records) = data.records.as_ref() else {
                continue;
            };
            // Malformed batches are refused by validation later; only look at sound ones.
            let Ok(info) = batch::validate_frame(records) else {
                continue;
            };
            if !info.is_transactional {
                continue;
            }
            let Ok(header) = BatchHeader::new(records) else {
                continue;
            };
            let (producer_id, epoch) = (header.producer_id(), header.producer_epoch());
            let Some(partition) = broker.partition(&name, data.index) else {
                continue;
            };
            if partition.has_open_transaction(producer_id, epoch) {
                continue;
            }
            to_check
                .entry((producer_id, epoch))
                .or_default()
                .push((name.clone(), data.index));
        }
    }
    let transaction_version =
        if version >= IMPLICIT_ADD_MIN_VERSION && TRANSACTION_VERSION_LEVEL >= 2 {
            TransactionVersion::V2
        } else {
            TransactionVersion::V1
        };
    let coordinator = coordinator_elsewhere(broker, &transactional_id);
    for ((producer_id, epoch), partitions) in to_check {
        let result = match &coordinator {
            Some(address) => {
                ask_coordinator(
                    broker,
                    address,
                    &transactional_id,
                    producer_id,
                    epoch,
                    &partitions,
                    transaction_version,
                )
                .await
            }
            None => {
                broker
                    .transactions
                    .call(broker, &transactional_id, |shard, now, id, _| {
                        shard.verify_for_produce(
                            now,
                            id,
                            &transactional_id,
                            producer_id,
                            epoch,
                            &partitions,
                            transaction_version,
                        )
                    })
                    .await
            }
        };
        match result {
            Ok(TxnReply::AddPartitionsToTxnResult(result)) => {
                for topic in result.topic_results {
                    for p in topic.results_by_partition {
                        if p.partition_error_code != 0 {
                            refused.insert(
                                (topic.name.to_string(), p.partition_index),
                                produce_verification_error(
                                    retriable_for_producer(p.partition_error_code),
                                    version,
                                ),
                            );
                        }
                    }
                }
            }
            other => {
                let code = match other {
                    Err(code) => code,
                    Ok(_) => ErrorCode::UnknownServerError,
                };
                let code = retriable_for_producer(code.code());
                for partition in partitions {
                    refused.insert(partition, code);
                }
            }
        }
    }
    refused
}

/// The inter-broker address of the transactional id's coordinator (its
/// `__transaction_state` partition's leader) when that is another broker.
fn coordinator_elsewhere(broker: &Arc<Broker>, transactional_id: &str) -> Option<String> {
    if broker.config.cluster.is_single_voter() {
        return None;
    }
    let index = broker.transactions.partition_for(broker, transactional_id);
    let image = broker.image();
    let leader = image
        .topic(crate::txn_coordinator::TRANSACTION_STATE_TOPIC)?
        .partitions
        .get(&index)?
        .leader;
    if leader == broker.config.node_id {
        return None;
    }
    broker.inter_broker_address(&image, leader)
}

/// The check as Kafka's AddPartitionsToTxnManager makes it: AddPartitionsToTxn v5 to the
/// coordinator, verify-only for a version 1 producer.
async fn ask_coordinator(
    broker: &Broker,
    address: &str,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    version: TransactionVersion,
) -> Result<TxnReply, ErrorCode> {
    use kafka_protocol::messages::add_partitions_to_txn_request::{
        AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
    };
    use kafka_protocol::messages::{
        AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId,
    };
    use kafka_protocol::protocol::StrBytes;
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (name, index) in partitions {
        match topics.iter_mut().find(|t| t.name.as_str() == name) {
            Some(topic) => topic.partitions.push(*index),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_partitions(vec![*index]),
            ),
        }
    }
    let transaction = AddPartitionsToTxnTransaction::default()
        .with_transactional_id(TransactionalId(StrBytes::from_string(
            transactional_id.to_string(),
        )))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_verify_only(version == TransactionVersion::V1)
        .with_topics(topics);
    let request = AddPartitionsToTxnRequest::default().with_transactions(vec![transaction]);
    let response = broker
        .node_rpc
        .call_kafka(address, &request, 5, COORDINATOR_CALL_TIMEOUT)
        .await
        .map_err(|e| {
            tracing::debug!(error = %e, "asking the transaction coordinator failed");
            ErrorCode::CoordinatorNotAvailable
        })?;
    if let Some(code) = ErrorCode::try_from_code(response.error_code) {
        return Err(code);
    }
    response
        .results_by_transaction
        .into_iter()
        .next()
        .map(TxnReply::AddPartitionsToTxnResult)
        .ok_or(ErrorCode::CoordinatorNotAvailable)
}

const COORDINATOR_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The coordinator could not decide yet: as in Kafka, the producer gets NOT_ENOUGH_REPLICAS,
/// which every client retries.
fn retriable_for_producer(code: i16) -> i16 {
    let retriable = [
        ErrorCode::ConcurrentTransactions,
        ErrorCode::CoordinatorLoadInProgress,
        ErrorCode::CoordinatorNotAvailable,
        ErrorCode::NotCoordinator,
    ];
    if retriable.iter().any(|e| e.code() == code) {
        ErrorCode::NotEnoughReplicas.code()
    } else {
        code
    }
}
