//! Produce: per partition, one record batch is validated at the header level
//! (never record by record), recompressed only if the topic demands another
//! codec, stamped with LogAppendTime if configured, and appended.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use strom_log::producer_state::{last_sequence_of_batch, ProducerBatch, SequenceCheck};
use strom_log::AppendInfo;
use strom_types::ErrorCode;
use strom_wire::batch::{self, TimestampType};
use strom_wire::compression::recompress;
use strom_wire::record;

use super::{Handler, RequestContext};
use crate::broker::{now_ms, Broker};
use crate::errors::{produce_error_code, ProduceError};
use crate::topic_settings::TopicCompression;

pub struct ProduceHandler;

impl Handler for ProduceHandler {
    type Request = ProduceRequest;
    const KEY: ApiKey = ApiKey::Produce;

    fn expects_response(request: &ProduceRequest) -> bool {
        request.acks != 0
    }

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ProduceRequest,
    ) -> ProduceResponse {
        let acks_valid = matches!(request.acks, -1..=1);
        let by_id = ctx.api_version >= 13;
        let image = broker.image();
        let mut appended = false;
        let mut responses = Vec::with_capacity(request.topic_data.len());
        for topic in request.topic_data {
            let name = if by_id {
                image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
            } else {
                Some(topic.name.to_string())
            };
            let mut partitions = Vec::with_capacity(topic.partition_data.len());
            for data in topic.partition_data {
                let result = if !acks_valid {
                    Err(None)
                } else {
                    match &name {
                        None => Err(Some(ProduceError::UnknownTopicId)),
                        Some(name) => {
                            produce_partition(&broker, name, data.index, data.records, request.acks)
                                .map_err(Some)
                        }
                    }
                };
                partitions.push(partition_response(
                    &broker,
                    ctx.api_version,
                    name.as_deref(),
                    data.index,
                    result,
                ));
                appended |= partitions
                    .last()
                    .is_some_and(|p: &PartitionProduceResponse| p.error_code == 0);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_topic_id(topic.topic_id)
                    .with_partition_responses(partitions),
            );
        }
        if appended {
            broker.data_arrived.notify_waiters();
        }
        ProduceResponse::default().with_responses(responses)
    }
}

fn partition_response(
    broker: &Broker,
    version: i16,
    topic: Option<&str>,
    index: i32,
    result: Result<AppendInfo, Option<ProduceError>>,
) -> PartitionProduceResponse {
    // log_start_offset exists from v5, error_message from v8.
    let log_start_offset = topic
        .filter(|_| version >= 5)
        .and_then(|t| broker.partition(t, index))
        .and_then(|p| p.with_log(|log| Ok(log.log_start_offset())).ok())
        .unwrap_or(-1);
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_log_start_offset(log_start_offset);
    match result {
        Ok(info) => response
            .with_base_offset(info.base_offset)
            .with_log_append_time_ms(info.log_append_time_ms),
        Err(None) => response
            .with_error_code(ErrorCode::InvalidRequiredAcks.code())
            .with_base_offset(-1)
            .with_log_append_time_ms(-1),
        Err(Some(error)) => {
            tracing::debug!(topic, partition = index, %error, "produce rejected");
            response
                .with_error_code(produce_error_code(&error).code())
                .with_error_message(
                    (version >= 8).then(|| StrBytes::from_string(error.to_string())),
                )
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
        }
    }
}

