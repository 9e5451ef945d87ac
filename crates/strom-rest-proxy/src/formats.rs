//! Embedded formats: JSON keys and values of REST bodies as record bytes, and back.
//!
//! - binary: base64 strings;
//! - json: any JSON value, stored as its text;
//! - avro, jsonschema, protobuf: JSON values encoded with a schema from the registry, in
//!   Confluent's wire format (magic byte, schema id, payload).

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde_json::Value;

use crate::error::{RestError, RestResult, INVALID_SCHEMA, KAFKA_ERROR};
use crate::media::EmbeddedFormat;

/// Turns one side (keys or values) of a produce request into record bytes.
pub enum Serializer {
    Binary,
    Json,
    Schema {
        id: u32,
        codec: Arc<strom_schema_serde::Codec>,
    },
}

impl Serializer {
    /// The schema id written with these records, if any.
    pub fn schema_id(&self) -> Option<u32> {
        match self {
            Serializer::Schema { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// A JSON `null` (or a missing key or value) is a null key or value.
    pub fn serialize(&self, value: &Value) -> RestResult<Option<Bytes>> {
        if value.is_null() {
            return Ok(None);
        }
        match self {
            Serializer::Binary => {
                let Value::String(text) = value else {
                    return Err(RestError::serialization(format!(
                        "{value} is not a valid base64 string."
                    )));
                };
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map(|bytes| Some(Bytes::from(bytes)))
                    .map_err(|e| {
                        RestError::serialization(format!(
                            "{value} is not a valid base64 string: {e}"
                        ))
                    })
            }
            Serializer::Json => Ok(Some(Bytes::from(value.to_string()))),
            Serializer::Schema { id, codec } => {
                let payload = codec
                    .encode(value)
                    .map_err(|e| RestError::serialization(e.to_string()))?;
                Ok(Some(Bytes::from(strom_schema_serde::frame(*id, &payload))))
            }
        }
    }
}

/// The schema registry, when the proxy has one.
pub struct Formats {
    registry: Option<tokio::sync::Mutex<strom_schema_serde::SchemaCache>>,
}

impl Formats {
    pub fn new(registry_url: Option<&str>) -> Self {
        let registry = registry_url
            .and_then(|url| match strom_schema_serde::RegistryClient::new(url) {
                Ok(client) => Some(client),
                Err(e) => {
                    tracing::warn!(%url, error = %e, "the REST proxy cannot use this schema registry");
                    None
                }
            })
            .map(|client| tokio::sync::Mutex::new(strom_schema_serde::SchemaCache::new(client)));
        Self { registry }
    }

    fn registry(&self) -> RestResult<&tokio::sync::Mutex<strom_schema_serde::SchemaCache>> {
        self.registry.as_ref().ok_or_else(|| {
            RestError::unprocessable(
                INVALID_SCHEMA,
                "Invalid schema: this REST proxy has no schema registry (schema.registry.url)",
            )
        })
    }

    /// The serializer for one side of a produce request. For the registry formats the
    /// schema comes from `schema_id`, or from `schema` registered under the topic's
    /// subject (`<topic>-key`, `<topic>-value`), as Confluent's proxy does.
    pub async fn serializer(
        &self,
        format: EmbeddedFormat,
        topic: &str,
        is_key: bool,
        schema: Option<&str>,
        schema_id: Option<u32>,
    ) -> RestResult<Option<Serializer>> {
        let kind = match format {
            EmbeddedFormat::Binary => return Ok(Some(Serializer::Binary)),
            EmbeddedFormat::Json => return Ok(Some(Serializer::Json)),
            EmbeddedFormat::Avro => strom_schema_serde::SchemaKind::Avro,
            EmbeddedFormat::JsonSchema => strom_schema_serde::SchemaKind::Json,
            EmbeddedFormat::Protobuf => strom_schema_serde::SchemaKind::Protobuf,
        };
        if schema.is_none() && schema_id.is_none() {
            return Ok(None);
        }
        let mut registry = self.registry()?.lock().await;
        let (id, codec) = match (schema_id, schema) {
            (Some(id), _) => (id, registry.by_id(id).await.map_err(registry_error)?),
            (None, Some(text)) => {
                let subject = format!("{topic}-{}", if is_key { "key" } else { "value" });
                registry
                    .register(&subject, kind, text, &[])
                    .await
                    .map_err(registry_error)?
            }
            (None, None) => unreachable!("checked above"),
        };
        if codec.kind() != kind {
            return Err(RestError::unprocessable(
                INVALID_SCHEMA,
                format!(
                    "Invalid schema: schema {id} is {}, not {}",
                    codec.kind().name(),
                    kind.name()
                ),
            ));
        }
        Ok(Some(Serializer::Schema { id, codec }))
    }

    /// A record's key or value as the consumer's format shows it.
    pub async fn deserialize(
        &self,
        format: EmbeddedFormat,
        bytes: Option<&Bytes>,
    ) -> RestResult<Value> {
        let Some(bytes) = bytes else {
            return Ok(Value::Null);
        };
        match format {
            EmbeddedFormat::Binary => Ok(Value::String(
                base64::engine::general_purpose::STANDARD.encode(bytes),
            )),
            EmbeddedFormat::Json => serde_json::from_slice(bytes).map_err(|e| {
                RestError::internal(format!("Kafka error: the record is not JSON: {e}"))
                    .with_code(KAFKA_ERROR)
            }),
            EmbeddedFormat::Avro | EmbeddedFormat::JsonSchema | EmbeddedFormat::Protobuf => {
                let Some((id, payload)) = strom_schema_serde::unframe(bytes) else {
                    return Err(RestError::internal(
                        "Kafka error: the record is not in the schema registry's wire format (magic byte 0)",
                    )
                    .with_code(KAFKA_ERROR));
                };
                let codec = self
                    .registry()?
                    .lock()
                    .await
                    .by_id(id)
                    .await
                    .map_err(registry_error)?;
                let decoded = codec.decode(payload).map_err(|e| {
                    RestError::internal(format!("Kafka error: schema {id}: {e}"))
                        .with_code(KAFKA_ERROR)
                })?;
                Ok(decoded.json())
            }
        }
    }
}

/// The registry's own errors keep their code and message; failing to reach it is a 500.
fn registry_error(error: strom_schema_serde::SerdeError) -> RestError {
    match error.registry_error() {
        Some((status, code, message)) => {
            let status = axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            let code = u32::try_from(code).unwrap_or(50001);
            // An unknown or invalid schema is the caller's: 422 as Confluent's proxy.
            if status.is_client_error() {
                RestError::unprocessable(INVALID_SCHEMA, format!("Invalid schema: {message}"))
                    .with_code(if code == 40403 { code } else { INVALID_SCHEMA })
            } else {
                RestError::new(status, code, message.to_owned())
            }
        }
        None => RestError::unprocessable(INVALID_SCHEMA, format!("Invalid schema: {error}")),
    }
}

impl RestError {
    pub fn with_code(mut self, error_code: u32) -> Self {
        self.error_code = error_code;
        self
    }
}
