//! Fetch: whole batches are read straight from the log files, never decoded.
//!
//! Sessions (KIP-227, Fetch v7+): the request's session id and epoch go
//! through the sans-io `fetch_session` cache first, which says whether to
//! answer the request's partitions (full or sessionless fetch), the session's
//! partitions (incremental fetch: the response then leaves out partitions
//! with nothing new), or a session error.
//!
//! Bytes (KIP-74): the request's `max_bytes` is capped by `fetch.max.bytes`
//! and each partition reads at most its `partition_max_bytes` and what is left
//! of that budget, so a fetch holds no more record bytes than it sends; only
//! the first batch of the first partition with data is returned whole when it
//! is larger.
//!
//! Waiting: when fewer than `min_bytes` are ready, the request parks on the
//! partitions it reads (each has its own notification, so appends elsewhere
//! never wake it) until one of them is appended to or deleted, or
//! `max_wait_ms` passes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_log::{LogError, LogSlices};
use strom_security::quota::QuotaKind;
use strom_types::ErrorCode;
use tokio::sync::futures::Notified;

use super::{Handler, Operation, Reply, RequestContext};
use crate::broker::{now_ms, Broker};
use crate::errors::{log_error_code, replication_error_code};
use crate::fetch_session::{
    FetchContext, FetchMetadata, IncrementalAnswer, PartitionOutcome, PartitionParams,
    SessionPartition,
};
use crate::partition::Partition;
use crate::replica_manager::{self, ReplicaFetchRead, ThrottleSide};
use strom_replication::ReplicaSelector;

pub struct FetchHandler;

const READ_COMMITTED: i8 = 1;
/// Fetch sessions exist from v7.
const SESSIONS_VERSION: i16 = 7;
/// Topics are named by id from v13.
const TOPIC_IDS_VERSION: i16 = 13;
/// The replica id moved into `replica_state` at v15.
const REPLICA_STATE_VERSION: i16 = 15;

impl Handler for FetchHandler {
    type Request = FetchRequest;
    const KEY: ApiKey = ApiKey::Fetch;
    const VERSIONS: VersionRange = VersionRange { min: 4, max: 18 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: FetchRequest,
    ) -> FetchResponse {
        serve(broker, ctx, request, false).await.response
    }

    fn quota_exempt(request: &FetchRequest) -> bool {
        // Replica fetches; the version only decides where the replica id is.
        request.replica_id.0 >= 0 || request.replica_state.replica_id.0 >= 0
    }

    async fn handle_reply(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: FetchRequest,
    ) -> Reply<FetchResponse> {
        // Through TLS the bytes are encrypted in memory: read them in the handler.
        let zero_copy = cfg!(target_os = "linux")
            && !ctx.protocol.uses_tls()
            && broker.config.fetch_zero_copy
            && crate::response_frame::zero_copy_available();
        serve(broker, ctx, request, zero_copy).await
    }
}

