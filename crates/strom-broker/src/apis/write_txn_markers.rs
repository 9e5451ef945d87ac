//! WriteTxnMarkers: a transaction coordinator's commit or abort markers for partitions
//! this broker leads (a coordinator on this broker writes its own markers directly,
//! through the same partition call).

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{ApiKey, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::{now_ms, Broker};
use crate::group_coordinator::OFFSETS_TOPIC;
use crate::internal_log::BatchProducer;

pub struct WriteTxnMarkersHandler;

impl Handler for WriteTxnMarkersHandler {
    type Request = WriteTxnMarkersRequest;
    const KEY: ApiKey = ApiKey::WriteTxnMarkers;
    const VERSIONS: VersionRange = VersionRange { min: 1, max: 1 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: WriteTxnMarkersRequest,
    ) -> WriteTxnMarkersResponse {
        let mut results = Vec::with_capacity(request.markers.len());
        // Only brokers write markers: CLUSTER_ACTION, else every partition is refused.
        let allowed = ctx.authz(&broker).allows_cluster(Operation::ClusterAction);
        for marker in request.markers {
            let producer = BatchProducer {
                producer_id: marker.producer_id.0,
                producer_epoch: marker.producer_epoch,
            };
            let mut topics = Vec::with_capacity(marker.topics.len());
            for topic in marker.topics {
                let mut partitions = Vec::with_capacity(topic.partition_indexes.len());
                for index in topic.partition_indexes {
                    let code = if !allowed {
                        strom_types::ErrorCode::ClusterAuthorizationFailed.code()
                    } else {
                        match write_one(
                            &broker,
                            &topic.name,
                            index,
                            producer,
                            marker.coordinator_epoch,
                            marker.transaction_result,
                        )
                        .await
                        {
                            Ok(()) => 0,
                            Err(code) => code.code(),
                        }
                    };
                    partitions.push(
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(index)
                            .with_error_code(code),
                    );
                }
                topics.push(
                    WritableTxnMarkerTopicResult::default()
                        .with_name(topic.name)
                        .with_partitions(partitions),
                );
            }
            results.push(
                WritableTxnMarkerResult::default()
                    .with_producer_id(marker.producer_id)
                    .with_topics(topics),
            );
        }
        WriteTxnMarkersResponse::default().with_markers(results)
    }
}

/// How long a marker waits for the in-sync replicas (Kafka's request.timeout.ms default).
const MARKER_REPLICATION_TIMEOUT_MS: i64 = 30_000;

/// Writes one marker on this node, which must lead the partition, and waits until the
/// in-sync replicas have it.
pub(crate) async fn write_one(
    broker: &Arc<Broker>,
    topic: &str,
    index: i32,
    producer: BatchProducer,
    coordinator_epoch: i32,
    commit: bool,
) -> Result<(), ErrorCode> {
    let partition = broker
        .partition(topic, index)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    // Markers go to the leader only (Kafka's appendRecords to the leader).
    crate::replica_manager::check_leader(&partition, -1)
        .map_err(|e| crate::errors::replication_error_code(&e))?;
    if topic == OFFSETS_TOPIC {
        broker.groups.ensure_loaded(broker).await?;
        return broker
            .groups
            .write_marker(index, producer, coordinator_epoch, commit)
            .await;
    }
    let appended = {
        let partition = partition.clone();
        tokio::task::spawn_blocking(move || {
            partition
                .append_control_marker(
                    producer.producer_id,
                    producer.producer_epoch,
                    coordinator_epoch,
                    commit,
                    now_ms(),
                )
                .map_err(|e| crate::errors::log_error_code(&e))
        })
        .await
        .unwrap_or(Err(ErrorCode::UnknownServerError))?
    };
    // As Kafka appends markers with acks=all: the coordinator completes the transaction
    // only once every in-sync replica has its markers.
    if partition.high_watermark() <= appended.last_offset {
        crate::replica_manager::wait_for_acks(
            &broker.replicas,
            &partition,
            appended.last_offset + 1,
            now_ms() + MARKER_REPLICATION_TIMEOUT_MS,
        )
        .await
        .map_err(|e| crate::errors::replication_error_code(&e))?;
    }
    Ok(())
}
