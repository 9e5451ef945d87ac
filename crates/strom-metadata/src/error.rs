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
    #[error("{0}")]
    StaleBrokerEpoch(String),
    #[error("{0}")]
    DuplicateBrokerRegistration(String),
    #[error("{0}")]
    BrokerIdNotRegistered(String),
    /// The request carries a newer epoch than this controller knows: another node
    /// is probably the active controller.
    #[error("{0}")]
    NotController(String),
    #[error("{0}")]
    FencedLeaderEpoch(String),
    #[error("{0}")]
    InvalidUpdateVersion(String),
    #[error("{0}")]
    IneligibleReplica(String),
    /// The change was made, and elected another leader: the requester must refresh.
    #[error("{0}")]
    NewLeaderElected(String),
    #[error("{0}")]
    ElectionNotNeeded(String),
    #[error("{0}")]
    PreferredLeaderNotAvailable(String),
    #[error("{0}")]
    EligibleLeadersNotAvailable(String),
    #[error("{0}")]
    NoReassignmentInProgress(String),
    /// The broker holds no replica of the partition.
    #[error("{0}")]
    NotLeaderOrFollower(String),
}
