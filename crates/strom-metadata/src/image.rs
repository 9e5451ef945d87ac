//! The metadata image: an immutable snapshot of everything the metadata log
//! has said. Changing it means replaying records into a new image; readers
//! holding the old one are unaffected.

use std::collections::BTreeMap;
use std::sync::Arc;

use strom_types::{NodeId, TopicId};

use crate::records::{BrokerEndpoint, ConfigResource, MetadataRecord};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    pub replicas: Vec<NodeId>,
    pub isr: Vec<NodeId>,
    pub leader: NodeId,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
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
}

#[derive(Clone, Debug, Default)]
pub struct MetadataImage {
    topics: BTreeMap<TopicId, Arc<TopicImage>>,
    topic_ids_by_name: BTreeMap<String, TopicId>,
    brokers: BTreeMap<NodeId, Arc<BrokerImage>>,
    configs: BTreeMap<ConfigResource, Arc<BTreeMap<String, String>>>,
    next_producer_id: i64,
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
            } => {
                self.brokers.insert(
                    *broker_id,
                    Arc::new(BrokerImage {
                        id: *broker_id,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                    }),
                );
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
                        },
                    );
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
                topic_id,
                partition,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        records
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
