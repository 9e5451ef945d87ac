//! The records of the `_schemas` topic, in Confluent's JSON format, so that a topic written
//! by strom can be read by Confluent's registry and the other way round.
//!
//! Keys are compacted on their exact bytes, so their field order is fixed: `keytype`,
//! then `subject` (left out when there is none, as for the global config), then
//! `version` for schemas, then `magic` (1 for schema keys, 0 for the others).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RecordError;

pub const SCHEMA_KEY_MAGIC: i32 = 1;
pub const OTHER_KEY_MAGIC: i32 = 0;

/// What a `_schemas` record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    Schema {
        subject: String,
        version: i32,
    },
    /// `None`: the global (or a context's) default.
    Config {
        subject: Option<String>,
    },
    Mode {
        subject: Option<String>,
    },
    /// Written to learn the end of the topic; carries nothing.
    Noop,
    DeleteSubject {
        subject: String,
    },
    /// `None`: every context.
    ClearSubject {
        subject: Option<String>,
    },
    Context {
        tenant: String,
        context: String,
    },
}

impl RecordKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut map = serde_json::Map::new();
        let (keytype, magic) = match self {
            RecordKey::Schema { .. } => ("SCHEMA", SCHEMA_KEY_MAGIC),
            RecordKey::Config { .. } => ("CONFIG", OTHER_KEY_MAGIC),
            RecordKey::Mode { .. } => ("MODE", OTHER_KEY_MAGIC),
            RecordKey::Noop => ("NOOP", OTHER_KEY_MAGIC),
            RecordKey::DeleteSubject { .. } => ("DELETE_SUBJECT", OTHER_KEY_MAGIC),
            RecordKey::ClearSubject { .. } => ("CLEAR_SUBJECT", OTHER_KEY_MAGIC),
            RecordKey::Context { .. } => ("CONTEXT", OTHER_KEY_MAGIC),
        };
        map.insert("keytype".into(), keytype.into());
        match self {
            RecordKey::Schema { subject, version } => {
                map.insert("subject".into(), subject.as_str().into());
                map.insert("version".into(), (*version).into());
            }
            RecordKey::Config { subject } | RecordKey::Mode { subject } => {
                if let Some(subject) = subject.as_deref().filter(|s| !s.is_empty()) {
                    map.insert("subject".into(), subject.into());
                }
            }
            RecordKey::DeleteSubject { subject } => {
                map.insert("subject".into(), subject.as_str().into());
            }
            RecordKey::ClearSubject { subject } => {
                if let Some(subject) = subject {
                    map.insert("subject".into(), subject.as_str().into());
                }
            }
            RecordKey::Context { tenant, context } => {
                map.insert("tenant".into(), tenant.as_str().into());
                map.insert("context".into(), context.as_str().into());
            }
            RecordKey::Noop => {}
        }
        map.insert("magic".into(), magic.into());
        serde_json::to_vec(&Value::Object(map)).expect("a JSON map always encodes")
    }

    pub fn decode(bytes: &[u8]) -> Result<RecordKey, RecordError> {
        let value: Value = serde_json::from_slice(bytes).map_err(RecordError::Json)?;
        let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
        let subject = || text("subject").ok_or(RecordError::Missing("subject"));
        let keytype = text("keytype").ok_or(RecordError::Missing("keytype"))?;
        Ok(match keytype.as_str() {
            "SCHEMA" => RecordKey::Schema {
                subject: subject()?,
                version: value
                    .get("version")
                    .and_then(Value::as_i64)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or(RecordError::Missing("version"))?,
            },
            "CONFIG" => RecordKey::Config {
                subject: text("subject"),
            },
            "MODE" => RecordKey::Mode {
                subject: text("subject"),
            },
            "NOOP" => RecordKey::Noop,
            "DELETE_SUBJECT" => RecordKey::DeleteSubject {
                subject: subject()?,
            },
            "CLEAR_SUBJECT" => RecordKey::ClearSubject {
                subject: text("subject"),
            },
            "CONTEXT" => RecordKey::Context {
                tenant: text("tenant").unwrap_or_default(),
                context: text("context").unwrap_or_default(),
            },
            other => return Err(RecordError::UnknownKeyType(other.to_owned())),
        })
    }
}

/// A reference from one schema to a version of another subject's schema.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SchemaReference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// The value of a SCHEMA key: one version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaValue {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    /// Left out for Avro, the default type.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
    /// Confluent's data-contract fields, kept as they came so they read back unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(rename = "ruleSet", default, skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<Value>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

/// The value of a CONFIG key. Fields strom does not use are kept as they came.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<bool>,
    #[serde(
        rename = "compatibilityLevel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub compatibility_level: Option<String>,
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// The value of a MODE key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub mode: String,
}

