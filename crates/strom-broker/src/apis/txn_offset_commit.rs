//! TxnOffsetCommit: a transactional producer's offsets for a group. The group
//! coordinator writes them in a transactional batch of the producer; they stay pending
//! (invisible to OffsetFetch, UNSTABLE_OFFSET_COMMIT under `require_stable`) until the
//! transaction's marker commits or aborts them.

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestTopic;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

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
        mut request: TxnOffsetCommitRequest,
    ) -> TxnOffsetCommitResponse {
        let group = request.group_id.to_string();
        let version = ctx.api_version;
        // Kafka's order: WRITE on the transactional id, READ on the group, then READ on
        // each topic (TOPIC_AUTHORIZATION_FAILED), then the topic's existence
        // (UNKNOWN_TOPIC_OR_PARTITION); only what passes reaches the coordinator.
        let authz = ctx.authz(&broker);
        let whole_refusal =
            if !authz.allows_transactional_id(Operation::Write, &request.transactional_id) {
                Some(ErrorCode::TransactionalIdAuthorizationFailed)
            } else if !authz.allows_group(Operation::Read, &group) {
                Some(ErrorCode::GroupAuthorizationFailed)
            } else {
                None
            };
        if let Some(code) = whole_refusal {
            let topics = request.topics.iter().map(|t| refused(t, code)).collect();
            return TxnOffsetCommitResponse::default().with_topics(topics);
        }
        let image = broker.image();
        let mut refusals = Vec::new();
        request.topics.retain(|t| {
            let code = if !authz.allows_topic(Operation::Read, &t.name) {
                ErrorCode::TopicAuthorizationFailed
            } else if image.topic(&t.name).is_none() {
                ErrorCode::UnknownTopicOrPartition
            } else {
                return true;
            };
            refusals.push(refused(t, code));
            false
        });
        if request.topics.is_empty() {
            return TxnOffsetCommitResponse::default().with_topics(refusals);
        }
        // Every partition sent on gets the error if the coordinator fails.
        let asked = request.topics.clone();
        let result = broker
            .groups
            .call(&broker, &group, |shard, now, id| {
                shard.txn_offset_commit(now, id, version, request)
            })
            .await;
        let mut response = expect_reply!(result, TxnOffsetCommit, |code: ErrorCode| {
            TxnOffsetCommitResponse::default()
                .with_topics(asked.iter().map(|t| refused(t, code)).collect())
        });
        response.topics.extend(refusals);
        response
    }
}

/// Every partition of `topic` answered with `code`.
fn refused(topic: &TxnOffsetCommitRequestTopic, code: ErrorCode) -> TxnOffsetCommitResponseTopic {
    TxnOffsetCommitResponseTopic::default()
        .with_name(topic.name.clone())
        .with_partitions(
            topic
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                })
                .collect(),
        )
}
