//! Controller operations. Each reads an image and returns the records that
//! carry out the change; it never changes the image itself. The caller
//! persists the records to the metadata log, then applies them.

use std::collections::{BTreeMap, BTreeSet};

use strom_types::{validate_topic_name, NodeId, TopicId};

use crate::broker_config::{
    broker_config_default, broker_config_kind, validate_dynamic_broker_config,
    validate_group_configs, GroupConfigLimits,
};
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::placement::{place_replicas, usable_brokers, PlacementRng};
use crate::records::{ConfigResource, MetadataRecord};
use crate::topic_config::{split_list, topic_config_def, validate_topic_config, ConfigType};

/// Broker-wide defaults a topic creation falls back to.
#[derive(Debug, Clone, Copy)]
pub struct TopicDefaults {
    pub num_partitions: i32,
    pub replication_factor: i16,
}

#[derive(Debug, Clone, Default)]
pub struct NewTopic {
    pub name: String,
    /// -1 means the broker default.
    pub num_partitions: i32,
    /// -1 means the broker default.
    pub replication_factor: i16,
    /// Explicit replica lists by partition index (then both counts are -1).
    pub assignments: Vec<(i32, Vec<NodeId>)>,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    pub topic_id: TopicId,
    pub num_partitions: i32,
    pub replication_factor: i16,
    pub configs: BTreeMap<String, String>,
}

/// Most partitions one request may create; keeps a typo from making millions.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 100_000;

/// Kafka's bound on the records one client request may write (QuorumController's
/// MAX_RECORDS_PER_USER_OP): a topic of 10,000 partitions or more is refused.
pub const MAX_RECORDS_PER_USER_OP: usize = 10_000;

fn within_batch_limit(
    records: Vec<MetadataRecord>,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    if records.len() > MAX_RECORDS_PER_USER_OP {
        return Err(ControllerError::PolicyViolation(
            "Unable to perform excessively large batch operation.".into(),
        ));
    }
    Ok(records)
}

/// Every registered broker: manual assignments may name any of them.
fn registered_brokers(image: &MetadataImage) -> Vec<NodeId> {
    image.brokers().map(|b| b.id).collect()
}

/// A placement seed that differs between topics and between growths of one topic.
fn placement_seed(topic_id: TopicId, first_partition: i32) -> u64 {
    let id = topic_id.as_u128();
    (id as u64) ^ ((id >> 64) as u64) ^ (first_partition as u64).rotate_left(32)
}

/// Kafka's placement for new partitions over the usable brokers.
fn place(
    image: &MetadataImage,
    topic_id: TopicId,
    first_partition: i32,
    partitions: i32,
    replication_factor: i32,
) -> Result<Vec<Vec<NodeId>>, ControllerError> {
    let mut rng = PlacementRng::new(placement_seed(topic_id, first_partition));
    place_replicas(
        &usable_brokers(image),
        (partitions - first_partition).max(0) as usize,
        replication_factor,
        &mut rng,
    )
}

/// The ISR of a new partition: its active replicas (the first leads).
fn initial_isrs(image: &MetadataImage, assignment: &[Vec<NodeId>]) -> Vec<Vec<NodeId>> {
    assignment
        .iter()
        .map(|replicas| {
            replicas
                .iter()
                .copied()
                .filter(|r| image.is_broker_active(*r))
                .collect()
        })
        .collect()
}

fn all_fenced(replication_factor: usize) -> ControllerError {
    ControllerError::InvalidReplicationFactor(format!(
        "Unable to replicate the partition {replication_factor} time(s): All brokers are currently fenced or in controlled shutdown."
    ))
}

fn manual_all_fenced(isrs: &[Vec<NodeId>], first_partition: i32) -> Result<(), ControllerError> {
    match isrs.iter().position(Vec::is_empty) {
        Some(i) => Err(ControllerError::InvalidReplicaAssignment(format!(
            "All brokers specified in the manual partition assignment for partition {} are fenced or in controlled shutdown.",
            first_partition + i as i32
        ))),
        None => Ok(()),
    }
}

