//! DescribeQuorum (key 55): the metadata quorum as its leader sees it, answered as Kafka's
//! KafkaRaftClient does: one partition, `__cluster_metadata-0`; the leader id, the leader
//! epoch (the Raft term), the high watermark, and each voter's log end offset with the
//! times it last fetched and was last caught up (and the same of each observer, a
//! broker-only node). Only the leader answers; other nodes say NOT_LEADER_OR_FOLLOWER.
//! Served on CONTROLLER listeners; brokers forward it to the active controller, as
//! Kafka's do (a one-voter node answers itself).
//!
//! Offsets: a Raft index is the metadata log's offset, so an end offset (Kafka's are
//! exclusive: the next offset to be written) is the last index + 1.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};
use strom_raft::QuorumStatus;
use strom_types::ErrorCode;

use super::{Handler, Operation, RequestContext};
use crate::broker::Broker;

/// The metadata log's topic and partition, as Kafka names them.
pub const METADATA_TOPIC: &str = "__cluster_metadata";
pub const METADATA_PARTITION: i32 = 0;

pub struct DescribeQuorumHandler;

impl Handler for DescribeQuorumHandler {
    type Request = DescribeQuorumRequest;
    const KEY: ApiKey = ApiKey::DescribeQuorum;
    const VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };

    async fn handle(
        broker: Arc<Broker>,
        ctx: RequestContext,
        request: DescribeQuorumRequest,
    ) -> DescribeQuorumResponse {
        if !ctx.authz(&broker).allows_cluster(Operation::Describe) {
            return DescribeQuorumResponse::default()
                .with_error_code(strom_types::ErrorCode::ClusterAuthorizationFailed.code());
        }
        if !names_metadata_partition(&request) {
            return partition_errors(&request, ErrorCode::UnknownTopicOrPartition);
        }
        let status = match broker.metadata_quorum() {
            Some(quorum) if quorum.is_leader() => quorum.status(),
            _ => return not_leader(),
        };
        let nodes = voter_listeners(&broker, &status);
        describe(ctx.api_version, &status, wall_clock_ms(), nodes)
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Kafka's check: exactly one topic, the metadata topic, with exactly partition 0.
fn names_metadata_partition(request: &DescribeQuorumRequest) -> bool {
    match request.topics.as_slice() {
        [topic] => {
            topic.topic_name.as_str() == METADATA_TOPIC
                && matches!(topic.partitions.as_slice(), [p] if p.partition_index == METADATA_PARTITION)
        }
        _ => false,
    }
}

/// The error with Kafka's message for it (Errors.message(), which the codec's Display is).
fn partition_error(partition: i32, code: ErrorCode) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(code.to_string())))
}

/// Every requested partition with the error (Kafka's getPartitionLevelErrorResponse).
fn partition_errors(request: &DescribeQuorumRequest, code: ErrorCode) -> DescribeQuorumResponse {
    let topics = request
        .topics
        .iter()
        .map(|t| {
            TopicData::default()
                .with_topic_name(t.topic_name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| partition_error(p.partition_index, code))
                        .collect(),
                )
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}

fn metadata_topic(partition: PartitionData) -> TopicData {
    TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition])
}

fn not_leader() -> DescribeQuorumResponse {
    DescribeQuorumResponse::default().with_topics(vec![metadata_topic(partition_error(
        METADATA_PARTITION,
        ErrorCode::NotLeaderOrFollower,
    ))])
}

fn node_id(id: u64) -> BrokerId {
    BrokerId(i32::try_from(id).unwrap_or(-1))
}

