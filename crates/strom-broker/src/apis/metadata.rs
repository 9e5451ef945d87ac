//! Metadata: brokers, the controller, and topics with their partitions.
//! Topics asked for by name may be auto-created (auto.create.topics.enable).

use crate::broker::MetadataWriteError;
use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::controller::{create_topic, NewTopic, TopicDefaults};
use strom_metadata::{MetadataImage, TopicImage};
use strom_types::{validate_topic_name, ErrorCode, TopicId};
use tracing::info;

use super::{Handler, RequestContext};
use crate::broker::Broker;

pub struct MetadataHandler;

/// Operations are not computed (no ACLs yet); Kafka's "not requested" value.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

impl Handler for MetadataHandler {
    type Request = MetadataRequest;
    const KEY: ApiKey = ApiKey::Metadata;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 13 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: MetadataRequest,
    ) -> MetadataResponse {
        // v0 has no flag: it always auto-creates.
        let allow_auto_create = ctx.api_version < 4 || request.allow_auto_topic_creation;
        let mut topics = Vec::new();
        // v0 has no null list: there an empty list asks for every topic.
        let requested = request
            .topics
            .as_ref()
            .filter(|t| !t.is_empty() || ctx.api_version > 0);
        match requested {
            None => {
                let image = broker.image();
                topics.extend(image.topics().map(|t| topic_response(t, ctx.api_version)));
            }
            Some(requested) => {
                for wanted in requested {
                    let response = match &wanted.name {
                        Some(name) => {
                            by_name(&broker, name, allow_auto_create, ctx.api_version).await
                        }
                        None => by_id(&broker.image(), wanted.topic_id, ctx.api_version),
                    };
                    topics.push(response);
                }
            }
        }
        let image = broker.image();
        // cluster_id exists from v2, controller_id from v1.
        MetadataResponse::default()
            .with_brokers(brokers(&broker, &image))
            .with_cluster_id(
                (ctx.api_version >= 2).then(|| StrBytes::from_string(broker.cluster_id.clone())),
            )
            .with_controller_id(BrokerId(if ctx.api_version >= 1 {
                broker.controller_id_for_clients()
            } else {
                -1
            }))
            .with_topics(topics)
            .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
    }
}

pub fn brokers(broker: &Broker, image: &MetadataImage) -> Vec<MetadataResponseBroker> {
    let listener = broker
        .config
        .advertised_listeners
        .first()
        .map(|l| l.name.as_str())
        .unwrap_or("PLAINTEXT");
    image
        .brokers()
        .filter_map(|b| {
            let endpoint = b.endpoints.iter().find(|e| e.listener == listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(endpoint.host.clone()))
                    .with_port(endpoint.port as i32)
                    .with_rack(b.rack.clone().map(StrBytes::from_string)),
            )
        })
        .collect()
}

async fn by_name(
    broker: &Arc<Broker>,
    name: &TopicName,
    allow_auto_create: bool,
    version: i16,
) -> MetadataResponseTopic {
    let image = broker.image();
    if let Some(topic) = image.topic(name) {
        return topic_response(topic, version);
    }
    let error = |code: ErrorCode| {
        MetadataResponseTopic::default()
            .with_name(Some(name.clone()))
            .with_error_code(code.code())
            .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
    };
    if validate_topic_name(name).is_err() {
        return error(ErrorCode::InvalidTopicException);
    }
    if !allow_auto_create || !broker.config.auto_create_topics_enable {
        return error(ErrorCode::UnknownTopicOrPartition);
    }
    match auto_create(broker, name).await {
        Ok(()) => match broker.image().topic(name) {
            Some(topic) => topic_response(topic, version),
            None => error(ErrorCode::LeaderNotAvailable),
        },
        Err(code) => error(code),
    }
}

async fn auto_create(broker: &Arc<Broker>, name: &str) -> Result<(), ErrorCode> {
    let spec = NewTopic {
        name: name.to_string(),
        num_partitions: -1,
        replication_factor: -1,
        ..Default::default()
    };
    if broker.forwards(ApiKey::CreateTopics as i16) {
        return broker.create_topic_on_controller(name, -1, -1, &[]).await;
    }
    let defaults = TopicDefaults {
        num_partitions: broker.config.num_partitions,
        replication_factor: broker.config.default_replication_factor,
    };
    let created = broker
        .write_metadata(|image| {
            if image.topic(name).is_some() {
                return Ok((Vec::new(), None));
            }
            create_topic(image, &spec, defaults, TopicId::new_v4())
                .map(|(records, created)| (records, Some(created)))
        })
        .await
        .map_err(|e: MetadataWriteError<_>| {
            e.into_error(|e| (crate::errors::controller_error_code(&e), String::new()))
                .0
        })?;
    if let Some(created) = created {
        info!(
            topic = name,
            partitions = created.num_partitions,
            "auto-created topic"
        );
    }
    Ok(())
}

fn by_id(image: &MetadataImage, id: TopicId, version: i16) -> MetadataResponseTopic {
    match image.topic_by_id(&id) {
        Some(topic) => topic_response(topic, version),
        None => MetadataResponseTopic::default()
            .with_topic_id(id)
            .with_error_code(ErrorCode::UnknownTopicId.code())
            .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
    }
}

/// Fields by version: is_internal v1+, offline_replicas v5+, leader_epoch v7+, topic_id v10+.
fn topic_response(topic: &TopicImage, version: i16) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .values()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(if version >= 10 {
            topic.id
        } else {
            TopicId::nil()
        })
        .with_is_internal(version >= 1 && topic.is_internal())
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}
