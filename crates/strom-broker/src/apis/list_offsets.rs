//! ListOffsets: earliest, latest, max timestamp, or the first offset at or
//! after a timestamp. As in Kafka, "latest" is the high watermark (the last
//! stable offset for read_committed), offsets found by timestamp are only
//! returned below it, and each answer carries the leader epoch of its offset.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_log::{LogError, PartitionLog};
use strom_types::list_offsets::{
    EARLIEST_LOCAL_TIMESTAMP, EARLIEST_TIMESTAMP, LATEST_TIERED_TIMESTAMP, LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
};
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::{log_error_code, replication_error_code};

pub struct ListOffsetsHandler;

impl Handler for ListOffsetsHandler {
    type Request = ListOffsetsRequest;
    const KEY: ApiKey = ApiKey::ListOffsets;
    const VERSIONS: VersionRange = VersionRange { min: 1, max: 10 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ListOffsetsRequest,
    ) -> ListOffsetsResponse {
        // leader_epoch exists from v4.
        let with_epoch = ctx.api_version >= 4;
        let read_committed = request.isolation_level == READ_COMMITTED;
        let replica_id = request.replica_id.0;
        let authz = ctx.authz(&broker);
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let response = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index)
                            .with_timestamp(-1)
                            .with_offset(-1)
                            .with_leader_epoch(-1);
                        if !authz.allows_topic(Operation::Describe, &topic.name) {
                            return response
                                .with_error_code(ErrorCode::TopicAuthorizationFailed.code());
                        }
                        let Some(partition) = broker.partition(&topic.name, p.partition_index)
                        else {
                            return response
                                .with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                        };
                        // Only the debugging replica id may ask a follower (Kafka).
                        let checked = if replica_id == DEBUGGING_REPLICA_ID {
                            crate::replica_manager::check_epoch(&partition, p.current_leader_epoch)
                        } else {
                            crate::replica_manager::check_leader(&partition, p.current_leader_epoch)
                        };
                        if let Err(e) = checked {
                            return response.with_error_code(replication_error_code(&e).code());
                        }
                        // A replica asks for the log end; consumers for what they may read.
                        let limit = match replica_id {
                            CONSUMER_REPLICA_ID if read_committed => Limit::LastStable,
                            CONSUMER_REPLICA_ID => Limit::HighWatermark,
                            _ => Limit::LogEnd,
                        };
                        let leader_epoch = partition.leader_epoch();
                        let found =
                            partition.with_log(|log| lookup(log, p.timestamp, leader_epoch, limit));
                        match found {
                            Ok(Some(found)) => response
                                .with_offset(found.offset)
                                .with_timestamp(found.timestamp)
                                .with_leader_epoch(if with_epoch {
                                    found.leader_epoch
                                } else {
                                    -1
                                }),
                            Ok(None) => response,
                            Err(e) => response.with_error_code(log_error_code(&e).code()),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        ListOffsetsResponse::default().with_topics(topics)
    }
}

const READ_COMMITTED: i8 = 1;
const CONSUMER_REPLICA_ID: i32 = -1;
const DEBUGGING_REPLICA_ID: i32 = -2;

/// How far a ListOffsets lookup may see.
#[derive(Clone, Copy)]
enum Limit {
    LastStable,
    HighWatermark,
    LogEnd,
}

/// What a ListOffsets target resolves to; -1 for an unknown timestamp or epoch.
struct Found {
    offset: i64,
    timestamp: i64,
    leader_epoch: i32,
}

/// Kafka's fetchOffsetForTimestamp on the leader.
fn lookup(
    log: &PartitionLog,
    target: i64,
    current_leader_epoch: i32,
    limit: Limit,
) -> Result<Option<Found>, LogError> {
    let last_fetchable = match limit {
        Limit::LastStable => log.last_stable_offset(),
        Limit::HighWatermark => log.high_watermark(),
        Limit::LogEnd => log.log_end_offset(),
    };
    let epochs = log.leader_epochs();
    let found = |(offset, timestamp): (i64, i64)| Found {
        offset,
        timestamp,
        leader_epoch: epochs.epoch_for_offset(offset).unwrap_or(-1),
    };
    Ok(match target {
        LATEST_TIMESTAMP => Some(Found {
            offset: last_fetchable,
            timestamp: -1,
            leader_epoch: current_leader_epoch,
        }),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
            let start = log.log_start_offset();
            let leader_epoch = epochs
                .earliest()
                .filter(|e| e.start_offset <= start)
                .map_or(-1, |e| e.epoch);
            Some(Found {
                offset: start,
                timestamp: -1,
                leader_epoch,
            })
        }
        // No tiered storage: nothing is tiered.
        LATEST_TIERED_TIMESTAMP => Some(Found {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
        }),
        MAX_TIMESTAMP => log
            .max_timestamp_offset()?
            .filter(|(offset, _)| *offset < last_fetchable)
            .map(found),
        timestamp if timestamp >= 0 => log
            .offset_for_timestamp(timestamp)?
            .filter(|(offset, _)| *offset < last_fetchable)
            .map(found),
        _ => None,
    })
}
