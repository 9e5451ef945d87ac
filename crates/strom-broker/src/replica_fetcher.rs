//! The replica fetcher (Kafka's ReplicaFetcherThread, num.replica.fetchers=1): one task per
//! leader broker this node follows partitions of, on the leader's inter-broker listener.
//! Each round asks every partition's `FollowerState` what to send (OffsetForLeaderEpoch,
//! Fetch or ListOffsets), sends one request of each kind for all of them, and applies the
//! steps the answers become to the logs. Steps are applied under the partition's role
//! lock, so a role change never meets a half-applied answer of an older epoch.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, ListOffsetsRequest, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_client::connection::{Connection, ConnectionConfig};
use strom_replication::{
    DivergingEpoch, FetchedPartition, FollowerAction, FollowerPhase, FollowerRequest, FollowerStep,
    LeaderOffsets, ReplicationError,
};
use strom_types::{ErrorCode, NodeId};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::broker::{now_ms, Broker};
use crate::errors::replication_error_of;
use crate::partition::Partition;
use crate::replica_manager::{self, local_broker_epoch, Role, ThrottleSide};

/// A round with nothing to send waits at most this long before polling again (backoffs
/// end, new partitions arrive through `wake`).
const IDLE_POLL: Duration = Duration::from_millis(500);

pub struct Fetcher {
    leader: NodeId,
    /// The partitions followed from this leader, by (topic, index).
    partitions: Mutex<BTreeMap<(String, i32), Arc<Partition>>>,
    wake: Notify,
}

/// Starts following `partition` from `leader` (starting the leader's fetcher if needed).
pub fn follow(broker: &Arc<Broker>, leader: NodeId, partition: &Arc<Partition>) {
    let mut fetchers = broker
        .replicas
        .fetchers
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let fetcher = fetchers.entry(leader).or_insert_with(|| {
        let fetcher = Arc::new(Fetcher {
            leader,
            partitions: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
        });
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(run(Arc::downgrade(broker), fetcher.clone()));
            }
            Err(_) => warn!(leader, "no runtime to start a replica fetcher on"),
        }
        fetcher
    });
    fetcher
        .partitions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            (partition.topic.clone(), partition.index),
            partition.clone(),
        );
    fetcher.wake.notify_one();
}

/// Stops following `partition` from `leader`; a fetcher left with nothing stops.
pub fn unfollow(broker: &Broker, leader: NodeId, partition: &Partition) {
    let mut fetchers = broker
        .replicas
        .fetchers
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(fetcher) = fetchers.get(&leader) else {
        return;
    };
    let empty = {
        let mut partitions = fetcher.partitions.lock().unwrap_or_else(|p| p.into_inner());
        partitions.remove(&(partition.topic.clone(), partition.index));
        partitions.is_empty()
    };
    fetcher.wake.notify_one();
    if empty {
        fetchers.remove(&leader);
    }
}

/// One partition's request this round, with the leader epoch it was made in.
struct Pending {
    partition: Arc<Partition>,
    leader_epoch: i32,
    request: FollowerRequest,
}

