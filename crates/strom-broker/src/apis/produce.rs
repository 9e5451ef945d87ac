//! Produce: per partition, one record batch is validated as Kafka's leader
//! does, in one pass over its records (`strom_wire::validate`): header, record
//! layout, keys on compacted topics, timestamps, and the topic's codec when it
//! differs, all with bounded decompression. The batch is then stamped (the
//! records' max timestamp, or LogAppendTime if configured) and appended.
//! Refused records are named in the response (KIP-467).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_log::AppendInfo;
use strom_security::quota::QuotaKind;
use strom_types::ErrorCode;
use strom_wire::batch::{self, TimestampType};
use strom_wire::record_check::{RecordFault, RecordRules, RefusedRecord, TimestampWindow};
use strom_wire::validate::{validate_produce, ProduceFault, ProduceRules};

use super::produce_verification::Refused;
use super::{Handler, Operation, RequestContext};
use crate::broker::{now_ms, Broker};
use crate::errors::{produce_error_code, ProduceError, RecordFailure};
use crate::replica_manager;
use crate::topic_settings::TopicCompression;

pub struct ProduceHandler;

impl Handler for ProduceHandler {
    type Request = ProduceRequest;
    const KEY: ApiKey = ApiKey::Produce;
    const VERSIONS: VersionRange = VersionRange { min: 3, max: 13 };
    // Kafka 4.x lists v0-2 yet refuses them (KAFKA-18659): older librdkafka
    // stops compressing when the listed minimum is above 0.
    const ADVERTISED: VersionRange = VersionRange { min: 0, max: 13 };

    fn expects_response(request: &ProduceRequest) -> bool {
        request.acks != 0
    }

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ProduceRequest,
    ) -> ProduceResponse {
        let version = ctx.api_version;
        let denied = denied_writes(&broker, &ctx, &request);
        // An unauthorized transactional id refuses the whole request before anything waits.
        let (issued_below, refused) = if denied.whole_request {
            (i64::MAX, Refused::default())
        } else {
            (
                issued_producer_ids(&broker, &request).await,
                super::produce_verification::verify(&broker, version, &request).await,
            )
        };
        let deadline_ms = now_ms() + i64::from(request.timeout_ms.max(0));
        // Validation and the file write block: keep them off the async workers.
        let worker = broker.clone();
        let listener = ctx.listener_name.clone();
        let request_bytes = ctx.request_bytes as f64;
        let work = ctx.work.clone();
        let (mut response, waits) = match tokio::task::spawn_blocking(move || {
            work.time(|| {
                produce(
                    &worker,
                    &listener,
                    version,
                    request,
                    &refused,
                    &denied,
                    issued_below,
                )
            })
        })
        .await
        {
            Ok(produced) => produced,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        // acks=all: answered once the high watermark passes each append (Kafka's
        // DelayedProduce), or with the wait's error.
        for wait in waits {
            let result = replica_manager::wait_for_acks(
                &broker.replicas,
                &wait.partition,
                wait.required_offset,
                deadline_ms,
            )
            .await;
            if let Err(error) = result {
                let code = crate::errors::replication_error_code(&error);
                if let Some(p) = response
                    .responses
                    .get_mut(wait.topic)
                    .and_then(|t| t.partition_responses.get_mut(wait.index))
                {
                    p.error_code = code.code();
                    if version >= 8 {
                        p.error_message = Some(StrBytes::from_string(error.to_string()));
                    }
                }
            }
        }
        // producer_byte_rate counts every produce request's size, as Kafka's does.
        let quotas = broker.image().client_quotas().clone();
        if !quotas.is_empty() {
            let throttle = broker.quotas.record(
                &quotas,
                QuotaKind::Produce,
                &ctx.quota_client(),
                request_bytes,
            );
            response.throttle_time_ms = throttle.min(i32::MAX as u64) as i32;
        }
        response
    }
}

