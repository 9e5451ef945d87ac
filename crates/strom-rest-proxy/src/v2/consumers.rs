//! v2 consumer resources: `/consumers/{group}` and its instances' subscription,
//! assignments, positions, records and offsets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use regex::Regex;
use serde::Deserialize;
use serde_json::{json, Value};

use super::instances::{
    Command, Commits, Handle, InstanceConfig, OffsetReset, Seek, TopicPartition,
};
use super::{check_body_type, respond};
use crate::error::{RestError, RestResult, CONSUMER_FORMAT_MISMATCH, INVALID_CONSUMER_CONFIG};
use crate::media::{self, EmbeddedFormat, V2};
use crate::Proxy;

#[derive(Debug, Default, Deserialize)]
struct CreateRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default, rename = "auto.offset.reset")]
    auto_offset_reset: Option<String>,
    #[serde(default, rename = "auto.commit.enable")]
    auto_commit_enable: Option<Value>,
    #[serde(default, rename = "fetch.min.bytes", alias = "responseMinBytes")]
    fetch_min_bytes: Option<Value>,
    #[serde(
        default,
        rename = "consumer.request.timeout.ms",
        alias = "requestWaitMs"
    )]
    request_timeout_ms: Option<Value>,
}

pub async fn create(
    State(proxy): State<Arc<Proxy>>,
    Path(group): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    check_body_type(&headers, &body)?;
    super::response_type(&headers)?;
    let request: CreateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateRequest::default()
    } else {
        media::parse_body::<Option<CreateRequest>>(&body)?.unwrap_or_default()
    };
    let format = match request.format.as_deref() {
        None => EmbeddedFormat::Binary,
        Some(name) => EmbeddedFormat::from_name(name)
            .ok_or_else(|| RestError::unprocessable(422, "Invalid format type."))?,
    };
    let offset_reset = match request.auto_offset_reset.as_deref() {
        None | Some("latest") => OffsetReset::Latest,
        Some("earliest") => OffsetReset::Earliest,
        Some("none") => OffsetReset::None,
        Some(other) => {
            return Err(invalid_config(format!(
                "Invalid value {other} for configuration auto.offset.reset: String must be one of: latest, earliest, none"
            )))
        }
    };
    let auto_commit = match request.auto_commit_enable.as_ref() {
        None | Some(Value::Null) => true,
        Some(value) => match text(value).to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(invalid_config(format!(
                    "Invalid value {other} for configuration enable.auto.commit: Expected value to be either true or false"
                )))
            }
        },
    };
    let fetch_min_bytes = number(request.fetch_min_bytes.as_ref(), "fetch.min.bytes")?
        .map_or(Ok(1), i32::try_from)
        .map_err(|_| invalid_config("fetch.min.bytes is out of range".to_owned()))?;
    let request_timeout = number(
        request.request_timeout_ms.as_ref(),
        "consumer.request.timeout.ms",
    )?
    .map_or(proxy.config.consumer_request_timeout, |ms| {
        Duration::from_millis(ms.max(0) as u64)
    });
    let name = request
        .id
        .or(request.name)
        .unwrap_or_else(|| format!("rest-consumer-{}", uuid::Uuid::new_v4()));
    proxy.instances.create(
        &proxy,
        &group,
        &name,
        InstanceConfig {
            format,
            offset_reset,
            auto_commit,
            fetch_min_bytes: fetch_min_bytes.max(0),
            request_timeout,
        },
    )?;
    let base_uri = format!(
        "{}/consumers/{}/instances/{}",
        crate::v3::base_url(&headers),
        segment(&group),
        segment(&name)
    );
    respond(
        &headers,
        StatusCode::OK,
        &json!({"instance_id": name, "base_uri": base_uri}),
    )
}

fn invalid_config(why: String) -> RestError {
    RestError::unprocessable(
        INVALID_CONSUMER_CONFIG,
        format!("Invalid consumer configuration: {why}"),
    )
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A number given as a JSON number or a string, as Jackson coerces them.
fn number(value: Option<&Value>, name: &str) -> RestResult<Option<i64>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => text(value)
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| invalid_config(format!("{name} must be a number, not {value}"))),
    }
}

/// A path segment as it appears in a URL (the group and instance names in `base_uri`).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The instance a request with a JSON body addresses, and the body: the content type
/// and `Accept` are checked and the body parsed first, as Jersey does before the resource
/// method runs.
fn with_body<T: serde::de::DeserializeOwned>(
    proxy: &Proxy,
    (group, instance): &(String, String),
    headers: &HeaderMap,
    body: &[u8],
) -> RestResult<(Handle, T)> {
    check_body_type(headers, body)?;
    super::response_type(headers)?;
    let request = media::parse_body(body)?;
    Ok((proxy.instances.get(group, instance)?, request))
}

/// The instance a request without a body addresses.
fn without_body(
    proxy: &Proxy,
    (group, instance): &(String, String),
    headers: &HeaderMap,
) -> RestResult<Handle> {
    super::response_type(headers)?;
    proxy.instances.get(group, instance)
}