/// Checks a topic creation against the image and returns its records.
pub fn create_topic(
    image: &MetadataImage,
    spec: &NewTopic,
    defaults: TopicDefaults,
    topic_id: TopicId,
) -> Result<(Vec<MetadataRecord>, CreatedTopic), ControllerError> {
    validate_topic_name(&spec.name).map_err(ControllerError::InvalidTopic)?;
    if image.topic(&spec.name).is_some() {
        return Err(ControllerError::TopicAlreadyExists(format!(
            "Topic '{}' already exists.",
            spec.name
        )));
    }
    if let Some(colliding) = image
        .topics()
        .find(|t| t.name != spec.name && collision_key(&t.name) == collision_key(&spec.name))
    {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{}' collides with existing topic: {}",
            spec.name, colliding.name
        )));
    }
    let brokers = registered_brokers(image);
    let (assignment, isrs) = if spec.assignments.is_empty() {
        let partitions = match spec.num_partitions {
            -1 => defaults.num_partitions,
            n if n <= 0 => {
                return Err(ControllerError::InvalidPartitions(
                    "Number of partitions must be larger than 0.".into(),
                ))
            }
            n => n,
        };
        if partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(ControllerError::InvalidPartitions(format!(
                "Number of partitions {partitions} exceeds the limit of {MAX_PARTITIONS_PER_TOPIC}."
            )));
        }
        let replication_factor = match spec.replication_factor {
            -1 => defaults.replication_factor,
            n if n <= 0 => {
                return Err(ControllerError::InvalidReplicationFactor(
                    "Replication factor must be larger than 0.".into(),
                ))
            }
            n => n,
        };
        let assignment =
            place(image, topic_id, 0, partitions, replication_factor as i32).map_err(|e| {
                ControllerError::InvalidReplicationFactor(format!(
                    "Unable to replicate the partition {replication_factor} time(s): {e}"
                ))
            })?;
        let isrs = initial_isrs(image, &assignment);
        if isrs.iter().any(Vec::is_empty) {
            return Err(all_fenced(replication_factor as usize));
        }
        (assignment, isrs)
    } else {
        if spec.num_partitions != -1 || spec.replication_factor != -1 {
            return Err(ControllerError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        let assignment = validate_manual_assignment(&spec.assignments, 0, &brokers)?;
        let isrs = initial_isrs(image, &assignment);
        manual_all_fenced(&isrs, 0)?;
        (assignment, isrs)
    };
    let configs = validate_new_configs(&spec.configs)?;
    let mut records = vec![MetadataRecord::Topic {
        name: spec.name.clone(),
        topic_id,
    }];
    records.extend(partition_records(topic_id, 0, &assignment, &isrs));
    records.extend(configs.iter().map(|(name, value)| MetadataRecord::Config {
        resource: ConfigResource::Topic(spec.name.clone()),
        name: name.clone(),
        value: Some(value.clone()),
    }));
    let replication_factor = assignment.first().map_or(0, |r| r.len()) as i16;
    Ok((
        within_batch_limit(records)?,
        CreatedTopic {
            topic_id,
            num_partitions: assignment.len() as i32,
            replication_factor,
            configs,
        },
    ))
}

/// Kafka forbids topics whose names differ only by '.' versus '_', since
/// metric names would collide.
fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

fn validate_manual_assignment(
    assignments: &[(i32, Vec<NodeId>)],
    first_partition: i32,
    brokers: &[NodeId],
) -> Result<Vec<Vec<NodeId>>, ControllerError> {
    let mut by_partition = BTreeMap::new();
    for (partition, replicas) in assignments {
        if by_partition.insert(*partition, replicas).is_some() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Partition {partition} is assigned more than once."
            )));
        }
    }
    let expected: Vec<i32> =
        (first_partition..first_partition + assignments.len() as i32).collect();
    if by_partition.keys().copied().collect::<Vec<_>>() != expected {
        return Err(ControllerError::InvalidReplicaAssignment(
            "Partitions should be a consecutive 0-based integer sequence".into(),
        ));
    }
    let mut result = Vec::with_capacity(by_partition.len());
    let mut replication_factor = None;
    for (partition, replicas) in by_partition {
        if replicas.is_empty() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Empty replica list specified in partition {partition}."
            )));
        }
        let distinct: BTreeSet<_> = replicas.iter().collect();
        if distinct.len() != replicas.len() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Duplicate brokers not allowed in replica assignment: {replicas:?} for partition id {partition}."
            )));
        }
        if let Some(unknown) = replicas.iter().find(|b| !brokers.contains(b)) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {unknown}, but no such broker is registered."
            )));
        }
        if *replication_factor.get_or_insert(replicas.len()) != replicas.len() {
            return Err(ControllerError::InvalidReplicaAssignment(
                "All partitions should have the same number of replicas.".into(),
            ));
        }
        result.push(replicas.clone());
    }
    Ok(result)
}

