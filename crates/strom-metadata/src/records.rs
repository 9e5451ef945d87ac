//! The records of the metadata log. They are serialized as JSON in the values
//! of ordinary record batches, so the metadata log is a normal partition log.

use serde::{Deserialize, Serialize};
use strom_types::{NodeId, TopicId};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic(String),
    /// A broker's dynamic configs; `None` is the cluster-wide default.
    Broker(Option<NodeId>),
    /// A group's configs (KIP-848 `consumer.session.timeout.ms`, ...).
    Group(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub listener: String,
    pub host: String,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    RegisterBroker {
        broker_id: NodeId,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
    },
    Topic {
        name: String,
        topic_id: TopicId,
    },
    Partition {
        topic_id: TopicId,
        partition: i32,
        replicas: Vec<NodeId>,
        isr: Vec<NodeId>,
        leader: NodeId,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// Sets (`Some`) or removes (`None`) one dynamic config.
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    RemoveTopic {
        topic_id: TopicId,
    },
    /// A block of producer ids handed to a broker; ids below
    /// `next_producer_id` are never handed out again.
    ProducerIds {
        broker_id: NodeId,
        next_producer_id: i64,
    },
}

impl MetadataRecord {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("metadata records always serialize")
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let record = MetadataRecord::Partition {
            topic_id: TopicId::from_u128(7),
            partition: 3,
            replicas: vec![1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        };
        assert_eq!(
            MetadataRecord::from_json(&record.to_json()).unwrap(),
            record
        );
        let config = MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: "retention.ms".into(),
            value: None,
        };
        assert_eq!(
            MetadataRecord::from_json(&config.to_json()).unwrap(),
            config
        );
    }
}