async fn run(broker: Weak<Broker>, fetcher: Arc<Fetcher>) {
    let mut connection: Option<Connection> = None;
    loop {
        let Some(broker) = broker.upgrade() else {
            return;
        };
        let retired = !broker
            .replicas
            .fetchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&fetcher.leader)
            .is_some_and(|f| Arc::ptr_eq(f, &fetcher));
        if retired {
            return;
        }
        let partitions: Vec<Arc<Partition>> = fetcher
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        let now = now_ms();
        let mut pending = Vec::new();
        let mut local = Vec::new();
        let image = broker.image();
        // Asked at most once per round.
        let mut quota_exceeded: Option<bool> = None;
        for partition in partitions {
            let replica = partition.replica();
            let Role::Follower(state) = &replica.role else {
                continue;
            };
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            if state.leader_id() != fetcher.leader {
                continue;
            }
            // Kafka's shouldFollowerThrottle: an out-of-sync replica of a throttled
            // partition is left out of the fetch while the follower's quota is exceeded
            // (truncation is never held back).
            if state.phase() == FollowerPhase::Fetching
                && state.in_flight().is_none()
                && !image
                    .partition(&partition.topic_id, partition.index)
                    .is_some_and(|p| p.isr.contains(&broker.config.node_id))
                && replica_manager::is_throttled(&broker, &partition, ThrottleSide::Follower)
                && *quota_exceeded.get_or_insert_with(|| {
                    replica_manager::is_quota_exceeded(&broker, ThrottleSide::Follower)
                })
            {
                continue;
            }
            let leader_epoch = state.leader_epoch();
            let action = state.poll(&partition.replica_log(), now);
            drop(state);
            drop(replica);
            match action {
                Some(FollowerAction::Send(request)) => {
                    pending.push(Pending {
                        partition,
                        leader_epoch,
                        request,
                    });
                }
                Some(FollowerAction::Apply(steps)) => {
                    local.push((partition, leader_epoch, steps));
                }
                None => {}
            }
        }
        for (partition, leader_epoch, steps) in local {
            let leader = fetcher.leader;
            blocking(move || {
                apply_in_epoch(&partition, leader, leader_epoch, |_| steps);
            })
            .await;
        }
        if pending.is_empty() {
            let _ = tokio::time::timeout(IDLE_POLL, fetcher.wake.notified()).await;
            continue;
        }
        if connection.as_ref().is_none_or(|c| !c.is_usable()) {
            connection = connect(&broker, fetcher.leader).await;
        }
        let Some(conn) = connection.as_mut() else {
            fail_all(&fetcher, pending, "the leader is not reachable").await;
            continue;
        };
        let (mut epochs, mut offsets, mut fetches) = (Vec::new(), Vec::new(), Vec::new());
        for p in pending {
            match p.request {
                FollowerRequest::OffsetForLeaderEpoch { .. } => epochs.push(p),
                FollowerRequest::ListOffsets { .. } => offsets.push(p),
                FollowerRequest::Fetch { .. } => fetches.push(p),
            }
        }
        let ok = send_offsets_for_leader_epoch(&broker, &fetcher, conn, epochs).await
            && send_list_offsets(&broker, &fetcher, conn, offsets).await
            && send_fetch(&broker, &fetcher, conn, fetches).await;
        if !ok {
            connection = None;
        }
    }
}