/// Answers a fetch. With `zero_copy` the records are placeholders standing
/// for the returned file regions (sent with sendfile by the connection);
/// without it they are copied out of the files into the response.
async fn serve(
    broker: Arc<Broker>,
    ctx: RequestContext,
    mut request: FetchRequest,
    zero_copy: bool,
) -> Reply<FetchResponse> {
    let version = ctx.api_version;
    // A consumer under consumer_byte_rate reads at most what one quota window allows.
    let quotas = broker.image().client_quotas().clone();
    let consumer_quota =
        (follower_of(&request, version).is_none() && !quotas.is_empty()).then_some(&quotas);
    if let Some(cap) =
        consumer_quota.and_then(|q| broker.quotas.max_fetch_bytes(q, &ctx.quota_client()))
    {
        request.max_bytes = request
            .max_bytes
            .min(i32::try_from(cap).unwrap_or(i32::MAX));
    }
    let by_id = version >= TOPIC_IDS_VERSION;
    let requested = requested_partitions(&request, by_id);
    let forgotten = forgotten_partitions(&request, by_id);
    let metadata = if version >= SESSIONS_VERSION {
        FetchMetadata {
            session_id: request.session_id,
            epoch: request.session_epoch,
        }
    } else {
        FetchMetadata::LEGACY
    };
    let context = broker
        .fetch_sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .new_context(version, metadata, &requested, &forgotten, now_ms());
    let (to_read, kind) = match &context {
        FetchContext::SessionError(code) => {
            broker.metrics.fetch_served("session_error");
            return Reply {
                response: FetchResponse::default().with_error_code(code.code()),
                file_regions: Vec::new(),
            };
        }
        FetchContext::Sessionless => (requested, "sessionless"),
        FetchContext::Full => (requested, "full"),
        FetchContext::Incremental { partitions, .. } => (partitions.clone(), "incremental"),
    };
    broker.metrics.fetch_served(kind);
    // Kafka's checks: CLUSTER_ACTION for a follower, READ on each topic for a consumer.
    let authz = ctx.authz(&broker);
    let replica_allowed =
        follower_of(&request, version).is_none() || authz.allows_cluster(Operation::ClusterAction);
    let may_read = |topic: &str| {
        replica_allowed
            && (follower_of(&request, version).is_some()
                || authz.allows_topic(Operation::Read, topic))
    };
    let (answered, node_endpoints) =
        read_until_ready(&broker, &request, &ctx, &to_read, zero_copy, &may_read).await;
    // Over consumer_byte_rate already: an empty answer with the throttle time, the
    // session left as it was (Kafka's throttled fetch response). Within it, the bytes
    // are counted and sent, and the throttle time they cause comes with them: unlike
    // Kafka, which answers empty whenever these bytes would exceed the quota, so that a
    // batch larger than a quota window's allowance is never sent at all.
    let mut fetch_throttle = 0;
    if let Some(quotas) = consumer_quota {
        let client = ctx.quota_client();
        let over = broker.quotas.record(quotas, QuotaKind::Fetch, &client, 0.0);
        if over > 0 {
            let session_id = match &context {
                FetchContext::Incremental { session_id, .. } => *session_id,
                _ => 0,
            };
            return Reply {
                response: FetchResponse::default()
                    .with_session_id(session_id)
                    .with_throttle_time_ms(over.min(i32::MAX as u64) as i32),
                file_regions: Vec::new(),
            };
        }
        let bytes: u64 = answered
            .iter()
            .map(|(data, region)| match region {
                Some(region) => region.len(),
                None => data.records.as_ref().map_or(0, |r| r.len() as u64),
            })
            .sum();
        fetch_throttle = broker
            .quotas
            .record(quotas, QuotaKind::Fetch, &client, bytes as f64);
    }
    let outcomes: Vec<PartitionOutcome> =
        answered.iter().map(|(data, _)| outcome_of(data)).collect();
    let mut cache = broker
        .fetch_sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut response = match context {
        FetchContext::SessionError(_) | FetchContext::Sessionless => {
            respond(0, &to_read, answered, None)
        }
        FetchContext::Full => {
            let session_id = cache.create_session(
                now_ms(),
                is_from_follower(&request, version),
                by_id,
                to_read
                    .iter()
                    .zip(&outcomes)
                    .map(|((key, params), outcome)| (key.clone(), *params, *outcome))
                    .collect(),
            );
            respond(session_id, &to_read, answered, None)
        }
        FetchContext::Incremental {
            session_id,
            request_epoch,
            ..
        } => {
            let keyed: Vec<(SessionPartition, PartitionOutcome)> = to_read
                .iter()
                .zip(&outcomes)
                .map(|((key, _), outcome)| (key.clone(), *outcome))
                .collect();
            match cache.incremental_response(session_id, request_epoch, &keyed) {
                IncrementalAnswer::Include(include) => {
                    respond(session_id, &to_read, answered, Some(&include))
                }
                IncrementalAnswer::EpochChanged => Reply {
                    response: FetchResponse::default()
                        .with_error_code(ErrorCode::InvalidFetchSessionEpoch.code())
                        .with_session_id(session_id),
                    file_regions: Vec::new(),
                },
            }
        }
    };
    broker
        .metrics
        .fetch_session_cache(cache.len(), cache.total_partitions(), cache.evictions());
    response.response.node_endpoints = node_endpoints;
    response.response.throttle_time_ms = fetch_throttle.min(i32::MAX as u64) as i32;
    response
}

