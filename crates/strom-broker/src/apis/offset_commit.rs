//! OffsetCommit, by a group member or as a simple (memberless) commit.
//! Served up to v9: v10 names topics by id.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;

use strom_metadata::MetadataImage;
use strom_types::ErrorCode;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct OffsetCommitHandler;

impl Handler for OffsetCommitHandler {
    type Request = OffsetCommitRequest;
    const KEY: ApiKey = ApiKey::OffsetCommit;
    const VERSIONS: VersionRange = VersionRange { min: 2, max: 9 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        mut request: OffsetCommitRequest,
    ) -> OffsetCommitResponse {
        // Kafka's order: READ on the group for the whole request, then READ on each
        // topic (TOPIC_AUTHORIZATION_FAILED), then the partition's existence
        // (UNKNOWN_TOPIC_OR_PARTITION); only what passes reaches the coordinator.
        let authz = ctx.authz(&broker);
        if !authz.allows_group(Operation::Read, &request.group_id) {
            let topics = request
                .topics
                .iter()
                .map(|t| {
                    let partitions = t.partitions.iter().map(|p| p.partition_index);
                    answered(
                        t.name.clone(),
                        partitions,
                        ErrorCode::GroupAuthorizationFailed,
                    )
                })
                .collect();
            return OffsetCommitResponse::default().with_topics(topics);
        }
        let image = broker.image();
        let asked_any = !request.topics.is_empty();
        let mut refusals = Vec::new();
        request.topics.retain(|t| {
            if authz.allows_topic(Operation::Read, &t.name) {
                return true;
            }
            let partitions = t.partitions.iter().map(|p| p.partition_index);
            refusals.push(answered(
                t.name.clone(),
                partitions,
                ErrorCode::TopicAuthorizationFailed,
            ));
            false
        });
        refusals.extend(take_unknown_partitions(&image, &mut request));
        if request.topics.is_empty() && asked_any {
            return OffsetCommitResponse::default().with_topics(refusals);
        }
        let mut response = commit(broker, ctx, request).await;
        merge_topics(&mut response.topics, refusals);
        response
    }
}

/// A topic's partitions, each answered with `code`.
fn answered(
    name: kafka_protocol::messages::TopicName,
    partitions: impl Iterator<Item = i32>,
    code: ErrorCode,
) -> OffsetCommitResponseTopic {
    OffsetCommitResponseTopic::default()
        .with_name(name)
        .with_partitions(
            partitions
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code.code())
                })
                .collect(),
        )
}

/// Removes the partitions the metadata does not know from the request and
/// returns their UNKNOWN_TOPIC_OR_PARTITION answers.
fn take_unknown_partitions(
    image: &MetadataImage,
    request: &mut OffsetCommitRequest,
) -> Vec<OffsetCommitResponseTopic> {
    let mut unknown = Vec::new();
    for topic in &mut request.topics {
        let partition_count = image
            .topic(topic.name.as_str())
            .map_or(0, |t| t.partitions.len() as i32);
        let (known, missing): (Vec<_>, Vec<_>) = std::mem::take(&mut topic.partitions)
            .into_iter()
            .partition(|p| (0..partition_count).contains(&p.partition_index));
        topic.partitions = known;
        if !missing.is_empty() {
            unknown.push(answered(
                topic.name.clone(),
                missing.iter().map(|p| p.partition_index),
                ErrorCode::UnknownTopicOrPartition,
            ));
        }
    }
    request.topics.retain(|t| !t.partitions.is_empty());
    unknown
}

/// Adds `extra` answers to the coordinator's, under the same topic entry when there is one.
fn merge_topics(
    topics: &mut Vec<OffsetCommitResponseTopic>,
    extra: Vec<OffsetCommitResponseTopic>,
) {
    for topic in extra {
        match topics.iter_mut().find(|t| t.name == topic.name) {
            Some(existing) => existing.partitions.extend(topic.partitions),
            None => topics.push(topic),
        }
    }
}

async fn commit(
    broker: Arc<Broker>,
    ctx: RequestContext,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.to_string();
    let version = ctx.api_version;
    // Every partition asked about gets the error if the coordinator fails.
    let asked: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> = request
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let result = broker
        .groups
        .call(&broker, &group, |shard, now, id| {
            shard.offset_commit(now, id, version, request)
        })
        .await;
    expect_reply!(result, OffsetCommit, |code: ErrorCode| {
        let topics = asked
            .iter()
            .map(|(name, partitions)| answered(name.clone(), partitions.iter().copied(), code))
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    })
}
