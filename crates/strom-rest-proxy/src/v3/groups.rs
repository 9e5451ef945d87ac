//! `/consumer-groups`: groups, their consumers and assignments, and lag (log end offset −
//! committed offset) per partition and in summary.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};
use strom_client::{GroupDescription, MemberDescription, OffsetSpec};

use super::{parse_id, respond, Ctx};
use crate::error::{RestError, RestResult};
use crate::Proxy;

/// GROUP_ID_NOT_FOUND
const GROUP_ID_NOT_FOUND: i16 = 69;

/// A group as the v3 resources show it.
struct Group {
    description: GroupDescription,
    /// "CLASSIC" or "CONSUMER".
    group_type: String,
}

/// Kafka's state names ("PreparingRebalance") as Confluent prints them ("PREPARING_REBALANCE").
fn screaming(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Consumer groups (protocol type "consumer", or "" for groups that only commit), by id.
async fn list_groups(proxy: &Proxy) -> RestResult<Vec<(String, String)>> {
    let mut admin = proxy.admins.get().await?;
    let listed = admin.list_groups(&[]).await;
    admin.release();
    Ok(listed?
        .into_iter()
        .filter(|g| g.protocol_type.is_empty() || g.protocol_type == "consumer")
        .map(|g| {
            let group_type = g
                .group_type
                .map_or("CLASSIC".to_owned(), |t| screaming_type(&t));
            (g.group_id, group_type)
        })
        .collect())
}

fn screaming_type(t: &str) -> String {
    match t.to_ascii_lowercase().as_str() {
        "classic" => "CLASSIC".into(),
        "consumer" => "CONSUMER".into(),
        "share" => "SHARE".into(),
        _ => "UNKNOWN".into(),
    }
}

/// One group; `None` when the cluster does not know it.
async fn find_group(proxy: &Proxy, group: &str) -> RestResult<Option<Group>> {
    let listed = list_groups(proxy).await?;
    let Some((_, group_type)) = listed.into_iter().find(|(id, _)| id == group) else {
        return Ok(None);
    };
    let mut admin = proxy.admins.get().await?;
    let described = admin.describe_group(group).await;
    admin.release();
    match described {
        Ok(description) => Ok(Some(Group {
            description,
            group_type,
        })),
        Err(e) if e.code() == Some(GROUP_ID_NOT_FOUND) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn group_or_404(proxy: &Proxy, group: &str) -> RestResult<Group> {
    find_group(proxy, group)
        .await?
        .ok_or_else(RestError::not_found)
}

fn group_json(ctx: &Ctx, group: &Group) -> Value {
    let d = &group.description;
    let id = d.group_id.as_str();
    ctx.resource(
        "KafkaConsumerGroup",
        ctx.url(&["consumer-groups", id]),
        Some(ctx.crn(&[("consumer-group", id)])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "consumer_group_id": id,
            "is_simple": d.protocol_type.is_empty(),
            "partition_assignor": d.protocol,
            "state": screaming(&d.state),
            "type": group.group_type,
            "is_mixed_consumer_group": false,
            "coordinator": ctx.related(&["brokers", &d.coordinator.id.to_string()]),
            "consumers": ctx.related(&["consumer-groups", id, "consumers"]),
            "lag_summary": ctx.related(&["consumer-groups", id, "lag-summary"]),
        }),
    )
}

pub async fn list(
    State(proxy): State<Arc<Proxy>>,
    Path(cluster_id): Path<String>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let mut data = Vec::new();
    for (id, group_type) in list_groups(&proxy).await? {
        let mut admin = proxy.admins.get().await?;
        let described = admin.describe_group(&id).await;
        admin.release();
        match described {
            Ok(description) => data.push(group_json(
                &ctx,
                &Group {
                    description,
                    group_type,
                },
            )),
            // Deleted between the listing and the description.
            Err(e) if e.code() == Some(GROUP_ID_NOT_FOUND) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let body = ctx.collection(
        "KafkaConsumerGroupList",
        ctx.url(&["consumer-groups"]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}

pub async fn get(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let group = group_or_404(&proxy, &group).await?;
    Ok(respond(StatusCode::OK, &group_json(&ctx, &group)))
}

fn consumer_json(ctx: &Ctx, group: &str, m: &MemberDescription) -> Value {
    let id = m.member_id.as_str();
    ctx.resource(
        "KafkaConsumer",
        ctx.url(&["consumer-groups", group, "consumers", id]),
        Some(ctx.crn(&[("consumer-group", group), ("consumer", id)])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "consumer_group_id": group,
            "consumer_id": id,
            "instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "assignments": ctx.related(&["consumer-groups", group, "consumers", id, "assignments"]),
        }),
    )
}

pub async fn list_consumers(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let found = group_or_404(&proxy, &group).await?;
    let mut members: Vec<&MemberDescription> = found.description.members.iter().collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    let data = members
        .into_iter()
        .map(|m| consumer_json(&ctx, &group, m))
        .collect();
    let body = ctx.collection(
        "KafkaConsumerList",
        ctx.url(&["consumer-groups", &group, "consumers"]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}

fn member<'a>(group: &'a Group, consumer: &str) -> RestResult<&'a MemberDescription> {
    group
        .description
        .members
        .iter()
        .find(|m| m.member_id == consumer)
        .ok_or_else(RestError::not_found)
}

pub async fn get_consumer(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, group, consumer)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let found = group_or_404(&proxy, &group).await?;
    let m = member(&found, &consumer)?;
    Ok(respond(StatusCode::OK, &consumer_json(&ctx, &group, m)))
}

/// The (topic, partition) pairs assigned to a member, sorted.
fn assigned(m: &MemberDescription) -> Vec<(String, i32)> {
    let mut out: Vec<(String, i32)> = m
        .assignment
        .iter()
        .flatten()
        .flat_map(|tp| tp.partitions.iter().map(|&p| (tp.topic.clone(), p)))
        .collect();
    out.sort();
    out
}

fn assignment_json(ctx: &Ctx, group: &str, consumer: &str, topic: &str, partition: i32) -> Value {
    let p = partition.to_string();
    ctx.resource(
        "KafkaConsumerAssignment",
        ctx.url(&[
            "consumer-groups",
            group,
            "consumers",
            consumer,
            "assignments",
            topic,
            "partitions",
            &p,
        ]),
        Some(ctx.crn(&[
            ("consumer-group", group),
            ("consumer", consumer),
            ("assignment", topic),
            ("partition", &p),
        ])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "consumer_group_id": group,
            "consumer_id": consumer,
            "topic_name": topic,
            "partition_id": partition,
            "partition": ctx.related(&["topics", topic, "partitions", &p]),
            "lag": ctx.related(&["consumer-groups", group, "lags", topic, "partitions", &p]),
        }),
    )
}

pub async fn list_assignments(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, group, consumer)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let found = group_or_404(&proxy, &group).await?;
    let m = member(&found, &consumer)?;
    let data = assigned(m)
        .iter()
        .map(|(t, p)| assignment_json(&ctx, &group, &consumer, t, *p))
        .collect();
    let body = ctx.collection(
        "KafkaConsumerAssignmentList",
        ctx.url(&[
            "consumer-groups",
            &group,
            "consumers",
            &consumer,
            "assignments",
        ]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}

pub async fn get_assignment(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, group, consumer, topic, partition)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let partition = parse_id(&partition)?;
    let found = group_or_404(&proxy, &group).await?;
    let m = member(&found, &consumer)?;
    if !assigned(m)
        .iter()
        .any(|(t, p)| *t == topic && *p == partition)
    {
        return Err(RestError::not_found());
    }
    let body = assignment_json(&ctx, &group, &consumer, &topic, partition);
    Ok(respond(StatusCode::OK, &body))
}

/// One partition's lag.
struct Lag {
    topic: String,
    partition: i32,
    /// The member it is assigned to, if any: (consumer id, instance id, client id).
    owner: Option<(String, Option<String>, String)>,
    current: i64,
    end: i64,
}

impl Lag {
    fn lag(&self) -> i64 {
        (self.end - self.current).max(0)
    }
}

/// Lags of every partition the group has committed, as kafka-rest computes them; 404 with
/// its messages when the group or its offsets cannot be found.
async fn lags(proxy: &Proxy, group: &str) -> RestResult<Vec<Lag>> {
    let found = find_group(proxy, group).await?.ok_or_else(|| {
        RestError::http(
            StatusCode::NOT_FOUND,
            format!("Consumer Group {group} could not be found."),
        )
    })?;
    let mut owners: BTreeMap<(String, i32), (String, Option<String>, String)> = BTreeMap::new();
    for m in &found.description.members {
        for tp in assigned(m) {
            owners.insert(
                tp,
                (
                    m.member_id.clone(),
                    m.group_instance_id.clone(),
                    m.client_id.clone(),
                ),
            );
        }
    }
    let mut admin = proxy.admins.get().await?;
    let committed = admin.list_group_offsets(group).await;
    admin.release();
    let committed = committed?;
    if committed.is_empty() {
        return Err(RestError::http(
            StatusCode::NOT_FOUND,
            "Consumer group offsets could not be found.",
        ));
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in committed.keys() {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for (topic, partitions) in by_topic {
        let mut consumer = proxy.consumers.get().await?;
        let listed = consumer
            .list_offsets(topic, &partitions, OffsetSpec::Latest)
            .await;
        consumer.release();
        match listed {
            Ok(offsets) => {
                for (p, end) in offsets {
                    if let Some(end) = end {
                        ends.insert((topic.to_owned(), p), end);
                    }
                }
            }
            // A committed topic since deleted has no end: its partitions are left out.
            Err(e) if matches!(e.code(), Some(3) | Some(100)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(committed
        .into_iter()
        .filter_map(|((topic, partition), offset)| {
            let end = *ends.get(&(topic.clone(), partition))?;
            Some(Lag {
                owner: owners.get(&(topic.clone(), partition)).cloned(),
                topic,
                partition,
                current: offset.offset,
                end,
            })
        })
        .collect())
}

fn lag_json(ctx: &Ctx, group: &str, lag: &Lag) -> Value {
    let p = lag.partition.to_string();
    let (consumer_id, instance_id, client_id) =
        lag.owner
            .clone()
            .unwrap_or((String::new(), None, String::new()));
    ctx.resource(
        "KafkaConsumerLag",
        ctx.url(&[
            "consumer-groups",
            group,
            "lags",
            &lag.topic,
            "partitions",
            &p,
        ]),
        Some(ctx.crn(&[
            ("consumer-group", group),
            ("lag", &lag.topic),
            ("partition", &p),
        ])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "consumer_group_id": group,
            "topic_name": lag.topic,
            "partition_id": lag.partition,
            "consumer_id": consumer_id,
            "instance_id": instance_id,
            "client_id": client_id,
            "current_offset": lag.current,
            "log_end_offset": lag.end,
            "lag": lag.lag(),
        }),
    )
}

pub async fn list_lags(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let mut lags = lags(&proxy, &group).await?;
    if lags.is_empty() {
        return Err(RestError::http(
            StatusCode::NOT_FOUND,
            "Consumer lags not found.",
        ));
    }
    // Largest lag first, then by topic and partition.
    lags.sort_by(|a, b| {
        b.lag()
            .cmp(&a.lag())
            .then_with(|| a.topic.cmp(&b.topic))
            .then_with(|| a.partition.cmp(&b.partition))
    });
    let data = lags.iter().map(|l| lag_json(&ctx, &group, l)).collect();
    let body = ctx.collection(
        "KafkaConsumerLagList",
        ctx.url(&["consumer-groups", &group, "lags"]),
        data,
    );
    Ok(respond(StatusCode::OK, &body))
}

pub async fn get_lag(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, group, topic, partition)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let partition = parse_id(&partition)?;
    let lags = lags(&proxy, &group).await?;
    let lag = lags
        .iter()
        .find(|l| l.topic == topic && l.partition == partition)
        .ok_or_else(RestError::not_found)?;
    Ok(respond(StatusCode::OK, &lag_json(&ctx, &group, lag)))
}

pub async fn lag_summary(
    State(proxy): State<Arc<Proxy>>,
    Path((cluster_id, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> RestResult<Response> {
    let ctx = Ctx::new(&proxy, &headers, &cluster_id).await?;
    let lags = lags(&proxy, &group).await?;
    let total: i64 = lags.iter().map(Lag::lag).sum();
    // The first partition (by topic, partition) with the largest lag.
    let max = lags
        .iter()
        .fold(None::<&Lag>, |best, l| match best {
            Some(b) if b.lag() >= l.lag() => Some(b),
            _ => Some(l),
        })
        .ok_or_else(|| RestError::http(StatusCode::NOT_FOUND, "Consumer lags not found."))?;
    let (consumer_id, instance_id, client_id) =
        max.owner
            .clone()
            .unwrap_or((String::new(), None, String::new()));
    let p = max.partition.to_string();
    let body = ctx.resource(
        "KafkaConsumerGroupLagSummary",
        ctx.url(&["consumer-groups", &group, "lag-summary"]),
        Some(ctx.crn(&[("consumer-group", &group), ("lag-summary", "")])),
        json!({
            "cluster_id": ctx.cluster_id(),
            "consumer_group_id": group,
            "max_lag_consumer_id": consumer_id,
            "max_lag_instance_id": instance_id,
            "max_lag_client_id": client_id,
            "max_lag_topic_name": max.topic,
            "max_lag_partition_id": max.partition,
            "max_lag": max.lag(),
            "total_lag": total,
            "max_lag_consumer": ctx.related(&["consumer-groups", &group, "consumers", &consumer_id]),
            "max_lag_partition": ctx.related(&["topics", &max.topic, "partitions", &p]),
        }),
    );
    Ok(respond(StatusCode::OK, &body))
}