fn partition_records<'a>(
    topic_id: TopicId,
    first_partition: i32,
    assignment: &'a [Vec<NodeId>],
    isrs: &'a [Vec<NodeId>],
) -> impl Iterator<Item = MetadataRecord> + 'a {
    assignment
        .iter()
        .zip(isrs)
        .enumerate()
        .map(move |(i, (replicas, isr))| MetadataRecord::Partition {
            topic_id,
            partition: first_partition + i as i32,
            replicas: replicas.clone(),
            isr: isr.clone(),
            leader: isr.first().copied().unwrap_or(crate::records::NO_LEADER),
            leader_epoch: 0,
            partition_epoch: 0,
            removing_replicas: vec![],
            adding_replicas: vec![],
            elr: vec![],
            last_known_elr: vec![],
            leader_recovery_state: crate::records::LeaderRecoveryState::Recovered,
            // Each broker tells which dir it put its replica in (AssignReplicasToDirs).
            directories: vec![],
        })
}

fn validate_new_configs(
    configs: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, ControllerError> {
    let mut result = BTreeMap::new();
    for (name, value) in configs {
        let Some(value) = value else {
            return Err(ControllerError::InvalidConfig(format!(
                "Null value not supported for topic configs: {name}"
            )));
        };
        validate_topic_config(name, value).map_err(ControllerError::InvalidConfig)?;
        if result.insert(name.clone(), value.clone()).is_some() {
            return Err(ControllerError::InvalidRequest(format!(
                "Duplicate config key: {name}"
            )));
        }
    }
    Ok(result)
}

pub fn delete_topic(
    image: &MetadataImage,
    name: &str,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let topic = image.topic(name).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(
            "This server does not host this topic-partition.".into(),
        )
    })?;
    Ok(vec![MetadataRecord::RemoveTopic { topic_id: topic.id }])
}

pub fn delete_topic_by_id(
    image: &MetadataImage,
    topic_id: TopicId,
) -> Result<(String, Vec<MetadataRecord>), ControllerError> {
    let topic = image.topic_by_id(&topic_id).ok_or_else(|| {
        ControllerError::UnknownTopicId("This server does not host this topic ID.".into())
    })?;
    Ok((
        topic.name.clone(),
        vec![MetadataRecord::RemoveTopic { topic_id }],
    ))
}

/// CreatePartitions: grows a topic to `new_total` partitions.
pub fn create_partitions(
    image: &MetadataImage,
    name: &str,
    new_total: i32,
    assignments: Option<&[Vec<NodeId>]>,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let topic = image.topic(name).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(
            "This server does not host this topic-partition.".into(),
        )
    })?;
    let current = topic.partitions.len() as i32;
    if new_total < current {
        return Err(ControllerError::InvalidPartitions(format!(
            "The topic {name} currently has {current} partition(s); {new_total} would not be an increase."
        )));
    }
    if new_total == current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic already has {current} partition(s)."
        )));
    }
    if new_total > MAX_PARTITIONS_PER_TOPIC {
        return Err(ControllerError::InvalidPartitions(format!(
            "Number of partitions {new_total} exceeds the limit of {MAX_PARTITIONS_PER_TOPIC}."
        )));
    }
    let brokers = registered_brokers(image);
    let replication_factor = topic
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len());
    let assignment = match assignments {
        Some(lists) => {
            if lists.len() as i32 != new_total - current {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "Attempted to add {} additional partition(s), but only {} assignment(s) were specified.",
                    new_total - current,
                    lists.len()
                )));
            }
            let numbered: Vec<(i32, Vec<NodeId>)> = lists
                .iter()
                .enumerate()
                .map(|(i, r)| (current + i as i32, r.clone()))
                .collect();
            let validated = validate_manual_assignment(&numbered, current, &brokers)?;
            if validated.iter().any(|r| r.len() != replication_factor) {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "The manual partition assignment specifies a replication factor different from the topic's ({replication_factor})."
                )));
            }
            manual_all_fenced(&initial_isrs(image, &validated), current)?;
            validated
        }
        None => place(
            image,
            topic.id,
            current,
            new_total,
            replication_factor as i32,
        )?,
    };
    let isrs = initial_isrs(image, &assignment);
    if isrs.iter().any(Vec::is_empty) {
        return Err(all_fenced(replication_factor));
    }
    within_batch_limit(partition_records(topic.id, current, &assignment, &isrs).collect())
}

