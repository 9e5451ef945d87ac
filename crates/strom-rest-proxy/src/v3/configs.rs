//! Configs of a broker (`/brokers/{id}/configs`), of the whole cluster (`/broker-configs`,
//! the brokers' dynamic defaults) and of topics (`/topics/{t}/configs`, `/topics/-/configs`):
//! list, get, set (PUT), reset (DELETE) and atomic batches (`configs:alter`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use strom_client::{AlterConfigOp, ConfigEntry, ConfigSource, ResourceType};

use super::clusters::find_broker;
use super::{no_content, parse, respond, Ctx};
use crate::error::{RestError, RestResult};
use crate::Proxy;

/// Whose configs a request is about.
enum Scope {
    Broker(i32),
    /// The cluster-wide dynamic broker defaults (Kafka's broker resource named "").
    Cluster,
    Topic(String),
}

impl Scope {
    fn resource(&self) -> (ResourceType, String) {
        match self {
            Scope::Broker(id) => (ResourceType::Broker, id.to_string()),
            Scope::Cluster => (ResourceType::Broker, String::new()),
            Scope::Topic(topic) => (ResourceType::Topic, topic.clone()),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Scope::Broker(_) => "KafkaBrokerConfig",
            Scope::Cluster => "KafkaClusterConfig",
            Scope::Topic(_) => "KafkaTopicConfig",
        }
    }

    /// The URL segments of the config list.
    fn list_path(&self) -> Vec<String> {
        match self {
            Scope::Broker(id) => vec!["brokers".into(), id.to_string(), "configs".into()],
            Scope::Cluster => vec!["broker-configs".into()],
            Scope::Topic(t) => vec!["topics".into(), t.clone(), "configs".into()],
        }
    }

    fn crn_parts(&self) -> Vec<(&'static str, String)> {
        match self {
            Scope::Broker(id) => vec![("broker", id.to_string())],
            Scope::Cluster => Vec::new(),
            Scope::Topic(t) => vec![("topic", t.clone())],
        }
    }

    /// For "Config x cannot be found for TOPIC t in cluster c.".
    fn describe(&self) -> String {
        match self {
            Scope::Broker(id) => format!("BROKER {id}"),
            Scope::Cluster => "BROKER ".to_owned(),
            Scope::Topic(t) => format!("TOPIC {t}"),
        }
    }

    fn to_json(&self, ctx: &Ctx, entry: &ConfigEntry) -> Value {
        let mut path = self.list_path();
        path.push(entry.name.clone());
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let parts = self.crn_parts();
        let mut crn: Vec<(&str, &str)> = parts.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config_kind = match self {
            Scope::Cluster => "broker-config",
            _ => "config",
        };
        crn.push((config_kind, &entry.name));
        let owner = match self {
            Scope::Broker(id) => json!({"cluster_id": ctx.cluster_id(), "broker_id": id}),
            Scope::Cluster => json!({"cluster_id": ctx.cluster_id(), "config_type": "BROKER"}),
            Scope::Topic(t) => json!({"cluster_id": ctx.cluster_id(), "topic_name": t}),
        };
        let mut fields = owner;
        if let Value::Object(map) = &mut fields {
            map.insert("name".into(), entry.name.clone().into());
            map.insert("value".into(), entry.value.clone().into());
            map.insert(
                "is_default".into(),
                (entry.source == ConfigSource::DefaultConfig).into(),
            );
            map.insert("is_read_only".into(), entry.read_only.into());
            map.insert("is_sensitive".into(), entry.sensitive.into());
            map.insert("source".into(), source_name(entry.source).into());
            let synonyms: Vec<Value> = entry
                .synonyms
                .iter()
                .map(|syn| {
                    json!({"name": syn.name, "value": syn.value, "source": source_name(syn.source)})
                })
                .collect();
            map.insert("synonyms".into(), synonyms.into());
        }
        ctx.resource(self.kind(), ctx.url(&path), Some(ctx.crn(&crn)), fields)
    }
}

/// Confluent's names of config sources (Kafka's, with its own for those it does not know).
fn source_name(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::GroupConfig => "DYNAMIC_GROUP_CONFIG",
        ConfigSource::ClientMetricsConfig => "UNKNOWN",
        other => other.name(),
    }
}

async fn scope(proxy: &Proxy, ctx: &Ctx, scope: Scope) -> RestResult<Scope> {
    if let Scope::Topic(topic) = &scope {
        ctx.topic(proxy, topic).await?;
    }
    Ok(scope)
}

