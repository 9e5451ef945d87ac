//! Embedded formats: JSON keys and values of REST bodies as record bytes, and back.
//!
//! - binary: base64 strings;
//! - json: any JSON value, stored as its text;
//! - avro, jsonschema, protobuf: JSON values encoded with a schema from the registry, in
//!   Confluent's wire format (magic byte, schema id, payload).
//!
//! v2 names its schema per request (`value_schema`, `value_schema_id`); v3 per key and value,
//! by id, subject version, raw schema or the subject's latest version ([`SchemaRequest`]), with
//! errors as kafka-rest's SchemaManager gives them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use strom_schema_serde::{segment, Codec, RegistryClient, SchemaKind, SerdeError};

use crate::error::{RestError, RestResult, INVALID_SCHEMA, KAFKA_AUTHORIZATION, KAFKA_ERROR};
use crate::media::EmbeddedFormat;

/// v3 schema choices remembered (by id, version or raw schema: they do not change).
const RESOLVED_CACHE: usize = 1024;

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
            Serializer::Schema { id, codec } => encode(*id, codec, value)
                .map(Some)
                .map_err(|e| RestError::serialization(e.to_string())),
        }
    }
}

/// A value framed in Confluent's wire format under schema `id`.
fn encode(id: u32, codec: &Codec, value: &Value) -> Result<Bytes, SerdeError> {
    let payload = codec.encode(value)?;
    Ok(Bytes::from(strom_schema_serde::frame(id, &payload)))
}

/// Confluent's subject name strategies (`subject_name_strategy` of v3 produce requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubjectNameStrategy {
    #[serde(alias = "topic_name")]
    TopicName,
    #[serde(alias = "record_name")]
    RecordName,
    #[serde(alias = "topic_record_name")]
    TopicRecordName,
}

impl SubjectNameStrategy {
    pub fn name(self) -> &'static str {
        match self {
            SubjectNameStrategy::TopicName => "TOPIC_NAME",
            SubjectNameStrategy::RecordName => "RECORD_NAME",
            SubjectNameStrategy::TopicRecordName => "TOPIC_RECORD_NAME",
        }
    }

    /// The subject, `None` for the record strategies without a schema (they need its name).
    fn subject(
        self,
        topic: &str,
        is_key: bool,
        codec: Option<&Codec>,
    ) -> RestResult<Option<String>> {
        let record_name = || -> RestResult<Option<String>> {
            let Some(codec) = codec else { return Ok(None) };
            codec.record_name().map(Some).ok_or_else(|| {
                // What the serializer's strategy says of a schema without a name.
                let class = match self {
                    SubjectNameStrategy::TopicRecordName => "TopicRecordNameStrategy",
                    _ => "RecordNameStrategy",
                };
                let side = if is_key { "key" } else { "value" };
                RestError::serialization(format!(
                    "In configuration {side}.subject.name.strategy = \
                     io.confluent.kafka.serializers.subject.{class}, the message {side} must only \
                     be a record schema"
                ))
            })
        };
        Ok(match self {
            SubjectNameStrategy::TopicName => {
                Some(format!("{topic}-{}", if is_key { "key" } else { "value" }))
            }
            SubjectNameStrategy::RecordName => record_name()?,
            SubjectNameStrategy::TopicRecordName => {
                record_name()?.map(|name| format!("{topic}-{name}"))
            }
        })
    }
}

/// How a v3 key or value names its schema. At most one of `schema_id`, `schema_version` and
/// `raw_schema`; none means the subject's latest version. `kind` (the request's type) goes
/// with `raw_schema` only; otherwise the registered schema's type is the record's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SchemaRequest {
    pub kind: Option<&'static str>,
    pub subject: Option<String>,
    pub strategy: Option<SubjectNameStrategy>,
    pub schema_id: Option<i32>,
    pub schema_version: Option<i32>,
    pub raw_schema: Option<String>,
}

/// A schema chosen for a v3 key or value, as kafka-rest answers it.
#[derive(Clone)]
pub struct RegisteredSchema {
    pub subject: String,
    pub id: u32,
    pub version: i32,
    pub codec: Arc<Codec>,
}

impl RegisteredSchema {
    /// The v3 type name of the schema's kind.
    pub fn type_name(&self) -> &'static str {
        v3_type_name(self.codec.kind())
    }

    /// The value framed under this schema; `null` is a null key or value. A value the schema
    /// does not take is the caller's: 400, as kafka-rest's serializers answer.
    pub fn serialize(&self, value: &Value) -> RestResult<Option<Bytes>> {
        if value.is_null() {
            return Ok(None);
        }
        encode(self.id, &self.codec, value)
            .map(Some)
            .map_err(|e| RestError::v3_bad_request(e.root()))
    }
}