/// Claims the next block of `block_size` producer ids for a broker; returns
/// the record and the block's first id.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    broker_id: NodeId,
    block_size: i64,
) -> (Vec<MetadataRecord>, i64) {
    let start = image.next_producer_id();
    (
        vec![MetadataRecord::ProducerIds {
            broker_id,
            next_producer_id: start + block_size,
        }],
        start,
    )
}

/// One IncrementalAlterConfigs operation, with Kafka's operation codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    Set = 0,
    Delete = 1,
    Append = 2,
    Subtract = 3,
}

impl AlterOp {
    pub fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => Self::Set,
            1 => Self::Delete,
            2 => Self::Append,
            3 => Self::Subtract,
            _ => return None,
        })
    }
}

fn require_topic<'a>(
    image: &'a MetadataImage,
    name: &str,
) -> Result<&'a std::sync::Arc<crate::image::TopicImage>, ControllerError> {
    image.topic(name).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(
            "This server does not host this topic-partition.".into(),
        )
    })
}

/// IncrementalAlterConfigs on a topic. `current_effective` gives the value a
/// list config has now (override or default), which APPEND and SUBTRACT edit.
pub fn incremental_alter_topic_configs(
    image: &MetadataImage,
    topic: &str,
    ops: &[(String, AlterOp, Option<String>)],
    current_effective: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    require_topic(image, topic)?;
    for (name, _, _) in ops {
        topic_config_def(name).ok_or_else(|| {
            ControllerError::InvalidConfig(format!("Unknown topic config name: {name}"))
        })?;
    }
    let is_list =
        |name: &str| topic_config_def(name).is_some_and(|d| d.config_type == ConfigType::List);
    // The effective value (override or broker default) is what APPEND and SUBTRACT edit.
    let changes = apply_alter_ops(&BTreeMap::new(), ops, &is_list, current_effective)?;
    for (name, value) in &changes {
        if let (Some(def), Some(value)) = (topic_config_def(name), value) {
            def.validate(value)
                .map_err(ControllerError::InvalidConfig)?;
        }
    }
    Ok(config_records(
        &ConfigResource::Topic(topic.to_string()),
        changes,
    ))
}

/// Legacy AlterConfigs: the given set replaces every override the topic had.
pub fn replace_topic_configs(
    image: &MetadataImage,
    topic: &str,
    configs: &[(String, Option<String>)],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    require_topic(image, topic)?;
    let new = validate_new_configs(configs)?;
    let resource = ConfigResource::Topic(topic.to_string());
    let mut records: Vec<MetadataRecord> = image
        .configs(&resource)
        .into_keys()
        .filter(|name| !new.contains_key(name))
        .map(|name| MetadataRecord::Config {
            resource: resource.clone(),
            name,
            value: None,
        })
        .collect();
    records.extend(new.into_iter().map(|(name, value)| MetadataRecord::Config {
        resource: resource.clone(),
        name,
        value: Some(value),
    }));
    Ok(records)
}