fn no_content() -> RestResult<Response> {
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn delete(
    State(proxy): State<Arc<Proxy>>,
    Path((group, instance)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    super::response_type(&headers)?;
    let handle = proxy
        .instances
        .remove(&group, &instance)
        .ok_or_else(RestError::consumer_instance_not_found)?;
    handle.call(Command::Close).await?;
    no_content()
}

#[derive(Debug, Deserialize)]
struct SubscribeRequest {
    #[serde(default)]
    topics: Option<Vec<String>>,
    #[serde(default)]
    topic_pattern: Option<String>,
}

pub async fn subscribe(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let (handle, request): (Handle, SubscribeRequest) = with_body(&proxy, &path, &headers, &body)?;
    let (topics, pattern) = match (request.topics, request.topic_pattern) {
        (Some(topics), None) if !topics.is_empty() => (topics, None),
        (None, Some(pattern)) => {
            // Java's `Pattern.matcher(topic).matches()`: the whole name.
            Regex::new(&pattern).map_err(|e| {
                RestError::unprocessable(422, format!("Invalid topic_pattern: {e}"))
            })?;
            let regex = Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
                RestError::unprocessable(422, format!("Invalid topic_pattern: {e}"))
            })?;
            (Vec::new(), Some(regex))
        }
        _ => {
            return Err(RestError::illegal_state(
                "Subscription to topics, partitions and pattern are mutually exclusive",
            ))
        }
    };
    handle
        .call(|reply| Command::Subscribe {
            topics,
            pattern,
            reply,
        })
        .await??;
    no_content()
}

pub async fn subscription(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let handle = without_body(&proxy, &path, &headers)?;
    let topics = handle.call(Command::Subscription).await?;
    respond(&headers, StatusCode::OK, &json!({ "topics": topics }))
}

pub async fn unsubscribe(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let handle = without_body(&proxy, &path, &headers)?;
    handle.call(Command::Unsubscribe).await??;
    no_content()
}

#[derive(Debug, Deserialize)]
struct PartitionRef {
    topic: String,
    partition: i32,
}

#[derive(Debug, Deserialize)]
struct PartitionsRequest {
    #[serde(default)]
    partitions: Vec<PartitionRef>,
}

fn pairs(partitions: Vec<PartitionRef>) -> Vec<TopicPartition> {
    partitions
        .into_iter()
        .map(|p| (p.topic, p.partition))
        .collect()
}

fn partitions_json(partitions: &[TopicPartition]) -> Vec<Value> {
    partitions
        .iter()
        .map(|(t, p)| json!({"topic": t, "partition": p}))
        .collect()
}

pub async fn assign(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let (handle, request): (Handle, PartitionsRequest) = with_body(&proxy, &path, &headers, &body)?;
    let partitions = pairs(request.partitions);
    handle
        .call(|reply| Command::Assign(partitions, reply))
        .await??;
    no_content()
}

pub async fn assignments(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let handle = without_body(&proxy, &path, &headers)?;
    let partitions = handle.call(Command::Assignment).await??;
    respond(
        &headers,
        StatusCode::OK,
        &json!({ "partitions": partitions_json(&partitions) }),
    )
}