/// v3's name of a registry schema type.
pub fn v3_type_name(kind: SchemaKind) -> &'static str {
    match kind {
        SchemaKind::Avro => "AVRO",
        SchemaKind::Json => "JSONSCHEMA",
        SchemaKind::Protobuf => "PROTOBUF",
    }
}

fn kind_of_v3_type(name: &str) -> Option<SchemaKind> {
    match name {
        "AVRO" => Some(SchemaKind::Avro),
        "JSONSCHEMA" => Some(SchemaKind::Json),
        "PROTOBUF" => Some(SchemaKind::Protobuf),
        _ => None,
    }
}

type Resolved = HashMap<(String, bool, SchemaRequest), RegisteredSchema>;

/// The schema registry, when the proxy has one.
pub struct Formats {
    registry: Option<tokio::sync::Mutex<strom_schema_serde::SchemaCache>>,
    /// For lookups that are not cached: no lock is held while they wait.
    client: Option<RegistryClient>,
    resolved: std::sync::Mutex<Resolved>,
}

impl Formats {
    pub fn new(
        registry_url: Option<&str>,
        registry_tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Self {
        let client = registry_url.and_then(|url| match RegistryClient::new(url, registry_tls) {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::warn!(%url, error = %e, "the REST proxy cannot use this schema registry");
                None
            }
        });
        let registry = client
            .clone()
            .map(|client| tokio::sync::Mutex::new(strom_schema_serde::SchemaCache::new(client)));
        Self {
            registry,
            client,
            resolved: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The schema of a v3 key or value, chosen as kafka-rest's SchemaManager chooses it.
    pub async fn v3_schema(
        &self,
        topic: &str,
        is_key: bool,
        request: &SchemaRequest,
    ) -> RestResult<RegisteredSchema> {
        let Some(client) = &self.client else {
            return Err(RestError::invalid_payload(
                "Schema Registry must be configured when using schemas.",
            ));
        };
        // The latest version changes; the others name one schema for good.
        let cacheable = request.schema_id.is_some()
            || request.schema_version.is_some()
            || request.raw_schema.is_some();
        let key = (topic.to_owned(), is_key, request.clone());
        if cacheable {
            if let Some(found) = self.resolved.lock().ok().and_then(|r| r.get(&key).cloned()) {
                return Ok(found);
            }
        }
        let strategy = request.strategy.unwrap_or(SubjectNameStrategy::TopicName);
        let subject_without_schema = || -> RestResult<String> {
            if let Some(subject) = &request.subject {
                return Ok(subject.clone());
            }
            strategy.subject(topic, is_key, None)?.ok_or_else(|| {
                RestError::v3_bad_request(match request.strategy {
                    Some(s) => format!(
                        "Cannot use schema_subject_strategy={} without schema_id or schema.",
                        s.name()
                    ),
                    None => {
                        "Cannot use default schema_subject_strategy without schema_id or schema."
                            .to_owned()
                    }
                })
            })
        };
        let subject_of = |codec: &Codec| -> RestResult<String> {
            match &request.subject {
                Some(subject) => Ok(subject.clone()),
                None => Ok(strategy
                    .subject(topic, is_key, Some(codec))?
                    .unwrap_or_default()),
            }
        };
        let resolved = if let Some(id) = request.schema_id {
            let what = || format!("Error when fetching schema by id. schemaId = {id}");
            let record = client
                .get(&format!("/schemas/ids/{id}"))
                .await
                .map_err(|e| fetch_error(&e, what()))?;
            let id = u32::try_from(id).map_err(|_| RestError::serialization(what()))?;
            let codec = self.codec(id).await.map_err(|e| fetch_error(&e, what()))?;
            let subject = subject_of(&codec)?;
            let version = version_of(client, &subject, &record).await?;
            RegisteredSchema {
                subject,
                id,
                version,
                codec,
            }
        } else if let Some(version) = request.schema_version {
            let subject = subject_without_schema()?;
            let record = client
                .get(&format!(
                    "/subjects/{}/versions/{version}",
                    segment(&subject)
                ))
                .await
                .map_err(|_| {
                    RestError::v3_bad_request(format!(
                        "Schema does not exist for subject: {subject}, version: {version}"
                    ))
                })?;
            let id = id_of(&record).ok_or_else(|| {
                RestError::unprocessable(
                    INVALID_SCHEMA,
                    format!(
                        "Invalid schema: Error when fetching schema by version. subject = {subject}, version = {version}"
                    ),
                )
            })?;
            let codec = self.codec(id).await.map_err(|e| {
                fetch_error(
                    &e,
                    format!("Error when fetching schema by id. schemaId = {id}"),
                )
            })?;
            let subject = record
                .get("subject")
                .and_then(Value::as_str)
                .map_or(subject, str::to_owned);
            RegisteredSchema {
                subject,
                id,
                version,
                codec,
            }
        } else if let Some(text) = &request.raw_schema {
            let Some((format, kind)) = request.kind.and_then(|k| Some((k, kind_of_v3_type(k)?)))
            else {
                // kafka-rest's checkArgument without a message.
                return Err(RestError::bad_request("Unsupported argument: : null"));
            };
            let parsed = Codec::new(kind, text, &[]).map_err(|_| {
                RestError::unprocessable(
                    INVALID_SCHEMA,
                    format!(
                        "Invalid schema: Error when parsing raw schema. format = {format}, schema = {text}"
                    ),
                )
            })?;
            let subject = subject_of(&parsed)?;
            let mut record = json!({ "schema": text });
            if kind != SchemaKind::Avro {
                record["schemaType"] = json!(kind.name());
            }
            // The id of the schema under the subject, registered if it is not there yet.
            let path = format!("/subjects/{}", segment(&subject));
            let (id, version) = match client.post(&path, &record).await {
                Ok(found) => (id_of(&found), version_field(&found)),
                Err(_) => {
                    let registered = client
                        .post(&format!("{path}/versions"), &record)
                        .await
                        .map_err(|e| {
                            fetch_error(
                                &e,
                                format!(
                                    "Error when registering schema. format = {format}, subject = {subject}, schema = {text}"
                                ),
                            )
                        })?;
                    (id_of(&registered), None)
                }
            };
            let id = id.ok_or_else(|| {
                RestError::serialization(format!(
                    "Error when registering schema. format = {format}, subject = {subject}, schema = {text}"
                ))
            })?;
            let version = match version {
                Some(version) => version,
                None => version_of(client, &subject, &record).await?,
            };
            let codec = self.codec(id).await.map_err(|e| {
                fetch_error(
                    &e,
                    format!("Error when fetching schema by id. schemaId = {id}"),
                )
            })?;
            RegisteredSchema {
                subject,
                id,
                version,
                codec,
            }
        } else {
            let subject = subject_without_schema()?;
            let what = || format!("Error when fetching latest schema version. subject = {subject}");
            let record = client
                .get(&format!("/subjects/{}/versions/latest", segment(&subject)))
                .await
                .map_err(|e| fetch_error(&e, what()))?;
            let (Some(id), Some(version)) = (id_of(&record), version_field(&record)) else {
                return Err(RestError::serialization(what()));
            };
            let codec = self.codec(id).await.map_err(|e| fetch_error(&e, what()))?;
            RegisteredSchema {
                subject,
                id,
                version,
                codec,
            }
        };
        if cacheable {
            if let Ok(mut cache) = self.resolved.lock() {
                if cache.len() >= RESOLVED_CACHE {
                    cache.clear();
                }
                cache.insert(key, resolved.clone());
            }
        }
        Ok(resolved)
    }

    /// The writer schema with this id, compiled once.
    async fn codec(&self, id: u32) -> Result<Arc<Codec>, SerdeError> {
        match &self.registry {
            Some(registry) => registry.lock().await.by_id(id).await,
            None => Err(SerdeError::Schema("no schema registry".into())),
        }
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

fn id_of(record: &Value) -> Option<u32> {
    record
        .get("id")
        .and_then(Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
}

fn version_field(record: &Value) -> Option<i32> {
    record
        .get("version")
        .and_then(Value::as_i64)
        .and_then(|v| i32::try_from(v).ok())
}

/// The version of the schema `record` (`schema`, `schemaType`, `references`) under `subject`.
async fn version_of(client: &RegistryClient, subject: &str, record: &Value) -> RestResult<i32> {
    let text = record
        .get("schema")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let what =
        || format!("Error when fetching schema version. subject = {subject}, schema = {text}");
    let mut lookup = json!({ "schema": text });
    for field in ["schemaType", "references"] {
        if let Some(value) = record.get(field) {
            lookup[field] = value.clone();
        }
    }
    let found = client
        .post(&format!("/subjects/{}", segment(subject)), &lookup)
        .await
        .map_err(|e| fetch_error(&e, what()))?;
    version_field(&found).ok_or_else(|| RestError::serialization(what()))
}

/// A failed registry call of v3's schema lookup: kafka-rest's serialization error (422, 42207)
/// with the registry's message and code, or 403 when the registry refused the caller.
fn fetch_error(error: &SerdeError, what: String) -> RestError {
    match error.registry_error() {
        Some((_, code, _)) if code == i64::from(KAFKA_AUTHORIZATION) => {
            RestError::new(StatusCode::FORBIDDEN, KAFKA_AUTHORIZATION, what)
        }
        Some((_, code, message)) => {
            RestError::serialization(format!("{what}\n{message}; error code: {code}"))
        }
        None => RestError::serialization(format!("{what}\n{}", error.root())),
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
