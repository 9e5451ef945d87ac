//! An async Kafka client on `kafka-protocol`, used by strom's tools.
//!
//! [`Connection`] speaks the wire protocol to one broker; [`Client`] finds
//! the cluster and routes by partition leader; [`Admin`], [`Producer`] and
//! [`Consumer`] are the operations on top.

pub mod admin;
pub mod client;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod partitioner;
pub mod producer;

pub use admin::{
    Admin, AlterConfigOp, ClusterInfo, ConfigEntry, ConfigSource, NewTopic, ResourceType,
};
pub use client::{BrokerInfo, Client, Metadata, PartitionMetadata, TopicMetadata};
pub use connection::{Connection, ConnectionConfig};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetSpec};
pub use error::{Error, Result};
pub use kafka_protocol::records::{Compression, TimestampType};
pub use producer::{Producer, ProducerConfig, ProducerRecord, RecordMetadata};