/// How long a produce waits for this node's metadata image to learn of a producer id
/// block before it calls an id beyond the allocated ones unknown.
const ISSUED_PRODUCER_ID_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Producer ids below the returned one were allocated by the controller
/// (AllocateProducerIds / ProducerIdsRecord blocks), so only InitProducerId can have
/// issued them. An id at or past it may come from a block another broker allocated a
/// moment ago: the image is given a short while to catch up before such a batch is
/// refused.
async fn issued_producer_ids(broker: &Broker, request: &ProduceRequest) -> i64 {
    let highest = request
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|p| p.records.as_deref())
        .filter_map(|records| batch::BatchHeader::new(records).ok())
        .map(|header| header.producer_id())
        .max()
        .unwrap_or(-1);
    let mut issued_below = broker.image().next_producer_id();
    let deadline = tokio::time::Instant::now() + ISSUED_PRODUCER_ID_WAIT;
    while highest >= issued_below && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        issued_below = broker.image().next_producer_id();
    }
    issued_below
}

/// A batch with a producer id this cluster never issued is refused as Kafka answers
/// unknown producers: UNKNOWN_PRODUCER_ID for an idempotent batch,
/// INVALID_PRODUCER_ID_MAPPING for a transactional one (no transactional id maps to
/// it). Kafka itself takes any new id; strom does not, so a client cannot fill a
/// partition's producer state with invented ids.
fn unissued_producer(header: &batch::BatchHeader<'_>, issued_below: i64) -> Option<ProduceError> {
    let producer_id = header.producer_id();
    if producer_id < 0 || producer_id < issued_below {
        return None;
    }
    Some(if header.is_transactional() {
        ProduceError::InvalidProducerIdMapping(producer_id)
    } else {
        ProduceError::UnknownProducerId(producer_id)
    })
}

/// An acks=all append still waiting for the high watermark, and its place in the response.
struct AckWait {
    topic: usize,
    index: usize,
    partition: Arc<crate::partition::Partition>,
    required_offset: i64,
}

/// What the ACLs deny a Produce, as Kafka checks it: WRITE on the transactional id
/// for transactional records (refusing the whole request), then WRITE on each topic.
#[derive(Default)]
struct DeniedWrites {
    whole_request: bool,
    topics: std::collections::HashSet<String>,
}

fn denied_writes(broker: &Broker, ctx: &RequestContext, request: &ProduceRequest) -> DeniedWrites {
    let authz = ctx.authz(broker);
    if let Some(id) = &request.transactional_id {
        if !authz.allows_transactional_id(Operation::Write, id) {
            return DeniedWrites {
                whole_request: true,
                topics: Default::default(),
            };
        }
    }
    let image = broker.image();
    let topics = request
        .topic_data
        .iter()
        .filter_map(|t| {
            if ctx.api_version >= 13 {
                image.topic_by_id(&t.topic_id).map(|t| t.name.clone())
            } else {
                Some(t.name.to_string())
            }
        })
        .filter(|name| !authz.allows_topic(Operation::Write, name))
        .collect();
    DeniedWrites {
        whole_request: false,
        topics,
    }
}

/// Appends every partition's batch.
fn produce(
    broker: &Broker,
    listener: &str,
    version: i16,
    request: ProduceRequest,
    refused: &Refused,
    denied: &DeniedWrites,
    issued_below: i64,
) -> (ProduceResponse, Vec<AckWait>) {
    let acks_valid = matches!(request.acks, -1..=1);
    let by_id = version >= 13;
    let image = broker.image();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut waits = Vec::new();
    let mut node_endpoints = Vec::new();
    let mut leaders: Vec<i32> = Vec::new();
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
            } else if denied.whole_request {
                Err(Some(ProduceError::TransactionalIdNotAuthorized))
            } else {
                match &name {
                    None => Err(Some(ProduceError::UnknownTopicId)),
                    Some(name) if denied.topics.contains(name) => {
                        Err(Some(ProduceError::TopicNotAuthorized(name.clone())))
                    }
                    Some(name) => match refused.get(&(name.clone(), data.index)) {
                        Some(code) => Err(Some(ProduceError::TransactionVerification(
                            ErrorCode::try_from_code(*code)
                                .unwrap_or(ErrorCode::UnknownServerError),
                        ))),
                        None => produce_partition(
                            broker,
                            name,
                            data.index,
                            data.records,
                            request.acks,
                            issued_below,
                        )
                        .map_err(Some),
                    },
                }
            };
            if let (Ok(info), Some(name)) = (&result, &name) {
                // A retry answered as a duplicate waits too: its original may not be
                // replicated yet (Kafka's DelayedProduce waits on its offsets as well).
                if request.acks == -1 {
                    if let Some(partition) = broker.partition(name, data.index) {
                        // One replica (or caught-up followers): already there.
                        if partition.high_watermark() <= info.last_offset {
                            waits.push(AckWait {
                                topic: responses.len(),
                                index: partitions.len(),
                                partition,
                                required_offset: info.last_offset + 1,
                            });
                        }
                    }
                }
            }
            let mut response =
                partition_response(broker, version, name.as_deref(), data.index, result);
            if response.error_code == ErrorCode::NotLeaderOrFollower.code() && version >= 10 {
                if let Some(partition) = name
                    .as_deref()
                    .and_then(|n| broker.partition(n, data.index))
                {
                    let leader = replica_manager::current_leader(&image, &partition, listener);
                    response.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(leader.leader_id))
                        .with_leader_epoch(leader.leader_epoch);
                    if leader.endpoint.is_some() && !leaders.contains(&leader.leader_id) {
                        leaders.push(leader.leader_id);
                        node_endpoints.push(node_endpoint(leader));
                    }
                }
            }
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    (
        ProduceResponse::default()
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
        waits,
    )
}

