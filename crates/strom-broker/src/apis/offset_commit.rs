//! OffsetCommit, by a group member or as a simple (memberless) commit.
//! Served up to v9: v10 names topics by id.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;

use super::group_common::expect_reply;
use super::{Handler, RequestContext};
use crate::broker::Broker;

pub struct OffsetCommitHandler;

impl Handler for OffsetCommitHandler {
    type Request = OffsetCommitRequest;
    const KEY: ApiKey = ApiKey::OffsetCommit;
    const VERSIONS: VersionRange = VersionRange { min: 2, max: 9 };

    async fn handle(
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
        expect_reply!(result, OffsetCommit, |code: strom_types::ErrorCode| {
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
        })
    }
}
