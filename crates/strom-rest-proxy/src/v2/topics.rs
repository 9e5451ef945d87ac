//! v2 metadata: `/topics`, `/topics/{topic}`, its partitions and their offsets, `/brokers`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use strom_client::{OffsetSpec, PartitionMetadata, ResourceType, TopicMetadata};

use super::respond;
use crate::error::{RestError, RestResult};
use crate::Proxy;

pub async fn list_topics(
    State(proxy): State<Arc<Proxy>>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let topics = proxy.admins.run(async |a| a.list_topics().await).await?;
    let names: Vec<String> = topics.into_iter().map(|t| t.name).collect();
    respond(&headers, StatusCode::OK, &json!(names))
}

pub async fn get_topic(
    State(proxy): State<Arc<Proxy>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let meta = describe(&proxy, &topic).await?;
    let configs = proxy
        .admins
        .run(async |a| a.describe_configs(ResourceType::Topic, &topic, None).await)
        .await?;
    let configs: serde_json::Map<String, Value> = configs
        .into_iter()
        .map(|c| (c.name, c.value.map_or(Value::Null, Value::String)))
        .collect();
    let body = json!({
        "name": meta.name,
        "configs": configs,
        "partitions": meta.partitions.iter().map(partition_json).collect::<Vec<_>>(),
    });
    respond(&headers, StatusCode::OK, &body)
}

pub async fn list_partitions(
    State(proxy): State<Arc<Proxy>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let meta = describe(&proxy, &topic).await?;
    let body: Vec<Value> = meta.partitions.iter().map(partition_json).collect();
    respond(&headers, StatusCode::OK, &json!(body))
}

pub async fn get_partition(
    State(proxy): State<Arc<Proxy>>,
    Path((topic, partition)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let partition = parse_partition(&partition)?;
    let meta = describe(&proxy, &topic).await?;
    let found = find_partition(&meta, partition)?;
    respond(&headers, StatusCode::OK, &partition_json(found))
}

pub async fn partition_offsets(
    State(proxy): State<Arc<Proxy>>,
    Path((topic, partition)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let partition = parse_partition(&partition)?;
    let meta = describe(&proxy, &topic).await?;
    find_partition(&meta, partition)?;
    let (beginning, end) = proxy
        .consumers
        .run(async |c| {
            let partitions = [partition];
            let beginning = c
                .list_offsets(&topic, &partitions, OffsetSpec::Earliest)
                .await?;
            let end = c
                .list_offsets(&topic, &partitions, OffsetSpec::Latest)
                .await?;
            Ok((beginning, end))
        })
        .await?;
    let offset = |offsets: std::collections::BTreeMap<i32, Option<i64>>| {
        offsets.get(&partition).copied().flatten().unwrap_or(0)
    };
    let body = json!({
        "beginning_offset": offset(beginning),
        "end_offset": offset(end),
    });
    respond(&headers, StatusCode::OK, &body)
}

pub async fn list_brokers(
    State(proxy): State<Arc<Proxy>>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let cluster = proxy
        .admins
        .run(async |a| a.describe_cluster().await)
        .await?;
    let mut ids: Vec<i32> = cluster.brokers.iter().map(|b| b.id).collect();
    ids.sort_unstable();
    respond(&headers, StatusCode::OK, &json!({ "brokers": ids }))
}

/// A topic's metadata; 40401 when it does not exist.
pub async fn describe(proxy: &Proxy, topic: &str) -> RestResult<TopicMetadata> {
    let names = [topic.to_owned()];
    let described = proxy
        .admins
        .run(async |a| a.describe_topics(&names).await)
        .await?;
    let meta = described
        .into_iter()
        .find(|t| t.name == topic)
        .ok_or_else(RestError::topic_not_found)?;
    match meta.error_code {
        0 => Ok(meta),
        // UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION
        3 | 17 => Err(RestError::topic_not_found()),
        _ => meta.check().map(|()| meta).map_err(RestError::from),
    }
}

/// A partition path segment; a non-number matches no resource (404), as in Jersey.
pub fn parse_partition(text: &str) -> RestResult<i32> {
    text.parse().map_err(|_| RestError::not_found())
}

pub fn find_partition(meta: &TopicMetadata, partition: i32) -> RestResult<&PartitionMetadata> {
    meta.partitions
        .iter()
        .find(|p| p.partition == partition)
        .ok_or_else(RestError::partition_not_found)
}

fn partition_json(p: &PartitionMetadata) -> Value {
    let replicas: Vec<Value> = p
        .replicas
        .iter()
        .map(|&broker| {
            json!({
                "broker": broker,
                "leader": broker == p.leader,
                "in_sync": p.isr.contains(&broker),
            })
        })
        .collect();
    json!({"partition": p.partition, "leader": p.leader, "replicas": replicas})
}
