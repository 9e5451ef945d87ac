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
        // As Kafka does, partitions of topics or indexes that do not exist are
        // answered UNKNOWN_TOPIC_OR_PARTITION and never reach the coordinator.
        let unknown = take_unknown_partitions(&broker.image(), &mut request);
        if request.topics.is_empty() && !unknown.is_empty() {
            return OffsetCommitResponse::default().with_topics(unknown);
        }
        let mut response = commit(broker, ctx, request).await;
        merge_topics(&mut response.topics, unknown);
        response
    }
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
            unknown.push(
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(
                        missing
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                            })
                            .collect(),
                    ),
            );
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
    mut request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.to_string();
    let version = ctx.api_version;
    // Topics the caller may not READ are not committed: TOPIC_AUTHORIZATION_FAILED.
    let authz = ctx.authz(&broker);
    let image = broker.image();
    let (allowed, denied): (Vec<_>, Vec<_>) = std::mem::take(&mut request.topics)
        .into_iter()
        .partition(|t| {
            let name = if t.name.is_empty() {
                image.topic_by_id(&t.topic_id).map(|x| x.name.clone())
            } else {
                Some(t.name.to_string())
            };
            name.is_none_or(|n| authz.allows_topic(Operation::Read, &n))
        });
    request.topics = allowed;
    let refused_topics: Vec<OffsetCommitResponseTopic> = denied
        .iter()
        .map(|t| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(
                                    strom_types::ErrorCode::TopicAuthorizationFailed.code(),
                                )
                        })
                        .collect(),
                )
        })
        .collect();
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
    let result = if !ctx.authz(&broker).allows_group(Operation::Read, &group) {
        Err(strom_types::ErrorCode::GroupAuthorizationFailed)
    } else {
        broker
            .groups
            .call(&broker, &group, |shard, now, id| {
                shard.offset_commit(now, id, version, request)
            })
            .await
    };
    let mut response = expect_reply!(result, OffsetCommit, |code: strom_types::ErrorCode| {
        let topics = asked
            .iter()
            .map(|(name, partitions)| {
                OffsetCommitResponseTopic::default()
                    .with_name(name.clone())
                    .with_partitions(
                        partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(*p)
                                    .with_error_code(code.code())
                            })
                            .collect(),
                    )
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    });
    response.topics.extend(refused_topics);
    response
}
