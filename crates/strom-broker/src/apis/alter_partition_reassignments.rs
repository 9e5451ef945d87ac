//! AlterPartitionReassignments (key 45): moves partitions to new replicas or cancels
//! moves (KIP-455), decided by `strom_metadata::reassignment` (Kafka's
//! ReplicationControlManager) and committed through the metadata quorum as one entry.
//! A move completes once the ISR holds every target replica: at once when the targets
//! are already in sync, otherwise on the AlterPartition that adds the last of them.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::reassignment::{
    alter_partition_reassignments, ReassignPartition, ReassignmentResults,
};
use strom_types::ErrorCode;
use tracing::info;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::controller_error_code;

pub struct AlterPartitionReassignmentsHandler;

impl Handler for AlterPartitionReassignmentsHandler {
    type Request = AlterPartitionReassignmentsRequest;
    const KEY: ApiKey = ApiKey::AlterPartitionReassignments;
    // v1 (KIP-860, allow_replication_factor_change) is not served yet.
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: AlterPartitionReassignmentsRequest,
    ) -> AlterPartitionReassignmentsResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::Alter) {
            return AlterPartitionReassignmentsResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        if request.topics.is_empty() {
            return AlterPartitionReassignmentsResponse::default();
        }
        let targets: Vec<(String, Vec<ReassignPartition>)> = request
            .topics
            .iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| ReassignPartition {
                        partition: p.partition_index,
                        replicas: p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                    })
                    .collect();
                (t.name.to_string(), partitions)
            })
            .collect();
        let defaults = broker.election_defaults();
        let written = broker
            .write_metadata(|image| {
                Ok::<_, std::convert::Infallible>(alter_partition_reassignments(
                    image, &defaults, &targets,
                ))
            })
            .await;
        match written {
            Ok(results) => {
                let accepted = accepted(&results);
                if accepted > 0 {
                    info!(accepted, "altered partition reassignments");
                }
                AlterPartitionReassignmentsResponse::default()
                    .with_responses(topic_responses(results))
            }
            Err(e) => {
                let (code, message) = e.into_error(|never| match never {});
                error_response(&request, code, message)
            }
        }
    }
}

fn accepted(results: &ReassignmentResults) -> usize {
    results
        .iter()
        .flat_map(|(_, partitions)| partitions)
        .filter(|(_, result)| result.is_ok())
        .count()
}

fn topic_responses(results: ReassignmentResults) -> Vec<ReassignableTopicResponse> {
    results
        .into_iter()
        .map(|(name, partitions)| {
            ReassignableTopicResponse::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(partition, result)| {
                            let (code, message) = match result {
                                Ok(()) => (0, None),
                                Err(e) => (
                                    controller_error_code(&e).code(),
                                    Some(StrBytes::from_string(e.to_string())),
                                ),
                            };
                            ReassignablePartitionResponse::default()
                                .with_partition_index(partition)
                                .with_error_code(code)
                                .with_error_message(message)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// The whole request failed: as Kafka's getErrorResponse, the error at the top and
/// on every partition.
fn error_response(
    request: &AlterPartitionReassignmentsRequest,
    code: ErrorCode,
    message: String,
) -> AlterPartitionReassignmentsResponse {
    let message = StrBytes::from_string(message);
    let responses = request
        .topics
        .iter()
        .map(|t| {
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code.code())
                                .with_error_message(Some(message.clone()))
                        })
                        .collect(),
                )
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(message))
        .with_responses(responses)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use strom_metadata::ControllerError;

    #[test]
    fn partition_results_carry_kafka_codes_and_messages_only_for_errors() {
        let responses = topic_responses(vec![(
            "t".to_string(),
            vec![
                (0, Ok(())),
                (
                    1,
                    Err(ControllerError::NoReassignmentInProgress(
                        "No partition reassignment is in progress.".into(),
                    )),
                ),
            ],
        )]);
        let got: Vec<(i32, i16, Option<&str>)> = responses[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code, p.error_message.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, None),
                (1, 85, Some("No partition reassignment is in progress.")),
            ]
        );
    }

    #[test]
    fn a_failed_request_answers_every_partition_with_the_error() {
        let request = AlterPartitionReassignmentsRequest::default().with_topics(vec![
            ReassignableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![
                    ReassignablePartition::default().with_partition_index(3),
                    ReassignablePartition::default().with_partition_index(4),
                ]),
        ]);
        let response = error_response(&request, ErrorCode::NotController, "elsewhere".into());
        assert_eq!(
            (response.error_code, response.error_message.as_deref()),
            (41, Some("elsewhere"))
        );
        let got: Vec<(i32, i16)> = response.responses[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code))
            .collect();
        assert_eq!(got, vec![(3, 41), (4, 41)]);
    }
}