/// Where each voter's controller is reached (v2's `nodes`), as Kafka's static voter set
/// has them: the first of `controller.listener.names` at the address in
/// `controller.quorum.voters`. A node with no voters configured is a quorum of one with
/// no CONTROLLER listener; its controller answers on its broker listeners, so those (from
/// its registration in the image) are listed.
fn voter_listeners(broker: &Broker, status: &QuorumStatus) -> Vec<Node> {
    let cluster = &broker.config.cluster;
    if !cluster.voters.is_empty() {
        let name = cluster
            .controller_listener_names
            .first()
            .cloned()
            .unwrap_or_else(|| "CONTROLLER".to_owned());
        return cluster
            .voters
            .iter()
            .map(|v| {
                Node::default()
                    .with_node_id(BrokerId(v.id))
                    .with_listeners(vec![Listener::default()
                        .with_name(StrBytes::from_string(name.clone()))
                        .with_host(StrBytes::from_string(v.host.clone()))
                        .with_port(v.port)])
            })
            .collect();
    }
    let image = broker.image();
    status
        .voters
        .iter()
        .map(|voter| {
            let id = node_id(voter.node_id);
            let listeners = image
                .broker(id.0)
                .map(|b| {
                    b.endpoints
                        .iter()
                        .map(|e| {
                            Listener::default()
                                .with_name(StrBytes::from_string(e.listener.clone()))
                                .with_host(StrBytes::from_string(e.host.clone()))
                                .with_port(e.port)
                        })
                        .collect()
                })
                .unwrap_or_default();
            Node::default().with_node_id(id).with_listeners(listeners)
        })
        .collect()
}

/// The leader's answer (Kafka's RaftUtil.singletonDescribeQuorumResponse): `now_ms` is the
/// leader's wall clock; the leader reports itself as fetching and caught up now, other
/// voters at the times they last did, or -1 when unknown.
pub fn describe(
    version: i16,
    status: &QuorumStatus,
    now_ms: i64,
    nodes: Vec<Node>,
) -> DescribeQuorumResponse {
    let leader = status.leader.map_or(-1, |l| node_id(l).0);
    let at = |ms_ago: Option<u64>| {
        ms_ago.map_or(-1, |ago| {
            now_ms.saturating_sub(i64::try_from(ago).unwrap_or(i64::MAX))
        })
    };
    let replica_state = |v: &strom_raft::VoterStatus| {
        let id = node_id(v.node_id);
        let (fetched, caught_up) = if id.0 == leader {
            (now_ms, now_ms)
        } else {
            (at(v.last_contact_ms_ago), at(v.last_caught_up_ms_ago))
        };
        ReplicaState::default()
            .with_replica_id(id)
            .with_log_end_offset(v.matched_offset.map_or(-1, end_offset))
            .with_last_fetch_timestamp(fetched)
            .with_last_caught_up_timestamp(caught_up)
    };
    let voters = status.voters.iter().map(replica_state).collect();
    // Broker-only nodes follow the log as observers, as Kafka's do.
    let observers = status.observers.iter().map(replica_state).collect();
    let partition = PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_error_code(0)
        .with_leader_id(BrokerId(leader))
        .with_leader_epoch(i32::try_from(status.term).unwrap_or(i32::MAX))
        // Everything applied is committed; on the leader applying follows the commit at once.
        .with_high_watermark(status.applied_offset.map_or(-1, end_offset))
        .with_current_voters(voters)
        .with_observers(observers);
    DescribeQuorumResponse::default()
        .with_topics(vec![metadata_topic(partition)])
        .with_nodes(if version >= 2 { nodes } else { Vec::new() })
}