fn produce_partition(
    broker: &Broker,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: i16,
) -> Result<AppendInfo, ProduceError> {
    let partition = broker
        .partition(topic, index)
        .ok_or(ProduceError::UnknownTopicOrPartition)?;
    let settings = partition.settings();
    let records = records.filter(|r| !r.is_empty()).ok_or_else(|| {
        ProduceError::InvalidRecord(
            "the produce request has no record batch for this partition".into(),
        )
    })?;
    let info = match batch::validate(&records) {
        // Kafka reads a cut-short batch as no batch at all.
        Err(batch::BatchError::Truncated { .. }) => {
            return Err(ProduceError::InvalidRecord(
                "the records hold no complete record batch".into(),
            ))
        }
        other => other?,
    };
    if info.size != records.len() {
        return Err(ProduceError::InvalidRecord(
            "produce requests of version 3 and above must contain exactly one record batch per partition".into(),
        ));
    }
    if info.is_control {
        return Err(ProduceError::InvalidRecord(
            "clients may not write control batches".into(),
        ));
    }
    if info.records_count == 0 {
        return Err(ProduceError::InvalidRecord(
            "the record batch has no records".into(),
        ));
    }
    if info.is_transactional {
        return Err(ProduceError::InvalidRecord(
            "transactional batches are not supported yet".into(),
        ));
    }
    if settings.cleanup_compact {
        require_keys(&records)?;
    }
    if acks == -1 && partition.replicas.len() < settings.min_insync_replicas {
        return Err(ProduceError::NotEnoughReplicas(format!(
            "the in-sync replicas ({}) are fewer than min.insync.replicas ({})",
            partition.replicas.len(),
            settings.min_insync_replicas
        )));
    }
    let mut batch = match settings.compression {
        TopicCompression::Codec(codec) if codec != info.compression => {
            recompress(&records, codec).map_err(|e| ProduceError::Compression(e.to_string()))?
        }
        _ => BytesMut::from(&records[..]),
    };
    if batch.len() > settings.max_message_bytes {
        return Err(ProduceError::TooLarge(format!(
            "the record batch of {} bytes is larger than max.message.bytes ({})",
            batch.len(),
            settings.max_message_bytes
        )));
    }
    let now = now_ms();
    let header = batch::BatchHeader::new(&batch)?;
    let producer = (header.producer_id() >= 0).then(|| {
        let first = header.base_sequence();
        let last = last_sequence_of_batch(first, header.last_offset_delta());
        (header.producer_id(), header.producer_epoch(), first, last)
    });
    match settings.timestamp_type {
        TimestampType::LogAppendTime => batch::set_log_append_time(&mut batch, now),
        TimestampType::CreateTime => check_timestamps(
            &batch,
            now,
            settings.timestamp_before_max_ms,
            settings.timestamp_after_max_ms,
        )?,
    }
    // Held across check, append and record, so a retry racing its original cannot slip in twice.
    let mut producers = partition
        .producers
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some((producer_id, epoch, first, last)) = producer {
        if let SequenceCheck::Duplicate(earlier) =
            producers.check(producer_id, epoch, first, last)?
        {
            return Ok(AppendInfo {
                base_offset: earlier.base_offset,
                last_offset: earlier.last_offset,
                max_timestamp: -1,
                offset_of_max_timestamp: -1,
                log_append_time_ms: -1,
            });
        }
    }
    let mut info = partition.with_log(|log| log.append(&mut batch, now))?;
    if let Some((producer_id, epoch, first, last)) = producer {
        producers.record(
            producer_id,
            epoch,
            ProducerBatch {
                first_sequence: first,
                last_sequence: last,
                base_offset: info.base_offset,
                last_offset: info.last_offset,
            },
        );
    }
    drop(producers);
    if settings.timestamp_type == TimestampType::LogAppendTime {
        info.log_append_time_ms = now;
    }
    Ok(info)
}

/// Compacted topics need a key on every record (Kafka's LogValidator); this
/// is the one check that reads records, and only on compacted topics.
fn require_keys(batch: &[u8]) -> Result<(), ProduceError> {
    let header = batch::BatchHeader::new(batch)?;
    let section =
        record::records_section(batch).map_err(|e| ProduceError::InvalidRecord(e.to_string()))?;
    for record in record::Records::new(&section, header.records_count()) {
        let record = record.map_err(|e| ProduceError::InvalidRecord(e.to_string()))?;
        if record.key().is_none() {
            return Err(ProduceError::InvalidRecord(
                "compacted topic cannot accept message without key".into(),
            ));
        }
    }
    Ok(())
}

/// message.timestamp.before/after.max.ms, checked on the batch's first and
/// largest timestamps rather than record by record.
fn check_timestamps(
    batch: &[u8],
    now: i64,
    before_max_ms: i64,
    after_max_ms: i64,
) -> Result<(), ProduceError> {
    let header = batch::BatchHeader::new(batch)?;
    let earliest = header.base_timestamp();
    let latest = header.max_timestamp();
    // -1 is "no timestamp" (old clients), which Kafka lets through unchecked.
    if earliest != -1 && now.saturating_sub(earliest) > before_max_ms {
        return Err(ProduceError::InvalidTimestamp(format!(
            "timestamp {earliest} is more than message.timestamp.before.max.ms ({before_max_ms}) in the past"
        )));
    }
    if latest.saturating_sub(now) > after_max_ms {
        return Err(ProduceError::InvalidTimestamp(format!(
            "timestamp {latest} is more than message.timestamp.after.max.ms ({after_max_ms}) in the future"
        )));
    }
    Ok(())
}