async fn blocking(f: impl FnOnce() + Send + 'static) {
    if let Err(e) = tokio::task::spawn_blocking(f).await {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

async fn connect(broker: &Broker, leader: NodeId) -> Option<Connection> {
    let address = broker.inter_broker_address(&broker.image(), leader)?;
    let config = ConnectionConfig {
        client_id: format!("broker-{}-fetcher-0", broker.config.node_id),
        request_timeout: Duration::from_millis(30_000),
        max_response_bytes: (broker
            .config
            .cluster
            .replica_fetch_response_max_bytes
            .max(0) as usize)
            .saturating_mul(2)
            .max(16 << 20),
        ..ConnectionConfig::default()
    };
    match Connection::connect(&address, config).await {
        Ok(conn) => {
            info!(leader, %address, "replica fetcher connected");
            Some(conn)
        }
        Err(e) => {
            debug!(leader, %address, error = %e, "replica fetcher cannot connect");
            None
        }
    }
}

/// The requests got no answer: every partition backs off (replica.fetch.backoff.ms).
async fn fail_all(fetcher: &Fetcher, pending: Vec<Pending>, why: &str) {
    let leader = fetcher.leader;
    let why = why.to_owned();
    blocking(move || {
        let now = now_ms();
        for p in pending {
            apply_in_epoch(&p.partition, leader, p.leader_epoch, |state| {
                state.on_request_failed(ReplicationError::NetworkException(why.clone()), now)
            });
        }
    })
    .await;
}

/// Runs `answer` on the partition's follower state and applies the steps it returns,
/// only if the partition still follows `leader` in `leader_epoch`.
fn apply_in_epoch(
    partition: &Partition,
    leader: NodeId,
    leader_epoch: i32,
    answer: impl FnOnce(&mut strom_replication::FollowerState) -> Vec<FollowerStep>,
) {
    let replica = partition.replica();
    let Role::Follower(state) = &replica.role else {
        return;
    };
    let steps = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        if state.leader_id() != leader || state.leader_epoch() != leader_epoch {
            return;
        }
        answer(&mut state)
    };
    if steps.is_empty() {
        return;
    }
    let now = now_ms();
    let mut moved = false;
    let applied = partition.with_log(|log| {
        for step in steps {
            match step {
                FollowerStep::Truncate { offset } => {
                    log.truncate_to(offset, now)?;
                }
                FollowerStep::TruncateFullyAndStartAt { offset } => {
                    log.truncate_fully_and_start_at(offset, now)?
                }
                FollowerStep::Append(batches) => {
                    log.append_with_offsets(batches.bytes(), now)?;
                    moved = true;
                }
                FollowerStep::SetHighWatermark(hw) => {
                    log.set_high_watermark(hw);
                    moved = true;
                }
                FollowerStep::IncrementLogStartOffset(offset) => {
                    log.delete_records_before(offset)?;
                }
                FollowerStep::Backoff { error, .. } => {
                    debug!(topic = %partition.topic, partition = partition.index, %error, "replica fetch backs off");
                }
                FollowerStep::AwaitMetadata { error } => {
                    info!(topic = %partition.topic, partition = partition.index, %error, "replica fetch waits for new metadata");
                }
            }
        }
        Ok(())
    });
    if let Err(e) = applied {
        // The next round fetches from the log's real end again.
        warn!(topic = %partition.topic, partition = partition.index, error = %e, "applying fetched data failed");
    }
    drop(replica);
    if moved {
        // Consumers reading from this follower (Fetch v11+) wait on it too.
        partition.notify_appended();
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

/// Groups partitions by topic, keeping their order.
fn by_topic(pending: &[Pending]) -> BTreeMap<String, Vec<&Pending>> {
    let mut topics: BTreeMap<String, Vec<&Pending>> = BTreeMap::new();
    for p in pending {
        topics.entry(p.partition.topic.clone()).or_default().push(p);
    }
    topics
}

fn code_result(code: i16) -> Result<(), ReplicationError> {
    if code == 0 {
        Ok(())
    } else {
        Err(replication_error_of(
            ErrorCode::try_from_code(code).unwrap_or(ErrorCode::UnknownServerError),
        ))
    }
}

/// Returns false when the connection failed (the caller reconnects).
async fn send_offsets_for_leader_epoch(
    broker: &Broker,
    fetcher: &Fetcher,
    conn: &mut Connection,
    pending: Vec<Pending>,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(broker.config.node_id))
        .with_topics(
            by_topic(&pending)
                .into_iter()
                .map(|(topic, parts)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(topic_name(&topic))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|p| {
                                    let FollowerRequest::OffsetForLeaderEpoch {
                                        current_leader_epoch,
                                        leader_epoch,
                                    } = p.request
                                    else {
                                        unreachable!("grouped by kind")
                                    };
                                    OffsetForLeaderPartition::default()
                                        .with_partition(p.partition.index)
                                        .with_current_leader_epoch(current_leader_epoch)
                                        .with_leader_epoch(leader_epoch)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let response = match conn.send(&request).await {
        Ok(response) => response,
        Err(e) => {
            fail_all(fetcher, pending, &e.to_string()).await;
            return false;
        }
    };
    let leader = fetcher.leader;
    blocking(move || {
        let now = now_ms();
        for p in pending {
            let answer = response
                .topics
                .iter()
                .filter(|t| t.topic.as_str() == p.partition.topic)
                .flat_map(|t| t.partitions.iter())
                .find(|r| r.partition == p.partition.index);
            let result = match answer {
                None => Err(ReplicationError::UnknownTopicOrPartition),
                Some(r) => code_result(r.error_code)
                    .map(|()| (r.end_offset >= 0).then_some((r.leader_epoch, r.end_offset))),
            };
            apply_in_epoch(&p.partition, leader, p.leader_epoch, |state| {
                state.on_offset_for_leader_epoch(&p.partition.replica_log(), result, now)
            });
        }
    })
    .await;
    true
}

async fn send_list_offsets(
    broker: &Broker,
    fetcher: &Fetcher,
    conn: &mut Connection,
    pending: Vec<Pending>,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    // Kafka's ListOffsets timestamps: -2 earliest, -1 latest (the log end for a replica).
    let mut answers = Vec::new();
    for timestamp in [-2i64, -1] {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(broker.config.node_id))
            .with_topics(
                by_topic(&pending)
                    .into_iter()
                    .map(|(topic, parts)| {
                        ListOffsetsTopic::default()
                            .with_name(topic_name(&topic))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p.partition.index)
                                            .with_current_leader_epoch(p.leader_epoch)
                                            .with_timestamp(timestamp)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        match conn.send(&request).await {
            Ok(response) => answers.push(response),
            Err(e) => {
                fail_all(fetcher, pending, &e.to_string()).await;
                return false;
            }
        }
    }
    let leader = fetcher.leader;
    blocking(move || {
        let now = now_ms();
        for p in pending {
            let offset = |i: usize| {
                answers[i]
                    .topics
                    .iter()
                    .filter(|t| t.name.as_str() == p.partition.topic)
                    .flat_map(|t| t.partitions.iter())
                    .find(|r| r.partition_index == p.partition.index)
                    .ok_or(ReplicationError::UnknownTopicOrPartition)
                    .and_then(|r| code_result(r.error_code).map(|()| r.offset))
            };
            let result = offset(0).and_then(|start| {
                offset(1).map(|end| LeaderOffsets {
                    log_start_offset: start,
                    log_end_offset: end,
                })
            });
            apply_in_epoch(&p.partition, leader, p.leader_epoch, |state| {
                state.on_leader_offsets(&p.partition.replica_log(), result, now)
            });
        }
    })
    .await;
    true
}

/// Fetch v13+ names topics by id; the replica id moved into replica_state at v15.
const TOPIC_IDS_VERSION: i16 = 13;
const REPLICA_STATE_VERSION: i16 = 15;

async fn send_fetch(
    broker: &Broker,
    fetcher: &Fetcher,
    conn: &mut Connection,
    pending: Vec<Pending>,
) -> bool {
    if pending.is_empty() {
        return true;
    }
    let cluster = &broker.config.cluster;
    let Ok(version) = conn.version(ApiKey::Fetch) else {
        fail_all(fetcher, pending, "the leader speaks no Fetch version we do").await;
        return false;
    };
    let node = BrokerId(broker.config.node_id);
    let broker_epoch = local_broker_epoch(broker, &broker.image());
    let mut request = FetchRequest::default()
        .with_max_wait_ms(cluster.replica_fetch_wait_max_ms)
        .with_min_bytes(cluster.replica_fetch_min_bytes)
        .with_max_bytes(cluster.replica_fetch_response_max_bytes)
        .with_isolation_level(0)
        // Sessionless full fetches (INVALID_SESSION_ID, FINAL_EPOCH).
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(
            by_topic(&pending)
                .into_iter()
                .map(|(topic, parts)| {
                    FetchTopic::default()
                        .with_topic(topic_name(&topic))
                        .with_topic_id(parts[0].partition.topic_id)
                        .with_partitions(
                            parts
                                .iter()
                                .map(|p| {
                                    let FollowerRequest::Fetch {
                                        current_leader_epoch,
                                        fetch_offset,
                                        last_fetched_epoch,
                                        log_start_offset,
                                    } = p.request
                                    else {
                                        unreachable!("grouped by kind")
                                    };
                                    FetchPartition::default()
                                        .with_partition(p.partition.index)
                                        .with_current_leader_epoch(current_leader_epoch)
                                        .with_fetch_offset(fetch_offset)
                                        .with_last_fetched_epoch(last_fetched_epoch.unwrap_or(-1))
                                        .with_log_start_offset(log_start_offset)
                                        .with_partition_max_bytes(cluster.replica_fetch_max_bytes)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    if version >= REPLICA_STATE_VERSION {
        request = request.with_replica_state(
            ReplicaState::default()
                .with_replica_id(node)
                .with_replica_epoch(broker_epoch),
        );
    } else {
        request = request.with_replica_id(node);
    }
    let timeout = Duration::from_millis(30_000 + cluster.replica_fetch_wait_max_ms.max(0) as u64);
    let response = match conn.send_version(&request, version, timeout).await {
        Ok(response) => response,
        Err(e) => {
            fail_all(fetcher, pending, &e.to_string()).await;
            return false;
        }
    };
    let leader = fetcher.leader;
    let by_id = version >= TOPIC_IDS_VERSION;
    // Bytes fetched for throttled partitions count against the follower's quota, in
    // sync or not (Kafka's processPartitionData).
    let throttled_bytes: usize = pending
        .iter()
        .filter_map(|p| {
            let bytes = answer_for(&response, &p.partition, by_id)?
                .records
                .as_ref()
                .map_or(0, |records| records.len());
            (bytes > 0
                && replica_manager::is_throttled(broker, &p.partition, ThrottleSide::Follower))
            .then_some(bytes)
        })
        .sum();
    replica_manager::record_throttled_bytes(broker, ThrottleSide::Follower, throttled_bytes);
    blocking(move || {
        let now = now_ms();
        if response.error_code != 0 {
            let error = code_result(response.error_code).unwrap_err();
            for p in pending {
                apply_in_epoch(&p.partition, leader, p.leader_epoch, |state| {
                    state.on_fetch_response(&p.partition.replica_log(), Err(error.clone()), now)
                });
            }
            return;
        }
        for p in pending {
            let result = match answer_for(&response, &p.partition, by_id) {
                None => Err(ReplicationError::UnknownTopicOrPartition),
                Some(r) => code_result(r.error_code).map(|()| FetchedPartition {
                    high_watermark: r.high_watermark,
                    log_start_offset: r.log_start_offset,
                    diverging_epoch: (r.diverging_epoch.epoch >= 0
                        && r.diverging_epoch.end_offset >= 0)
                        .then_some(DivergingEpoch {
                            epoch: r.diverging_epoch.epoch,
                            end_offset: r.diverging_epoch.end_offset,
                        }),
                    records: r.records.clone().unwrap_or_default(),
                }),
            };
            apply_in_epoch(&p.partition, leader, p.leader_epoch, |state| {
                state.on_fetch_response(&p.partition.replica_log(), result, now)
            });
        }
    })
    .await;
    true
}

/// The partition's answer in a Fetch response.
fn answer_for<'a>(
    response: &'a kafka_protocol::messages::FetchResponse,
    partition: &Partition,
    by_id: bool,
) -> Option<&'a kafka_protocol::messages::fetch_response::PartitionData> {
    response
        .responses
        .iter()
        .filter(|t| {
            if by_id {
                t.topic_id == partition.topic_id
            } else {
                t.topic.as_str() == partition.topic
            }
        })
        .flat_map(|t| t.partitions.iter())
        .find(|r| r.partition_index == partition.index)
}
