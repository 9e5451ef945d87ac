//! The group coordinator: one sans-io shard (`strom_coordinator::GroupCoordinatorShard`)
//! per `__consumer_offsets` partition this broker leads, driven by the shared
//! [`CoordinatorRuntime`] (records appended before replies, replies after the high
//! watermark, rollback on a failed append, markers replayed). This module adds what is
//! particular to groups: creating the offsets topic, routing a group to its shard, and
//! handing topics and group configs to the shards.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_coordinator::{
    group_partition, CoordinatorRecord, GroupConfig, GroupCoordinatorShard, GroupOverrides, Output,
    Reply,
};
use strom_metadata::{ConfigResource, MetadataImage};
use strom_types::{ErrorCode, TopicId};
use tracing::warn;

use crate::broker::Broker;
use crate::coordinator_runtime::{
    CoordinatorRuntime, CoordinatorShard, ReplayFailed, Replayed, ShardOutput, ShardRecord,
    TransactionalWrite,
};
use crate::internal_log::BatchProducer;
use crate::internal_topics::{ensure_created, InternalTopic};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

type GroupOutput = ShardOutput<Reply, Infallible>;

fn shard_record(record: CoordinatorRecord) -> ShardRecord {
    ShardRecord {
        key: record.key,
        value: record.value,
    }
}

impl From<Output> for GroupOutput {
    fn from(output: Output) -> Self {
        ShardOutput {
            records: output.records.into_iter().map(shard_record).collect(),
            transactional: output
                .transactional_records
                .into_iter()
                .map(|write| TransactionalWrite {
                    producer: BatchProducer {
                        producer_id: write.producer_id,
                        producer_epoch: write.producer_epoch,
                    },
                    records: write.records.into_iter().map(shard_record).collect(),
                })
                .collect(),
            replies: output.replies,
            effects: Vec::new(),
        }
    }
}

impl CoordinatorShard for GroupCoordinatorShard {
    type Reply = Reply;
    type Effect = Infallible;

    fn replay(&mut self, item: Replayed<'_>) -> Result<(), ReplayFailed> {
        match item {
            Replayed::Record {
                offset,
                producer,
                key,
                value,
            } => self
                .replay_at(
                    offset,
                    producer.map(|p| (p.producer_id, p.producer_epoch)),
                    &CoordinatorRecord {
                        key: key.to_vec(),
                        value: value.map(<[u8]>::to_vec),
                    },
                )
                .map_err(|e| ReplayFailed(e.to_string())),
            Replayed::Marker {
                offset,
                producer_id,
                commit,
            } => {
                self.replay_control(offset, producer_id, commit);
                Ok(())
            }
        }
    }

    fn loaded(&mut self, now_ms: i64) -> GroupOutput {
        GroupCoordinatorShard::loaded(self, now_ms).into()
    }

    fn tick(&mut self, now_ms: i64) -> GroupOutput {
        GroupCoordinatorShard::tick(self, now_ms).into()
    }

    fn next_deadline_ms(&self) -> Option<i64> {
        GroupCoordinatorShard::next_deadline_ms(self)
    }

    fn marker_written(
        &mut self,
        now_ms: i64,
        offset: i64,
        producer_id: i64,
        commit: bool,
    ) -> GroupOutput {
        self.complete_transaction(now_ms, producer_id, commit, offset)
            .into()
    }
}