/// The request's partitions in order, each once (a repeated one keeps its
/// first place and its last parameters, as Kafka's request map does).
fn requested_partitions(
    request: &FetchRequest,
    by_id: bool,
) -> Vec<(SessionPartition, PartitionParams)> {
    let mut out: Vec<(SessionPartition, PartitionParams)> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            let key = partition_key(by_id, topic.topic_id, &topic.topic, p.partition);
            let params = PartitionParams {
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                log_start_offset: p.log_start_offset,
                current_leader_epoch: p.current_leader_epoch,
                last_fetched_epoch: p.last_fetched_epoch,
            };
            match seen.get(&key) {
                Some(&i) => out[i] = (key, params),
                None => {
                    seen.insert(key.clone(), out.len());
                    out.push((key, params));
                }
            }
        }
    }
    out
}

fn forgotten_partitions(request: &FetchRequest, by_id: bool) -> Vec<SessionPartition> {
    request
        .forgotten_topics_data
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |&p| partition_key(by_id, t.topic_id, &t.topic, p))
        })
        .collect()
}

fn partition_key(
    by_id: bool,
    topic_id: uuid::Uuid,
    topic: &TopicName,
    partition: i32,
) -> SessionPartition {
    if by_id {
        SessionPartition::ById(topic_id, partition)
    } else {
        SessionPartition::ByName(topic.to_string(), partition)
    }
}

/// Followers' sessions are privileged in the session cache, as in Kafka.
fn is_from_follower(request: &FetchRequest, version: i16) -> bool {
    follower_of(request, version).is_some()
}

/// The fetching replica's id and broker epoch (-1 when not sent), for a follower's fetch.
fn follower_of(request: &FetchRequest, version: i16) -> Option<(i32, i64)> {
    let (replica_id, epoch) = if version >= REPLICA_STATE_VERSION {
        (
            request.replica_state.replica_id,
            request.replica_state.replica_epoch,
        )
    } else {
        (request.replica_id, -1)
    };
    (replica_id.0 >= 0).then_some((replica_id.0, epoch))
}

/// Consumers may read from a follower from v11 (KIP-392: Kafka serves any replica once
/// the request carries client metadata); older ones only from the leader.
const FOLLOWER_FETCH_VERSION: i16 = 11;
/// current_leader in a partition's error (KIP-951) from v12, node_endpoints from v16.
const CURRENT_LEADER_VERSION: i16 = 12;
const NODE_ENDPOINTS_VERSION: i16 = 16;

