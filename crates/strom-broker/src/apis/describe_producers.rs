//! DescribeProducers (key 61, KIP-664): the producers a partition's log tracks, with
//! their epoch, last sequence, last timestamp, coordinator epoch and the start of their
//! open transaction, read from the log's producer state.

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, DescribeProducersResponse, ProducerId,
};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::log_error_code;

pub struct DescribeProducersHandler;

impl Handler for DescribeProducersHandler {
    type Request = DescribeProducersRequest;
    const KEY: ApiKey = ApiKey::DescribeProducers;
    // Kafka 4.x serves v0 only.
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeProducersRequest,
    ) -> DescribeProducersResponse {
        let authz = ctx.authz(&broker);
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partition_indexes
                    .iter()
                    .map(|&index| {
                        if authz.allows_topic(Operation::Read, &topic.name) {
                            describe_partition(&broker, &topic.name, index)
                        } else {
                            PartitionResponse::default()
                                .with_partition_index(index)
                                .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                        }
                    })
                    .collect();
                TopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        DescribeProducersResponse::default().with_topics(topics)
    }
}

fn describe_partition(broker: &Broker, topic: &str, index: i32) -> PartitionResponse {
    let response = PartitionResponse::default().with_partition_index(index);
    let Some(partition) = broker.partition(topic, index) else {
        return response.with_error_code(ErrorCode::UnknownTopicOrPartition.code());
    };
    match partition.with_log(|log| Ok(log.producer_state().entries())) {
        Ok(entries) => response.with_active_producers(
            entries
                .into_iter()
                .map(|e| {
                    ProducerState::default()
                        .with_producer_id(ProducerId(e.producer_id))
                        .with_producer_epoch(i32::from(e.epoch))
                        .with_last_sequence(e.last_sequence())
                        .with_last_timestamp(e.last_timestamp_ms)
                        .with_coordinator_epoch(e.coordinator_epoch)
                        .with_current_txn_start_offset(e.current_txn_first_offset.unwrap_or(-1))
                })
                .collect(),
        ),
        Err(e) => response.with_error_code(log_error_code(&e).code()),
    }
}
