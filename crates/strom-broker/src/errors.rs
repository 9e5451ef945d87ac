//! The one place where domain errors become Kafka error codes.

use strom_log::producer_state::ProducerStateError;
use strom_log::LogError;
use strom_metadata::ControllerError;
use strom_replication::{AlterPartitionError, ReplicationError};
use strom_types::ErrorCode;
use strom_wire::batch::BatchError;

pub fn controller_error_code(error: &ControllerError) -> ErrorCode {
    match error {
        ControllerError::InvalidTopic(_) => ErrorCode::InvalidTopicException,
        ControllerError::TopicAlreadyExists(_) => ErrorCode::TopicAlreadyExists,
        ControllerError::UnknownTopicOrPartition(_) => ErrorCode::UnknownTopicOrPartition,
        ControllerError::UnknownTopicId(_) => ErrorCode::UnknownTopicId,
        ControllerError::InvalidPartitions(_) => ErrorCode::InvalidPartitions,
        ControllerError::InvalidReplicationFactor(_) => ErrorCode::InvalidReplicationFactor,
        ControllerError::InvalidReplicaAssignment(_) => ErrorCode::InvalidReplicaAssignment,
        ControllerError::InvalidConfig(_) => ErrorCode::InvalidConfig,
        ControllerError::InvalidRequest(_) => ErrorCode::InvalidRequest,
        ControllerError::PolicyViolation(_) => ErrorCode::PolicyViolation,
        ControllerError::StaleBrokerEpoch(_) => ErrorCode::StaleBrokerEpoch,
        ControllerError::DuplicateBrokerRegistration(_) => ErrorCode::DuplicateBrokerRegistration,
        ControllerError::BrokerIdNotRegistered(_) => ErrorCode::BrokerIdNotRegistered,
        ControllerError::NotController(_) => ErrorCode::NotController,
        ControllerError::FencedLeaderEpoch(_) => ErrorCode::FencedLeaderEpoch,
        ControllerError::InvalidUpdateVersion(_) => ErrorCode::InvalidUpdateVersion,
        ControllerError::IneligibleReplica(_) => ErrorCode::IneligibleReplica,
        ControllerError::NewLeaderElected(_) => ErrorCode::NewLeaderElected,
        ControllerError::ElectionNotNeeded(_) => ErrorCode::ElectionNotNeeded,
        ControllerError::PreferredLeaderNotAvailable(_) => ErrorCode::PreferredLeaderNotAvailable,
        ControllerError::EligibleLeadersNotAvailable(_) => ErrorCode::EligibleLeadersNotAvailable,
        ControllerError::NoReassignmentInProgress(_) => ErrorCode::NoReassignmentInProgress,
        ControllerError::NotLeaderOrFollower(_) => ErrorCode::NotLeaderOrFollower,
    }
}

/// Kafka's codes for ScramControlManager's and ScramImage's refusals.
pub fn scram_error_code(error: &strom_metadata::scram::ScramError) -> ErrorCode {
    use strom_metadata::scram::ScramError;
    match error {
        ScramError::AlteredTwice | ScramError::DescribedTwice(_) => ErrorCode::DuplicateResource,
        ScramError::EmptyUsername
        | ScramError::TooFewIterations
        | ScramError::TooManyIterations => ErrorCode::UnacceptableCredential,
        ScramError::UnknownMechanism => ErrorCode::UnsupportedSaslMechanism,
        ScramError::DeleteUnknown | ScramError::DescribeUnknown(_) => ErrorCode::ResourceNotFound,
    }
}

/// Kafka's codes for the producer-state rules (ProducerAppendInfo and UnifiedLog).
pub fn producer_state_error_code(error: &ProducerStateError) -> ErrorCode {
    match error {
        ProducerStateError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        ProducerStateError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        ProducerStateError::InvalidTxnState { .. } => ErrorCode::InvalidTxnState,
        ProducerStateError::CoordinatorFenced { .. } => ErrorCode::TransactionCoordinatorFenced,
        // Kafka has no per-partition bound. POLICY_VIOLATION is not retriable (retrying
        // cannot help until idle producers expire) and not one of the producer-state
        // errors clients treat as fatal or answer with an epoch bump, so the batch fails
        // with the message naming the bound, and the producer goes on.
        ProducerStateError::TooManyProducerIds { .. } => ErrorCode::PolicyViolation,
    }
}

