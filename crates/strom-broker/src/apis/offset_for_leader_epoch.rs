//! OffsetForLeaderEpoch (KIP-101, KIP-279, KIP-320): for each partition, the largest leader
//! epoch at or below the one asked for and the offset where it ends, from the partition's
//! leader-epoch cache. Followers find their divergence point with it; consumers validate
//! their position after a leader change.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::protocol::VersionRange;
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::replication_error_code;

pub struct OffsetForLeaderEpochHandler;

impl Handler for OffsetForLeaderEpochHandler {
    type Request = OffsetForLeaderEpochRequest;
    const KEY: ApiKey = ApiKey::OffsetForLeaderEpoch;
    // Kafka 4.0 serves v2-v4 (KIP-896 removed v0-v1).
    const VERSIONS: VersionRange = VersionRange { min: 2, max: 4 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: OffsetForLeaderEpochRequest,
    ) -> OffsetForLeaderEpochResponse {
        // A follower needs CLUSTER_ACTION; a client DESCRIBE on each topic.
        let authz = ctx.authz(&broker);
        let follower = request.replica_id.0 >= 0;
        let allowed = |topic: &str| {
            if follower {
                authz.allows_cluster(Operation::ClusterAction)
            } else {
                authz.allows_topic(Operation::Describe, topic)
            }
        };
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        if allowed(&topic.topic) {
                            end_offset(&broker, &topic.topic, p)
                        } else {
                            EpochEndOffset::default()
                                .with_partition(p.partition)
                                .with_leader_epoch(-1)
                                .with_end_offset(-1)
                                .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                        }
                    })
                    .collect();
                OffsetForLeaderTopicResult::default()
                    .with_topic(topic.topic)
                    .with_partitions(partitions)
            })
            .collect();
        OffsetForLeaderEpochResponse::default().with_topics(topics)
    }
}

/// Kafka's Partition.lastOffsetForLeaderEpoch on the leader.
fn end_offset(broker: &Broker, topic: &str, wanted: &OffsetForLeaderPartition) -> EpochEndOffset {
    let response = EpochEndOffset::default()
        .with_partition(wanted.partition)
        .with_leader_epoch(-1)
        .with_end_offset(-1);
    let Some(partition) = broker.partition(topic, wanted.partition) else {
        return response.with_error_code(ErrorCode::UnknownTopicOrPartition.code());
    };
    // Followers and consumers alike ask the leader (Kafka's fetchOnlyFromLeader).
    if let Err(e) = crate::replica_manager::check_leader(&partition, wanted.current_leader_epoch) {
        return response.with_error_code(replication_error_code(&e).code());
    }
    match partition.reader().end_offset_for_epoch(wanted.leader_epoch) {
        Some((epoch, end_offset)) => response
            .with_leader_epoch(epoch)
            .with_end_offset(end_offset),
        None => response,
    }
}
