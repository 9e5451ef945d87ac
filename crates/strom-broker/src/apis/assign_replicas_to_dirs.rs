//! AssignReplicasToDirs (key 73) on a CONTROLLER listener (KIP-858): a broker tells which
//! of its log dirs holds each of its replicas. Decided by
//! `strom_metadata::dir_assignment` and committed through the quorum, so that a dir the
//! broker later reports offline moves exactly its partitions' leadership.

use std::sync::Arc;

use kafka_protocol::messages::assign_replicas_to_dirs_response::{
    DirectoryData, PartitionData, TopicData,
};
use kafka_protocol::messages::{ApiKey, AssignReplicasToDirsRequest, AssignReplicasToDirsResponse};
use kafka_protocol::protocol::VersionRange;
use strom_metadata::dir_assignment::{
    assign_replicas_to_dirs, AssignReplicasToDirsRequest as Assignments, ReplicaDir,
};

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::controller_error_code;

pub struct AssignReplicasToDirsHandler;

impl Handler for AssignReplicasToDirsHandler {
    type Request = AssignReplicasToDirsRequest;
    const KEY: ApiKey = ApiKey::AssignReplicasToDirs;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AssignReplicasToDirsRequest,
    ) -> AssignReplicasToDirsResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::ClusterAction) {
            return AssignReplicasToDirsResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        let assignments = Assignments {
            broker_id: request.broker_id.0,
            broker_epoch: request.broker_epoch,
            assignments: request
                .directories
                .iter()
                .flat_map(|d| {
                    d.topics.iter().flat_map(move |t| {
                        t.partitions.iter().map(move |p| ReplicaDir {
                            topic_id: t.topic_id,
                            partition: p.partition_index,
                            dir: d.id,
                        })
                    })
                })
                .collect(),
        };
        let defaults = broker.election_defaults();
        let written = broker
            .write_metadata(|image| assign_replicas_to_dirs(image, &defaults, &assignments))
            .await;
        let results = match written {
            Ok(results) => results,
            Err(e) => {
                let (code, _) = e.into_error(|e| (controller_error_code(&e), String::new()));
                return AssignReplicasToDirsResponse::default().with_error_code(code.code());
            }
        };
        // Answered in the request's shape, each partition with its own code.
        let mut results = results.into_iter();
        let directories = request
            .directories
            .iter()
            .map(|d| {
                DirectoryData::default().with_id(d.id).with_topics(
                    d.topics
                        .iter()
                        .map(|t| {
                            TopicData::default()
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            let code = match results.next() {
                                                Some(Err(e)) => controller_error_code(&e).code(),
                                                _ => 0,
                                            };
                                            PartitionData::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )
            })
            .collect();
        AssignReplicasToDirsResponse::default().with_directories(directories)
    }
}
