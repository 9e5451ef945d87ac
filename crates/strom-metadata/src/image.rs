//! The metadata image: an immutable snapshot of everything the metadata log
//! has said. Changing it means replaying records into a new image; readers
//! holding the old one are unaffected.

use std::collections::BTreeMap;
use std::sync::Arc;

use strom_security::acl::AclSet;
use strom_security::quota::QuotaConfigs;
use strom_types::{NodeId, TopicId};

use crate::records::{
    is_dir_online, BrokerEndpoint, ConfigResource, LeaderRecoveryState, MetadataRecord, NO_LEADER,
    UNASSIGNED_DIR,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    /// [`NO_LEADER`] when no replica can lead.
    pub leader: NodeId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// Reassignment in progress: replicas leaving and joining `replicas`.
    pub removing_replicas: Vec<NodeId>,
    pub adding_replicas: Vec<NodeId>,
    /// KIP-966: replicas out of the ISR that still hold every committed record.
    pub elr: Vec<NodeId>,
    pub last_known_elr: Vec<NodeId>,
    pub leader_recovery_state: LeaderRecoveryState,
    /// The log dir of each replica, in `replicas` order; empty while none is assigned.
    pub directories: Vec<uuid::Uuid>,
}

impl PartitionImage {
    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }

    /// The preferred leader: the first replica.
    pub fn preferred_leader(&self) -> Option<NodeId> {
        self.replicas.first().copied()
    }

    /// The replicas the partition will have once a reassignment is done.
    pub fn target_replicas(&self) -> Vec<NodeId> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }

    /// The log dir `broker`'s replica lives in ([`UNASSIGNED_DIR`] when not told).
    pub fn directory(&self, broker: NodeId) -> uuid::Uuid {
        self.replicas
            .iter()
            .position(|r| *r == broker)
            .and_then(|i| self.directories.get(i))
            .copied()
            .unwrap_or(UNASSIGNED_DIR)
    }

    /// The dirs after `broker`'s replica moved to `dir` (all others kept).
    pub fn directories_with(&self, broker: NodeId, dir: uuid::Uuid) -> Vec<uuid::Uuid> {
        self.replicas
            .iter()
            .map(|r| {
                if *r == broker {
                    dir
                } else {
                    self.directory(*r)
                }
            })
            .collect()
    }

    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// Applies a `PartitionChange` as Kafka's PartitionRegistration.merge does: a set
    /// leader is a new leader epoch, and every change is a new partition epoch. Other
    /// records leave the partition as it is.
    pub fn merge(&mut self, change: &MetadataRecord) {
        let MetadataRecord::PartitionChange {
            leader,
            isr,
            replicas,
            removing_replicas,
            adding_replicas,
            elr,
            last_known_elr,
            leader_recovery_state,
            directories,
            ..
        } = change
        else {
            return;
        };
        let old_directories: Vec<(NodeId, uuid::Uuid)> = self
            .replicas
            .iter()
            .map(|r| (*r, self.directory(*r)))
            .collect();
        if let Some(leader) = leader {
            self.leader = *leader;
            self.leader_epoch += 1;
        }
        let set = |field: &mut Vec<NodeId>, value: &Option<Vec<NodeId>>| {
            if let Some(value) = value {
                *field = value.clone();
            }
        };
        set(&mut self.isr, isr);
        set(&mut self.replicas, replicas);
        set(&mut self.removing_replicas, removing_replicas);
        set(&mut self.adding_replicas, adding_replicas);
        set(&mut self.elr, elr);
        set(&mut self.last_known_elr, last_known_elr);
        if let Some(state) = leader_recovery_state {
            self.leader_recovery_state = *state;
        }
        if let Some(directories) = directories {
            self.directories = directories.clone();
        } else if replicas.is_some() {
            // A replica keeps its dir through a reassignment; a new one has none yet.
            let dir_of = |r: &NodeId| {
                old_directories
                    .iter()
                    .find(|(id, _)| id == r)
                    .map_or(UNASSIGNED_DIR, |(_, d)| *d)
            };
            self.directories = self.replicas.iter().map(dir_of).collect();
        }
        if self.directories.iter().all(|d| *d == UNASSIGNED_DIR) {
            self.directories.clear();
        }
        self.partition_epoch += 1;
    }

    /// This partition after `change`.
    pub fn merged(&self, change: &MetadataRecord) -> PartitionImage {
        let mut next = self.clone();
        next.merge(change);
        next
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: TopicId,
    pub partitions: BTreeMap<i32, PartitionImage>,
}

