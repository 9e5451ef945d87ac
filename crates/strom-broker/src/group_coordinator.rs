//! The runtime of the group coordinator: one sans-io shard
//! (`strom_coordinator::GroupCoordinatorShard`) per `__consumer_offsets`
//! partition this broker leads. A call runs the shard under its lock, appends
//! the records it returns to the partition's log, and only then hands out the
//! replies, which may answer requests parked by earlier calls. Timers run
//! through `tick` from a task that sleeps until the earliest shard deadline.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use strom_coordinator::{
    group_partition, CoordinatorRecord, GroupConfig, GroupCoordinatorShard, GroupOverrides, Output,
    Reply,
};
use strom_metadata::controller::{create_topic, NewTopic, TopicDefaults};
use strom_metadata::{ConfigResource, MetadataImage};
use strom_types::{ErrorCode, TopicId};
use tokio::sync::{oneshot, Notify};
use tracing::{info, warn};

use crate::broker::{now_ms, Broker};
use crate::internal_log::{encode_batch, replay};
use crate::partition::Partition;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Longest a request waits for its reply; joins park at most for the
/// rebalance timeout, so this only catches a reply that never comes.
const REPLY_TIMEOUT: Duration = Duration::from_secs(15 * 60);

struct LoadedShard {
    partition: Arc<Partition>,
    shard: Mutex<GroupCoordinatorShard>,
}

pub struct GroupCoordinator {
    config: GroupConfig,
    /// How long a call that wrote records waits before its replies go out.
    append_linger: Duration,
    shards: RwLock<HashMap<i32, Arc<LoadedShard>>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    next_request_id: AtomicU64,
    /// Woken when a call may have moved a deadline earlier.
    pub deadlines_changed: Notify,
    /// Serializes creating the offsets topic.
    creating: tokio::sync::Mutex<()>,
    /// The topics last handed to the shards (consumer-group assignors need them).
    topics: Mutex<TopicMetadata>,
    /// The group configs last handed to the shards.
    group_configs: Mutex<BTreeMap<String, GroupOverrides>>,
}

/// Every group's own configs (KIP-848 group configs) from the image.
fn group_overrides(image: &MetadataImage) -> BTreeMap<String, GroupOverrides> {
    let int = |configs: &BTreeMap<String, String>, name: &str| {
        configs.get(name).and_then(|v| v.trim().parse::<i32>().ok())
    };
    image
        .config_resources()
        .filter_map(|resource| match resource {
            ConfigResource::Group(group) => {
                let configs = image.configs(resource);
                Some((
                    group.clone(),
                    GroupOverrides {
                        consumer_session_timeout_ms: int(&configs, "consumer.session.timeout.ms"),
                        consumer_heartbeat_interval_ms: int(
                            &configs,
                            "consumer.heartbeat.interval.ms",
                        ),
                    },
                ))
            }
            _ => None,
        })
        .collect()
}

type TopicMetadata = BTreeMap<String, (TopicId, i32)>;

