//! The records a shard writes to its `__transaction_state` partition, and their encoding.
//!
//! Keys and values are JSON; the key names the transactional id, so compaction keeps the
//! latest record per id, and a `None` value (tombstone) removes an expired id. Values carry
//! a `version`; values of an unknown version are refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::state::{TransactionMetadata, TransactionVersion, TxnState};

/// Version written into every value this build produces.
pub const TXN_RECORD_VALUE_VERSION: u16 = 1;

/// One record of the `__transaction_state` partition a shard owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub key: Vec<u8>,
    /// `None` is a tombstone: the transactional id is gone.
    pub value: Option<Vec<u8>>,
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum TxnRecordError {
    #[error("malformed transaction record key: {0}")]
    Key(serde_json::Error),
    #[error("malformed transaction record value: {0}")]
    Value(serde_json::Error),
    #[error("unsupported transaction record value version {0}")]
    Version(u16),
    #[error("transaction record value names producer id {producer_id} with epoch {epoch}")]
    Invalid { producer_id: i64, epoch: i16 },
}

/// The identity part of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxnRecordKey {
    Transaction { transactional_id: String },
}

/// The partitions of one topic in a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnTopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// A transactional id's state, as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecordValue {
    pub version: u16,
    pub producer_id: i64,
    pub previous_producer_id: i64,
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: Vec<TxnTopicPartitions>,
    pub start_timestamp_ms: i64,
    pub last_update_timestamp_ms: i64,
    pub client_transaction_version: TransactionVersion,
}

impl TxnRecordValue {
    pub fn from_metadata(m: &TransactionMetadata) -> Self {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &m.partitions {
            by_topic.entry(topic).or_default().push(*partition);
        }
        Self {
            version: TXN_RECORD_VALUE_VERSION,
            producer_id: m.producer_id,
            previous_producer_id: m.previous_producer_id,
            next_producer_id: m.next_producer_id,
            producer_epoch: m.producer_epoch,
            last_producer_epoch: m.last_producer_epoch,
            timeout_ms: m.timeout_ms,
            state: m.state,
            partitions: by_topic
                .into_iter()
                .map(|(topic, partitions)| TxnTopicPartitions {
                    topic: topic.to_owned(),
                    partitions,
                })
                .collect(),
            start_timestamp_ms: m.start_timestamp_ms,
            last_update_timestamp_ms: m.last_update_timestamp_ms,
            client_transaction_version: m.client_transaction_version,
        }
    }

    pub fn into_metadata(self) -> TransactionMetadata {
        TransactionMetadata {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            producer_epoch: self.producer_epoch,
            last_producer_epoch: self.last_producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: self
                .partitions
                .into_iter()
                .flat_map(|t| {
                    let topic = t.topic;
                    t.partitions.into_iter().map(move |p| (topic.clone(), p))
                })
                .collect(),
            start_timestamp_ms: self.start_timestamp_ms,
            last_update_timestamp_ms: self.last_update_timestamp_ms,
            client_transaction_version: self.client_transaction_version,
        }
    }
}

/// A decoded record: the transactional id and its state, `None` for a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedTxnRecord {
    pub transactional_id: String,
    pub value: Option<TxnRecordValue>,
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs with string keys: serializing cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

impl TxnRecord {
    /// The record for `transactional_id`'s state, or its tombstone.
    pub fn transaction(transactional_id: &str, metadata: Option<&TransactionMetadata>) -> Self {
        let key = TxnRecordKey::Transaction {
            transactional_id: transactional_id.to_owned(),
        };
        Self {
            key: to_json(&key),
            value: metadata.map(|m| to_json(&TxnRecordValue::from_metadata(m))),
        }
    }