async fn describe(proxy: &Proxy, scope: &Scope) -> RestResult<Vec<ConfigEntry>> {
    let (resource_type, name) = scope.resource();
    let mut admin = proxy.admins.get().await?;
    let described = admin
        .describe_configs_checked(resource_type, &name, None, true)
        .await;
    admin.release();
    let mut configs = described.map_err(|e| match e.code() {
        Some(3) => RestError::unknown_topic_or_partition(),
        _ => RestError::from(e),
    })?;
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(configs)
}

async fn alter(
    proxy: &Proxy,
    scope: &Scope,
    ops: &[AlterConfigOp],
    validate_only: bool,
) -> RestResult<()> {
    let (resource_type, name) = scope.resource();
    let mut admin = proxy.admins.get().await?;
    let altered = admin
        .incremental_alter_configs_checked(resource_type, &name, ops, validate_only)
        .await;
    admin.release();
    altered.map_err(|e| match e.code() {
        Some(3) => RestError::unknown_topic_or_partition(),
        _ => RestError::from(e),
    })
}

/// Fails with kafka-rest's 404 unless every named config exists.
async fn check_exist<'a>(
    proxy: &Proxy,
    ctx: &Ctx,
    scope: &Scope,
    names: impl IntoIterator<Item = &'a str>,
) -> RestResult<()> {
    let configs = describe(proxy, scope).await?;
    for name in names {
        if !configs.iter().any(|c| c.name == name) {
            return Err(RestError::http(
                StatusCode::NOT_FOUND,
                format!(
                    "Config {name} cannot be found for {} in cluster {}.",
                    scope.describe(),
                    ctx.cluster_id()
                ),
            ));
        }
    }
    Ok(())
}

async fn list_configs(proxy: &Proxy, ctx: &Ctx, scope: &Scope) -> RestResult<Response> {
    let configs = describe(proxy, scope).await?;
    let data = configs.iter().map(|c| scope.to_json(ctx, c)).collect();
    let path = scope.list_path();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let list_kind = format!("{}List", scope.kind());
    let body = ctx.collection(&list_kind, ctx.url(&path), data);
    Ok(respond(StatusCode::OK, &body))
}

