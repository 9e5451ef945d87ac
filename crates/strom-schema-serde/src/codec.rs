//! A writer schema of any kind, ready to encode and decode payloads (what follows the frame).

use serde_json::Value as Json;

use crate::avro::AvroCodec;
use crate::error::{Result, SerdeError};
use crate::json::JsonCodec;
use crate::protobuf::ProtobufCodec;

/// A schema's type, as the registry names it (`schemaType`; absent means Avro).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    Avro,
    Json,
    Protobuf,
}

impl SchemaKind {
    pub fn from_field(value: Option<&Json>) -> Result<SchemaKind> {
        match value.and_then(Json::as_str) {
            None | Some("AVRO") | Some("") => Ok(SchemaKind::Avro),
            Some("JSON") => Ok(SchemaKind::Json),
            Some("PROTOBUF") => Ok(SchemaKind::Protobuf),
            Some(other) => Err(SerdeError::Schema(format!("unknown schema type {other}"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SchemaKind::Avro => "AVRO",
            SchemaKind::Json => "JSON",
            SchemaKind::Protobuf => "PROTOBUF",
        }
    }
}

/// A writer schema, ready to encode or decode.
pub enum Codec {
    Avro(AvroCodec),
    Json(JsonCodec),
    Protobuf(ProtobufCodec),
}

impl Codec {
    /// `references`: (name, schema text) of every schema `text` references, directly or not,
    /// dependencies first (the name is what a JSON `$ref` or a Protobuf import uses).
    pub fn new(kind: SchemaKind, text: &str, references: &[(String, String)]) -> Result<Codec> {
        Ok(match kind {
            SchemaKind::Avro => Codec::Avro(AvroCodec::new(
                text,
                references.iter().map(|(_, text)| text.as_str()),
            )?),
            SchemaKind::Json => Codec::Json(JsonCodec::new(text, references)?),
            SchemaKind::Protobuf => Codec::Protobuf(ProtobufCodec::new(text, references)?),
        })
    }

    pub fn kind(&self) -> SchemaKind {
        match self {
            Codec::Avro(_) => SchemaKind::Avro,
            Codec::Json(_) => SchemaKind::Json,
            Codec::Protobuf(_) => SchemaKind::Protobuf,
        }
    }

    /// The schema's name as Confluent's RecordNameStrategy reads it: an Avro record's full
    /// name, a JSON schema's `title`, a Protobuf file's first message (or enum); none for
    /// other schemas.
    pub fn record_name(&self) -> Option<String> {
        match self {
            Codec::Avro(avro) => avro.record_name(),
            Codec::Json(json) => json.title().map(str::to_owned),
            Codec::Protobuf(protobuf) => protobuf.record_name(),
        }
    }

    /// A JSON value as the payload (without the framing; for Protobuf with the message-index
    /// prefix).
    pub fn encode(&self, value: &Json) -> Result<Vec<u8>> {
        match self {
            Codec::Avro(avro) => avro.encode(value),
            Codec::Json(json) => json.encode(value),
            Codec::Protobuf(protobuf) => protobuf.encode(value),
        }
    }

    /// A payload (after the framing) decoded.
    pub fn decode(&self, payload: &[u8]) -> Result<Decoded> {
        match self {
            Codec::Avro(avro) => avro.decode(payload).map(Decoded::Json),
            Codec::Json(_) => Ok(Decoded::Text(String::from_utf8_lossy(payload).into_owned())),
            Codec::Protobuf(protobuf) => protobuf.decode(payload).map(Decoded::Json),
        }
    }
}

/// What a framed payload decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Json(Json),
    /// A JSON Schema payload: kept as it is.
    Text(String),
}

impl Decoded {
    /// As text to print: JSON, or a JSON Schema payload as it is.
    pub fn text(&self) -> String {
        match self {
            Decoded::Json(value) => value.to_string(),
            Decoded::Text(text) => text.clone(),
        }
    }

    /// As a JSON value: a JSON Schema payload parsed (a string if it is not JSON).
    pub fn json(&self) -> Json {
        match self {
            Decoded::Json(value) => value.clone(),
            Decoded::Text(text) => {
                serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_named_as_the_registry_names_them() {
        assert_eq!(SchemaKind::from_field(None).unwrap(), SchemaKind::Avro);
        for kind in [SchemaKind::Avro, SchemaKind::Json, SchemaKind::Protobuf] {
            assert_eq!(
                SchemaKind::from_field(Some(&json!(kind.name()))).unwrap(),
                kind
            );
        }
        assert!(SchemaKind::from_field(Some(&json!("XML"))).is_err());
    }

    #[test]
    fn every_kind_round_trips_through_the_codec() {
        let cases = [
            (
                SchemaKind::Avro,
                r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}"#,
                json!({"a": 1, "b": "x"}),
            ),
            (
                SchemaKind::Json,
                r#"{"type":"object","properties":{"a":{"type":"integer"}}}"#,
                json!({"a": 1, "b": "x"}),
            ),
            (
                SchemaKind::Protobuf,
                "syntax = \"proto3\"; message R { int32 a = 1; string b = 2; }",
                json!({"a": 1, "b": "x"}),
            ),
        ];
        for (kind, schema, value) in cases {
            let codec = Codec::new(kind, schema, &[]).unwrap();
            assert_eq!(codec.kind(), kind);
            let payload = codec.encode(&value).unwrap();
            assert_eq!(codec.decode(&payload).unwrap().json(), value, "{kind:?}");
            assert!(codec.encode(&json!("not a record")).is_err(), "{kind:?}");
        }
    }

    #[test]
    fn record_names_are_read_as_confluent_reads_them() {
        let cases = [
            (
                SchemaKind::Avro,
                r#"{"type":"record","name":"R","namespace":"a.b","fields":[]}"#,
                Some("a.b.R"),
            ),
            (SchemaKind::Avro, r#""string""#, None),
            (
                SchemaKind::Json,
                r#"{"title":"Order","type":"object"}"#,
                Some("Order"),
            ),
            (SchemaKind::Json, r#"{"type":"object"}"#, None),
            (
                SchemaKind::Protobuf,
                "syntax = \"proto3\"; package p; message M { int32 a = 1; } message N {}",
                Some("p.M"),
            ),
            (
                SchemaKind::Protobuf,
                "syntax = \"proto3\"; enum E { E0 = 0; }",
                Some("E"),
            ),
        ];
        for (kind, text, name) in cases {
            let codec = Codec::new(kind, text, &[]).unwrap();
            assert_eq!(codec.record_name().as_deref(), name, "{text}");
        }
    }

    #[test]
    fn codecs_can_be_shared_between_tasks() {
        fn shared<T: Send + Sync>() {}
        shared::<Codec>();
        shared::<crate::SchemaCache>();
        shared::<crate::SerdeError>();
    }
}
