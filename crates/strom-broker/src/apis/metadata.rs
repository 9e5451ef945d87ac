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
use strom_metadata::{MetadataImage, PartitionImage, TopicImage};
use strom_types::{validate_topic_name, ErrorCode, TopicId};
use tracing::info;

use super::{
    Authz, Handler, Operation, RequestContext, ResourceType, AUTHORIZED_OPERATIONS_OMITTED,
};
use crate::broker::Broker;

pub struct MetadataHandler;

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
        let authz = ctx.authz(&broker);
        let mut topics = Vec::new();
        // v0 has no null list: there an empty list asks for every topic.
        let requested = request
            .topics
            .as_ref()
            .filter(|t| !t.is_empty() || ctx.api_version > 0);
        match requested {
            None => {
                let image = broker.image();
                let listener = &*ctx.listener_name;
                // Topics the caller may not describe are left out, as in Kafka.
                topics.extend(
                    image
                        .topics()
                        .filter(|t| authz.allows_topic(Operation::Describe, &t.name))
                        .map(|t| topic_response(&image, listener, t, ctx.api_version)),
                );
            }
            Some(requested) => {
                for wanted in requested {
                    let response = match &wanted.name {
                        Some(name) => {
                            by_name(
                                &broker,
                                &authz,
                                &ctx.listener_name,
                                name,
                                allow_auto_create,
                                ctx.api_version,
                            )
                            .await
                        }
                        None => by_id(
                            &broker.image(),
                            &authz,
                            &ctx.listener_name,
                            wanted.topic_id,
                            ctx.api_version,
                        ),
                    };
                    topics.push(response);
                }
            }
        }
        if ctx.api_version >= 8 && request.include_topic_authorized_operations {
            for topic in topics.iter_mut().filter(|t| t.error_code == 0) {
                if let Some(name) = &topic.name {
                    topic.topic_authorized_operations =
                        authz.authorized_operations(ResourceType::Topic, name);
                }
            }
        }
        // v8 to v10 may ask for the cluster's (later versions use DescribeCluster).
        let cluster_operations = if (8..=10).contains(&ctx.api_version)
            && request.include_cluster_authorized_operations
        {
            if authz.allows_cluster(Operation::Describe) {
                authz.authorized_operations(ResourceType::Cluster, super::CLUSTER_NAME)
            } else {
                0
            }
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        };
        let image = broker.image();
        // cluster_id exists from v2, controller_id from v1.
        MetadataResponse::default()
            .with_brokers(alive_brokers(&image, &ctx.listener_name))
            .with_cluster_id(
                (ctx.api_version >= 2).then(|| StrBytes::from_string(broker.cluster_id.clone())),
            )
            .with_controller_id(BrokerId(if ctx.api_version >= 1 {
                broker.controller_id_for_clients()
            } else {
                -1
            }))
            .with_topics(topics)
            .with_cluster_authorized_operations(cluster_operations)
    }
}