/// The exclusive end after the last offset.
fn end_offset(last: u64) -> i64 {
    i64::try_from(last).map_or(i64::MAX, |l| l.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_quorum_request;
    use kafka_protocol::protocol::{Decodable, Encodable};
    use strom_raft::VoterStatus;

    fn status() -> QuorumStatus {
        QuorumStatus {
            node_id: 2,
            leader: Some(2),
            term: 7,
            applied_offset: Some(41),
            last_offset: Some(42),
            snapshot_offset: None,
            voters: vec![
                VoterStatus {
                    node_id: 1,
                    matched_offset: Some(40),
                    last_contact_ms_ago: Some(30),
                    last_caught_up_ms_ago: Some(500),
                },
                VoterStatus {
                    node_id: 2,
                    matched_offset: Some(42),
                    last_contact_ms_ago: Some(0),
                    last_caught_up_ms_ago: Some(0),
                },
                VoterStatus {
                    node_id: 3,
                    matched_offset: None,
                    last_contact_ms_ago: None,
                    last_caught_up_ms_ago: None,
                },
            ],
            observers: vec![VoterStatus {
                node_id: 4,
                matched_offset: Some(41),
                last_contact_ms_ago: Some(10),
                last_caught_up_ms_ago: Some(10),
            }],
        }
    }

    fn request(topic: &str, partitions: &[i32]) -> DescribeQuorumRequest {
        DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| {
                            describe_quorum_request::PartitionData::default()
                                .with_partition_index(*p)
                        })
                        .collect(),
                ),
        ])
    }

    fn node(id: i32, port: u16) -> Node {
        Node::default()
            .with_node_id(BrokerId(id))
            .with_listeners(vec![Listener::default()
                .with_name(StrBytes::from_static_str("CONTROLLER"))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(port)])
    }

    #[test]
    fn the_leader_reports_term_high_watermark_and_each_voters_progress() {
        let now = 1_700_000_000_000;
        let response = describe(2, &status(), now, vec![node(1, 9001), node(2, 9002)]);
        assert_eq!(response.error_code, 0);
        assert_eq!(response.topics.len(), 1);
        let topic = &response.topics[0];
        assert_eq!(topic.topic_name.as_str(), "__cluster_metadata");
        let p = &topic.partitions[0];
        assert_eq!(
            (
                p.partition_index,
                p.error_code,
                p.leader_id.0,
                p.leader_epoch,
                p.high_watermark
            ),
            (0, 0, 2, 7, 42)
        );
        let voters: Vec<(i32, i64, i64, i64)> = p
            .current_voters
            .iter()
            .map(|v| {
                (
                    v.replica_id.0,
                    v.log_end_offset,
                    v.last_fetch_timestamp,
                    v.last_caught_up_timestamp,
                )
            })
            .collect();
        assert_eq!(
            voters,
            vec![
                (1, 41, now - 30, now - 500),
                (2, 43, now, now),
                (3, -1, -1, -1),
            ]
        );
        let observers: Vec<_> = p
            .observers
            .iter()
            .map(|o| {
                (
                    o.replica_id.0,
                    o.log_end_offset,
                    o.last_fetch_timestamp,
                    o.last_caught_up_timestamp,
                )
            })
            .collect();
        assert_eq!(observers, vec![(4, 42, now - 10, now - 10)]);
        assert_eq!(response.nodes, vec![node(1, 9001), node(2, 9002)]);
    }

    #[test]
    fn versions_before_2_carry_no_nodes_and_every_version_encodes() {
        for version in 0..=2 {
            let response = describe(version, &status(), 5, vec![node(2, 9002)]);
            assert_eq!(response.nodes.len(), usize::from(version >= 2));
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).unwrap();
            let decoded = DescribeQuorumResponse::decode(&mut buf.freeze(), version).unwrap();
            let p = &decoded.topics[0].partitions[0];
            assert_eq!((p.leader_id.0, p.high_watermark), (2, 42));
            // v0 has no timestamps: they decode as their default, -1.
            let expected_fetch = if version == 0 { -1 } else { 5 - 30 };
            assert_eq!(p.current_voters[0].last_fetch_timestamp, expected_fetch);
        }
    }

    #[test]
    fn only_the_metadata_partition_is_described() {
        assert!(names_metadata_partition(&request(
            "__cluster_metadata",
            &[0]
        )));
        for (topic, partitions) in [
            ("__cluster_metadata", &[1][..]),
            ("__cluster_metadata", &[0, 0][..]),
            ("other", &[0][..]),
            ("__cluster_metadata", &[][..]),
        ] {
            let asked = request(topic, partitions);
            assert!(!names_metadata_partition(&asked), "{topic} {partitions:?}");
            let response = partition_errors(&asked, ErrorCode::UnknownTopicOrPartition);
            let answered: Vec<(i32, i16)> = response.topics[0]
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
                .collect();
            let expected: Vec<(i32, i16)> = partitions.iter().map(|p| (*p, 3)).collect();
            assert_eq!(answered, expected);
        }
        assert!(!names_metadata_partition(&DescribeQuorumRequest::default()));
    }

    #[test]
    fn a_follower_answers_not_leader_or_follower() {
        let response = not_leader();
        assert_eq!(response.error_code, 0);
        let p = &response.topics[0].partitions[0];
        assert_eq!(response.topics[0].topic_name.as_str(), "__cluster_metadata");
        assert_eq!((p.partition_index, p.error_code), (0, 6));
    }
}