fn topic_metadata(image: &MetadataImage) -> TopicMetadata {
    image
        .topics()
        .map(|t| (t.name.clone(), (t.id, t.partitions.len() as i32)))
        .collect()
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            append_linger: Duration::ZERO,
            shards: RwLock::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_request_id: AtomicU64::new(1),
            deadlines_changed: Notify::new(),
            creating: tokio::sync::Mutex::new(()),
            topics: Mutex::new(TopicMetadata::new()),
            group_configs: Mutex::new(BTreeMap::new()),
        }
    }

    /// Hands every group's own configs to the shards when they changed.
    pub fn publish_group_configs(&self, image: &MetadataImage) {
        let overrides = group_overrides(image);
        {
            let mut last = self.group_configs.lock().unwrap_or_else(|p| p.into_inner());
            if *last == overrides {
                return;
            }
            *last = overrides.clone();
        }
        for loaded in self.loaded_shards() {
            let mut shard = loaded.shard.lock().unwrap_or_else(|p| p.into_inner());
            shard.set_group_configs(overrides.clone());
        }
    }

    /// `group.coordinator.append.linger.ms`: Kafka's coordinator answers a write
    /// only once its batch is flushed, up to that long after. Clients are tuned to
    /// that pace (librdkafka's KIP-848 consumer loses a subscribe() made while an
    /// unsubscribe is in flight when the answers come back within a millisecond).
    pub fn with_append_linger_ms(mut self, linger_ms: i32) -> Self {
        self.append_linger = Duration::from_millis(u64::try_from(linger_ms).unwrap_or(0));
        self
    }

    /// The `__consumer_offsets` partition that owns a group.
    pub fn partition_for(&self, broker: &Broker, group_id: &str) -> i32 {
        group_partition(group_id, broker.config.offsets_topic_num_partitions)
    }

    /// Creates `__consumer_offsets` if it does not exist yet (as Kafka does on
    /// the first group request) and loads every shard hosted here.
    pub async fn ensure_loaded(&self, broker: &Broker) -> Result<(), ErrorCode> {
        let loaded = self.shards.read().unwrap_or_else(|p| p.into_inner()).len();
        if broker
            .image()
            .topic(OFFSETS_TOPIC)
            .is_some_and(|t| t.partitions.len() == loaded)
        {
            return Ok(());
        }
        if broker.image().topic(OFFSETS_TOPIC).is_none() {
            let _creating = self.creating.lock().await;
            if broker.image().topic(OFFSETS_TOPIC).is_none() {
                create_offsets_topic(broker).await?;
            }
        }
        self.load_shards(broker);
        Ok(())
    }

    /// Hands the cluster's topics to every shard when they changed; consumer
    /// groups subscribed to a changed topic get a new epoch.
    pub fn publish_topics(&self, image: &MetadataImage) {
        let topics = topic_metadata(image);
        let deleted: Vec<String> = {
            let mut last = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            if *last == topics {
                return;
            }
            // A name whose id changed was deleted and re-created: its offsets go too.
            let deleted = last
                .iter()
                .filter(|(name, (id, _))| topics.get(*name).is_none_or(|(now, _)| now != id))
                .map(|(name, _)| name.clone())
                .collect();
            *last = topics.clone();
            deleted
        };
        let shards = self.loaded_shards();
        for loaded in shards {
            let output = {
                let mut shard = loaded.shard.lock().unwrap_or_else(|p| p.into_inner());
                let mut output = shard.set_topic_metadata(now_ms(), &topics);
                if !deleted.is_empty() {
                    merge(&mut output, shard.topics_deleted(now_ms(), &deleted));
                }
                output
            };
            self.finish(&loaded, output);
        }
    }

    /// Loads a shard for every hosted `__consumer_offsets` partition not loaded yet.
    pub fn load_shards(&self, broker: &Broker) {
        let Some(topic) = broker.image().topic(OFFSETS_TOPIC).cloned() else {
            return;
        };
        for index in topic.partitions.keys() {
            if self
                .shards
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(index)
            {
                continue;
            }
            let Some(partition) = broker.partition(OFFSETS_TOPIC, *index) else {
                continue;
            };
            match self.load_shard(partition) {
                Ok(loaded) => {
                    self.shards
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(*index, loaded);
                }
                Err(e) => {
                    warn!(partition = index, error = %e, "loading a group coordinator shard failed")
                }
            }
        }
        self.deadlines_changed.notify_one();
    }

    /// A fresh shard with every record of the partition replayed into it.
    fn rebuild_shard(
        &self,
        partition: &Partition,
    ) -> Result<(GroupCoordinatorShard, usize), String> {
        let mut shard =
            GroupCoordinatorShard::new(self.config.clone()).with_member_id_seed(random_seed());
        shard.set_group_configs(
            self.group_configs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        );
        // Through the reader: a replay never holds the partition's lock.
        let count = replay(partition.reader(), |_, key, value| {
            shard.replay(&CoordinatorRecord {
                key: key.map(|k| k.to_vec()).unwrap_or_default(),
                value: value.map(|v| v.to_vec()),
            })
        })
        .map_err(|e| e.to_string())?;
        Ok((shard, count))
    }

    fn load_shard(&self, partition: Arc<Partition>) -> Result<Arc<LoadedShard>, String> {
        let (shard, count) = self.rebuild_shard(&partition)?;
        let loaded = Arc::new(LoadedShard {
            partition,
            shard: Mutex::new(shard),
        });
        let output = self.start_shard(&mut loaded.shard.lock().unwrap_or_else(|p| p.into_inner()));
        self.finish(&loaded, output);
        info!(
            partition = loaded.partition.index,
            records = count,
            "group coordinator shard loaded"
        );
        Ok(loaded)
    }

    fn loaded_shards(&self) -> Vec<Arc<LoadedShard>> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// After a replay: members get fresh session deadlines and the shard learns the topics.
    fn start_shard(&self, shard: &mut GroupCoordinatorShard) -> Output {
        let topics = self
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut output = shard.loaded(now_ms());
        merge(&mut output, shard.set_topic_metadata(now_ms(), &topics));
        output
    }

    /// Runs `op` on the shard that owns `group_id` and waits for its reply.
    pub async fn call(
        &self,
        broker: &Broker,
        group_id: &str,
        op: impl FnOnce(&mut GroupCoordinatorShard, i64, u64) -> Output,
    ) -> Result<Reply, ErrorCode> {
        self.ensure_loaded(broker).await?;
        let index = self.partition_for(broker, group_id);
        let loaded = self
            .shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&index)
            .cloned()
            .ok_or(ErrorCode::NotCoordinator)?;
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(request_id, sender);
        let output = {
            let mut shard = loaded.shard.lock().unwrap_or_else(|p| p.into_inner());
            let now = now_ms();
            // Deadlines already past apply first (the timer task may not have run
            // yet), so the request sees the group as of `now`: e.g. DeleteGroups
            // right after a session expired.
            let mut output = Output::default();
            if shard.next_deadline_ms().is_some_and(|d| d <= now) {
                output = shard.tick(now);
            }
            merge(&mut output, op(&mut shard, now, request_id));
            self.persist_or_reload(&loaded, &mut shard, output)
        };
        if !output.records.is_empty() && !self.append_linger.is_zero() {
            tokio::time::sleep(self.append_linger).await;
        }
        self.deliver(output);
        self.deadlines_changed.notify_one();
        match tokio::time::timeout(REPLY_TIMEOUT, receiver).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(ErrorCode::CoordinatorNotAvailable),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&request_id);
                Err(ErrorCode::RequestTimedOut)
            }
        }
    }

    /// Runs `op` on every loaded shard (ListGroups) and returns their replies.
    pub async fn call_all(
        &self,
        broker: &Broker,
        op: impl Fn(&mut GroupCoordinatorShard, i64, u64) -> Output,
    ) -> Result<Vec<Reply>, ErrorCode> {
        self.ensure_loaded(broker).await?;
        let shards = self.loaded_shards();
        let mut replies = Vec::with_capacity(shards.len());
        for loaded in shards {
            let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
            let output = {
                let mut shard = loaded.shard.lock().unwrap_or_else(|p| p.into_inner());
                let output = op(&mut shard, now_ms(), request_id);
                self.persist_or_reload(&loaded, &mut shard, output)
            };
            let (mine, others): (Vec<_>, Vec<_>) = output
                .replies
                .into_iter()
                .partition(|(id, _)| *id == request_id);
            self.deliver(Output {
                replies: others,
                ..Output::default()
            });
            replies.extend(mine.into_iter().map(|(_, reply)| reply));
        }
        Ok(replies)
    }

    /// Appends the output's records; if that fails, the shard's memory is
    /// ahead of its log, so it is rebuilt from the log and the replies dropped
    /// (their callers see COORDINATOR_NOT_AVAILABLE).
    fn persist_or_reload(
        &self,
        loaded: &LoadedShard,
        shard: &mut GroupCoordinatorShard,
        output: Output,
    ) -> Output {
        if output.records.is_empty() {
            return output;
        }
        match append_records(&loaded.partition, &output.records) {
            Ok(()) => output,
            Err(e) => {
                warn!(partition = loaded.partition.index, error = %e, "appending group records failed; reloading the shard");
                let Ok((mut fresh, _)) = self.rebuild_shard(&loaded.partition) else {
                    // The log is unreadable too: keep the shard and drop the replies.
                    return Output::default();
                };
                let started = self.start_shard(&mut fresh);
                *shard = fresh;
                // Records of the restart itself are written by the next successful call.
                Output {
                    replies: started.replies,
                    ..Output::default()
                }
            }
        }
    }

    fn finish(&self, loaded: &LoadedShard, output: Output) {
        let output = {
            let mut shard = loaded.shard.lock().unwrap_or_else(|p| p.into_inner());
            self.persist_or_reload(loaded, &mut shard, output)
        };
        self.deliver(output);
    }

    fn deliver(&self, output: Output) {
        if output.replies.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for (request_id, reply) in output.replies {
            if let Some(sender) = pending.remove(&request_id) {
                let _ = sender.send(reply);
            }
        }
    }

    /// The earliest deadline over all shards.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter_map(|s| {
                s.shard
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .next_deadline_ms()
            })
            .min()
    }

    /// Ticks every shard whose deadline has passed.
    pub fn tick_due(&self) {
        let now = now_ms();
        let shards = self.loaded_shards();
        for loaded in shards {
            let output = {
                let mut shard = loaded.shard.lock().unwrap_or_else(|p| p.into_inner());
                if shard.next_deadline_ms().is_none_or(|d| d > now) {
                    continue;
                }
                let output = shard.tick(now);
                self.persist_or_reload(&loaded, &mut shard, output)
            };
            self.deliver(output);
        }
    }
}

