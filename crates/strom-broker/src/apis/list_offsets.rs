//! ListOffsets: earliest, latest, max timestamp, or the first offset at or
//! after a timestamp.

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

use super::{Handler, RequestContext};
use crate::broker::Broker;
use crate::errors::log_error_code;

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
                        let Some(partition) = broker.partition(&topic.name, p.partition_index)
                        else {
                            return response
                                .with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                        };
                        if p.current_leader_epoch > partition.leader_epoch {
                            return response.with_error_code(ErrorCode::UnknownLeaderEpoch.code());
                        }
                        if p.current_leader_epoch >= 0
                            && p.current_leader_epoch < partition.leader_epoch
                        {
                            return response.with_error_code(ErrorCode::FencedLeaderEpoch.code());
                        }
                        match partition.with_log(|log| lookup(log, p.timestamp)) {
                            Ok(Some((offset, timestamp))) => response
                                .with_offset(offset)
                                .with_timestamp(timestamp)
                                .with_leader_epoch(if with_epoch {
                                    partition.leader_epoch
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

/// The offset (and its timestamp, or -1) a ListOffsets target resolves to.
fn lookup(log: &PartitionLog, target: i64) -> Result<Option<(i64, i64)>, LogError> {
    Ok(match target {
        // Single node: the high watermark is the log end offset.
        LATEST_TIMESTAMP => Some((log.log_end_offset(), -1)),
        EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => Some((log.log_start_offset(), -1)),
        MAX_TIMESTAMP => log.max_timestamp_offset()?,
        // No tiered storage: nothing is tiered.
        LATEST_TIERED_TIMESTAMP => Some((-1, -1)),
        timestamp if timestamp >= 0 => log.offset_for_timestamp(timestamp)?,
        _ => None,
    })
}
