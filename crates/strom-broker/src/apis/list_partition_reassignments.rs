//! ListPartitionReassignments (key 46): the partitions being moved, with their replicas
//! and the ones being added and removed. Read on the active controller after it caught
//! up (Kafka answers it from the controller's committed state), so it sees every
//! change committed before.

use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_metadata::reassignment::{list_partition_reassignments, OngoingReassignment};

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

pub struct ListPartitionReassignmentsHandler;

impl Handler for ListPartitionReassignmentsHandler {
    type Request = ListPartitionReassignmentsRequest;
    const KEY: ApiKey = ApiKey::ListPartitionReassignments;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: ListPartitionReassignmentsRequest,
    ) -> ListPartitionReassignmentsResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::Describe) {
            return ListPartitionReassignmentsResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        let requested: Option<Vec<(String, Vec<i32>)>> = request.topics.as_ref().map(|t| {
            t.iter()
                .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                .collect()
        });
        if requested.as_ref().is_some_and(Vec::is_empty) {
            return ListPartitionReassignmentsResponse::default();
        }
        // A read through the controller: no records, but the same catch-up and the same
        // NOT_CONTROLLER on a node that is not the active controller.
        let listed = broker
            .write_metadata(|image| {
                Ok::<_, std::convert::Infallible>((
                    Vec::new(),
                    list_partition_reassignments(image, requested.as_deref()),
                ))
            })
            .await;
        match listed {
            Ok(topics) => ListPartitionReassignmentsResponse::default()
                .with_topics(topics.into_iter().map(ongoing_topic).collect()),
            Err(e) => {
                let (code, message) = e.into_error(|never| match never {});
                error_response(&request, code.code(), message)
            }
        }
    }
}

fn ongoing_topic(
    (name, partitions): (String, Vec<OngoingReassignment>),
) -> OngoingTopicReassignment {
    let ids = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect();
    OngoingTopicReassignment::default()
        .with_name(TopicName(StrBytes::from_string(name)))
        .with_partitions(
            partitions
                .into_iter()
                .map(|p| {
                    OngoingPartitionReassignment::default()
                        .with_partition_index(p.partition)
                        .with_replicas(ids(p.replicas))
                        .with_adding_replicas(ids(p.adding_replicas))
                        .with_removing_replicas(ids(p.removing_replicas))
                })
                .collect(),
        )
}

/// As Kafka's getErrorResponse: the error at the top, and the requested partitions
/// named with nothing in them.
fn error_response(
    request: &ListPartitionReassignmentsRequest,
    code: i16,
    message: String,
) -> ListPartitionReassignmentsResponse {
    let topics = request
        .topics
        .iter()
        .flatten()
        .map(|t| {
            OngoingTopicReassignment::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|&p| OngoingPartitionReassignment::default().with_partition_index(p))
                        .collect(),
                )
        })
        .collect();
    ListPartitionReassignmentsResponse::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ongoing_move_lists_its_replica_sets() {
        let topic = ongoing_topic((
            "t".to_string(),
            vec![OngoingReassignment {
                partition: 2,
                replicas: vec![4, 2, 1],
                adding_replicas: vec![4],
                removing_replicas: vec![1],
            }],
        ));
        assert_eq!(topic.name.as_str(), "t");
        let p = &topic.partitions[0];
        assert_eq!(
            (
                p.partition_index,
                p.replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
                p.adding_replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
                p.removing_replicas.iter().map(|b| b.0).collect::<Vec<_>>(),
            ),
            (2, vec![4, 2, 1], vec![4], vec![1])
        );
    }
}