/// Runs shard timers until the task is dropped.
pub async fn run_timers(broker: Arc<Broker>) {
    const IDLE_WAIT: Duration = Duration::from_secs(1);
    loop {
        let wait = broker
            .groups
            .next_deadline_ms()
            .map(|deadline| Duration::from_millis(deadline.saturating_sub(now_ms()).max(0) as u64))
            .unwrap_or(IDLE_WAIT)
            .min(IDLE_WAIT);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = broker.groups.deadlines_changed.notified() => {}
        }
        broker.groups.tick_due();
    }
}

fn append_records(
    partition: &Partition,
    records: &[CoordinatorRecord],
) -> Result<(), strom_log::LogError> {
    let entries: Vec<(Option<Bytes>, Option<Bytes>)> = records
        .iter()
        .map(|r| {
            (
                Some(Bytes::copy_from_slice(&r.key)),
                r.value.as_ref().map(|v| Bytes::copy_from_slice(v)),
            )
        })
        .collect();
    let now = now_ms();
    let mut batch = encode_batch(&entries, now)?;
    partition.append(&mut batch, now)?;
    partition.notify_appended();
    Ok(())
}

async fn create_offsets_topic(broker: &Broker) -> Result<(), ErrorCode> {
    let mut controller = broker.controller().await;
    let image = broker.image();
    if image.topic(OFFSETS_TOPIC).is_some() {
        return Ok(());
    }
    let live_brokers = image.brokers().count().max(1) as i16;
    let spec = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: broker.config.offsets_topic_num_partitions,
        replication_factor: broker
            .config
            .offsets_topic_replication_factor
            .min(live_brokers),
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("compression.type".into(), Some("producer".into())),
            (
                "segment.bytes".into(),
                Some(broker.config.offsets_topic_segment_bytes.to_string()),
            ),
        ],
    };
    let defaults = TopicDefaults {
        num_partitions: broker.config.num_partitions,
        replication_factor: broker.config.default_replication_factor,
    };
    let (records, _) = create_topic(&image, &spec, defaults, TopicId::new_v4()).map_err(|e| {
        warn!(error = %e, "creating {OFFSETS_TOPIC} failed");
        ErrorCode::CoordinatorNotAvailable
    })?;
    broker.commit(&mut controller, records).map_err(|e| {
        warn!(error = %e, "creating {OFFSETS_TOPIC} failed");
        ErrorCode::CoordinatorNotAvailable
    })?;
    info!(
        partitions = broker.config.offsets_topic_num_partitions,
        "created {OFFSETS_TOPIC}"
    );
    Ok(())
}

fn merge(into: &mut Output, other: Output) {
    into.records.extend(other.records);
    into.replies.extend(other.replies);
    into.transactional_records
        .extend(other.transactional_records);
}

fn random_seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}
