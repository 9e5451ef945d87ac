//! v2 produce: `POST /topics/{topic}` and `POST /topics/{topic}/partitions/{partition}`,
//! with keys and values in the embedded format named by the request's content type.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use strom_client::ProducerRecord;

use super::respond;
use super::topics::{describe, find_partition, parse_partition};
use crate::error::{
    RestError, RestResult, KAFKA_AUTHENTICATION, KAFKA_AUTHORIZATION, KEY_SCHEMA_MISSING,
    VALUE_SCHEMA_MISSING,
};
use crate::formats::Serializer;
use crate::media::{self, EmbeddedFormat};
use crate::Proxy;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRequest {
    #[serde(default)]
    key_schema: Option<String>,
    #[serde(default)]
    key_schema_id: Option<u32>,
    #[serde(default)]
    value_schema: Option<String>,
    #[serde(default)]
    value_schema_id: Option<u32>,
    #[serde(default)]
    records: Vec<ProduceRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProduceRecord {
    #[serde(default)]
    key: Value,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    partition: Option<i32>,
}

pub async fn to_topic(
    State(proxy): State<Arc<Proxy>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    produce(&proxy, &topic, None, &headers, &body).await
}

pub async fn to_partition(
    State(proxy): State<Arc<Proxy>>,
    Path((topic, partition)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let partition = parse_partition(&partition)?;
    produce(&proxy, &topic, Some(partition), &headers, &body).await
}

async fn produce(
    proxy: &Proxy,
    topic: &str,
    partition: Option<i32>,
    headers: &HeaderMap,
    body: &[u8],
) -> RestResult<Response> {
    let format = media::content_type(headers)
        .and_then(|essence| EmbeddedFormat::from_media_type(&essence))
        .ok_or_else(RestError::unsupported_media_type)?;
    super::response_type(headers)?;
    let request: ProduceRequest = media::parse_body(body)?;
    if request.records.is_empty() {
        return Err(RestError::unprocessable(422, "records may not be empty"));
    }
    if let Some(partition) = partition {
        let meta = describe(proxy, topic).await?;
        find_partition(&meta, partition)?;
    }
    let keys = side(proxy, format, topic, true, &request).await?;
    let values = side(proxy, format, topic, false, &request).await?;
    let mut records = Vec::with_capacity(request.records.len());
    for record in &request.records {
        records.push(ProducerRecord {
            partition: partition.or(record.partition),
            key: serialize(keys.as_ref(), &record.key, KEY_SCHEMA_MISSING)?,
            value: serialize(values.as_ref(), &record.value, VALUE_SCHEMA_MISSING)?,
            ..ProducerRecord::default()
        });
    }
    let count = records.len();
    let sent = proxy
        .producers
        .run(async |p| p.send(topic, records).await)
        .await;
    let (status, offsets) = match sent {
        Ok(written) => (
            StatusCode::OK,
            written
                .iter()
                .map(|w| {
                    json!({"partition": w.partition, "offset": w.offset,
                           "error_code": null, "error": null})
                })
                .collect::<Vec<_>>(),
        ),
        Err(e) => {
            tracing::debug!(%topic, error = %e, "REST produce failed");
            let error = RestError::from(e);
            let status = match error.error_code {
                KAFKA_AUTHENTICATION => StatusCode::UNAUTHORIZED,
                KAFKA_AUTHORIZATION => StatusCode::FORBIDDEN,
                _ => StatusCode::OK,
            };
            let entry = json!({"partition": null, "offset": null,
                               "error_code": error.error_code, "error": error.message});
            (status, vec![entry; count])
        }
    };
    let body = json!({
        "offsets": offsets,
        "key_schema_id": keys.as_ref().and_then(Serializer::schema_id),
        "value_schema_id": values.as_ref().and_then(Serializer::schema_id),
    });
    respond(headers, status, &body)
}

/// The serializer of keys or values; `None` for a registry format given no schema.
async fn side(
    proxy: &Proxy,
    format: EmbeddedFormat,
    topic: &str,
    is_key: bool,
    request: &ProduceRequest,
) -> RestResult<Option<Serializer>> {
    let (schema, id) = if is_key {
        (request.key_schema.as_deref(), request.key_schema_id)
    } else {
        (request.value_schema.as_deref(), request.value_schema_id)
    };
    proxy
        .formats
        .serializer(format, topic, is_key, schema, id)
        .await
}

fn serialize(
    serializer: Option<&Serializer>,
    value: &Value,
    missing_schema: u32,
) -> RestResult<Option<Bytes>> {
    match serializer {
        Some(serializer) => serializer.serialize(value),
        None if value.is_null() => Ok(None),
        None => Err(RestError::unprocessable(
            missing_schema,
            if missing_schema == KEY_SCHEMA_MISSING {
                "Request includes keys but does not include key schema"
            } else {
                "Request includes values but does not include value schema"
            },
        )),
    }
}