/// Applies IncrementalAlterConfigs operations to a resource's dynamic configs.
/// APPEND and SUBTRACT edit the current value, or `default` when unset, and
/// need a list config. Returns each touched name with its new value.
fn apply_alter_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, AlterOp, Option<String>)],
    is_list: &dyn Fn(&str) -> bool,
    default: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>, ControllerError> {
    let mut seen = BTreeSet::new();
    let mut changes = Vec::with_capacity(ops.len());
    for (name, op, value) in ops {
        if !seen.insert(name.clone()) {
            return Err(ControllerError::InvalidRequest(format!(
                "Error due to duplicate config keys: {name}"
            )));
        }
        let new_value = match op {
            AlterOp::Delete => None,
            AlterOp::Set => Some(value.clone().ok_or_else(|| {
                ControllerError::InvalidRequest(format!("Null value not supported for: {name}"))
            })?),
            AlterOp::Append | AlterOp::Subtract => {
                if !is_list(name) {
                    let op = if *op == AlterOp::Append {
                        "APPEND"
                    } else {
                        "SUBTRACT"
                    };
                    return Err(ControllerError::InvalidConfig(format!(
                        "Can't {op} to key {name} because its type is not LIST."
                    )));
                }
                let base = current.get(name).cloned().or_else(|| default(name));
                let mut items: Vec<String> = split_list(base.as_deref().unwrap_or(""))
                    .map(str::to_string)
                    .collect();
                let given: Vec<String> = split_list(value.as_deref().unwrap_or(""))
                    .map(str::to_string)
                    .collect();
                if *op == AlterOp::Append {
                    for item in given {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                Some(items.join(","))
            }
        };
        changes.push((name.clone(), new_value));
    }
    Ok(changes)
}

fn config_records(
    resource: &ConfigResource,
    changes: Vec<(String, Option<String>)>,
) -> Vec<MetadataRecord> {
    changes
        .into_iter()
        .map(|(name, value)| MetadataRecord::Config {
            resource: resource.clone(),
            name,
            value,
        })
        .collect()
}

fn validate_broker_changes(
    broker: Option<NodeId>,
    changes: &[(String, Option<String>)],
) -> Result<(), ControllerError> {
    for (name, value) in changes {
        // Removing a dynamic value is always allowed; setting one is checked.
        if let Some(value) = value {
            validate_dynamic_broker_config(name, Some(value), broker.is_some())
                .map_err(ControllerError::InvalidConfig)?;
        }
    }
    Ok(())
}

/// IncrementalAlterConfigs on one broker's dynamic configs, or on the
/// cluster-wide default (`None`).
pub fn incremental_alter_broker_configs(
    image: &MetadataImage,
    broker: Option<NodeId>,
    ops: &[(String, AlterOp, Option<String>)],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let resource = ConfigResource::Broker(broker);
    let is_list =
        |name: &str| broker_config_kind(name).and_then(|k| k.config_type) == Some(ConfigType::List);
    let changes = apply_alter_ops(
        &image.configs(&resource),
        ops,
        &is_list,
        &broker_config_default,
    )?;
    validate_broker_changes(broker, &changes)?;
    Ok(config_records(&resource, changes))
}

/// Legacy AlterConfigs on a broker: the given set replaces its dynamic configs.
pub fn replace_broker_configs(
    image: &MetadataImage,
    broker: Option<NodeId>,
    configs: &[(String, Option<String>)],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let resource = ConfigResource::Broker(broker);
    let mut changes: Vec<(String, Option<String>)> = image
        .configs(&resource)
        .into_keys()
        .filter(|name| !configs.iter().any(|(n, _)| n == name))
        .map(|name| (name, None))
        .collect();
    for (name, value) in configs {
        if changes.iter().any(|(n, _)| n == name) {
            return Err(ControllerError::InvalidRequest(format!(
                "Error due to duplicate config keys: {name}"
            )));
        }
        changes.push((name.clone(), value.clone()));
    }
    validate_broker_changes(broker, &changes)?;
    Ok(config_records(&resource, changes))
}

/// IncrementalAlterConfigs on a group's configs (KIP-848), checked against
/// the broker's bounds as a whole set, as Kafka's `GroupConfig` does.
pub fn incremental_alter_group_configs(
    image: &MetadataImage,
    group: &str,
    ops: &[(String, AlterOp, Option<String>)],
    limits: &GroupConfigLimits,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    if group.is_empty() {
        return Err(ControllerError::InvalidRequest(
            "Default group resources are not allowed.".into(),
        ));
    }
    let resource = ConfigResource::Group(group.to_string());
    let mut next = image.configs(&resource);
    let changes = apply_alter_ops(&next, ops, &|_| false, &|_| None)?;
    for (name, value) in &changes {
        match value {
            Some(v) => next.insert(name.clone(), v.clone()),
            None => next.remove(name),
        };
    }
    validate_group_configs(&next, limits).map_err(ControllerError::InvalidConfig)?;
    Ok(config_records(&resource, changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::BrokerEndpoint;

    const DEFAULTS: TopicDefaults = TopicDefaults {
        num_partitions: 1,
        replication_factor: 1,
    };

    fn one_broker() -> MetadataImage {
        MetadataImage::default().apply(&[MetadataRecord::RegisterBroker {
            log_dirs: vec![],
            broker_id: 1,
            endpoints: vec![BrokerEndpoint {
                listener: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092,
            }],
            rack: None,
            incarnation_id: None,
            broker_epoch: 0,
            fenced: false,
            in_controlled_shutdown: false,
        }])
    }

    fn spec(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: -1,
            ..Default::default()
        }
    }

    fn created(image: &MetadataImage, spec: &NewTopic) -> MetadataImage {
        let (records, _) = create_topic(image, spec, DEFAULTS, TopicId::new_v4()).unwrap();
        image.apply(&records)
    }

    #[test]
    fn creates_partitions_with_defaults_and_configs() {
        let image = one_broker();
        let mut s = spec("orders", -1);
        s.configs = vec![("retention.ms".into(), Some("1000".into()))];
        let (records, result) = create_topic(&image, &s, DEFAULTS, TopicId::from_u128(5)).unwrap();
        assert_eq!(result.num_partitions, 1);
        assert_eq!(result.replication_factor, 1);
        let image = image.apply(&records);
        let topic = image.topic("orders").unwrap();
        assert_eq!(topic.id, TopicId::from_u128(5));
        assert_eq!(topic.partitions[&0].replicas, vec![1]);
        assert_eq!(
            image.config(&ConfigResource::Topic("orders".into()), "retention.ms"),
            Some("1000")
        );
    }

    #[test]
    fn a_request_writing_more_than_ten_thousand_records_is_refused_as_in_kafka() {
        let image = one_broker();
        let refused = |e: ControllerError| matches!(e, ControllerError::PolicyViolation(m) if m == "Unable to perform excessively large batch operation.");
        // The topic record and 10,000 partition records.
        assert!(refused(
            create_topic(&image, &spec("big", 10_000), DEFAULTS, TopicId::new_v4()).unwrap_err()
        ));
        let image = created(&image, &spec("big", 9_999));
        assert_eq!(image.topic("big").unwrap().partitions.len(), 9_999);
        let small = created(&image, &spec("small", 1));
        assert!(refused(
            create_partitions(&small, "small", 10_002, None).unwrap_err()
        ));
        assert_eq!(
            create_partitions(&small, "small", 10_001, None)
                .unwrap()
                .len(),
            10_000
        );
    }

    #[test]
    fn rejects_what_kafka_rejects() {
        let image = created(&one_broker(), &spec("a.b", 2));
        let err = |s: &NewTopic| create_topic(&image, s, DEFAULTS, TopicId::new_v4()).unwrap_err();
        assert!(matches!(
            err(&spec("a.b", 1)),
            ControllerError::TopicAlreadyExists(_)
        ));
        assert!(matches!(
            err(&spec("a_b", 1)),
            ControllerError::InvalidTopic(_)
        ));
        assert!(matches!(
            err(&spec("bad name", 1)),
            ControllerError::InvalidTopic(_)
        ));
        assert!(matches!(
            err(&spec("x", 0)),
            ControllerError::InvalidPartitions(_)
        ));
        let mut rf = spec("x", 1);
        rf.replication_factor = 3;
        assert!(matches!(
            err(&rf),
            ControllerError::InvalidReplicationFactor(_)
        ));
        let mut manual = spec("x", -1);
        manual.assignments = vec![(0, vec![1]), (2, vec![1])];
        assert!(matches!(
            err(&manual),
            ControllerError::InvalidReplicaAssignment(_)
        ));
        manual.assignments = vec![(0, vec![7])];
        assert!(matches!(
            err(&manual),
            ControllerError::InvalidReplicaAssignment(_)
        ));
        manual.assignments = vec![(0, vec![1, 1])];
        assert!(matches!(
            err(&manual),
            ControllerError::InvalidReplicaAssignment(_)
        ));
        manual.num_partitions = 1;
        manual.assignments = vec![(0, vec![1])];
        assert!(matches!(err(&manual), ControllerError::InvalidRequest(_)));
        let mut bad_config = spec("x", 1);
        bad_config.configs = vec![("retention.ms".into(), Some("soon".into()))];
        assert!(matches!(
            err(&bad_config),
            ControllerError::InvalidConfig(_)
        ));
    }

    fn brokers(specs: &[(NodeId, &str, bool, bool)]) -> MetadataImage {
        let records: Vec<MetadataRecord> = specs
            .iter()
            .map(
                |(id, rack, fenced, shutting_down)| MetadataRecord::RegisterBroker {
                    log_dirs: vec![],
                    broker_id: *id,
                    endpoints: vec![],
                    rack: Some(rack.to_string()),
                    incarnation_id: None,
                    broker_epoch: 1,
                    fenced: *fenced,
                    in_controlled_shutdown: *shutting_down,
                },
            )
            .collect();
        MetadataImage::default().apply(&records)
    }

    #[test]
    fn placement_is_rack_aware_and_the_isr_holds_only_active_brokers() {
        let image = brokers(&[
            (1, "a", false, false),
            (2, "b", false, false),
            (3, "c", true, false),
            (4, "a", false, true),
        ]);
        let mut s = spec("t", 6);
        s.replication_factor = 3;
        let (records, created) = create_topic(&image, &s, DEFAULTS, TopicId::from_u128(3)).unwrap();
        assert_eq!(created.replication_factor, 3);
        let image = image.apply(&records);
        for p in image.topic("t").unwrap().partitions.values() {
            let mut replicas = p.replicas.clone();
            replicas.sort_unstable();
            // One per rack; 4 is shutting down and gets nothing.
            assert_eq!(replicas, vec![1, 2, 3]);
            assert_eq!(
                p.isr,
                p.replicas
                    .iter()
                    .copied()
                    .filter(|r| *r != 3)
                    .collect::<Vec<_>>()
            );
            assert_eq!(p.leader, p.isr[0]);
            assert_ne!(p.leader, 3);
        }
        let mut too_many = spec("u", 1);
        too_many.replication_factor = 4;
        assert_eq!(
            create_topic(&image, &too_many, DEFAULTS, TopicId::from_u128(4)).unwrap_err(),
            ControllerError::InvalidReplicationFactor(
                "Unable to replicate the partition 4 time(s): The target replication factor of 4 cannot be reached because only 3 broker(s) are registered.".into()
            )
        );
        let mut manual = spec("m", -1);
        manual.assignments = vec![(0, vec![3, 4])];
        assert_eq!(
            create_topic(&image, &manual, DEFAULTS, TopicId::from_u128(5)).unwrap_err(),
            ControllerError::InvalidReplicaAssignment(
                "All brokers specified in the manual partition assignment for partition 0 are fenced or in controlled shutdown.".into()
            )
        );
        manual.assignments = vec![(0, vec![3, 2])];
        let (records, _) = create_topic(&image, &manual, DEFAULTS, TopicId::from_u128(5)).unwrap();
        let image = image.apply(&records);
        let p = &image.topic("m").unwrap().partitions[&0];
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader),
            (vec![3, 2], vec![2], 2)
        );
        let grown = image.apply(&create_partitions(&image, "t", 8, None).unwrap());
        assert_eq!(grown.topic("t").unwrap().partitions[&7].replicas.len(), 3);
        let fenced = brokers(&[(1, "a", true, false), (2, "b", true, false)]);
        let mut s = spec("f", 1);
        s.replication_factor = 2;
        assert_eq!(
            create_topic(&fenced, &s, DEFAULTS, TopicId::from_u128(6)).unwrap_err(),
            ControllerError::InvalidReplicationFactor(
                "Unable to replicate the partition 2 time(s): All brokers are currently fenced."
                    .into()
            )
        );
    }

    #[test]
    fn grows_partitions_but_never_shrinks() {
        let image = created(&one_broker(), &spec("t", 2));
        let records = create_partitions(&image, "t", 5, None).unwrap();
        let grown = image.apply(&records);
        assert_eq!(grown.topic("t").unwrap().partitions.len(), 5);
        assert!(matches!(
            create_partitions(&image, "t", 1, None),
            Err(ControllerError::InvalidPartitions(_))
        ));
        assert!(matches!(
            create_partitions(&image, "t", 2, None),
            Err(ControllerError::InvalidPartitions(_))
        ));
        assert!(matches!(
            create_partitions(&image, "missing", 3, None),
            Err(ControllerError::UnknownTopicOrPartition(_))
        ));
        assert!(matches!(
            create_partitions(&image, "t", 4, Some(&[vec![1]])),
            Err(ControllerError::InvalidReplicaAssignment(_))
        ));
    }

    #[test]
    fn incremental_alter_sets_deletes_and_appends() {
        let image = created(&one_broker(), &spec("t", 1));
        let ops = vec![
            (
                "retention.ms".to_string(),
                AlterOp::Set,
                Some("10".to_string()),
            ),
            (
                "cleanup.policy".to_string(),
                AlterOp::Append,
                Some("compact".to_string()),
            ),
        ];
        let records =
            incremental_alter_topic_configs(&image, "t", &ops, &|_| Some("delete".into())).unwrap();
        let image = image.apply(&records);
        let resource = ConfigResource::Topic("t".into());
        assert_eq!(image.config(&resource, "retention.ms"), Some("10"));
        assert_eq!(
            image.config(&resource, "cleanup.policy"),
            Some("delete,compact")
        );
        let delete = vec![("retention.ms".to_string(), AlterOp::Delete, None)];
        let image =
            image.apply(&incremental_alter_topic_configs(&image, "t", &delete, &|_| None).unwrap());
        assert_eq!(image.config(&resource, "retention.ms"), None);
        let bad_append = vec![(
            "retention.ms".to_string(),
            AlterOp::Append,
            Some("1".to_string()),
        )];
        assert!(matches!(
            incremental_alter_topic_configs(&image, "t", &bad_append, &|_| None),
            Err(ControllerError::InvalidConfig(_))
        ));
    }

    #[test]
    fn legacy_alter_replaces_all_overrides() {
        let mut s = spec("t", 1);
        s.configs = vec![("retention.ms".into(), Some("10".into()))];
        let image = created(&one_broker(), &s);
        let records =
            replace_topic_configs(&image, "t", &[("segment.ms".into(), Some("99".into()))])
                .unwrap();
        let image = image.apply(&records);
        let configs = image.configs(&ConfigResource::Topic("t".into()));
        assert_eq!(
            configs,
            BTreeMap::from([("segment.ms".to_string(), "99".to_string())])
        );
    }

    #[test]
    fn producer_id_blocks_never_overlap() {
        let image = one_broker();
        let (records, first) = allocate_producer_ids(&image, 1, 1000);
        let image = image.apply(&records);
        let (records, second) = allocate_producer_ids(&image, 1, 1000);
        let image = image.apply(&records);
        assert_eq!((first, second), (0, 1000));
        assert_eq!(image.next_producer_id(), 2000);
    }

    #[test]
    fn delete_removes_topic() {
        let image = created(&one_broker(), &spec("t", 1));
        let image = image.apply(&delete_topic(&image, "t").unwrap());
        assert!(image.topic("t").is_none());
        assert!(matches!(
            delete_topic(&image, "t"),
            Err(ControllerError::UnknownTopicOrPartition(_))
        ));
    }
}