pub struct GroupCoordinator {
    config: GroupConfig,
    runtime: CoordinatorRuntime<GroupCoordinatorShard>,
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
            runtime: CoordinatorRuntime::new("group"),
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
        self.runtime
            .configure_all(|shard| shard.set_group_configs(overrides.clone()));
    }

    /// `group.coordinator.append.linger.ms`: Kafka's coordinator answers a write
    /// only once its batch is flushed, up to that long after. Clients are tuned to
    /// that pace (librdkafka's KIP-848 consumer loses a subscribe() made while an
    /// unsubscribe is in flight when the answers come back within a millisecond).
    pub fn with_append_linger_ms(mut self, linger_ms: i32) -> Self {
        self.runtime = self
            .runtime
            .with_append_linger(Duration::from_millis(u64::try_from(linger_ms).unwrap_or(0)));
        self
    }

    /// The `__consumer_offsets` partition that owns a group.
    pub fn partition_for(&self, broker: &Broker, group_id: &str) -> i32 {
        group_partition(group_id, broker.config.offsets_topic_num_partitions)
    }

    /// Creates `__consumer_offsets` if it does not exist yet (as Kafka does on
    /// the first group request) and waits until every shard this node leads is loaded.
    pub async fn ensure_loaded(&self, broker: &Broker) -> Result<(), ErrorCode> {
        if broker
            .image()
            .topic(OFFSETS_TOPIC)
            .is_some_and(|t| t.partitions.len() == self.runtime.loaded_count())
        {
            return Ok(());
        }
        if broker.image().topic(OFFSETS_TOPIC).is_none() {
            let _creating = self.creating.lock().await;
            if broker.image().topic(OFFSETS_TOPIC).is_none() {
                create_offsets_topic(broker).await?;
            }
        }
        self.runtime.wait_for_loads(broker, OFFSETS_TOPIC).await
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
        self.runtime.for_each_shard(|shard, now| {
            let mut output = shard.set_topic_metadata(now, &topics);
            if !deleted.is_empty() {
                merge(&mut output, shard.topics_deleted(now, &deleted));
            }
            output.into()
        });
    }

    /// Loads a shard for every hosted `__consumer_offsets` partition not loaded yet.
    pub fn load_shards(&self, broker: &Broker) {
        let Some(topic) = broker.image().topic(OFFSETS_TOPIC).cloned() else {
            return;
        };
        for index in topic.partitions.keys() {
            let partition = broker.partition(OFFSETS_TOPIC, *index);
            if !self.runtime.follow_leadership(*index, partition.as_deref()) {
                continue;
            }
            let Some(partition) = partition else { continue };
            let mut fresh =
                GroupCoordinatorShard::new(self.config.clone()).with_member_id_seed(random_seed());
            fresh.set_group_configs(
                self.group_configs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            );
            let topics = self
                .topics
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            // After the replay the shard learns the topics (consumer groups wait for them).
            let start = |shard: &mut GroupCoordinatorShard, now| -> GroupOutput {
                shard.set_topic_metadata(now, &topics).into()
            };
            if let Err(e) = self.runtime.load(*index, partition, fresh, start) {
                warn!(partition = index, error = %e, "loading a group coordinator shard failed");
            }
        }
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
        self.runtime
            .call(index, op)
            .await
            .map(|(reply, _no_effects)| reply)
    }

    /// Runs `op` on every loaded shard (ListGroups) and returns their replies.
    pub async fn call_all(
        &self,
        broker: &Broker,
        op: impl Fn(&mut GroupCoordinatorShard, i64, u64) -> Output,
    ) -> Result<Vec<Reply>, ErrorCode> {
        self.ensure_loaded(broker).await?;
        Ok(self
            .runtime
            .call_all(|shard, now, id| op(shard, now, id).into())
            .await)
    }

    /// Writes a transaction marker to the `__consumer_offsets` partition `index`.
    pub(crate) async fn write_marker(
        &self,
        index: i32,
        producer: BatchProducer,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<(), ErrorCode> {
        self.runtime
            .write_marker(index, producer, coordinator_epoch, commit)
            .await
            .map(|_no_effects| ())
    }
}

/// Runs shard timers until the task is dropped.
pub async fn run_timers(broker: Arc<Broker>) {
    let runtime = RuntimeRef(broker);
    crate::coordinator_runtime::run_timers(runtime, |_: Vec<Infallible>| async {}).await;
}

/// The group runtime, reached through the broker that owns it.
struct RuntimeRef(Arc<Broker>);

impl std::ops::Deref for RuntimeRef {
    type Target = CoordinatorRuntime<GroupCoordinatorShard>;
    fn deref(&self) -> &Self::Target {
        &self.0.groups.runtime
    }
}

async fn create_offsets_topic(broker: &Broker) -> Result<(), ErrorCode> {
    let config = &broker.config;
    ensure_created(
        broker,
        &InternalTopic {
            name: OFFSETS_TOPIC,
            partitions: config.offsets_topic_num_partitions,
            replication_factor: config.offsets_topic_replication_factor,
            segment_bytes: config.offsets_topic_segment_bytes,
            min_insync_replicas: None,
            compression: "producer",
        },
    )
    .await
}

fn merge(into: &mut Output, other: Output) {
    into.records.extend(other.records);
    into.transactional_records
        .extend(other.transactional_records);
    into.replies.extend(other.replies);
}

fn random_seed() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0
}
