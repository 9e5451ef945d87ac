//! ElectLeaders (key 43): preferred or unclean leader elections, decided by
//! `strom_metadata::elect_leaders` (Kafka's ReplicationControlManager.electLeaders) and
//! committed through the metadata quorum. A null topic list means every partition.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::elect_leaders::{elect_leaders, ElectionType, TopicElectionResults};
use strom_types::ErrorCode;
use tracing::info;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;
use crate::errors::controller_error_code;

pub struct ElectLeadersHandler;

impl Handler for ElectLeadersHandler {
    type Request = ElectLeadersRequest;
    const KEY: ApiKey = ApiKey::ElectLeaders;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ElectLeadersRequest,
    ) -> ElectLeadersResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::Alter) {
            return ElectLeadersResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        let requested: Option<Vec<(String, Vec<i32>)>> =
            request.topic_partitions.as_ref().map(|t| {
                t.iter()
                    .map(|t| (t.topic.to_string(), t.partitions.clone()))
                    .collect()
            });
        // An empty list (not null) asks for nothing; null asks for every partition.
        if requested.as_ref().is_some_and(Vec::is_empty) {
            return ElectLeadersResponse::default();
        }
        // v0 has no election type: it is preferred.
        let election = match ElectionType::from_code(request.election_type) {
            Ok(election) => election,
            Err(e) => {
                return error_response(&request, controller_error_code(&e), e.to_string());
            }
        };
        let defaults = broker.election_defaults();
        let written = broker
            .write_metadata(|image| {
                let (records, results) =
                    elect_leaders(image, &defaults, election, requested.as_deref());
                Ok::<_, std::convert::Infallible>((records, results))
            })
            .await;
        match written {
            Ok(results) => {
                let elected = count_elected(&results);
                if elected > 0 {
                    info!(elected, ?election, "elected leaders");
                }
                ElectLeadersResponse::default()
                    .with_replica_election_results(results.into_iter().map(topic_result).collect())
            }
            Err(e) => {
                let (code, message) = e.into_error(|never| match never {});
                error_response(&request, code, message)
            }
        }
    }
}

fn count_elected(results: &[TopicElectionResults]) -> usize {
    results
        .iter()
        .flat_map(|(_, partitions)| partitions)
        .filter(|(_, result)| result.is_ok())
        .count()
}

fn topic_result((topic, partitions): TopicElectionResults) -> ReplicaElectionResult {
    ReplicaElectionResult::default()
        .with_topic(TopicName(StrBytes::from_string(topic)))
        .with_partition_result(
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
                    PartitionResult::default()
                        .with_partition_id(partition)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect(),
        )
}

/// The whole request failed: as Kafka's ElectLeadersRequest.getErrorResponse, the
/// error at the top (v1+) and on every requested partition.
fn error_response(
    request: &ElectLeadersRequest,
    code: ErrorCode,
    message: String,
) -> ElectLeadersResponse {
    let results = request
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|&p| {
                            PartitionResult::default()
                                .with_partition_id(p)
                                .with_error_code(code.code())
                                .with_error_message(Some(StrBytes::from_string(message.clone())))
                        })
                        .collect(),
                )
        })
        .collect();
    ElectLeadersResponse::default()
        .with_error_code(code.code())
        .with_replica_election_results(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use strom_metadata::ControllerError;

    #[test]
    fn results_carry_kafka_codes_and_messages_only_for_errors() {
        let result = topic_result((
            "t".to_string(),
            vec![
                (0, Ok(())),
                (
                    1,
                    Err(ControllerError::ElectionNotNeeded(
                        "Leader election not needed for topic partition.".into(),
                    )),
                ),
            ],
        ));
        assert_eq!(result.topic.as_str(), "t");
        let codes: Vec<(i32, i16, Option<&str>)> = result
            .partition_result
            .iter()
            .map(|p| (p.partition_id, p.error_code, p.error_message.as_deref()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (0, 0, None),
                (
                    1,
                    84,
                    Some("Leader election not needed for topic partition.")
                ),
            ]
        );
    }

    #[test]
    fn a_failed_request_names_every_requested_partition() {
        let request = ElectLeadersRequest::default().with_topic_partitions(Some(vec![
            TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_static_str("a")))
                .with_partitions(vec![0, 2]),
        ]));
        let response = error_response(&request, ErrorCode::NotController, "moved".into());
        assert_eq!(response.error_code, 41);
        let partitions: Vec<(i32, i16)> = response.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| (p.partition_id, p.error_code))
            .collect();
        assert_eq!(partitions, vec![(0, 41), (2, 41)]);
        // Every partition was asked for: there is none to name.
        let all = error_response(
            &ElectLeadersRequest::default(),
            ErrorCode::NotController,
            "moved".into(),
        );
        assert!(all.replica_election_results.is_empty());
    }
}