pub fn log_error_code(error: &LogError) -> ErrorCode {
    match error {
        LogError::ProducerState(e) => producer_state_error_code(e),
        LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        LogError::AppendTooLarge { .. } => ErrorCode::RecordListTooLarge,
        LogError::InvalidBatch(_) | LogError::EmptyAppend => ErrorCode::CorruptMessage,
        _ => ErrorCode::KafkaStorageError,
    }
}

pub fn batch_error_code(error: &BatchError) -> ErrorCode {
    match error {
        // Produce v3+ carries only magic v2 batches; Kafka calls others invalid, not corrupt.
        BatchError::UnsupportedMagic { .. } => ErrorCode::InvalidRecord,
        _ => ErrorCode::CorruptMessage,
    }
}

/// One record refused by Kafka's per-record checks, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// The record's position in its batch.
    pub index: i32,
    pub invalid_timestamp: bool,
    pub message: String,
}

/// Kafka's partition-level message for refused records (LogValidator.processRecordErrors).
fn refused_records_message(records: &[RecordFailure]) -> String {
    if records.iter().any(|r| r.invalid_timestamp) {
        return "One or more records have been rejected due to invalid timestamp".into();
    }
    let shown: Vec<String> = records
        .iter()
        .take(3)
        .map(|r| {
            format!(
                "RecordError(batchIndex={}, message='{}')",
                r.index, r.message
            )
        })
        .collect();
    format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
        records.len(),
        shown.join(", ")
    )
}