/// Reads until `min_bytes` are ready, an error shows, or `max_wait_ms` is up.
async fn read_until_ready(
    broker: &Arc<Broker>,
    request: &FetchRequest,
    ctx: &RequestContext,
    to_read: &[(SessionPartition, PartitionParams)],
    zero_copy: bool,
    may_read: &(dyn Fn(&str) -> bool + Sync),
) -> (Vec<(PartitionData, Option<LogSlices>)>, Vec<NodeEndpoint>) {
    let (version, listener, work) = (ctx.api_version, &ctx.listener_name, &ctx.work);
    let max_bytes = request.max_bytes.clamp(0, broker.config.fetch_max_bytes) as usize;
    let min_bytes = (request.min_bytes.max(0) as usize).min(max_bytes);
    let max_wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    let read_committed = request.isolation_level == READ_COMMITTED;
    let follower = follower_of(request, version);
    // KIP-392: a consumer's rack, for the leader to send it to a replica in that rack.
    let client_rack: Option<Arc<str>> = (follower.is_none()
        && version >= FOLLOWER_FETCH_VERSION
        && broker.config.cluster.replica_selector != ReplicaSelector::LeaderOnly
        && !request.rack_id.is_empty())
    .then(|| Arc::from(request.rack_id.as_str()));
    // Shared with each wake-up's blocking read rather than copied into it.
    let wanted: Arc<[(SessionPartition, PartitionParams)]> = to_read.into();
    loop {
        let image = broker.image();
        let targets: Arc<[Result<Target, ErrorCode>]> = to_read
            .iter()
            .map(|(key, _)| resolve(broker, &image, key, may_read))
            .collect();
        // Registered before reading, so an append in between still wakes us.
        let mut waits: Vec<Pin<Box<Notified<'_>>>> = targets
            .iter()
            .flatten()
            .map(|t| {
                let mut notified = Box::pin(t.partition.appended());
                notified.as_mut().enable();
                notified
            })
            .collect();
        // Reads walk batch headers and copy bytes out of the files: off the async workers.
        let (worker, wanted, found) = (broker.clone(), wanted.clone(), targets.clone());
        let rack = client_rack.clone();
        let listener = listener.clone();
        let work = work.clone();
        let read = match tokio::task::spawn_blocking(move || {
            work.time(|| {
                read_partitions(
                    &worker,
                    &listener,
                    follower,
                    rack.as_deref(),
                    version,
                    read_committed,
                    max_bytes,
                    zero_copy,
                    &wanted,
                    &found,
                )
            })
        })
        .await
        {
            Ok(read) => read,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        if to_read.is_empty()
            || read.bytes >= min_bytes
            || read.respond_now
            || request.max_wait_ms <= 0
            || tokio::time::Instant::now() >= deadline
        {
            replica_manager::record_throttled_bytes(
                broker,
                ThrottleSide::Leader,
                read.throttled_bytes,
            );
            return (read.partitions, read.node_endpoints);
        }
        drop(read);
        if wait_for_any(&mut waits, deadline).await {
            broker.metrics.fetch_woken();
        }
    }
}

/// Resolves when any of `waits` does (true), or at `deadline` (false).
async fn wait_for_any(
    waits: &mut [Pin<Box<Notified<'_>>>],
    deadline: tokio::time::Instant,
) -> bool {
    let any = std::future::poll_fn(|cx| {
        for wait in waits.iter_mut() {
            if wait.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    });
    tokio::select! {
        _ = any => true,
        _ = tokio::time::sleep_until(deadline) => false,
    }
}

/// A partition this broker hosts, as a fetch found it.
#[derive(Clone)]
struct Target {
    name: String,
    partition: Arc<Partition>,
}

fn resolve(
    broker: &Broker,
    image: &strom_metadata::MetadataImage,
    key: &SessionPartition,
    may_read: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Target, ErrorCode> {
    let (name, index) = match key {
        SessionPartition::ById(id, index) => {
            let topic = image.topic_by_id(id).ok_or(ErrorCode::UnknownTopicId)?;
            (topic.name.clone(), *index)
        }
        SessionPartition::ByName(name, index) => (name.clone(), *index),
    };
    if !may_read(&name) {
        return Err(ErrorCode::TopicAuthorizationFailed);
    }
    let partition = broker
        .partition(&name, index)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    if let SessionPartition::ById(id, _) = key {
        if partition.topic_id != *id {
            return Err(ErrorCode::UnknownTopicId);
        }
    }
    Ok(Target { name, partition })
}

struct Read {
    /// Each partition's data and, when its records are a placeholder, the
    /// file regions they stand for.
    partitions: Vec<(PartitionData, Option<LogSlices>)>,
    bytes: usize,
    /// An error, a diverging epoch or a preferred read replica: answered without waiting
    /// for `min_bytes` (Kafka's immediate response).
    respond_now: bool,
    /// KIP-951: where the leaders named in NOT_LEADER_OR_FOLLOWER errors are.
    node_endpoints: Vec<NodeEndpoint>,
    /// Record bytes of leader-throttled partitions, counted once the read is sent.
    throttled_bytes: usize,
}

#[allow(clippy::too_many_arguments)]
fn read_partitions(
    broker: &Arc<Broker>,
    listener: &str,
    follower: Option<(i32, i64)>,
    client_rack: Option<&str>,
    version: i16,
    read_committed: bool,
    max_bytes: usize,
    zero_copy: bool,
    to_read: &[(SessionPartition, PartitionParams)],
    targets: &[Result<Target, ErrorCode>],
) -> Read {
    // log_start_offset exists from v5.
    let start_offset = |offset: i64| if version >= 5 { offset } else { -1 };
    let mut budget = max_bytes;
    let mut total = 0usize;
    let mut respond_now = false;
    let mut held_files = 0usize;
    // Asked at most once per response; bytes sent for leader-throttled partitions.
    let mut leader_quota_exceeded: Option<bool> = None;
    let mut throttled_bytes = 0usize;
    let mut partitions = Vec::with_capacity(to_read.len());
    let mut leaders = Vec::new();
    for ((key, wanted), target) in to_read.iter().zip(targets) {
        let index = match key {
            SessionPartition::ById(_, i) | SessionPartition::ByName(_, i) => *i,
        };
        let mut region = None;
        let mut data = PartitionData::default()
            .with_partition_index(index)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1));
        if read_committed {
            data.aborted_transactions = Some(Vec::new());
        }
        let mut aborted = Vec::new();
        let mut replica_fetch = None;
        let mut preferred_replica = None;
        // Which role served a consumer its records (the fetch-from-follower metric).
        let mut consumer_read_role = None;
        let result = target.as_ref().map_err(|code| *code).and_then(|target| {
            let partition = &target.partition;
            if let Some((replica_id, broker_epoch)) = follower {
                let fetch = ReplicaFetchRead {
                    replica_id,
                    broker_epoch,
                    current_leader_epoch: wanted.current_leader_epoch,
                    fetch_offset: wanted.fetch_offset,
                    last_fetched_epoch: wanted.last_fetched_epoch,
                    log_start_offset: wanted.log_start_offset,
                };
                match replica_manager::validate_replica_fetch(partition, &fetch) {
                    Err(e) => return Err(replication_error_code(&e)),
                    // KIP-320: the follower truncates first; no records, no progress.
                    Ok(Some(diverging)) => {
                        return Ok((
                            partition.reader().offsets().snapshot(),
                            None,
                            Some(diverging),
                        ))
                    }
                    Ok(None) => replica_fetch = Some(fetch),
                }
            } else {
                replica_manager::check_epoch(partition, wanted.current_leader_epoch)
                    .map_err(|e| replication_error_code(&e))?;
                let is_leader = partition.replica().is_leader();
                if version < FOLLOWER_FETCH_VERSION && !is_leader {
                    return Err(ErrorCode::NotLeaderOrFollower);
                }
                // KIP-392: the leader names a closer replica instead of reading; the
                // consumer gets the leader's offsets and no records.
                if let Some(rack) = client_rack {
                    preferred_replica = replica_manager::preferred_read_replica(
                        broker,
                        partition,
                        rack,
                        wanted.fetch_offset,
                    );
                    if preferred_replica.is_some() {
                        return Ok((partition.reader().offsets().snapshot(), None, None));
                    }
                }
                consumer_read_role = Some(if is_leader { "leader" } else { "follower" });
            }
            // Never read more than may be sent: this partition's limit and the
            // response's remaining budget (but one whole batch for the first
            // partition with data).
            let limit = (wanted.partition_max_bytes.max(0) as usize).min(budget);
            let min_one_batch = total == 0;
            // The log's published state: no lock is taken.
            let reader = partition.reader();
            let offsets = reader.offsets().snapshot();
            // A follower copies the whole log; consumers see what is replicated.
            let readable_end = if replica_fetch.is_some() {
                offsets.log_end_offset
            } else if read_committed {
                offsets.last_stable_offset
            } else {
                offsets.high_watermark
            };
            // Kafka's shouldLeaderThrottle: an out-of-sync follower of a throttled
            // partition gets no records while the leader's quota is exceeded.
            let leader_throttled = replica_fetch.is_some()
                && replica_manager::is_throttled(broker, partition, ThrottleSide::Leader);
            let hold_back = leader_throttled
                && replica_fetch
                    .as_ref()
                    .is_some_and(|f| !replica_manager::is_in_sync(partition, f.replica_id))
                && *leader_quota_exceeded.get_or_insert_with(|| {
                    replica_manager::is_quota_exceeded(broker, ThrottleSide::Leader)
                });
            let read = if hold_back || (limit == 0 && !min_one_batch) {
                Ok(None)
            } else {
                reader
                    .read(wanted.fetch_offset, limit, readable_end, min_one_batch)
                    .and_then(|slices| {
                        // read_committed readers drop the records of aborted transactions
                        // in what they got, as Kafka's collectAbortedTransactions lists them.
                        if read_committed && !slices.is_empty() {
                            aborted = reader
                                .aborted_transactions(wanted.fetch_offset, slices.next_offset);
                        }
                        let send_from_files = zero_copy
                            && slices.len() >= ZERO_COPY_MIN_BYTES
                            && held_files + slices.slices.len() <= MAX_FILES_HELD_PER_RESPONSE;
                        let records = records_of(slices, send_from_files)?;
                        held_files += records.1.as_ref().map_or(0, |s| s.slices.len());
                        Ok(records)
                    })
                    .map(Some)
            };
            if let (true, Ok(Some((records, _)))) = (leader_throttled, &read) {
                throttled_bytes += records.len();
            }
            if let (Some(role), Ok(Some((records, _)))) = (consumer_read_role, &read) {
                broker.metrics.consumer_fetch_bytes(role, records.len());
            }
            if read.is_ok() {
                if let Some(fetch) = &replica_fetch {
                    // The follower's progress: its end is the fetch offset (Kafka's
                    // updateFollowerFetchState, with the leader's end before the read).
                    match replica_manager::record_replica_fetch(
                        &broker.replicas,
                        partition,
                        fetch,
                        offsets.log_end_offset,
                    ) {
                        Err(e) => return Err(replication_error_code(&e)),
                        Ok(Some(expand)) => crate::alter_partition_sender::send(
                            broker.clone(),
                            partition.clone(),
                            expand,
                        ),
                        Ok(None) => {}
                    }
                }
            }
            read.map(|records| (offsets, records, None)).map_err(|e| {
                let gone = broker
                    .partition(&target.name, index)
                    .is_none_or(|now| !Arc::ptr_eq(&now, partition));
                match key {
                    // Deleted while we read it: the error a fresh lookup gives.
                    SessionPartition::ById(..) if gone => ErrorCode::UnknownTopicId,
                    _ if gone => ErrorCode::UnknownTopicOrPartition,
                    _ => log_error_code(&e),
                }
            })
        });
        match result {
            Ok((offsets, read, diverging)) => {
                if let Some(diverging) = diverging {
                    respond_now = true;
                    data.diverging_epoch = EpochEndOffset::default()
                        .with_epoch(diverging.epoch)
                        .with_end_offset(diverging.end_offset);
                }
                if let Some(replica) = preferred_replica {
                    respond_now = true;
                    broker.metrics.preferred_read_replica_answered();
                    data.preferred_read_replica = BrokerId(replica);
                }
                let (records, slices) = read.unwrap_or_default();
                region = slices;
                let size = records.len();
                total += size;
                budget = budget.saturating_sub(size);
                data = data
                    .with_high_watermark(offsets.high_watermark)
                    .with_last_stable_offset(offsets.last_stable_offset)
                    .with_log_start_offset(start_offset(offsets.log_start_offset))
                    .with_records(Some(records));
                if read_committed {
                    data.aborted_transactions = Some(
                        aborted
                            .iter()
                            .map(|txn| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(txn.producer_id))
                                    .with_first_offset(txn.first_offset)
                            })
                            .collect(),
                    );
                }
            }
            Err(code) => {
                respond_now = true;
                if code == ErrorCode::OffsetOutOfRange {
                    if let Ok(target) = target {
                        let p = &target.partition;
                        data = data
                            .with_high_watermark(p.high_watermark())
                            .with_last_stable_offset(p.last_stable_offset())
                            .with_log_start_offset(start_offset(p.log_start_offset()));
                    }
                }
                if code == ErrorCode::NotLeaderOrFollower && version >= CURRENT_LEADER_VERSION {
                    if let Ok(target) = target {
                        let leader = replica_manager::current_leader(
                            &broker.image(),
                            &target.partition,
                            listener,
                        );
                        data.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader.leader_id))
                            .with_leader_epoch(leader.leader_epoch);
                        if version >= NODE_ENDPOINTS_VERSION {
                            leaders.push(leader);
                        }
                    }
                }
                data = data
                    .with_error_code(code.code())
                    .with_records(Some(Default::default()));
            }
        }
        partitions.push((data, region));
    }
    let mut node_endpoints: Vec<NodeEndpoint> = Vec::new();
    for leader in leaders {
        if node_endpoints
            .iter()
            .any(|e| e.node_id.0 == leader.leader_id)
        {
            continue;
        }
        if let Some((host, port, rack)) = leader.endpoint {
            node_endpoints.push(
                NodeEndpoint::default()
                    .with_node_id(BrokerId(leader.leader_id))
                    .with_host(StrBytes::from_string(host))
                    .with_port(i32::from(port))
                    .with_rack(rack.map(StrBytes::from_string)),
            );
        }
    }
    Read {
        partitions,
        bytes: total,
        respond_now,
        node_endpoints,
        throttled_bytes,
    }
}

