//! A topic's effective settings, resolved from its overrides, the broker's
//! configs and Kafka's defaults, and turned into what the log and the
//! produce path need.

use strom_log::{CompactionPolicy, LogConfig};
use strom_metadata::topic_config::{
    resolve_topic_configs, split_list, BrokerConfigLookup, ResolvedConfig,
};
use strom_metadata::{ConfigResource, MetadataImage};
use strom_wire::batch::{Compression, TimestampType};

/// What `compression.type` asks of stored batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCompression {
    /// Keep whatever codec the producer used.
    Producer,
    Codec(Compression),
}

#[derive(Debug, Clone)]
pub struct TopicSettings {
    pub log: LogConfig,
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    pub compression: TopicCompression,
    pub min_insync_replicas: usize,
    /// `cleanup.policy` includes `delete`: retention by time and size applies.
    pub cleanup_delete: bool,
    /// `cleanup.policy` includes `compact`: the cleaner keeps the latest record per key.
    pub cleanup_compact: bool,
    pub compaction: CompactionPolicy,
    /// `leader.replication.throttled.replicas`, as set (parsed per broker where used).
    pub leader_throttled_replicas: String,
    /// `follower.replication.throttled.replicas`, as set.
    pub follower_throttled_replicas: String,
    /// `confluent.key.schema.validation` and `confluent.value.schema.validation`.
    pub schema_validation: crate::schema_validation::SchemaValidation,
}

pub fn resolve(
    image: &MetadataImage,
    broker: &dyn BrokerConfigLookup,
    topic: &str,
) -> TopicSettings {
    let overrides = image.configs(&ConfigResource::Topic(topic.to_string()));
    let mut settings = from_resolved(&resolve_topic_configs(&overrides, broker));
    // Broker-wide producer-state settings the log needs.
    let broker_value = |name: &str| {
        broker
            .broker_config(name)
            .first()
            .and_then(|(v, _)| v.trim().parse::<i64>().ok())
    };
    if let Some(ms) = broker_value("producer.id.expiration.ms") {
        settings.log.producer_id_expiration_ms = ms;
        settings.compaction.producer_id_expiration_ms = ms;
    }
    if let Some(max) = broker_value("strom.producer.ids.per.partition.max") {
        settings.log.max_producer_ids = usize::try_from(max.max(1)).unwrap_or(usize::MAX);
    }
    settings
}

fn from_resolved(configs: &[ResolvedConfig]) -> TopicSettings {
    let get = |name: &str| -> &str {
        configs
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value.as_str())
            .unwrap_or_default()
    };
    let long = |name: &str, default: i64| get(name).trim().parse::<i64>().unwrap_or(default);
    let cleanup_compact = split_list(get("cleanup.policy")).any(|p| p == "compact");
    let max_compaction_lag_ms = long("max.compaction.lag.ms", i64::MAX);
    // Kafka rolls a compacted log by max.compaction.lag.ms too, so idle partitions get cleaned.
    let segment_ms = long("segment.ms", 604_800_000);
    let segment_ms = if cleanup_compact {
        segment_ms.min(max_compaction_lag_ms)
    } else {
        segment_ms
    };
    let log = LogConfig {
        segment_bytes: long("segment.bytes", 1 << 30).max(1) as u64,
        segment_ms,
        segment_jitter_ms: long("segment.jitter.ms", 0),
        retention_ms: long("retention.ms", 604_800_000),
        retention_bytes: long("retention.bytes", -1),
        index_interval_bytes: long("index.interval.bytes", 4096).clamp(0, u32::MAX as i64) as u32,
        segment_index_bytes: long("segment.index.bytes", 10_485_760).clamp(4, u32::MAX as i64)
            as u32,
        flush_messages: long("flush.messages", i64::MAX),
        flush_ms: long("flush.ms", i64::MAX),
        file_delete_delay_ms: long("file.delete.delay.ms", 60_000),
        ..LogConfig::default()
    };
    let compression = match get("compression.type") {
        "producer" => TopicCompression::Producer,
        "gzip" => TopicCompression::Codec(Compression::Gzip),
        "snappy" => TopicCompression::Codec(Compression::Snappy),
        "lz4" => TopicCompression::Codec(Compression::Lz4),
        "zstd" => TopicCompression::Codec(Compression::Zstd),
        _ => TopicCompression::Codec(Compression::None),
    };
    TopicSettings {
        log,
        max_message_bytes: long("max.message.bytes", 1_048_588).max(0) as usize,
        timestamp_type: if get("message.timestamp.type") == "LogAppendTime" {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        timestamp_before_max_ms: long("message.timestamp.before.max.ms", i64::MAX),
        timestamp_after_max_ms: long("message.timestamp.after.max.ms", 3_600_000),
        compression,
        min_insync_replicas: long("min.insync.replicas", 1).max(1) as usize,
        cleanup_delete: split_list(get("cleanup.policy")).any(|p| p == "delete"),
        cleanup_compact,
        compaction: CompactionPolicy {
            delete_retention_ms: long("delete.retention.ms", 86_400_000),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .trim()
                .parse()
                .unwrap_or(0.5),
            min_compaction_lag_ms: long("min.compaction.lag.ms", 0),
            max_compaction_lag_ms,
            ..CompactionPolicy::default()
        },
        leader_throttled_replicas: get("leader.replication.throttled.replicas").to_string(),
        follower_throttled_replicas: get("follower.replication.throttled.replicas").to_string(),
        schema_validation: crate::schema_validation::SchemaValidation {
            key: get("confluent.key.schema.validation") == "true",
            value: get("confluent.value.schema.validation") == "true",
        },
    }
}