async fn get_config(proxy: &Proxy, ctx: &Ctx, scope: &Scope, name: &str) -> RestResult<Response> {
    let configs = describe(proxy, scope).await?;
    let config = configs
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(RestError::not_found)?;
    Ok(respond(StatusCode::OK, &scope.to_json(ctx, config)))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AlterBatch {
    data: Vec<AlterEntry>,
    #[serde(default)]
    validate_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct AlterEntry {
    name: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    operation: Option<Operation>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
enum Operation {
    #[serde(rename = "SET", alias = "set")]
    Set,
    #[serde(rename = "DELETE", alias = "delete")]
    Delete,
}

fn set_op(name: &str, value: Option<String>) -> AlterConfigOp {
    // A null value sets the config to null, which Kafka reads as "back to the default".
    match value {
        Some(value) => AlterConfigOp::Set(name.to_owned(), value),
        None => AlterConfigOp::Delete(name.to_owned()),
    }
}

async fn update_config(
    proxy: &Proxy,
    ctx: &Ctx,
    scope: &Scope,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> RestResult<Response> {
    let request: UpdateRequest = parse(headers, body)?;
    if !matches!(scope, Scope::Cluster) {
        check_exist(proxy, ctx, scope, [name]).await?;
    }
    alter(proxy, scope, &[set_op(name, request.value)], false).await?;
    Ok(no_content())
}

async fn reset_config(proxy: &Proxy, ctx: &Ctx, scope: &Scope, name: &str) -> RestResult<Response> {
    check_exist(proxy, ctx, scope, [name]).await?;
    alter(
        proxy,
        scope,
        &[AlterConfigOp::Delete(name.to_owned())],
        false,
    )
    .await?;
    Ok(no_content())
}

async fn alter_configs(
    proxy: &Proxy,
    ctx: &Ctx,
    scope: &Scope,
    headers: &HeaderMap,
    body: &[u8],
) -> RestResult<Response> {
    let request: AlterBatch = parse(headers, body)?;
    if !matches!(scope, Scope::Cluster) {
        check_exist(
            proxy,
            ctx,
            scope,
            request.data.iter().map(|e| e.name.as_str()),
        )
        .await?;
    }
    let ops: Vec<AlterConfigOp> = request
        .data
        .into_iter()
        .map(|e| match e.operation.unwrap_or(Operation::Set) {
            Operation::Set => set_op(&e.name, e.value),
            Operation::Delete => AlterConfigOp::Delete(e.name),
        })
        .collect();
    alter(proxy, scope, &ops, request.validate_only.unwrap_or(false)).await?;
    Ok(no_content())
}

async fn broker_scope(
    proxy: &Proxy,
    headers: &HeaderMap,
    cluster_id: &str,
    broker_id: &str,
) -> RestResult<(Ctx, Scope)> {
    let ctx = Ctx::new(proxy, headers, cluster_id).await?;
    let id = find_broker(&ctx, broker_id)?.id;
    Ok((ctx, Scope::Broker(id)))
}

async fn topic_scope(
    proxy: &Proxy,
    headers: &HeaderMap,
    cluster_id: &str,
    topic: String,
) -> RestResult<(Ctx, Scope)> {
    let ctx = Ctx::new(proxy, headers, cluster_id).await?;
    let scope = scope(proxy, &ctx, Scope::Topic(topic)).await?;
    Ok((ctx, scope))
}

pub async fn list_broker(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, broker_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let (ctx, scope) = broker_scope(&proxy, &headers, &cluster_id, &broker_id).await?;
    list_configs(&proxy, &ctx, &scope).await
}

pub async fn get_broker(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, broker_id, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let (ctx, scope) = broker_scope(&proxy, &headers, &cluster_id, &broker_id).await?;
    get_config(&proxy, &ctx, &scope, &name).await
}

pub async fn update_broker(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, broker_id, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let (ctx, scope) = broker_scope(&proxy, &headers, &cluster_id, &broker_id).await?;
    update_config(&proxy, &ctx, &scope, &name, &headers, &body).await
}

pub async fn reset_broker(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, broker_id, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let (ctx, scope) = broker_scope(&proxy, &headers, &cluster_id, &broker_id).await?;
    reset_config(&proxy, &ctx, &scope, &name).await
}

pub async fn alter_broker(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, broker_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let (ctx, scope) = broker_scope(&proxy, &headers, &cluster_id, &broker_id).await?;
    alter_configs(&proxy, &ctx, &scope, &headers, &body).await
}

pub async fn list_cluster(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    list_configs(&proxy, &ctx, &Scope::Cluster).await
}

pub async fn get_cluster(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    get_config(&proxy, &ctx, &Scope::Cluster, &name).await
}

pub async fn update_cluster(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    update_config(&proxy, &ctx, &Scope::Cluster, &name, &headers, &body).await
}

pub async fn reset_cluster(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    reset_config(&proxy, &ctx, &Scope::Cluster, &name).await
}

pub async fn alter_cluster(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    alter_configs(&proxy, &ctx, &Scope::Cluster, &headers, &body).await
}

pub async fn list_topic(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let (ctx, scope) = topic_scope(&proxy, &headers, &cluster_id, topic).await?;
    list_configs(&proxy, &ctx, &scope).await
}

pub async fn get_topic(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let (ctx, scope) = topic_scope(&proxy, &headers, &cluster_id, topic).await?;
    get_config(&proxy, &ctx, &scope, &name).await
}

pub async fn update_topic(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let (ctx, scope) = topic_scope(&proxy, &headers, &cluster_id, topic).await?;
    update_config(&proxy, &ctx, &scope, &name, &headers, &body).await
}

pub async fn reset_topic(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let (ctx, scope) = topic_scope(&proxy, &headers, &cluster_id, topic).await?;
    reset_config(&proxy, &ctx, &scope, &name).await
}

pub async fn alter_topic(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, topic)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult<Response> {
    let (ctx, scope) = topic_scope(&proxy, &headers, &cluster_id, topic).await?;
    alter_configs(&proxy, &ctx, &scope, &headers, &body).await
}

/// `GET /brokers/-/configs`: the configs of every broker, by broker id.
pub async fn list_all_brokers(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let mut ids: Vec<i32> = ctx.cluster.brokers.iter().map(|b| b.id).collect();
    ids.sort_unstable();
    let mut data = Vec::new();
    for id in ids {
        let scope = Scope::Broker(id);
        for config in describe(&proxy, &scope).await? {
            data.push(scope.to_json(&ctx, &config));
        }
    }
    let body = ctx.collection(
        "KafkaBrokerConfigList",
        ctx.url(&["brokers", "-", "configs"]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}

/// `GET /topics/-/configs`: the configs of every topic, by topic then name.
pub async fn list_all_topics(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let mut admin = proxy.admins.get().await?;
    let topics = admin.list_topics().await;
    admin.release();
    let mut data = Vec::new();
    for topic in topics?.into_iter().filter(|t| !t.is_internal) {
        let scope = Scope::Topic(topic.name);
        for config in describe(&proxy, &scope).await? {
            data.push(scope.to_json(&ctx, &config));
        }
    }
    let body = ctx.collection(
        "KafkaTopicConfigList",
        ctx.url(&["topics", "-", "configs"]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}