/// Smaller reads are copied: a copy costs less than a sendfile call of its own.
const ZERO_COPY_MIN_BYTES: u64 = 16 * 1024;
/// A slice sent from its file keeps the file open until it is sent, past the segment file
/// cache's bound; a fetch of thousands of partitions copies the rest instead (within the
/// same fetch.max.bytes budget), so it cannot run the broker out of descriptors.
const MAX_FILES_HELD_PER_RESPONSE: usize = 64;

/// The records of a read: a placeholder and the slices it stands for, or
/// (without zero copy, or past what a placeholder can stand for) a copy.
fn records_of(slices: LogSlices, zero_copy: bool) -> Result<(Bytes, Option<LogSlices>), LogError> {
    if slices.is_empty() {
        return Ok((Bytes::new(), None));
    }
    if zero_copy {
        if let Some(placeholder) = crate::response_frame::placeholder(slices.len()) {
            // Still on the blocking thread: start the disk reads here, so that
            // sendfile on the async worker finds the pages cached.
            slices.prefetch();
            return Ok((placeholder, Some(slices)));
        }
    }
    Ok((slices.to_bytes()?, None))
}

fn outcome_of(data: &PartitionData) -> PartitionOutcome {
    PartitionOutcome {
        records_bytes: data.records.as_ref().map_or(0, |r| r.len()),
        high_watermark: data.high_watermark,
        log_start_offset: data.log_start_offset,
        error_code: data.error_code,
        redirects: data.preferred_read_replica.0 >= 0 || data.diverging_epoch.epoch >= 0,
    }
}

