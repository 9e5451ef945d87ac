//! `/v3/clusters` and `/v3/clusters/{c}/brokers`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use strom_client::BrokerInfo;

use super::{parse_id, respond, Ctx};
use crate::error::{RestError, RestResult};
use crate::Proxy;

pub async fn list(State(proxy): State<Arc<Proxy>>, headers: HeaderMap) -> RestResult<Response> {
    let ctx = Ctx::unchecked(&proxy, &headers).await?;
    let url = format!("{}/v3/clusters", ctx.base);
    let body = ctx.collection("KafkaClusterList", url, vec![cluster_json(&ctx)]);
    Ok(respond(StatusCode::OK, &body))
}

pub async fn get(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    Ok(respond(StatusCode::OK, &cluster_json(&ctx)))
}

fn cluster_json(ctx: &Ctx) -> Value {
    let controller = ctx.cluster.controller_id;
    let controller = (controller >= 0).then(|| ctx.related(&["brokers", &controller.to_string()]));
    ctx.resource(
        "KafkaCluster",
        ctx.url(&[]),
        Some(ctx.crn(&[])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "controller": controller,
            "acls": ctx.related(&["acls"]),
            "brokers": ctx.related(&["brokers"]),
            "broker_configs": ctx.related(&["broker-configs"]),
            "consumer_groups": ctx.related(&["consumer-groups"]),
            "topics": ctx.related(&["topics"]),
            "partition_reassignments": ctx.related(&["topics", "-", "partitions", "-", "reassignment"]),
        }),
    )
}

pub async fn list_brokers(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let data = ctx
        .cluster
        .brokers
        .iter()
        .map(|b| broker_json(&ctx, b))
        .collect();
    let body = ctx.collection("KafkaBrokerList", ctx.url(&["brokers"]), data);
    Ok(respond(StatusCode::OK, &body))
}

pub async fn get_broker(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, broker_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let broker = find_broker(&ctx, &broker_id)?;
    Ok(respond(StatusCode::OK, &broker_json(&ctx, broker)))
}

/// A broker of the cluster by its path segment; 404 otherwise.
pub fn find_broker<'a>(ctx: &'a Ctx, broker_id: &str) -> RestResult<&'a BrokerInfo> {
    let id = parse_id(broker_id)?;
    ctx.cluster
        .brokers
        .iter()
        .find(|b| b.id == id)
        .ok_or_else(RestError::not_found)
}

fn broker_json(ctx: &Ctx, broker: &BrokerInfo) -> Value {
    let id = broker.id.to_string();
    ctx.resource(
        "KafkaBroker",
        ctx.url(&["brokers", &id]),
        Some(ctx.crn(&[("broker", &id)])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "broker_id": broker.id,
            "host": broker.host,
            "port": broker.port,
            "rack": broker.rack,
            "configs": ctx.related(&["brokers", &id, "configs"]),
            "partition_replicas": ctx.related(&["brokers", &id, "partition-replicas"]),
        }),
    )
}
