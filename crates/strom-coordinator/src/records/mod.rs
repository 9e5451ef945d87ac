//! The records a shard writes to its `__consumer_offsets` partition, and their encoding.
//!
//! Keys and values are JSON. The key names the record type in its `type` field, so
//! log compaction keeps the latest record per (type, identity); a value of `None`
//! is a tombstone. Values carry a `version` so the format can evolve; byte fields
//! (member metadata, assignments) are lower-case hex strings.

mod consumer;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use consumer::{
    ConsumerCurrentAssignmentValue, ConsumerGroupValue, ConsumerMemberValue,
    ConsumerTargetAssignmentEpochValue, ConsumerTargetAssignmentValue, MemberState,
    TopicMetadataValue, TopicPartitionsValue,
};

/// Version written into every value this build produces.
pub const RECORD_VALUE_VERSION: u16 = 1;

/// One record of the `__consumer_offsets` partition a shard owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorRecord {
    pub key: Vec<u8>,
    /// `None` is a tombstone: the key's state is deleted.
    pub value: Option<Vec<u8>>,
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("malformed record key: {0}")]
    Key(serde_json::Error),
    #[error("malformed {kind} value: {source}")]
    Value {
        kind: &'static str,
        source: serde_json::Error,
    },
    #[error("unsupported {kind} value version {version}")]
    Version { kind: &'static str, version: u16 },
}

/// The identity part of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RecordKey {
    /// A committed offset of one partition for one group.
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    /// The metadata of a classic group as of its last completed rebalance.
    ClassicGroup { group: String },
    /// A consumer group's epoch and subscription metadata.
    ConsumerGroup { group: String },
    /// A consumer group member's subscription and identity.
    ConsumerGroupMember { group: String, member: String },
    /// A consumer group member's target assignment.
    ConsumerGroupTargetAssignment { group: String, member: String },
    /// The epoch of a consumer group's target assignment.
    ConsumerGroupTargetAssignmentEpoch { group: String },
    /// A consumer group member's current assignment and epochs.
    ConsumerGroupCurrentAssignment { group: String, member: String },
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitValue {
    pub version: u16,
    pub offset: i64,
    /// -1 when the client sent none.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Set only by OffsetCommit v2-4 with an explicit retention time.
    pub expire_timestamp_ms: Option<i64>,
}

/// A classic group's persisted metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicGroupValue {
    pub version: u16,
    pub protocol_type: Option<String>,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// When the group entered its current state; an empty group's offsets expire from here.
    pub current_state_timestamp_ms: i64,
    pub members: Vec<ClassicMemberValue>,
}

/// One member of a persisted classic group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassicMemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's selected protocol.
    #[serde(with = "hex_bytes")]
    pub subscription: Bytes,
    #[serde(with = "hex_bytes")]
    pub assignment: Bytes,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedRecord {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetCommitValue>,
    },
    ClassicGroup {
        group: String,
        value: Option<ClassicGroupValue>,
    },
    ConsumerGroup {
        group: String,
        value: Option<ConsumerGroupValue>,
    },
    ConsumerGroupMember {
        group: String,
        member: String,
        value: Option<ConsumerMemberValue>,
    },
    ConsumerGroupTargetAssignment {
        group: String,
        member: String,
        value: Option<ConsumerTargetAssignmentValue>,
    },
    ConsumerGroupTargetAssignmentEpoch {
        group: String,
        value: Option<ConsumerTargetAssignmentEpochValue>,
    },
    ConsumerGroupCurrentAssignment {
        group: String,
        member: String,
        value: Option<ConsumerCurrentAssignmentValue>,
    },
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs (string keys, no maps with non-string keys) cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

impl CoordinatorRecord {
    pub fn offset_commit(
        group: &str,
        topic: &str,
        partition: i32,
        value: Option<&OffsetCommitValue>,
    ) -> Self {
        let key = RecordKey::OffsetCommit {
            group: group.to_owned(),
            topic: topic.to_owned(),
            partition,
        };
        Self {
            key: to_json(&key),
            value: value.map(to_json),
        }
    }

    pub fn classic_group(group: &str, value: Option<&ClassicGroupValue>) -> Self {
        let key = RecordKey::ClassicGroup {
            group: group.to_owned(),
        };
        Self {
            key: to_json(&key),
            value: value.map(to_json),
        }
    }

    /// Whether this is a committed offset (or its tombstone).
    pub fn is_offset_commit(&self) -> bool {
        matches!(
            serde_json::from_slice::<RecordKey>(&self.key),
            Ok(RecordKey::OffsetCommit { .. })
        )
    }

