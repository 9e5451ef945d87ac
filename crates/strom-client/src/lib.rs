//! An async Kafka client on `kafka-protocol`, used by strom's tools.
//!
//! [`Connection`] speaks the wire protocol to one broker; [`Client`] finds
//! the cluster and routes by partition leader; [`Admin`], [`Producer`] and
//! [`Consumer`] are the operations on top; group administration goes
//! through each group's coordinator (`coordinator`, `groups`), transaction
//! administration through transaction coordinators and partition leaders
//! (`transactions`).

pub mod acls;
pub mod admin;
pub mod client;
pub mod connection;
pub mod consumer;
pub mod coordinator;
pub mod error;
pub mod groups;
pub mod member;
pub mod oauth;
pub mod partitioner;
pub mod pipeline;
pub mod producer;
pub mod quotas;
pub mod scram;
pub mod scram_users;
pub mod security;
pub mod tls;
pub mod transactions;

pub use acls::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AclResourceType, PatternType,
};
pub use admin::{
    Admin, AlterConfigOp, ClusterInfo, ConfigEntry, ConfigSource, ConfigSynonym, ElectionType,
    NewTopic, PartitionOutcome, QuorumInfo, QuorumReplica, Reassignment, ResourceType,
};
pub use client::{BrokerInfo, Client, Metadata, PartitionMetadata, TopicMetadata};
pub use connection::{Connection, ConnectionConfig, RequestWriter, ResponseReader};
pub use consumer::{Consumer, ConsumerConfig, ConsumerRecord, OffsetSpec, RecordView};
pub use coordinator::CoordinatorType;
pub use error::{Error, Result};
pub use groups::{
    CommittedOffset, GroupDescription, ListedGroup, MemberDescription, TopicPartition,
    TopicPartitions,
};
pub use kafka_protocol::records::{Compression, TimestampType};
pub use member::{ClassicMember, ConsumerProtocol, GroupMember, GroupMemberConfig, GroupProtocol};
pub use pipeline::{BatchAck, PipelineConfig, PipelinedProducer};
pub use producer::{Producer, ProducerConfig, ProducerRecord, RecordMetadata};
pub use quotas::{QuotaEntity, QuotaMatch, QuotaOp};
pub use scram::ScramMechanism;
pub use scram_users::{ScramCredentialChange, ScramCredentialInfo};
pub use security::{
    SaslCredentials, SaslMechanism, Security, SecurityConfig, SecurityError, SecurityProtocol,
};
pub use transactions::{
    ListedTransaction, ProducerDescription, TransactionDescription, TransactionFilters,
};