/// The response: partitions in read order (those `include` keeps), grouped
/// into topics where consecutive partitions share one, as Kafka groups them.
fn respond(
    session_id: i32,
    read: &[(SessionPartition, PartitionParams)],
    answered: Vec<(PartitionData, Option<LogSlices>)>,
    include: Option<&[bool]>,
) -> Reply<FetchResponse> {
    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    // Partitions are appended in order, so regions follow the codec's order.
    let mut file_regions = Vec::new();
    let mut last_topic: Option<&SessionPartition> = None;
    for (i, ((key, _), (data, region))) in read.iter().zip(answered).enumerate() {
        if include.is_some_and(|keep| !keep.get(i).copied().unwrap_or(true)) {
            continue;
        }
        let same_topic = last_topic.is_some_and(|last| same_topic(last, key));
        if !same_topic {
            let topic = match key {
                SessionPartition::ById(id, _) => {
                    FetchableTopicResponse::default().with_topic_id(*id)
                }
                SessionPartition::ByName(name, _) => FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(name.clone()))),
            };
            responses.push(topic);
        }
        last_topic = Some(key);
        if let Some(topic) = responses.last_mut() {
            topic.partitions.push(data);
            file_regions.extend(region);
        }
    }
    Reply {
        response: FetchResponse::default()
            .with_session_id(session_id)
            .with_responses(responses),
        file_regions,
    }
}

fn same_topic(a: &SessionPartition, b: &SessionPartition) -> bool {
    match (a, b) {
        (SessionPartition::ById(x, _), SessionPartition::ById(y, _)) => x == y,
        (SessionPartition::ByName(x, _), SessionPartition::ByName(y, _)) => x == y,
        _ => false,
    }
}