fn node_endpoint(leader: replica_manager::CurrentLeader) -> NodeEndpoint {
    let (host, port, rack) = leader.endpoint.unwrap_or_default();
    NodeEndpoint::default()
        .with_node_id(BrokerId(leader.leader_id))
        .with_host(StrBytes::from_string(host))
        .with_port(i32::from(port))
        .with_rack(rack.map(StrBytes::from_string))
}

fn partition_response(
    broker: &Broker,
    version: i16,
    topic: Option<&str>,
    index: i32,
    result: Result<AppendInfo, Option<ProduceError>>,
) -> PartitionProduceResponse {
    // log_start_offset exists from v5.
    let log_start_offset = topic
        .filter(|_| version >= 5)
        .and_then(|t| broker.partition(t, index))
        .map(|p| p.log_start_offset())
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
            let code = produce_error_code(&error).code();
            // error_message and record_errors exist from v8.
            let message = (version >= 8).then(|| StrBytes::from_string(error.to_string()));
            let record_errors = match error {
                ProduceError::RecordsRefused(records) if version >= 8 => records
                    .into_iter()
                    .map(|r| {
                        BatchIndexAndErrorMessage::default()
                            .with_batch_index(r.index)
                            .with_batch_index_error_message(Some(StrBytes::from_string(r.message)))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            response
                .with_error_code(code)
                .with_error_message(message)
                .with_record_errors(record_errors)
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
    issued_below: i64,
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
    let info = match batch::validate_frame(&records) {
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
    // A transactional batch that starts a transaction here was checked with the
    // coordinator before (`produce_verification`); the log enforces the epoch, sequence and
    // open-transaction rules.
    replica_manager::check_leader(&partition, -1)?;
    if let Some(refused) = unissued_producer(&batch::BatchHeader::new(&records)?, issued_below) {
        return Err(refused);
    }
    if acks == -1 {
        replica_manager::check_acks_all(broker, &partition)?;
    }
    let now = now_ms();
    let window =
        (settings.timestamp_type == TimestampType::CreateTime).then_some(TimestampWindow {
            now_ms: now,
            before_max_ms: settings.timestamp_before_max_ms,
            after_max_ms: settings.timestamp_after_max_ms,
        });
    let topic_partition = format!("{topic}-{index}");
    let rules = ProduceRules {
        topic_partition: &topic_partition,
        max_message_bytes: settings.max_message_bytes,
        records: RecordRules {
            require_key: settings.cleanup_compact,
            window,
        },
        target: match settings.compression {
            TopicCompression::Codec(codec) => Some(codec),
            _ => None,
        },
    };
    let validated = validate_produce(&records, &rules).map_err(|fault| match fault {
        ProduceFault::Batch(e) => ProduceError::Batch(e),
        ProduceFault::InvalidRecord(message) => ProduceError::InvalidRecord(message),
        ProduceFault::TooLarge(message) => ProduceError::TooLarge(message),
        ProduceFault::RecordsRefused(refused) => {
            records_refused(refused, topic, index, &rules.records)
        }
        e @ (ProduceFault::Decompress { .. } | ProduceFault::Compress { .. }) => {
            ProduceError::Compression(e.to_string())
        }
    })?;
    // The records stay in the request buffer (or the recompressed one): only the header is
    // copied out, rewritten, and written to the file beside them.
    let stored = validated.recompressed.as_deref().unwrap_or(&records[..]);
    if settings.schema_validation.any() {
        crate::schema_validation::check_batch(
            stored,
            info.records_count,
            topic,
            settings.schema_validation,
            broker.schema_ids(),
            strom_wire::validate::inflation_limit(settings.max_message_bytes),
        )?;
    }
    let mut batch = batch::SplitBatch::new(stored)?;
    // Kafka's header says what the records hold: the append time, or their largest timestamp.
    if settings.timestamp_type == TimestampType::LogAppendTime {
        batch.set_log_append_time(now);
    } else {
        batch.set_create_time_max_timestamp(validated.max_timestamp);
    }
    // The log checks the producer's epoch and sequence (and its transaction) under its
    // lock, with the write: a retry of a batch it holds comes back as a duplicate with the
    // original offsets, and nothing is written.
    let mut info = partition.append_split(std::slice::from_mut(&mut batch), now)?;
    if info.duplicate {
        return Ok(info);
    }
    partition.notify_appended();
    if settings.timestamp_type == TimestampType::LogAppendTime {
        info.log_append_time_ms = now;
    }
    Ok(info)
}

/// Kafka's answer to refused records (LogValidator): each is reported with
/// its index and Kafka's message for it.
fn records_refused(
    refused: Vec<RefusedRecord>,
    topic: &str,
    partition: i32,
    rules: &RecordRules,
) -> ProduceError {
    let (earliest, latest) = rules
        .window
        .map_or((i64::MIN, i64::MAX), |w| (w.earliest(), w.latest()));
    let failures = refused
        .into_iter()
        .map(|refused| {
            let (invalid_timestamp, message) = match refused.fault {
                RecordFault::MissingKey => (
                    false,
                    format!("Compacted topic cannot accept message without key in topic partition {topic}-{partition}"),
                ),
                RecordFault::TimestampOutOfRange { timestamp, offset } => (
                    true,
                    format!("Timestamp {timestamp} of message with offset {offset} is out of range. The timestamp should be within [{earliest}, {latest}]"),
                ),
                RecordFault::LogAppendTimeFromProducer {
                    offset,
                    timestamp,
                    key_bytes,
                    value_bytes,
                } => (
                    true,
                    format!("Invalid timestamp type in message DefaultRecord(offset={offset}, timestamp={timestamp}, key={key_bytes} bytes, value={value_bytes} bytes). Producer should not set timestamp type to LogAppendTime."),
                ),
            };
            RecordFailure {
                // A batch holds at most i32::MAX records.
                index: i32::try_from(refused.index).unwrap_or(i32::MAX),
                invalid_timestamp,
                message,
            }
        })
        .collect();
    ProduceError::RecordsRefused(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch header (61 bytes) with only the attributes and producer id set.
    fn header(producer_id: i64, transactional: bool) -> Vec<u8> {
        let mut bytes = vec![0u8; batch::BATCH_HEADER_BYTES];
        // attributes at 21, producer id at 43 (Kafka's v2 batch layout)
        bytes[21..23].copy_from_slice(&(if transactional { 0x10i16 } else { 0 }).to_be_bytes());
        bytes[43..51].copy_from_slice(&producer_id.to_be_bytes());
        bytes
    }

    fn refusal(producer_id: i64, transactional: bool, issued_below: i64) -> Option<ErrorCode> {
        let bytes = header(producer_id, transactional);
        let header = batch::BatchHeader::new(&bytes).unwrap();
        assert_eq!(header.producer_id(), producer_id);
        assert_eq!(header.is_transactional(), transactional);
        unissued_producer(&header, issued_below).map(|e| produce_error_code(&e))
    }

    #[test]
    fn producer_ids_past_the_allocated_blocks_are_refused_as_kafka_answers_unknown_producers() {
        // No producer: nothing to check.
        assert_eq!(refusal(-1, false, 0), None);
        // Allocated ids pass.
        assert_eq!(refusal(0, false, 1000), None);
        assert_eq!(refusal(999, true, 1000), None);
        // Past the allocated blocks.
        assert_eq!(
            refusal(1000, false, 1000),
            Some(ErrorCode::UnknownProducerId)
        );
        assert_eq!(
            refusal(1 << 40, true, 1000),
            Some(ErrorCode::InvalidProducerIdMapping)
        );
        // Before any block is allocated, every id is unknown.
        assert_eq!(refusal(0, false, 0), Some(ErrorCode::UnknownProducerId));
    }
}