/// The value of a DELETE_SUBJECT key: every version up to `version` was soft-deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    pub subject: String,
    pub version: i32,
}

/// The value of a CLEAR_SUBJECT key: the soft-deleted versions in a scope (a subject, a
/// context `:.ctx:`, or everything when absent) were removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearSubjectValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// The value of a CONTEXT key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextValue {
    pub tenant: String,
    pub context: String,
}

/// The tenant of every context strom writes (Confluent's single-tenant default).
pub const DEFAULT_TENANT: &str = "default";

/// A decoded `_schemas` record; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Schema(String, i32, Option<SchemaValue>),
    Config(Option<String>, Option<ConfigValue>),
    Mode(Option<String>, Option<ModeValue>),
    DeleteSubject(Option<DeleteSubjectValue>),
    ClearSubject(Option<ClearSubjectValue>),
    /// A context created (value present) or deleted (tombstone).
    Context(String, bool),
    /// NOOP records change nothing.
    Noop,
}

impl Record {
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record, RecordError> {
        fn parse<T: for<'a> Deserialize<'a>>(
            value: Option<&[u8]>,
        ) -> Result<Option<T>, RecordError> {
            value
                .map(|v| serde_json::from_slice(v).map_err(RecordError::Json))
                .transpose()
        }
        Ok(match RecordKey::decode(key)? {
            RecordKey::Schema { subject, version } => {
                Record::Schema(subject, version, parse(value)?)
            }
            RecordKey::Config { subject } => Record::Config(subject, parse(value)?),
            RecordKey::Mode { subject } => Record::Mode(subject, parse(value)?),
            RecordKey::DeleteSubject { .. } => Record::DeleteSubject(parse(value)?),
            RecordKey::ClearSubject { .. } => Record::ClearSubject(parse(value)?),
            RecordKey::Context { context, .. } => Record::Context(context, value.is_some()),
            RecordKey::Noop => Record::Noop,
        })
    }
}

/// A record to append: its key and value bytes (`None`: a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

impl Write {
    pub fn new<T: Serialize>(key: RecordKey, value: Option<&T>) -> Write {
        Write {
            key: key.encode(),
            value: value.map(|v| serde_json::to_vec(v).expect("registry values always encode")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_encode_in_confluents_field_order() {
        let cases = [
            (
                RecordKey::Schema {
                    subject: "orders-value".into(),
                    version: 3,
                },
                r#"{"keytype":"SCHEMA","subject":"orders-value","version":3,"magic":1}"#,
            ),
            (
                RecordKey::Config { subject: None },
                r#"{"keytype":"CONFIG","magic":0}"#,
            ),
            (
                RecordKey::Config {
                    subject: Some("s".into()),
                },
                r#"{"keytype":"CONFIG","subject":"s","magic":0}"#,
            ),
            (
                RecordKey::Mode { subject: None },
                r#"{"keytype":"MODE","magic":0}"#,
            ),
            (RecordKey::Noop, r#"{"keytype":"NOOP","magic":0}"#),
            (
                RecordKey::DeleteSubject {
                    subject: "s".into(),
                },
                r#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#,
            ),
        ];
        for (key, text) in cases {
            assert_eq!(String::from_utf8(key.encode()).unwrap(), text);
            assert_eq!(RecordKey::decode(text.as_bytes()).unwrap(), key);
        }
    }

    #[test]
    fn keys_decode_whatever_the_field_order() {
        let key = RecordKey::decode(br#"{"magic":1,"version":2,"subject":"x","keytype":"SCHEMA"}"#);
        assert_eq!(
            key.unwrap(),
            RecordKey::Schema {
                subject: "x".into(),
                version: 2
            }
        );
        assert!(RecordKey::decode(br#"{"keytype":"WHAT","magic":0}"#).is_err());
        assert!(RecordKey::decode(b"not json").is_err());
    }

    #[test]
    fn schema_values_leave_out_empty_fields() {
        let value = SchemaValue {
            subject: "s".into(),
            version: 1,
            id: 7,
            schema_type: None,
            references: vec![],
            metadata: None,
            rule_set: None,
            schema: "\"string\"".into(),
            deleted: false,
        };
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"subject":"s","version":1,"id":7,"schema":"\"string\"","deleted":false}"#
        );
        let with_refs = SchemaValue {
            schema_type: Some("PROTOBUF".into()),
            references: vec![SchemaReference {
                name: "a.proto".into(),
                subject: "a".into(),
                version: 1,
            }],
            ..value
        };
        assert_eq!(
            serde_json::to_string(&with_refs).unwrap(),
            r#"{"subject":"s","version":1,"id":7,"schemaType":"PROTOBUF","references":[{"name":"a.proto","subject":"a","version":1}],"schema":"\"string\"","deleted":false}"#
        );
    }
}