impl TopicImage {
    /// Kafka's internal topics: group offsets and transaction state.
    pub fn is_internal(&self) -> bool {
        self.name == "__consumer_offsets" || self.name == "__transaction_state"
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerImage {
    pub id: NodeId,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    pub incarnation_id: Option<uuid::Uuid>,
    pub epoch: i64,
    /// A fenced broker leads nothing and joins no ISR: it is new and still catching
    /// up with the metadata log, or it stopped heartbeating.
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    /// Its online log dirs (KIP-858); empty when it reports none.
    pub log_dirs: Vec<uuid::Uuid>,
}

impl BrokerImage {
    /// Unfenced and not shutting down: may lead and join ISRs.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }

    /// Kafka's BrokerRegistration.hasOnlineDir.
    pub fn has_online_dir(&self, dir: uuid::Uuid) -> bool {
        is_dir_online(dir, &self.log_dirs)
    }
}

#[derive(Clone, Debug, Default)]
pub struct MetadataImage {
    topics: BTreeMap<TopicId, Arc<TopicImage>>,
    topic_ids_by_name: BTreeMap<String, TopicId>,
    brokers: BTreeMap<NodeId, Arc<BrokerImage>>,
    configs: BTreeMap<ConfigResource, Arc<BTreeMap<String, String>>>,
    next_producer_id: i64,
    /// SCRAM credentials by user and mechanism type.
    scram: BTreeMap<(String, i8), Arc<ScramCredentialImage>>,
    /// The ACLs, by id; shared between images until one changes them.
    acls: Arc<AclSet>,
    /// Client quotas by entity; shared between images until one changes them.
    client_quotas: Arc<QuotaConfigs>,
}

/// A stored SCRAM credential: never the password, only what verifies a proof of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredentialImage {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topic_ids_by_name
            .get(name)
            .and_then(|id| self.topics.get(id))
    }

    pub fn topic_by_id(&self, id: &TopicId) -> Option<&Arc<TopicImage>> {
        self.topics.get(id)
    }

