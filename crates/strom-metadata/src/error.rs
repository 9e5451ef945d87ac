use thiserror::Error;

/// Why a controller operation was refused. The broker maps each variant to
/// its Kafka error code in one place.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ControllerError {
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    UnknownTopicOrPartition(String),
    #[error("{0}")]
    UnknownTopicId(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    PolicyViolation(String),
}
