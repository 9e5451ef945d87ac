//! DeleteRecords: raises a partition's log start offset. Offset -1 means the
//! high watermark.

use std::sync::Arc;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::log_error_code;

pub struct DeleteRecordsHandler;

const HIGH_WATERMARK: i64 = -1;

impl Handler for DeleteRecordsHandler {
    type Request = DeleteRecordsRequest;
    const KEY: ApiKey = ApiKey::DeleteRecords;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DeleteRecordsRequest,
    ) -> DeleteRecordsResponse {
        let authz = ctx.authz(&broker);
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let result = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index)
                            .with_low_watermark(-1);
                        if !authz.allows_topic(Operation::Delete, &topic.name) {
                            return result
                                .with_error_code(ErrorCode::TopicAuthorizationFailed.code());
                        }
                        let Some(partition) = broker.partition(&topic.name, p.partition_index)
                        else {
                            return result
                                .with_error_code(ErrorCode::UnknownTopicOrPartition.code());
                        };
                        let outcome = partition.with_log(|log| {
                            let high_watermark = log.high_watermark();
                            let target = if p.offset == HIGH_WATERMARK {
                                high_watermark
                            } else {
                                p.offset
                            };
                            if target < 0 || target > high_watermark {
                                return Ok(Err(ErrorCode::OffsetOutOfRange));
                            }
                            if target <= log.log_start_offset() {
                                return Ok(Ok(log.log_start_offset()));
                            }
                            log.delete_records_before(target).map(Ok)
                        });
                        match outcome {
                            Ok(Ok(low_watermark)) => result.with_low_watermark(low_watermark),
                            Ok(Err(code)) => result.with_error_code(code.code()),
                            Err(e) => result.with_error_code(log_error_code(&e).code()),
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect();
        DeleteRecordsResponse::default().with_topics(topics)
    }
}
