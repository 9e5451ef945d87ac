//! One transactional id's state, as the coordinator holds and persists it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Kafka's "no producer id" (`RecordBatch.NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;
/// Kafka's "no producer epoch" (`RecordBatch.NO_PRODUCER_EPOCH`).
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Kafka's transaction states, with the names DescribeTransactions and ListTransactions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    /// Kafka's name for the state ("Empty", "Ongoing", "PrepareCommit", ...).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state with Kafka's name `name`, if any.
    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// States whose transactional id may expire (Kafka's `isExpirationAllowed`).
    pub fn expiration_allowed(self) -> bool {
        matches!(
            self,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
    }

    /// Whether markers are being written (PrepareCommit, PrepareAbort).
    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// The transaction protocol a client speaks (Kafka's `TransactionVersion`): version 1 is
/// KIP-98 as first shipped (feature levels 0 and 1), version 2 is KIP-890 part 2, where
/// every commit or abort bumps the producer epoch (EndTxn v5+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum TransactionVersion {
    V1,
    V2,
}

impl TransactionVersion {
    /// The version of a `transaction.version` feature level (0 and 1 behave as version 1).
    pub fn from_feature_level(level: i16) -> Self {
        if level >= 2 {
            TransactionVersion::V2
        } else {
            TransactionVersion::V1
        }
    }

    /// The version an EndTxn request of `api_version` speaks (v5+ is version 2).
    pub fn for_end_txn(api_version: i16) -> Self {
        if api_version >= 5 {
            TransactionVersion::V2
        } else {
            TransactionVersion::V1
        }
    }

    /// Whether every commit and abort bumps the epoch.
    pub fn bumps_epoch_on_end(self) -> bool {
        self == TransactionVersion::V2
    }
}

impl TryFrom<u8> for TransactionVersion {
    type Error = String;
    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 | 1 => Ok(TransactionVersion::V1),
            2 => Ok(TransactionVersion::V2),
            other => Err(format!("unknown client transaction version {other}")),
        }
    }
}

impl From<TransactionVersion> for u8 {
    fn from(v: TransactionVersion) -> u8 {
        match v {
            TransactionVersion::V1 => 1,
            TransactionVersion::V2 => 2,
        }
    }
}

/// Kafka's `TransactionMetadata.isEpochExhausted`: no room left for the bumps a
/// transaction may need.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

/// Everything the coordinator knows about one transactional id; exactly what its
/// latest record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionMetadata {
    pub producer_id: i64,
    /// The producer id before the last transition that could change it (-1 if none).
    pub previous_producer_id: i64,
    /// Set while a version 2 commit or abort exhausted the epoch: the producer id the
    /// transactional id moves to (at epoch 0) once its markers are written.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch a KIP-360 retry may still present (-1 when a fence ruled that out).
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current (or last) transaction started; -1 when none has since InitProducerId.
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
    pub client_transaction_version: TransactionVersion,
}
