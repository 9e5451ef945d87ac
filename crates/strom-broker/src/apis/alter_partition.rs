//! AlterPartition (key 56), on the controller: a partition leader changes its ISR (or
//! its leader recovery state). Validated and turned into records by
//! `strom_metadata::alter_partition` (Kafka's ReplicationControlManager), committed
//! through the metadata quorum, answered with the partition's state after the change.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_response::{PartitionData, TopicData};
use kafka_protocol::messages::{AlterPartitionRequest, AlterPartitionResponse, ApiKey, BrokerId};
use kafka_protocol::protocol::VersionRange;
use strom_metadata::alter_partition::{
    alter_partition, AlterPartitionData, AlterPartitionRequest as Change, AlterPartitionTopic,
    IsrMember,
};
use strom_metadata::LeaderRecoveryState;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::controller_error_code;

pub struct AlterPartitionHandler;

/// v3 carries each ISR member's broker epoch (KIP-903).
const ISR_WITH_EPOCHS_VERSION: i16 = 3;

impl Handler for AlterPartitionHandler {
    type Request = AlterPartitionRequest;
    const KEY: ApiKey = ApiKey::AlterPartition;
    // Kafka 4.0 serves v2-v3 (KIP-896 removed v0-v1, which named topics).
    const VERSIONS: VersionRange = VersionRange { min: 2, max: 3 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AlterPartitionRequest,
    ) -> AlterPartitionResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::ClusterAction) {
            return AlterPartitionResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        alter_partition_on_controller(&broker, ctx.api_version, &request).await
    }
}

/// Carries out an AlterPartition on this node as the active controller (the quorum
/// refuses the change on any other node).
pub(crate) async fn alter_partition_on_controller(
    broker: &Broker,
    version: i16,
    request: &AlterPartitionRequest,
) -> AlterPartitionResponse {
    let change = Change {
        broker_id: request.broker_id.0,
        broker_epoch: request.broker_epoch,
        topics: request
            .topics
            .iter()
            .map(|t| AlterPartitionTopic {
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| AlterPartitionData {
                        partition: p.partition_index,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        new_isr: if version >= ISR_WITH_EPOCHS_VERSION {
                            p.new_isr_with_epochs
                                .iter()
                                .map(|m| IsrMember {
                                    broker_id: m.broker_id.0,
                                    broker_epoch: m.broker_epoch,
                                })
                                .collect()
                        } else {
                            p.new_isr
                                .iter()
                                .map(|b| IsrMember {
                                    broker_id: b.0,
                                    broker_epoch: -1,
                                })
                                .collect()
                        },
                        leader_recovery_state: if p.leader_recovery_state == 1 {
                            LeaderRecoveryState::Recovering
                        } else {
                            LeaderRecoveryState::Recovered
                        },
                    })
                    .collect(),
            })
            .collect(),
    };
    let defaults = broker.election_defaults();
    let written = broker
        .write_metadata(|image| alter_partition(image, &defaults, &change))
        .await;
    let results = match written {
        Ok(results) => results,
        Err(e) => {
            let (code, _) = e.into_error(|e| (controller_error_code(&e), String::new()));
            return AlterPartitionResponse::default().with_error_code(code.code());
        }
    };
    let mut topics: Vec<TopicData> = Vec::new();
    for result in results {
        let data = match &result.result {
            Ok(state) => PartitionData::default()
                .with_partition_index(result.partition)
                .with_leader_id(BrokerId(state.leader))
                .with_leader_epoch(state.leader_epoch)
                .with_isr(state.isr.iter().copied().map(BrokerId).collect())
                .with_partition_epoch(state.partition_epoch)
                .with_leader_recovery_state(
                    if state.leader_recovery_state == LeaderRecoveryState::Recovering {
                        1
                    } else {
                        0
                    },
                ),
            Err(e) => PartitionData::default()
                .with_partition_index(result.partition)
                .with_error_code(controller_error_code(e).code()),
        };
        match topics.last_mut() {
            Some(topic) if topic.topic_id == result.topic_id => topic.partitions.push(data),
            _ => topics.push(
                TopicData::default()
                    .with_topic_id(result.topic_id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    AlterPartitionResponse::default().with_topics(topics)
}
