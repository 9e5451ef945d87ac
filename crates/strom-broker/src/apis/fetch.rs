//! Fetch: whole batches are read straight from the log files, never decoded.
//! When fewer than min_bytes are ready, the request parks until an append
//! wakes it or max_wait_ms passes. Fetch sessions are not kept: a response
//! always carries session id 0, which tells clients to send full fetches.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{Handler, RequestContext};
use crate::broker::Broker;
use crate::errors::log_error_code;

pub struct FetchHandler;

const READ_COMMITTED: i8 = 1;

impl Handler for FetchHandler {
    type Request = FetchRequest;
    const KEY: ApiKey = ApiKey::Fetch;
    const VERSIONS: VersionRange = VersionRange { min: 4, max: 18 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: FetchRequest,
    ) -> FetchResponse {
        if request.session_id != 0 {
            return FetchResponse::default()
                .with_error_code(ErrorCode::FetchSessionIdNotFound.code());
        }
        if request.session_epoch != -1 && request.session_epoch != 0 {
            return FetchResponse::default()
                .with_error_code(ErrorCode::InvalidFetchSessionEpoch.code());
        }
        let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            // Registered before reading, so an append in between still wakes us.
            let notified = broker.data_arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Reads walk batch headers and copy bytes out of the files: off the async workers.
            let (worker, wanted) = (broker.clone(), request.clone());
            let version = ctx.api_version;
            let (responses, bytes, has_error) = match tokio::task::spawn_blocking(move || {
                read_all(&worker, &wanted, version)
            })
            .await
            {
                Ok(read) => read,
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            let expired = tokio::time::Instant::now() >= deadline;
            if bytes >= request.min_bytes.max(0) as usize
                || has_error
                || expired
                || request.max_wait_ms <= 0
            {
                return FetchResponse::default().with_responses(responses);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}

fn read_all(
    broker: &Broker,
    request: &FetchRequest,
    version: i16,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let by_id = version >= 13;
    // log_start_offset exists from v5.
    let start_offset = |offset: i64| if version >= 5 { offset } else { -1 };
    let image = broker.image();
    let mut budget = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut has_error = false;
    let read_committed = request.isolation_level == READ_COMMITTED;
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic_name(&image, topic, by_id);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(wanted.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1));
            if read_committed {
                data.aborted_transactions = Some(Vec::new());
            }
            let partition = match &name {
                None => Err(ErrorCode::UnknownTopicId),
                Some(name) => broker
                    .partition(name, wanted.partition)
                    .ok_or(ErrorCode::UnknownTopicOrPartition),
            };
            let result = partition.and_then(|partition| {
                if wanted.current_leader_epoch > partition.leader_epoch {
                    return Err(ErrorCode::UnknownLeaderEpoch);
                }
                if wanted.current_leader_epoch >= 0
                    && wanted.current_leader_epoch < partition.leader_epoch
                {
                    return Err(ErrorCode::FencedLeaderEpoch);
                }
                let limit = (wanted.partition_max_bytes.max(0) as usize).min(budget);
                let min_one_batch = total == 0;
                let reader = partition.reader();
                let offsets = reader.offsets().snapshot();
                let readable_end = if read_committed {
                    offsets.last_stable_offset
                } else {
                    offsets.high_watermark
                };
                let records = if limit == 0 && !min_one_batch {
                    None
                } else {
                    let read = reader
                        .read(wanted.fetch_offset, limit, readable_end, min_one_batch)
                        .and_then(|slices| slices.to_bytes())
                        .map_err(|e| log_error_code(&e))?;
                    Some(read)
                };
                Ok((offsets, records))
            });
            match result {
                Ok((offsets, records)) => {
                    let size = records.as_ref().map_or(0, |r| r.len());
                    total += size;
                    budget = budget.saturating_sub(size);
                    data = data
                        .with_high_watermark(offsets.high_watermark)
                        .with_last_stable_offset(offsets.last_stable_offset)
                        .with_log_start_offset(start_offset(offsets.log_start_offset))
                        .with_records(Some(records.unwrap_or_default()));
                }
                Err(code) => {
                    has_error = true;
                    if code == ErrorCode::OffsetOutOfRange {
                        if let Some(p) = name
                            .as_deref()
                            .and_then(|n| broker.partition(n, wanted.partition))
                        {
                            data = data
                                .with_high_watermark(p.high_watermark())
                                .with_last_stable_offset(p.last_stable_offset())
                                .with_log_start_offset(start_offset(p.log_start_offset()));
                        }
                    }
                    data = data
                        .with_error_code(code.code())
                        .with_records(Some(Default::default()));
                }
            }
            partitions.push(data);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (responses, total, has_error)
}

fn topic_name(
    image: &strom_metadata::MetadataImage,
    topic: &FetchTopic,
    by_id: bool,
) -> Option<String> {
    if by_id {
        image.topic_by_id(&topic.topic_id).map(|t| t.name.clone())
    } else {
        Some(topic.topic.to_string())
    }
}
