//! `/topics`: list, create, get, delete, grow (PATCH); their partitions and replicas, and
//! the replicas a broker holds (`/brokers/{id}/partition-replicas`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use strom_client::{
    AclOperation, NewTopic, OffsetSpec, PartitionMetadata, Reassignment, TopicMetadata,
};

use super::clusters::find_broker;
use super::{no_content, parse, parse_id, respond, Ctx};
use crate::error::{RestError, RestResult};
use crate::Proxy;

/// Kafka's longest topic name.
const MAX_TOPIC_NAME: usize = 249;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// `include_authorized_operations=true` (kafka-rest's spelling for one topic) or
/// `includeAuthorizedOperations=true` (its spelling for the list); Jersey reads any other
/// value as false.
fn wants_operations(params: Params) -> bool {
    let Ok(Query(params)) = params else {
        return false;
    };
    [
        "include_authorized_operations",
        "includeAuthorizedOperations",
    ]
    .iter()
    .any(|name| {
        params
            .get(*name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    })
}

/// What the proxy's Kafka principal may do on the topics (`None`: all), by name, as
/// operation names.
async fn authorized_operations(
    proxy: &Proxy,
    topics: Option<&[String]>,
) -> RestResult<HashMap<String, Vec<&'static str>>> {
    let mut admin = proxy.admins.get().await?;
    let found = admin.topic_authorized_operations(topics).await;
    admin.release();
    Ok(found?
        .into_iter()
        .map(|(name, bits)| (name, operation_names(bits)))
        .collect())
}

/// Kafka's bit field of AclOperation codes as names, by code.
fn operation_names(bits: i32) -> Vec<&'static str> {
    (0..31)
        .filter(|code| bits & (1 << code) != 0)
        .map(|code| AclOperation::from_code(code as i8))
        .filter(|op| *op != AclOperation::Unknown)
        .map(AclOperation::name)
        .collect()
}

fn with_operations(mut topic: Value, operations: Option<&Vec<&'static str>>) -> Value {
    if let Some(operations) = operations {
        topic["authorized_operations"] = json!(operations);
    }
    topic
}

pub async fn list(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let mut admin = proxy.admins.get().await?;
    let topics = admin.list_topics().await;
    admin.release();
    let operations = if wants_operations(params) {
        authorized_operations(&proxy, None).await?
    } else {
        HashMap::new()
    };
    // Kafka's listTopics leaves internal topics out, and so does kafka-rest.
    let data = topics?
        .iter()
        .filter(|t| !t.is_internal)
        .map(|t| with_operations(topic_json(&ctx, t), operations.get(&t.name)))
        .collect();
    let body = ctx.collection("KafkaTopicList", ctx.url(&["topics"]), data);
    Ok(respond(StatusCode::OK, &body))
}

pub async fn get(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    params: Params,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let meta = ctx.topic(&proxy, &topic).await?;
    let operations = if wants_operations(params) {
        authorized_operations(&proxy, Some(std::slice::from_ref(&topic))).await?
    } else {
        HashMap::new()
    };
    let body = with_operations(topic_json(&ctx, &meta), operations.get(&topic));
    Ok(respond(StatusCode::OK, &body))
}

