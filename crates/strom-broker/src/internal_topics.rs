//! The compacted topics the coordinators keep their state in (`__consumer_offsets`,
//! `__transaction_state`), created on first use as Kafka does.

use strom_metadata::controller::{create_topic, NewTopic, TopicDefaults};
use strom_types::{ErrorCode, TopicId};
use tracing::{info, warn};

use crate::broker::Broker;

/// How an internal topic is made.
pub struct InternalTopic {
    pub name: &'static str,
    pub partitions: i32,
    /// Capped at the live brokers, so a single broker works with no configuration.
    pub replication_factor: i16,
    pub segment_bytes: i32,
    /// `min.insync.replicas`, capped at the replication factor used; `None` keeps the default.
    pub min_insync_replicas: Option<i32>,
    /// `compression.type` of the topic.
    pub compression: &'static str,
}

/// Creates `topic` unless it exists. Any failure is COORDINATOR_NOT_AVAILABLE to the
/// client, which retries.
pub async fn ensure_created(broker: &Broker, topic: &InternalTopic) -> Result<(), ErrorCode> {
    let name = topic.name;
    let defaults = TopicDefaults {
        num_partitions: broker.config.num_partitions,
        replication_factor: broker.config.default_replication_factor,
    };
    let settings = |image: &strom_metadata::MetadataImage| {
        let live_brokers = image.brokers().filter(|b| !b.fenced).count().max(1) as i16;
        let replication_factor = topic.replication_factor.min(live_brokers).max(1);
        let mut configs: Vec<(String, Option<String>)> = vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("compression.type".into(), Some(topic.compression.into())),
            (
                "segment.bytes".into(),
                Some(topic.segment_bytes.to_string()),
            ),
        ];
        if let Some(min_isr) = topic.min_insync_replicas {
            let min_isr = min_isr.clamp(1, i32::from(replication_factor));
            configs.push(("min.insync.replicas".into(), Some(min_isr.to_string())));
        }
        (replication_factor, configs)
    };
    if broker.forwards(kafka_protocol::messages::ApiKey::CreateTopics as i16) {
        if broker.image().topic(name).is_some() {
            return Ok(());
        }
        let (replication_factor, configs) = settings(&broker.image());
        return broker
            .create_topic_on_controller(name, topic.partitions, replication_factor, &configs)
            .await
            .map_err(|code| {
                warn!(error = ?code, "creating {name} through the controller failed");
                ErrorCode::CoordinatorNotAvailable
            });
    }
    let created = broker
        .write_metadata(|image| {
            if image.topic(name).is_some() {
                return Ok((Vec::new(), false));
            }
            let (replication_factor, configs) = settings(image);
            let spec = NewTopic {
                name: name.to_string(),
                num_partitions: topic.partitions,
                replication_factor,
                assignments: Vec::new(),
                configs,
            };
            create_topic(image, &spec, defaults, TopicId::new_v4())
                .map(|(records, _)| (records, true))
        })
        .await
        .map_err(|e| {
            let (_, message) =
                e.into_error(|e| (ErrorCode::CoordinatorNotAvailable, e.to_string()));
            warn!(error = %message, "creating {name} failed");
            ErrorCode::CoordinatorNotAvailable
        })?;
    if created {
        info!(partitions = topic.partitions, "created {name}");
    }
    Ok(())
}
