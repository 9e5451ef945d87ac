//! TxnOffsetCommit: a transactional producer's offsets for a group. The group
//! coordinator writes them in a transactional batch of the producer; they stay pending
//! (invisible to OffsetFetch, UNSTABLE_OFFSET_COMMIT under `require_stable`) until the
//! transaction's marker commits or aborts them.

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;

use super::group_common::expect_reply;
use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct TxnOffsetCommitHandler;

impl Handler for TxnOffsetCommitHandler {
    type Request = TxnOffsetCommitRequest;
    const KEY: ApiKey = ApiKey::TxnOffsetCommit;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 5 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: TxnOffsetCommitRequest,
    ) -> TxnOffsetCommitResponse {
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
        // Kafka's order: WRITE on the transactional id, READ on the group.
        let authz = ctx.authz(&broker);
        let result = if !authz.allows_transactional_id(Operation::Write, &request.transactional_id)
        {
            Err(strom_types::ErrorCode::TransactionalIdAuthorizationFailed)
        } else if !authz.allows_group(Operation::Read, &group) {
            Err(strom_types::ErrorCode::GroupAuthorizationFailed)
        } else {
            broker
                .groups
                .call(&broker, &group, |shard, now, id| {
                    shard.txn_offset_commit(now, id, version, request)
                })
                .await
        };
        expect_reply!(result, TxnOffsetCommit, |code: strom_types::ErrorCode| {
            let topics = asked
                .iter()
                .map(|(name, partitions)| {
                    TxnOffsetCommitResponseTopic::default()
                        .with_name(name.clone())
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|p| {
                                    TxnOffsetCommitResponsePartition::default()
                                        .with_partition_index(*p)
                                        .with_error_code(code.code())
                                })
                                .collect(),
                        )
                })
                .collect();
            TxnOffsetCommitResponse::default().with_topics(topics)
        })
    }
}