#[derive(Debug, Deserialize)]
struct CreateTopic {
    topic_name: String,
    #[serde(default)]
    partitions_count: Option<i32>,
    #[serde(default)]
    replication_factor: Option<i16>,
    /// Partition to replicas (`{"0": [1, 2]}`); when given, the partition count and
    /// replication factor come from it and the two fields above are not used, as in kafka-rest.
    #[serde(default)]
    replicas_assignments: Option<BTreeMap<i32, Vec<i32>>>,
    #[serde(default)]
    configs: Vec<ConfigValue>,
    #[serde(default)]
    validate_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct ConfigValue {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

/// Kafka's rule for topic names (`Topic.validate`).
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= MAX_TOPIC_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub async fn create(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let request: CreateTopic = parse(&headers, &body)?;
    if !valid_topic_name(&request.topic_name) {
        return Err(RestError::invalid_payload("Invalid topic name."));
    }
    let validate_only = request.validate_only.unwrap_or(false);
    let new_topic = NewTopic {
        name: request.topic_name.clone(),
        partitions: request.partitions_count.unwrap_or(-1),
        replication_factor: request.replication_factor.unwrap_or(-1),
        // A config given without a value keeps its default.
        configs: request
            .configs
            .into_iter()
            .filter_map(|c| c.value.map(|v| (c.name, v)))
            .collect(),
    };
    let assignments: Vec<(i32, Vec<i32>)> = request
        .replicas_assignments
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut admin = proxy.admins.get().await?;
    let created = if assignments.is_empty() {
        admin
            .create_topics_described(std::slice::from_ref(&new_topic), validate_only)
            .await
            .and_then(|mut results| match results.pop() {
                Some((_, result)) => result,
                None => Err(strom_client::Error::Protocol("empty response".into())),
            })
    } else {
        admin
            .create_topic_assigned(&new_topic, &assignments, validate_only)
            .await
    };
    admin.release();
    let (partitions, replication_factor) = created?;
    // What the request asked for, when the controller does not say.
    let (asked_partitions, asked_replication_factor) = match assignments.first() {
        Some((_, replicas)) => (
            i32::try_from(assignments.len()).unwrap_or(i32::MAX),
            i16::try_from(replicas.len()).unwrap_or(i16::MAX),
        ),
        None => (
            request.partitions_count.unwrap_or(0),
            request.replication_factor.unwrap_or(0),
        ),
    };
    let partitions = if partitions >= 0 {
        partitions
    } else {
        asked_partitions
    };
    let replication_factor = if replication_factor >= 0 {
        replication_factor
    } else {
        asked_replication_factor
    };
    let body = topic_fields(
        &ctx,
        &request.topic_name,
        false,
        i32::from(replication_factor),
        partitions,
    );
    let status = if validate_only {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = respond(status, &body);
    let location = ctx.url(&["topics", &request.topic_name]);
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

pub async fn delete(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    Ctx::new(&proxy, &headers, &cluster_id).await?;
    let mut admin = proxy.admins.get().await?;
    let deleted = admin.delete_topics(std::slice::from_ref(&topic)).await;
    admin.release();
    for (_, result) in deleted? {
        result.map_err(|e| match e.code() {
            Some(3) | Some(100) => RestError::unknown_topic_or_partition(),
            _ => RestError::from(e),
        })?;
    }
    Ok(no_content())
}

#[derive(Debug, Deserialize)]
struct PartitionsCount {
    partitions_count: i32,
}

/// `PATCH /topics/{t}` with `partitions_count`: grows the topic, answers the topic.
pub async fn update_partitions(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let request: PartitionsCount = parse(&headers, &body)?;
    let mut admin = proxy.admins.get().await?;
    let grown = admin
        .create_partitions(&topic, request.partitions_count)
        .await;
    admin.release();
    grown.map_err(|e| match e.code() {
        Some(3) => RestError::unknown_topic_or_partition(),
        _ => RestError::from(e),
    })?;
    let meta = ctx.topic(&proxy, &topic).await?;
    Ok(respond(StatusCode::OK, &topic_json(&ctx, &meta)))
}

fn topic_json(ctx: &Ctx, topic: &TopicMetadata) -> Value {
    let replication_factor = topic.partitions.first().map_or(0, |p| p.replicas.len());
    topic_fields(
        ctx,
        &topic.name,
        topic.is_internal,
        i32::try_from(replication_factor).unwrap_or(i32::MAX),
        i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
    )
}

fn topic_fields(
    ctx: &Ctx,
    name: &str,
    is_internal: bool,
    replication_factor: i32,
    partitions: i32,
) -> Value {
    ctx.resource(
        "KafkaTopic",
        ctx.url(&["topics", name]),
        Some(ctx.crn(&[("topic", name)])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "topic_name": name,
            "is_internal": is_internal,
            "replication_factor": replication_factor,
            "partitions_count": partitions,
            "partitions": ctx.related(&["topics", name, "partitions"]),
            "configs": ctx.related(&["topics", name, "configs"]),
            "partition_reassignments": ctx.related(&["topics", name, "partitions", "-", "reassignment"]),
            "authorized_operations": [],
        }),
    )
}

pub async fn list_partitions(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let meta = ctx.topic(&proxy, &topic).await?;
    let mut partitions: Vec<&PartitionMetadata> = meta.partitions.iter().collect();
    partitions.sort_by_key(|p| p.partition);
    let data = partitions
        .into_iter()
        .map(|p| partition_json(&ctx, &topic, p))
        .collect();
    let body = ctx.collection(
        "KafkaPartitionList",
        ctx.url(&["topics", &topic, "partitions"]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}

/// A partition of a topic; 404 when the topic has no such partition.
async fn partition(
    proxy: &Proxy,
    ctx: &Ctx,
    topic: &str,
    partition: &str,
) -> RestResult<PartitionMetadata> {
    let id = parse_id(partition)?;
    let meta = ctx.topic(proxy, topic).await?;
    meta.partitions
        .into_iter()
        .find(|p| p.partition == id)
        .ok_or_else(RestError::not_found)
}

pub async fn get_partition(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, partition_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let p = partition(&proxy, &ctx, &topic, &partition_id).await?;
    Ok(respond(StatusCode::OK, &partition_json(&ctx, &topic, &p)))
}

/// `GET /topics/{t}/partitions/{p}/offset`: the partition's earliest and latest offsets
/// (`offset_type=earliest_and_latest`, the only type kafka-rest takes).
pub async fn partition_offsets(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, partition_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    params: Params,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let offset_type = match &params {
        Ok(Query(params)) => params.get("offset_type").map(String::as_str),
        Err(_) => None,
    }
    .unwrap_or("earliest_and_latest")
    .to_owned();
    if offset_type != "earliest_and_latest" {
        return Err(RestError::v3_bad_request(format!(
            "offset_type:{offset_type} is invalid"
        )));
    }
    let id = parse_id(&partition_id)?;
    let meta = ctx.topic(&proxy, &topic).await?;
    if !meta.partitions.iter().any(|p| p.partition == id) {
        return Err(RestError::partition_not_found());
    }
    let (earliest, latest) = proxy
        .consumers
        .run(async |c| {
            let earliest = c.list_offsets(&topic, &[id], OffsetSpec::Earliest).await?;
            let latest = c.list_offsets(&topic, &[id], OffsetSpec::Latest).await?;
            Ok((earliest, latest))
        })
        .await?;
    let offset = |offsets: BTreeMap<i32, Option<i64>>| offsets.get(&id).copied().flatten();
    let id_text = id.to_string();
    let body = ctx.resource(
        "KafkaPartitionWithOffsets",
        ctx.url(&["topics", &topic, "partitions", &id_text, "offset"]),
        Some(ctx.crn(&[
            ("topic", &topic),
            ("partition", &id_text),
            ("offset_type", &offset_type),
        ])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "topic_name": topic,
            "partition_id": id,
            "earliest_offset": offset(earliest),
            "latest_offset": offset(latest),
        }),
    );
    Ok(respond(StatusCode::OK, &body))
}

fn partition_json(ctx: &Ctx, topic: &str, p: &PartitionMetadata) -> Value {
    let id = p.partition.to_string();
    let leader = (p.leader >= 0).then(|| {
        ctx.related(&[
            "topics",
            topic,
            "partitions",
            &id,
            "replicas",
            &p.leader.to_string(),
        ])
    });
    ctx.resource(
        "KafkaPartition",
        ctx.url(&["topics", topic, "partitions", &id]),
        Some(ctx.crn(&[("topic", topic), ("partition", &id)])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "topic_name": topic,
            "partition_id": p.partition,
            "leader": leader,
            "replicas": ctx.related(&["topics", topic, "partitions", &id, "replicas"]),
            "reassignment": ctx.related(&["topics", topic, "partitions", &id, "reassignment"]),
        }),
    )
}

pub async fn list_replicas(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, partition_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let p = partition(&proxy, &ctx, &topic, &partition_id).await?;
    let id = p.partition.to_string();
    let data = p
        .replicas
        .iter()
        .map(|&b| replica_json(&ctx, &topic, &p, b))
        .collect();
    let body = ctx.collection(
        "KafkaReplicaList",
        ctx.url(&["topics", &topic, "partitions", &id, "replicas"]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}

pub async fn get_replica(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, partition_id, broker_id)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let p = partition(&proxy, &ctx, &topic, &partition_id).await?;
    let broker = parse_id(&broker_id)?;
    if !p.replicas.contains(&broker) {
        return Err(RestError::not_found());
    }
    Ok(respond(
        StatusCode::OK,
        &replica_json(&ctx, &topic, &p, broker),
    ))
}

fn replica_json(ctx: &Ctx, topic: &str, p: &PartitionMetadata, broker: i32) -> Value {
    let (id, b) = (p.partition.to_string(), broker.to_string());
    ctx.resource(
        "KafkaReplica",
        ctx.url(&["topics", topic, "partitions", &id, "replicas", &b]),
        Some(ctx.crn(&[("topic", topic), ("partition", &id), ("replica", &b)])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "topic_name": topic,
            "partition_id": p.partition,
            "broker_id": broker,
            "is_leader": p.leader == broker,
            "is_in_sync": p.isr.contains(&broker),
            "broker": ctx.related(&["brokers", &b]),
        }),
    )
}

/// `GET /brokers/{id}/partition-replicas`: every replica the broker holds, by topic and
/// partition.
pub async fn replicas_of_broker(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, broker_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let broker = find_broker(&ctx, &broker_id)?.id;
    let mut admin = proxy.admins.get().await?;
    let topics = admin.list_topics().await;
    admin.release();
    let mut data = Vec::new();
    for topic in topics? {
        let mut partitions: Vec<&PartitionMetadata> = topic
            .partitions
            .iter()
            .filter(|p| p.replicas.contains(&broker))
            .collect();
        partitions.sort_by_key(|p| p.partition);
        for p in partitions {
            data.push(replica_json(&ctx, &topic.name, p, broker));
        }
    }
    let body = ctx.collection(
        "KafkaReplicaList",
        ctx.url(&["brokers", &broker.to_string(), "partition-replicas"]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}

fn reassignment_json(ctx: &Ctx, r: &Reassignment) -> Value {
    let p = r.partition.to_string();
    ctx.resource(
        "KafkaReassignment",
        ctx.url(&["topics", &r.topic, "partitions", &p, "reassignment"]),
        Some(ctx.crn(&[("topic", &r.topic), ("partition", &p), ("reassignment", "")])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "topic_name": r.topic,
            "partition_id": r.partition,
            "adding_replicas": r.adding_replicas,
            "removing_replicas": r.removing_replicas,
            "replicas": ctx.related(&["topics", &r.topic, "partitions", &p, "replicas"]),
        }),
    )
}

/// Ongoing reassignments, of one topic or of all, by topic and partition.
async fn reassignments(proxy: &Proxy, topic: Option<&str>) -> RestResult<Vec<Reassignment>> {
    let mut admin = proxy.admins.get().await?;
    let listed = admin.list_partition_reassignments(None).await;
    admin.release();
    let mut listed: Vec<Reassignment> = listed?
        .into_iter()
        .filter(|r| topic.is_none_or(|t| r.topic == t))
        .collect();
    listed.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    Ok(listed)
}

/// `GET /topics/-/partitions/-/reassignment`.
pub async fn list_all_reassignments(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let data = reassignments(&proxy, None)
        .await?
        .iter()
        .map(|r| reassignment_json(&ctx, r))
        .collect();
    let url = ctx.url(&["topics", "-", "partitions", "-", "reassignment"]);
    let body = ctx.collection("KafkaReassignmentList", url, data);
    Ok(respond(StatusCode::OK, &body))
}

/// `GET /topics/{t}/partitions/-/reassignment`.
pub async fn list_topic_reassignments(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    ctx.topic(&proxy, &topic).await?;
    let data = reassignments(&proxy, Some(&topic))
        .await?
        .iter()
        .map(|r| reassignment_json(&ctx, r))
        .collect();
    let url = ctx.url(&["topics", &topic, "partitions", "-", "reassignment"]);
    let body = ctx.collection("KafkaReassignmentList", url, data);
    Ok(respond(StatusCode::OK, &body))
}

/// `GET /topics/{t}/partitions/{p}/reassignment`: 404 when the partition is not moving.
pub async fn get_reassignment(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, partition_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let p = partition(&proxy, &ctx, &topic, &partition_id).await?;
    let found = reassignments(&proxy, Some(&topic)).await?;
    let r = found
        .iter()
        .find(|r| r.partition == p.partition)
        .ok_or_else(RestError::not_found)?;
    Ok(respond(StatusCode::OK, &reassignment_json(&ctx, r)))
}