    /// Parses key and value.
    pub fn decode(&self) -> Result<DecodedTxnRecord, TxnRecordError> {
        let TxnRecordKey::Transaction { transactional_id } =
            serde_json::from_slice(&self.key).map_err(TxnRecordError::Key)?;
        let value = match &self.value {
            None => None,
            Some(bytes) => {
                let value: TxnRecordValue =
                    serde_json::from_slice(bytes).map_err(TxnRecordError::Value)?;
                if value.version == 0 || value.version > TXN_RECORD_VALUE_VERSION {
                    return Err(TxnRecordError::Version(value.version));
                }
                if value.producer_id < 0 || value.producer_epoch < 0 {
                    return Err(TxnRecordError::Invalid {
                        producer_id: value.producer_id,
                        epoch: value.producer_epoch,
                    });
                }
                Some(value)
            }
        };
        Ok(DecodedTxnRecord {
            transactional_id,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_format_is_stable() {
        let m = TransactionMetadata {
            producer_id: 7,
            previous_producer_id: 3,
            next_producer_id: -1,
            producer_epoch: 2,
            last_producer_epoch: 1,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [
                ("b".to_owned(), 1),
                ("a".to_owned(), 4),
                ("a".to_owned(), 0),
            ]
            .into_iter()
            .collect(),
            start_timestamp_ms: 100,
            last_update_timestamp_ms: 150,
            client_transaction_version: TransactionVersion::V2,
        };
        let record = TxnRecord::transaction("tx-1", Some(&m));
        assert_eq!(
            String::from_utf8(record.key.clone()).unwrap(),
            r#"{"type":"transaction","transactional_id":"tx-1"}"#
        );
        assert_eq!(
            String::from_utf8(record.value.clone().unwrap()).unwrap(),
            r#"{"version":1,"producer_id":7,"previous_producer_id":3,"next_producer_id":-1,"producer_epoch":2,"last_producer_epoch":1,"timeout_ms":60000,"state":"Ongoing","partitions":[{"topic":"a","partitions":[0,4]},{"topic":"b","partitions":[1]}],"start_timestamp_ms":100,"last_update_timestamp_ms":150,"client_transaction_version":2}"#
        );
        let decoded = record.decode().unwrap();
        assert_eq!(decoded.transactional_id, "tx-1");
        assert_eq!(decoded.value.unwrap().into_metadata(), m);

        let tombstone = TxnRecord::transaction("tx-1", None);
        assert_eq!(tombstone.decode().unwrap().value, None);
    }

    #[test]
    fn bad_records_are_refused() {
        let key = TxnRecord::transaction("t", None).key;
        let bad_key = TxnRecord {
            key: br#"{"type":"offset_commit"}"#.to_vec(),
            value: None,
        };
        assert!(matches!(bad_key.decode(), Err(TxnRecordError::Key(_))));
        let future = TxnRecord {
            key: key.clone(),
            value: Some(br#"{"version":2,"producer_id":1,"previous_producer_id":-1,"next_producer_id":-1,"producer_epoch":0,"last_producer_epoch":-1,"timeout_ms":1,"state":"Empty","partitions":[],"start_timestamp_ms":-1,"last_update_timestamp_ms":0,"client_transaction_version":1}"#.to_vec()),
        };
        assert!(matches!(future.decode(), Err(TxnRecordError::Version(2))));
        let negative = TxnRecord {
            key: key.clone(),
            value: Some(br#"{"version":1,"producer_id":-1,"previous_producer_id":-1,"next_producer_id":-1,"producer_epoch":0,"last_producer_epoch":-1,"timeout_ms":1,"state":"Empty","partitions":[],"start_timestamp_ms":-1,"last_update_timestamp_ms":0,"client_transaction_version":1}"#.to_vec()),
        };
        assert!(matches!(
            negative.decode(),
            Err(TxnRecordError::Invalid {
                producer_id: -1,
                ..
            })
        ));
        let bad_version = TxnRecord {
            key,
            value: Some(br#"{"version":1,"producer_id":1,"previous_producer_id":-1,"next_producer_id":-1,"producer_epoch":0,"last_producer_epoch":-1,"timeout_ms":1,"state":"Empty","partitions":[],"start_timestamp_ms":-1,"last_update_timestamp_ms":0,"client_transaction_version":7}"#.to_vec()),
        };
        assert!(matches!(
            bad_version.decode(),
            Err(TxnRecordError::Value(_))
        ));
    }
}