#[derive(Debug, Deserialize)]
struct SeekOffset {
    topic: String,
    partition: i32,
    offset: i64,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SeekTimestamp {
    topic: String,
    partition: i32,
    /// An ISO-8601 instant, as Jackson reads `java.time.Instant`.
    timestamp: String,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SeekRequest {
    #[serde(default)]
    offsets: Vec<SeekOffset>,
    #[serde(default)]
    timestamps: Vec<SeekTimestamp>,
}

pub async fn seek(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let (handle, request): (Handle, SeekRequest) = with_body(&proxy, &path, &headers, &body)?;
    let mut seeks = Vec::new();
    for o in request.offsets {
        seeks.push(((o.topic, o.partition), Seek::Offset(o.offset)));
    }
    for t in request.timestamps {
        let ms = parse_instant(&t.timestamp).ok_or_else(|| {
            RestError::unprocessable(422, format!("Invalid timestamp: {}", t.timestamp))
        })?;
        seeks.push(((t.topic, t.partition), Seek::Timestamp(ms)));
    }
    handle.call(|reply| Command::Seek(seeks, reply)).await??;
    no_content()
}

pub async fn seek_to_beginning(
    state: State<Arc<Proxy>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    seek_to(state, path, headers, body, Seek::Beginning).await
}

pub async fn seek_to_end(
    state: State<Arc<Proxy>>,
    path: Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    seek_to(state, path, headers, body, Seek::End).await
}

async fn seek_to(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    to: Seek,
) -> RestResult<Response> {
    let (handle, request): (Handle, PartitionsRequest) = with_body(&proxy, &path, &headers, &body)?;
    let seeks = pairs(request.partitions)
        .into_iter()
        .map(|tp| (tp, to))
        .collect();
    handle.call(|reply| Command::Seek(seeks, reply)).await??;
    no_content()
}

/// A `long` query parameter; Jersey answers 404 to one it cannot convert.
fn long_param(params: &HashMap<String, String>, name: &str) -> RestResult<Option<i64>> {
    params
        .get(name)
        .map(|v| v.trim().parse::<i64>().map_err(|_| RestError::not_found()))
        .transpose()
}

pub async fn records(
    State(proxy): State<Arc<Proxy>>,
    Path((group, instance)): Path<(String, String)>,
    params: Result<Query<HashMap<String, String>>, QueryRejection>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let handle = proxy.instances.get(&group, &instance)?;
    // Jersey picks the read method by Accept; binary is preferred when anything goes.
    let offered = [
        EmbeddedFormat::Binary.media_type(),
        V2,
        EmbeddedFormat::Json.media_type(),
        EmbeddedFormat::Avro.media_type(),
        EmbeddedFormat::JsonSchema.media_type(),
        EmbeddedFormat::Protobuf.media_type(),
    ];
    let chosen = media::negotiate(&headers, &offered)?;
    let asked = EmbeddedFormat::from_media_type(chosen).unwrap_or(EmbeddedFormat::Binary);
    if asked != handle.format {
        return Err(RestError::new(
            StatusCode::NOT_ACCEPTABLE,
            CONSUMER_FORMAT_MISMATCH,
            "The requested embedded data format does not match the deserializer for this consumer instance",
        ));
    }
    let params = params.map(|Query(p)| p).unwrap_or_default();
    // Confluent's bound: a positive timeout up to the instance's request timeout.
    let timeout = match long_param(&params, "timeout")? {
        Some(ms) if ms > 0 => Duration::from_millis(ms as u64).min(handle.request_timeout),
        _ => handle.request_timeout,
    };
    let max_bytes = match long_param(&params, "max_bytes")? {
        Some(n) if n >= 0 => (n as usize).min(proxy.config.consumer_request_max_bytes),
        _ => proxy.config.consumer_request_max_bytes,
    };
    let records = handle
        .call(|reply| Command::Records {
            timeout,
            max_bytes,
            reply,
        })
        .await??;
    let mut body = Vec::with_capacity(records.len());
    for r in &records {
        let key = proxy
            .formats
            .deserialize(handle.format, r.key.as_ref())
            .await?;
        let value = proxy
            .formats
            .deserialize(handle.format, r.value.as_ref())
            .await?;
        body.push(json!({
            "topic": r.topic,
            "key": key,
            "value": value,
            "partition": r.partition,
            "offset": r.offset,
        }));
    }
    Ok(media::json(StatusCode::OK, chosen, &Value::Array(body)))
}

#[derive(Debug, Deserialize)]
struct CommitOffset {
    topic: String,
    partition: i32,
    offset: i64,
    #[serde(default)]
    metadata: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CommitRequest {
    #[serde(default)]
    offsets: Vec<CommitOffset>,
}

pub async fn commit(
    State(proxy): State<Arc<Proxy>>,
    Path((group, instance)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    check_body_type(&headers, &body)?;
    super::response_type(&headers)?;
    let handle = proxy.instances.get(&group, &instance)?;
    let offsets = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let request: Option<CommitRequest> = media::parse_body(&body)?;
        // The given offset is the last record processed: the next one is committed.
        request.map(|r| {
            let mut commits = Commits::default();
            for o in r.offsets {
                let tp = (o.topic, o.partition);
                if let Some(metadata) = o.metadata {
                    commits.metadata.insert(tp.clone(), metadata);
                }
                commits.offsets.insert(tp, o.offset.saturating_add(1));
            }
            commits
        })
    };
    handle
        .call(|reply| Command::Commit(offsets, reply))
        .await??;
    respond(&headers, StatusCode::OK, &json!([]))
}

pub async fn committed(
    State(proxy): State<Arc<Proxy>>,
    Path(path): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let (handle, request): (Handle, PartitionsRequest) = with_body(&proxy, &path, &headers, &body)?;
    let partitions = pairs(request.partitions);
    let committed = handle
        .call(|reply| Command::Committed(partitions, reply))
        .await??;
    let offsets: Vec<Value> = committed
        .into_iter()
        .map(|((topic, partition), offset, metadata)| {
            json!({"topic": topic, "partition": partition, "offset": offset, "metadata": metadata})
        })
        .collect();
    respond(&headers, StatusCode::OK, &json!({ "offsets": offsets }))
}

/// Milliseconds since the epoch of an ISO-8601 UTC instant (`2024-01-02T03:04:05.678Z`).
fn parse_instant(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let millis: i64 = format!("{:0<3}", frac).get(..3)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + min) * 60 * 1000 + s * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_as_java_reads_them() {
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_instant("2024-03-01T12:34:56.789Z"),
            Some(1_709_296_496_789)
        );
        assert_eq!(
            parse_instant("2024-03-01T12:34:56Z"),
            Some(1_709_296_496_000)
        );
        assert_eq!(parse_instant("yesterday"), None);
        assert_eq!(parse_instant("2024-13-01T00:00:00Z"), None);
    }

    #[test]
    fn segments_escape_what_a_url_path_cannot_hold() {
        assert_eq!(segment("g 1/x"), "g%201%2Fx");
        assert_eq!(segment("rest-consumer-1.a_b~"), "rest-consumer-1.a_b~");
    }
}