    /// Topics in name order.
    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topic_ids_by_name
            .values()
            .filter_map(|id| self.topics.get(id))
    }

    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    pub fn brokers(&self) -> impl Iterator<Item = &Arc<BrokerImage>> {
        self.brokers.values()
    }

    pub fn broker(&self, id: NodeId) -> Option<&Arc<BrokerImage>> {
        self.brokers.get(&id)
    }

    /// Brokers that are unfenced and not in controlled shutdown, in id order.
    pub fn active_brokers(&self) -> impl Iterator<Item = &Arc<BrokerImage>> {
        self.brokers.values().filter(|b| b.is_active())
    }

    pub fn is_broker_active(&self, id: NodeId) -> bool {
        self.brokers.get(&id).is_some_and(|b| b.is_active())
    }

    /// Active, and `partition`'s replica on it is in one of its online dirs.
    pub fn is_replica_active(&self, id: NodeId, partition: &PartitionImage) -> bool {
        self.brokers
            .get(&id)
            .is_some_and(|b| b.is_active() && b.has_online_dir(partition.directory(id)))
    }

    /// One partition of a topic, by topic id.
    pub fn partition(&self, topic_id: &TopicId, partition: i32) -> Option<&PartitionImage> {
        self.topics.get(topic_id)?.partitions.get(&partition)
    }

    /// Records that rebuild this image from an empty one: a snapshot of the metadata log.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut records = Vec::new();
        for broker in self.brokers.values() {
            records.push(MetadataRecord::RegisterBroker {
                broker_id: broker.id,
                endpoints: broker.endpoints.clone(),
                rack: broker.rack.clone(),
                incarnation_id: broker.incarnation_id,
                broker_epoch: broker.epoch,
                fenced: broker.fenced,
                in_controlled_shutdown: broker.in_controlled_shutdown,
                log_dirs: broker.log_dirs.clone(),
            });
        }
        for topic in self.topics() {
            records.push(MetadataRecord::Topic {
                name: topic.name.clone(),
                topic_id: topic.id,
            });
            for p in topic.partitions.values() {
                records.push(MetadataRecord::Partition {
                    topic_id: topic.id,
                    partition: p.partition,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    removing_replicas: p.removing_replicas.clone(),
                    adding_replicas: p.adding_replicas.clone(),
                    elr: p.elr.clone(),
                    last_known_elr: p.last_known_elr.clone(),
                    leader_recovery_state: p.leader_recovery_state,
                    directories: p.directories.clone(),
                });
            }
        }
        for (resource, configs) in &self.configs {
            for (name, value) in configs.iter() {
                records.push(MetadataRecord::Config {
                    resource: resource.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        if self.next_producer_id > 0 {
            records.push(MetadataRecord::ProducerIds {
                broker_id: NO_LEADER,
                next_producer_id: self.next_producer_id,
            });
        }
        for ((name, mechanism), credential) in &self.scram {
            records.push(MetadataRecord::UserScramCredential {
                name: name.clone(),
                mechanism: *mechanism,
                salt: crate::hex::encode(&credential.salt),
                stored_key: crate::hex::encode(&credential.stored_key),
                server_key: crate::hex::encode(&credential.server_key),
                iterations: credential.iterations,
            });
        }
        for (id, acl) in self.acls.iter() {
            records.push(crate::acls::entry_record(uuid::Uuid::from_u128(id), acl));
        }
        for (entity, values) in self.client_quotas.iter() {
            for (key, value) in values {
                records.push(crate::quotas::quota_record(entity, key, Some(*value)));
            }
        }
        records
    }

    pub fn acls(&self) -> &Arc<AclSet> {
        &self.acls
    }

    pub fn client_quotas(&self) -> &Arc<QuotaConfigs> {
        &self.client_quotas
    }

    /// The dynamic configs set on a resource (empty when none).
    pub fn configs(&self, resource: &ConfigResource) -> BTreeMap<String, String> {
        self.configs
            .get(resource)
            .map(|c| (**c).clone())
            .unwrap_or_default()
    }

    /// Every resource that has at least one dynamic config.
    pub fn config_resources(&self) -> impl Iterator<Item = &ConfigResource> {
        self.configs.keys()
    }

    pub fn config(&self, resource: &ConfigResource, name: &str) -> Option<&str> {
        self.configs
            .get(resource)
            .and_then(|c| c.get(name))
            .map(String::as_str)
    }

    /// A user's SCRAM credential for a mechanism type (1: SHA-256, 2: SHA-512).
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: i8,
    ) -> Option<&Arc<ScramCredentialImage>> {
        self.scram.get(&(user.to_string(), mechanism))
    }

    /// Every (user, mechanism type) with a SCRAM credential, in user order.
    pub fn scram_credentials(
        &self,
    ) -> impl Iterator<Item = (&str, i8, &Arc<ScramCredentialImage>)> {
        self.scram
            .iter()
            .map(|((user, m), c)| (user.as_str(), *m, c))
    }

    /// The first producer id no block has claimed yet.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Replays records into a new image.
    pub fn apply<'a>(&self, records: impl IntoIterator<Item = &'a MetadataRecord>) -> Self {
        let mut next = self.clone();
        for record in records {
            next.replay(record);
        }
        next
    }

    fn replay(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::RegisterBroker {
                broker_id,
                endpoints,
                rack,
                incarnation_id,
                broker_epoch,
                fenced,
                in_controlled_shutdown,
                log_dirs,
            } => {
                self.brokers.insert(
                    *broker_id,
                    Arc::new(BrokerImage {
                        id: *broker_id,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        incarnation_id: *incarnation_id,
                        epoch: *broker_epoch,
                        fenced: *fenced,
                        in_controlled_shutdown: *in_controlled_shutdown,
                        log_dirs: log_dirs.clone(),
                    }),
                );
            }
            MetadataRecord::UnregisterBroker {
                broker_id,
                broker_epoch,
            } => {
                if self
                    .brokers
                    .get(broker_id)
                    .is_some_and(|b| b.epoch == *broker_epoch)
                {
                    self.brokers.remove(broker_id);
                }
            }
            MetadataRecord::BrokerRegistrationChange {
                broker_id,
                broker_epoch,
                fenced,
                in_controlled_shutdown,
                log_dirs,
            } => {
                if let Some(broker) = self
                    .brokers
                    .get_mut(broker_id)
                    .filter(|b| b.epoch == *broker_epoch)
                {
                    let broker = Arc::make_mut(broker);
                    if let Some(fenced) = fenced {
                        broker.fenced = *fenced;
                    }
                    if let Some(in_controlled_shutdown) = in_controlled_shutdown {
                        broker.in_controlled_shutdown = *in_controlled_shutdown;
                    }
                    if let Some(log_dirs) = log_dirs {
                        broker.log_dirs = log_dirs.clone();
                    }
                }
            }
            MetadataRecord::Topic { name, topic_id } => {
                self.topic_ids_by_name.insert(name.clone(), *topic_id);
                self.topics.insert(
                    *topic_id,
                    Arc::new(TopicImage {
                        name: name.clone(),
                        id: *topic_id,
                        partitions: BTreeMap::new(),
                    }),
                );
            }
            MetadataRecord::Partition {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
                removing_replicas,
                adding_replicas,
                elr,
                last_known_elr,
                leader_recovery_state,
                directories,
            } => {
                if let Some(topic) = self.topics.get_mut(topic_id) {
                    Arc::make_mut(topic).partitions.insert(
                        *partition,
                        PartitionImage {
                            partition: *partition,
                            replicas: replicas.clone(),
                            isr: isr.clone(),
                            leader: *leader,
                            leader_epoch: *leader_epoch,
                            partition_epoch: *partition_epoch,
                            removing_replicas: removing_replicas.clone(),
                            adding_replicas: adding_replicas.clone(),
                            elr: elr.clone(),
                            last_known_elr: last_known_elr.clone(),
                            leader_recovery_state: *leader_recovery_state,
                            directories: if directories.len() == replicas.len() {
                                directories.clone()
                            } else {
                                Vec::new()
                            },
                        },
                    );
                }
            }
            MetadataRecord::PartitionChange {
                topic_id,
                partition,
                ..
            } => {
                if let Some(p) = self
                    .topics
                    .get_mut(topic_id)
                    .and_then(|t| Arc::make_mut(t).partitions.get_mut(partition))
                {
                    p.merge(record);
                }
            }
            MetadataRecord::Config {
                resource,
                name,
                value,
            } => {
                let configs = Arc::make_mut(self.configs.entry(resource.clone()).or_default());
                match value {
                    Some(value) => {
                        configs.insert(name.clone(), value.clone());
                    }
                    None => {
                        configs.remove(name);
                    }
                }
                if configs.is_empty() {
                    self.configs.remove(resource);
                }
            }
            MetadataRecord::ProducerIds {
                next_producer_id, ..
            } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
            MetadataRecord::UserScramCredential {
                name,
                mechanism,
                salt,
                stored_key,
                server_key,
                iterations,
            } => {
                // A record this node cannot read changes nothing rather than half a credential.
                if let (Some(salt), Some(stored_key), Some(server_key)) = (
                    crate::hex::decode(salt),
                    crate::hex::decode(stored_key),
                    crate::hex::decode(server_key),
                ) {
                    self.scram.insert(
                        (name.clone(), *mechanism),
                        Arc::new(ScramCredentialImage {
                            salt,
                            stored_key,
                            server_key,
                            iterations: *iterations,
                        }),
                    );
                }
            }
            MetadataRecord::RemoveUserScramCredential { name, mechanism } => {
                self.scram.remove(&(name.clone(), *mechanism));
            }
            MetadataRecord::AccessControlEntry { id, .. } => {
                // A record this node cannot read (an unknown code) changes nothing.
                if let Some(acl) = crate::acls::binding_of_record(record) {
                    Arc::make_mut(&mut self.acls).insert(id.as_u128(), acl);
                }
            }
            MetadataRecord::RemoveAccessControlEntry { id } => {
                Arc::make_mut(&mut self.acls).remove(id.as_u128());
            }
            MetadataRecord::ClientQuota { entity, key, value } => {
                // Records were checked before they were written.
                if let Some(entity) = crate::quotas::entity_of_record(entity) {
                    Arc::make_mut(&mut self.client_quotas).set(entity, key, value.0);
                }
            }
            MetadataRecord::RemoveClientQuota { entity, key } => {
                if let Some(entity) = crate::quotas::entity_of_record(entity) {
                    Arc::make_mut(&mut self.client_quotas).remove(&entity, key);
                }
            }
            MetadataRecord::RemoveTopic { topic_id } => {
                if let Some(topic) = self.topics.remove(topic_id) {
                    self.topic_ids_by_name.remove(&topic.name);
                    self.configs
                        .remove(&ConfigResource::Topic(topic.name.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_records(name: &str, id: u128, partitions: i32) -> Vec<MetadataRecord> {
        let topic_id = TopicId::from_u128(id);
        let mut records = vec![MetadataRecord::Topic {
            name: name.into(),
            topic_id,
        }];
        for partition in 0..partitions {
            records.push(MetadataRecord::Partition {
                directories: vec![],
                topic_id,
                partition,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                removing_replicas: vec![],
                adding_replicas: vec![],
                elr: vec![],
                last_known_elr: vec![],
                leader_recovery_state: LeaderRecoveryState::Recovered,
            });
        }
        records
    }

    #[test]
    fn a_partition_change_bumps_epochs_as_kafka_merges_it() {
        let topic_id = TopicId::from_u128(1);
        let image = MetadataImage::default().apply(&topic_records("a", 1, 1));
        let shrunk = image.apply(&[MetadataRecord::PartitionChange {
            directories: None,
            topic_id,
            partition: 0,
            leader: None,
            isr: Some(vec![]),
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            elr: Some(vec![1]),
            last_known_elr: None,
            leader_recovery_state: None,
        }]);
        let p = shrunk.partition(&topic_id, 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 0, 1));
        assert_eq!((p.isr.clone(), p.elr.clone()), (vec![], vec![1]));
        let moved = shrunk.apply(&[MetadataRecord::PartitionChange {
            directories: None,
            topic_id,
            partition: 0,
            leader: Some(NO_LEADER),
            isr: None,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            elr: None,
            last_known_elr: None,
            leader_recovery_state: None,
        }]);
        let p = moved.partition(&topic_id, 0).unwrap();
        assert_eq!(
            (p.leader, p.leader_epoch, p.partition_epoch),
            (NO_LEADER, 1, 2)
        );
        assert!(!p.has_leader());
    }

    #[test]
    fn to_records_rebuilds_the_same_image() {
        let mut records = topic_records("a", 1, 2);
        records.push(MetadataRecord::RegisterBroker {
            log_dirs: vec![],
            broker_id: 1,
            endpoints: vec![],
            rack: Some("r1".into()),
            incarnation_id: Some(uuid::Uuid::from_u128(9)),
            broker_epoch: 12,
            fenced: true,
            in_controlled_shutdown: false,
        });
        records.push(MetadataRecord::Config {
            resource: ConfigResource::Topic("a".into()),
            name: "retention.ms".into(),
            value: Some("5".into()),
        });
        records.push(MetadataRecord::ProducerIds {
            broker_id: 1,
            next_producer_id: 2000,
        });
        records.push(MetadataRecord::UserScramCredential {
            name: "alice".into(),
            mechanism: 2,
            salt: "00ff".into(),
            stored_key: "01".into(),
            server_key: "02".into(),
            iterations: 4096,
        });
        let image = MetadataImage::default().apply(&records);
        let rebuilt = MetadataImage::default().apply(&image.to_records());
        assert_eq!(
            rebuilt.scram_credential("alice", 2).unwrap().salt,
            vec![0, 255]
        );
        assert_eq!(rebuilt.to_records(), image.to_records());
        assert_eq!(rebuilt.next_producer_id(), 2000);
        assert!(rebuilt.broker(1).unwrap().fenced);
        assert_eq!(rebuilt.topic("a").unwrap().partitions.len(), 2);
    }

    #[test]
    fn replaying_topic_records_builds_topics() {
        let image = MetadataImage::default().apply(&topic_records("a", 1, 3));
        let topic = image.topic("a").unwrap();
        assert_eq!(topic.partitions.len(), 3);
        assert_eq!(topic.partitions[&2].leader, 1);
        assert_eq!(image.topic_by_id(&TopicId::from_u128(1)).unwrap().name, "a");
    }

    #[test]
    fn old_image_is_unchanged_by_apply() {
        let first = MetadataImage::default().apply(&topic_records("a", 1, 1));
        let second = first.apply(&[MetadataRecord::RemoveTopic {
            topic_id: TopicId::from_u128(1),
        }]);
        assert!(first.topic("a").is_some());
        assert!(second.topic("a").is_none());
        assert_eq!(second.topic_count(), 0);
    }

    #[test]
    fn configs_set_and_remove_and_vanish_with_their_topic() {
        let resource = ConfigResource::Topic("a".into());
        let mut records = topic_records("a", 1, 1);
        records.push(MetadataRecord::Config {
            resource: resource.clone(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        });
        let image = MetadataImage::default().apply(&records);
        assert_eq!(image.config(&resource, "retention.ms"), Some("1000"));
        let cleared = image.apply(&[MetadataRecord::Config {
            resource: resource.clone(),
            name: "retention.ms".into(),
            value: None,
        }]);
        assert_eq!(cleared.config(&resource, "retention.ms"), None);
        let removed = image.apply(&[MetadataRecord::RemoveTopic {
            topic_id: TopicId::from_u128(1),
        }]);
        assert!(removed.configs(&resource).is_empty());
    }
}