/// The brokers clients may use, as Kafka's MetadataCache lists them: registered, not
/// fenced, with an endpoint on the listener. Partitions still name the others.
pub fn alive_brokers(image: &MetadataImage, listener: &str) -> Vec<MetadataResponseBroker> {
    image
        .brokers()
        .filter(|b| !b.fenced)
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

/// A replica clients can reach: its broker is registered, unfenced and on the listener.
fn is_alive(image: &MetadataImage, id: i32, listener: &str) -> bool {
    image
        .broker(id)
        .is_some_and(|b| !b.fenced && b.endpoints.iter().any(|e| e.listener == listener))
}

/// Kafka's isReplicaInOfflineDir: the replica's log dir is not among its broker's online ones
/// (the broker reported it offline in a heartbeat).
fn in_offline_dir(image: &MetadataImage, p: &PartitionImage, id: i32) -> bool {
    image
        .broker(id)
        .is_some_and(|b| !b.has_online_dir(p.directory(id)))
}

async fn by_name(
    broker: &Arc<Broker>,
    authz: &Authz<'_>,
    listener: &str,
    name: &TopicName,
    allow_auto_create: bool,
    version: i16,
) -> MetadataResponseTopic {
    let error = |code: ErrorCode| {
        MetadataResponseTopic::default()
            .with_name(Some(name.clone()))
            .with_error_code(code.code())
            .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
    };
    // Whether a topic exists is not disclosed to who may not describe it.
    if !authz.allows_topic(Operation::Describe, name) {
        return error(ErrorCode::TopicAuthorizationFailed);
    }
    let image = broker.image();
    if let Some(topic) = image.topic(name) {
        return topic_response(&image, listener, topic, version);
    }
    if validate_topic_name(name).is_err() {
        return error(ErrorCode::InvalidTopicException);
    }
    if !allow_auto_create || !broker.config.auto_create_topics_enable {
        return error(ErrorCode::UnknownTopicOrPartition);
    }
    if !authz.allows_cluster(Operation::Create) && !authz.allows_topic(Operation::Create, name) {
        return error(ErrorCode::TopicAuthorizationFailed);
    }
    match auto_create(broker, name).await {
        Ok(()) => {
            let image = broker.image();
            match image.topic(name) {
                Some(topic) => topic_response(&image, listener, topic, version),
                None => error(ErrorCode::LeaderNotAvailable),
            }
        }
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

fn by_id(
    image: &MetadataImage,
    authz: &Authz<'_>,
    listener: &str,
    id: TopicId,
    version: i16,
) -> MetadataResponseTopic {
    match image.topic_by_id(&id) {
        Some(topic) if !authz.allows_topic(Operation::Describe, &topic.name) => {
            MetadataResponseTopic::default()
                .with_topic_id(id)
                .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
        }
        Some(topic) => topic_response(image, listener, topic, version),
        None => MetadataResponseTopic::default()
            .with_topic_id(id)
            .with_error_code(ErrorCode::UnknownTopicId.code())
            .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
    }
}

/// One partition as Kafka's KRaftMetadataCache reports it: offline replicas are those on
/// brokers that are unregistered, fenced or not on the listener, or in a log dir their broker
/// reported offline; a leader that is not
/// registered (or none, -1) is LEADER_NOT_AVAILABLE, one without the listener
/// LISTENER_NOT_FOUND (v6+), both with leader -1. v0 lists only reachable replicas and
/// says REPLICA_NOT_AVAILABLE when it left some out.
fn partition_response(
    image: &MetadataImage,
    listener: &str,
    p: &PartitionImage,
    version: i16,
) -> MetadataResponsePartition {
    let reachable_only = version == 0;
    let listed = |ids: &[i32]| -> Vec<BrokerId> {
        ids.iter()
            .copied()
            .filter(|&id| !reachable_only || is_alive(image, id, listener))
            .map(BrokerId)
            .collect()
    };
    let replicas = listed(&p.replicas);
    let isr = listed(&p.isr);
    let offline: Vec<BrokerId> = p
        .replicas
        .iter()
        .copied()
        .filter(|&id| !is_alive(image, id, listener) || in_offline_dir(image, p, id))
        .map(BrokerId)
        .collect();
    let leader = image.broker(p.leader);
    let leader_reachable =
        leader.is_some_and(|b| b.endpoints.iter().any(|e| e.listener == listener));
    let (error, leader_id) = if leader.is_none() {
        (Some(ErrorCode::LeaderNotAvailable), -1)
    } else if !leader_reachable {
        let error = if version >= 6 {
            ErrorCode::ListenerNotFound
        } else {
            ErrorCode::LeaderNotAvailable
        };
        (Some(error), -1)
    } else if replicas.len() < p.replicas.len() || isr.len() < p.isr.len() {
        (Some(ErrorCode::ReplicaNotAvailable), p.leader)
    } else {
        (None, p.leader)
    };
    MetadataResponsePartition::default()
        .with_error_code(error.map_or(0, |e| e.code()))
        .with_partition_index(p.partition)
        .with_leader_id(BrokerId(leader_id))
        .with_leader_epoch(if version >= 7 { p.leader_epoch } else { -1 })
        .with_replica_nodes(replicas)
        .with_isr_nodes(isr)
        .with_offline_replicas(offline)
}

/// Fields by version: is_internal v1+, offline_replicas v5+, leader_epoch v7+, topic_id v10+.
fn topic_response(
    image: &MetadataImage,
    listener: &str,
    topic: &TopicImage,
    version: i16,
) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .values()
        .map(|p| partition_response(image, listener, p, version))
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

#[cfg(test)]
mod tests {
    use super::*;
    use strom_metadata::{BrokerEndpoint, MetadataRecord, NO_LEADER};

    fn register(id: i32, listener: &str, fenced: bool) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            log_dirs: vec![],
            broker_id: id,
            endpoints: vec![BrokerEndpoint {
                listener: listener.to_owned(),
                host: "127.0.0.1".to_owned(),
                port: 9090 + id as u16,
            }],
            rack: None,
            incarnation_id: None,
            broker_epoch: 10 + i64::from(id),
            fenced,
            in_controlled_shutdown: false,
        }
    }

    fn partition(topic_id: TopicId, index: i32, replicas: &[i32], leader: i32) -> MetadataRecord {
        MetadataRecord::Partition {
            directories: vec![],
            topic_id,
            partition: index,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            leader,
            leader_epoch: 4,
            partition_epoch: 6,
            removing_replicas: Vec::new(),
            adding_replicas: Vec::new(),
            elr: Vec::new(),
            last_known_elr: Vec::new(),
            leader_recovery_state: Default::default(),
        }
    }

    /// Brokers 1 (alive), 2 (fenced), 4 (alive but only on another listener); 3 never
    /// registered. Partition 0 on 1,2,3 led by 1; 1 has no leader; 2 is led by 4.
    fn image() -> MetadataImage {
        let id = TopicId::from_u128(7);
        MetadataImage::default().apply(&[
            register(1, "PLAINTEXT", false),
            register(2, "PLAINTEXT", true),
            register(4, "INTERNAL", false),
            MetadataRecord::Topic {
                name: "orders".to_owned(),
                topic_id: id,
            },
            partition(id, 0, &[1, 2, 3], 1),
            partition(id, 1, &[2, 3], NO_LEADER),
            partition(id, 2, &[4, 1], 4),
        ])
    }

    /// Index, error, leader, leader epoch, replicas, ISR, offline replicas.
    type PartitionRow = (i32, i16, i32, i32, Vec<i32>, Vec<i32>, Vec<i32>);

    fn ids(ids: &[BrokerId]) -> Vec<i32> {
        ids.iter().map(|b| b.0).collect()
    }

    #[test]
    fn fenced_and_unreachable_brokers_are_left_out_of_the_broker_list() {
        let listed: Vec<(i32, i32)> = alive_brokers(&image(), "PLAINTEXT")
            .iter()
            .map(|b| (b.node_id.0, b.port))
            .collect();
        assert_eq!(listed, vec![(1, 9091)]);
        // Unfencing lists it.
        let unfenced = image().apply(&[MetadataRecord::BrokerRegistrationChange {
            log_dirs: None,
            broker_id: 2,
            broker_epoch: 12,
            fenced: Some(false),
            in_controlled_shutdown: None,
        }]);
        let listed: Vec<i32> = alive_brokers(&unfenced, "PLAINTEXT")
            .iter()
            .map(|b| b.node_id.0)
            .collect();
        assert_eq!(listed, vec![1, 2]);
    }

    #[test]
    fn partitions_name_offline_replicas_and_a_missing_leader() {
        let image = image();
        let topic = image.topic("orders").unwrap();
        let response = topic_response(&image, "PLAINTEXT", topic, 13);
        let got: Vec<PartitionRow> = response
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition_index,
                    p.error_code,
                    p.leader_id.0,
                    p.leader_epoch,
                    ids(&p.replica_nodes),
                    ids(&p.isr_nodes),
                    ids(&p.offline_replicas),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 1, 4, vec![1, 2, 3], vec![1, 2, 3], vec![2, 3]),
                // LEADER_NOT_AVAILABLE
                (1, 5, -1, 4, vec![2, 3], vec![2, 3], vec![2, 3]),
                // LISTENER_NOT_FOUND: the leader has no PLAINTEXT endpoint.
                (2, 72, -1, 4, vec![4, 1], vec![4, 1], vec![4]),
            ]
        );
    }

    #[test]
    fn a_replica_in_a_dir_its_broker_reported_offline_is_offline() {
        let id = TopicId::from_u128(8);
        let (dir_a, dir_b) = (uuid::Uuid::from_u128(100), uuid::Uuid::from_u128(101));
        let mut record = partition(id, 0, &[1, 5], 1);
        if let MetadataRecord::Partition { directories, .. } = &mut record {
            *directories = vec![dir_a, dir_b];
        }
        let mut second = partition(id, 1, &[5, 1], 5);
        if let MetadataRecord::Partition { directories, .. } = &mut second {
            *directories = vec![dir_a, dir_a];
        }
        let image = image().apply(&[
            register(5, "PLAINTEXT", false),
            MetadataRecord::Topic {
                name: "dirs".to_owned(),
                topic_id: id,
            },
            record,
            second,
        ]);
        let offline = |image: &MetadataImage| -> Vec<Vec<i32>> {
            topic_response(image, "PLAINTEXT", image.topic("dirs").unwrap(), 13)
                .partitions
                .iter()
                .map(|p| ids(&p.offline_replicas))
                .collect()
        };
        // Brokers that report no dirs have every dir online.
        assert_eq!(offline(&image), vec![Vec::<i32>::new(), vec![]]);
        // Broker 5 reports dir_a online, dir_b offline: its replica in dir_b is offline.
        let image = image.apply(&[MetadataRecord::BrokerRegistrationChange {
            broker_id: 5,
            broker_epoch: 15,
            fenced: None,
            in_controlled_shutdown: None,
            log_dirs: Some(vec![dir_a]),
        }]);
        assert_eq!(offline(&image), vec![vec![5], vec![]]);
    }

    #[test]
    fn old_versions_get_their_errors_and_v0_only_reachable_replicas() {
        let image = image();
        let topic = image.topic("orders").unwrap();
        let v5 = topic_response(&image, "PLAINTEXT", topic, 5);
        let codes: Vec<i16> = v5.partitions.iter().map(|p| p.error_code).collect();
        assert_eq!(codes, vec![0, 5, 5]);
        let v0 = topic_response(&image, "PLAINTEXT", topic, 0);
        let got: Vec<(i16, i32, Vec<i32>, Vec<i32>)> = v0
            .partitions
            .iter()
            .map(|p| {
                (
                    p.error_code,
                    p.leader_id.0,
                    ids(&p.replica_nodes),
                    ids(&p.isr_nodes),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                // REPLICA_NOT_AVAILABLE: 2 and 3 left out.
                (9, 1, vec![1], vec![1]),
                (5, -1, vec![], vec![]),
                (5, -1, vec![1], vec![1]),
            ]
        );
    }
}