/// Failures of the produce path for one partition, before or after the log.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("{0}")]
    Batch(#[from] BatchError),
    #[error("{0}")]
    Log(#[from] LogError),
    #[error("{0}")]
    InvalidRecord(String),
    #[error("{0}")]
    TooLarge(String),
    /// Some records were refused, so the whole batch was (KIP-467 record errors).
    #[error("{}", refused_records_message(.0))]
    RecordsRefused(Vec<RecordFailure>),
    #[error("{0}")]
    Replication(#[from] ReplicationError),
    #[error("{0}")]
    Compression(String),
    #[error("this server does not host this topic-partition")]
    UnknownTopicOrPartition,
    #[error("this server does not host this topic id")]
    UnknownTopicId,
    /// The transaction coordinator refused the partition to the producer's transaction (KIP-890).
    #[error("the transaction coordinator refused this partition to the transaction: {0:?}")]
    TransactionVerification(ErrorCode),
    /// The ACLs deny the caller WRITE on the topic, or on the transactional id.
    #[error("Not authorized to access topics: [{0}]")]
    TopicNotAuthorized(String),
    #[error("Transactional Id authorization failed.")]
    TransactionalIdNotAuthorized,
    /// An idempotent batch whose producer id no InitProducerId of this cluster issued.
    #[error("producer id {0} was never issued by this cluster (InitProducerId)")]
    UnknownProducerId(i64),
    /// The same for a transactional batch: the id maps to no transactional id.
    #[error("producer id {0} was never issued by this cluster, so no transactional id maps to it")]
    InvalidProducerIdMapping(i64),
}

pub fn produce_error_code(error: &ProduceError) -> ErrorCode {
    match error {
        ProduceError::Batch(e) => batch_error_code(e),
        ProduceError::Log(e) => log_error_code(e),
        ProduceError::InvalidRecord(_) => ErrorCode::InvalidRecord,
        ProduceError::TooLarge(_) => ErrorCode::MessageTooLarge,
        // Any timestamp among the refusals names the batch's error, as in Kafka.
        ProduceError::RecordsRefused(records) if records.iter().any(|r| r.invalid_timestamp) => {
            ErrorCode::InvalidTimestamp
        }
        ProduceError::RecordsRefused(_) => ErrorCode::InvalidRecord,
        ProduceError::Replication(e) => replication_error_code(e),
        ProduceError::Compression(_) => ErrorCode::CorruptMessage,
        ProduceError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
        ProduceError::UnknownTopicId => ErrorCode::UnknownTopicId,
        ProduceError::TransactionVerification(code) => *code,
        ProduceError::TopicNotAuthorized(_) => ErrorCode::TopicAuthorizationFailed,
        ProduceError::TransactionalIdNotAuthorized => ErrorCode::TransactionalIdAuthorizationFailed,
        ProduceError::UnknownProducerId(_) => ErrorCode::UnknownProducerId,
        ProduceError::InvalidProducerIdMapping(_) => ErrorCode::InvalidProducerIdMapping,
    }
}

/// Kafka's codes for replication's errors (Partition, ReplicaManager, DelayedProduce).
pub fn replication_error_code(error: &ReplicationError) -> ErrorCode {
    match error {
        ReplicationError::NotEnoughReplicas { .. } => ErrorCode::NotEnoughReplicas,
        ReplicationError::NotEnoughReplicasAfterAppend { .. } => {
            ErrorCode::NotEnoughReplicasAfterAppend
        }
        ReplicationError::RequestTimedOut => ErrorCode::RequestTimedOut,
        ReplicationError::NotLeaderOrFollower => ErrorCode::NotLeaderOrFollower,
        ReplicationError::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
        ReplicationError::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
        ReplicationError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        ReplicationError::CorruptRecord(_) => ErrorCode::CorruptMessage,
        ReplicationError::UnknownTopicOrPartition => ErrorCode::UnknownTopicOrPartition,
        ReplicationError::KafkaStorageError(_) => ErrorCode::KafkaStorageError,
        ReplicationError::UnexpectedAppendOffset { .. } => ErrorCode::UnknownServerError,
        ReplicationError::NetworkException(_) => ErrorCode::NetworkException,
        ReplicationError::UnknownServerError(_) => ErrorCode::UnknownServerError,
    }
}

/// A leader's error code in a response to this broker's fetcher, as replication names it.
pub fn replication_error_of(code: ErrorCode) -> ReplicationError {
    match code {
        ErrorCode::NotLeaderOrFollower => ReplicationError::NotLeaderOrFollower,
        ErrorCode::FencedLeaderEpoch => ReplicationError::FencedLeaderEpoch {
            request_epoch: -1,
            current_epoch: -1,
        },
        ErrorCode::UnknownLeaderEpoch => ReplicationError::UnknownLeaderEpoch {
            request_epoch: -1,
            current_epoch: -1,
        },
        ErrorCode::OffsetOutOfRange => ReplicationError::OffsetOutOfRange {
            offset: -1,
            log_start_offset: -1,
            log_end_offset: -1,
        },
        ErrorCode::CorruptMessage => ReplicationError::CorruptRecord("from the leader".into()),
        ErrorCode::UnknownTopicOrPartition | ErrorCode::UnknownTopicId => {
            ReplicationError::UnknownTopicOrPartition
        }
        ErrorCode::RequestTimedOut => ReplicationError::RequestTimedOut,
        ErrorCode::NetworkException => ReplicationError::NetworkException(String::new()),
        other => ReplicationError::UnknownServerError(format!("{other:?}")),
    }
}

/// The controller's code for an AlterPartition, as replication names it.
pub fn alter_partition_error(code: ErrorCode, replica: i32) -> AlterPartitionError {
    match code {
        ErrorCode::OperationNotAttempted => AlterPartitionError::OperationNotAttempted,
        ErrorCode::IneligibleReplica => AlterPartitionError::IneligibleReplica(replica),
        ErrorCode::UnknownTopicOrPartition => AlterPartitionError::UnknownTopicOrPartition,
        ErrorCode::UnknownTopicId => AlterPartitionError::UnknownTopicId,
        ErrorCode::FencedLeaderEpoch => AlterPartitionError::FencedLeaderEpoch,
        ErrorCode::InvalidUpdateVersion => AlterPartitionError::InvalidUpdateVersion,
        ErrorCode::InvalidRequest => AlterPartitionError::InvalidRequest,
        ErrorCode::NewLeaderElected => AlterPartitionError::NewLeaderElected,
        ErrorCode::NotController => AlterPartitionError::NotController,
        ErrorCode::RequestTimedOut => AlterPartitionError::RequestTimedOut,
        ErrorCode::NetworkException => AlterPartitionError::NetworkException(String::new()),
        other => AlterPartitionError::UnknownServerError(format!("{other:?}")),
    }
}