    /// Parses key and value.
    pub fn decode(&self) -> Result<DecodedRecord, RecordError> {
        let key: RecordKey = serde_json::from_slice(&self.key).map_err(RecordError::Key)?;
        Ok(match key {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => DecodedRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: decode_value::<OffsetCommitValue>(
                    self.value.as_deref(),
                    "offset commit",
                    |v| v.version,
                )?,
            },
            RecordKey::ClassicGroup { group } => DecodedRecord::ClassicGroup {
                group,
                value: decode_value::<ClassicGroupValue>(
                    self.value.as_deref(),
                    "classic group",
                    |v| v.version,
                )?,
            },
            RecordKey::ConsumerGroup { group } => DecodedRecord::ConsumerGroup {
                group,
                value: decode_value::<ConsumerGroupValue>(
                    self.value.as_deref(),
                    "consumer group",
                    |v| v.version,
                )?,
            },
            RecordKey::ConsumerGroupMember { group, member } => {
                DecodedRecord::ConsumerGroupMember {
                    group,
                    member,
                    value: decode_value::<ConsumerMemberValue>(
                        self.value.as_deref(),
                        "consumer group member",
                        |v| v.version,
                    )?,
                }
            }
            RecordKey::ConsumerGroupTargetAssignment { group, member } => {
                DecodedRecord::ConsumerGroupTargetAssignment {
                    group,
                    member,
                    value: decode_value::<ConsumerTargetAssignmentValue>(
                        self.value.as_deref(),
                        "consumer target assignment",
                        |v| v.version,
                    )?,
                }
            }
            RecordKey::ConsumerGroupTargetAssignmentEpoch { group } => {
                DecodedRecord::ConsumerGroupTargetAssignmentEpoch {
                    group,
                    value: decode_value::<ConsumerTargetAssignmentEpochValue>(
                        self.value.as_deref(),
                        "consumer target assignment epoch",
                        |v| v.version,
                    )?,
                }
            }
            RecordKey::ConsumerGroupCurrentAssignment { group, member } => {
                DecodedRecord::ConsumerGroupCurrentAssignment {
                    group,
                    member,
                    value: decode_value::<ConsumerCurrentAssignmentValue>(
                        self.value.as_deref(),
                        "consumer current assignment",
                        |v| v.version,
                    )?,
                }
            }
        })
    }
}

fn decode_value<T: for<'de> Deserialize<'de>>(
    bytes: Option<&[u8]>,
    kind: &'static str,
    version: impl Fn(&T) -> u16,
) -> Result<Option<T>, RecordError> {
    let Some(bytes) = bytes else { return Ok(None) };
    let value: T =
        serde_json::from_slice(bytes).map_err(|source| RecordError::Value { kind, source })?;
    let v = version(&value);
    if v == 0 || v > RECORD_VALUE_VERSION {
        return Err(RecordError::Version { kind, version: v });
    }
    Ok(Some(value))
}

mod hex_bytes {
    use bytes::Bytes;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    const DIGITS: &[u8; 16] = b"0123456789abcdef";

    pub fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes.iter() {
            out.push(DIGITS[usize::from(b >> 4)] as char);
            out.push(DIGITS[usize::from(b & 0x0f)] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(D::Error::custom("odd-length hex string"));
        }
        // The capacity is bounded by the already-parsed string.
        let mut out = Vec::with_capacity(text.len() / 2);
        for pair in text.as_bytes().chunks_exact(2) {
            let hi = nibble(pair[0]).ok_or_else(|| D::Error::custom("bad hex digit"))?;
            let lo = nibble(pair[1]).ok_or_else(|| D::Error::custom("bad hex digit"))?;
            out.push((hi << 4) | lo);
        }
        Ok(Bytes::from(out))
    }

    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_record_round_trips_with_hex_bytes() {
        let value = ClassicGroupValue {
            version: RECORD_VALUE_VERSION,
            protocol_type: Some("consumer".into()),
            generation: 3,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 42,
            members: vec![ClassicMemberValue {
                member_id: "m1".into(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 1000,
                session_timeout_ms: 6000,
                subscription: Bytes::from_static(&[0, 1, 0xab]),
                assignment: Bytes::from_static(&[0xff]),
            }],
        };
        let record = CoordinatorRecord::classic_group("g", Some(&value));
        assert_eq!(
            record.key,
            br#"{"type":"classic_group","group":"g"}"#.to_vec()
        );
        let text = String::from_utf8(record.value.clone().unwrap()).unwrap();
        assert!(text.contains(r#""subscription":"0001ab""#), "{text}");
        assert_eq!(
            record.decode().unwrap(),
            DecodedRecord::ClassicGroup {
                group: "g".into(),
                value: Some(value)
            }
        );
    }

    #[test]
    fn offset_tombstone_and_bad_input() {
        let record = CoordinatorRecord::offset_commit("g", "t", 2, None);
        assert_eq!(
            record.key,
            br#"{"type":"offset_commit","group":"g","topic":"t","partition":2}"#.to_vec()
        );
        assert_eq!(
            record.decode().unwrap(),
            DecodedRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 2,
                value: None
            }
        );
        let bad = CoordinatorRecord {
            key: b"{\"type\":\"nope\"}".to_vec(),
            value: None,
        };
        assert!(matches!(bad.decode(), Err(RecordError::Key(_))));
        let future = CoordinatorRecord {
            key: record.key.clone(),
            value: Some(br#"{"version":9,"offset":1,"leader_epoch":-1,"metadata":"","commit_timestamp_ms":0,"expire_timestamp_ms":null}"#.to_vec()),
        };
        assert!(matches!(
            future.decode(),
            Err(RecordError::Version { version: 9, .. })
        ));
    }
}
