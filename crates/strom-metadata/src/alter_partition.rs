//! AlterPartition (v2+, topic ids): a partition leader asks to change its ISR or its
//! leader recovery state. Validated as Kafka's ReplicationControlManager does, then
//! carried out through the [`PartitionChangeBuilder`], which also completes a
//! reassignment once the ISR holds the target replicas.

use strom_types::{NodeId, TopicId};

use crate::cluster_control::check_broker_epoch;
use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage};
use crate::partition_change::{ClusterElectionDefaults, PartitionChangeBuilder};
use crate::records::{LeaderRecoveryState, MetadataRecord};

/// An ISR member and the broker epoch the leader saw it fetch with (-1: not checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsrMember {
    pub broker_id: NodeId,
    pub broker_epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionData {
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub new_isr: Vec<IsrMember>,
    pub leader_recovery_state: LeaderRecoveryState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionTopic {
    pub topic_id: TopicId,
    pub partitions: Vec<AlterPartitionData>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionRequest {
    pub broker_id: NodeId,
    pub broker_epoch: i64,
    pub topics: Vec<AlterPartitionTopic>,
}

/// The partition state AlterPartition answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: NodeId,
    pub isr: Vec<NodeId>,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub leader_recovery_state: LeaderRecoveryState,
}

impl PartitionState {
    fn of(p: &PartitionImage) -> Self {
        Self {
            leader: p.leader,
            isr: p.isr.clone(),
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            leader_recovery_state: p.leader_recovery_state,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionResult {
    pub topic_id: TopicId,
    pub partition: i32,
    pub result: Result<PartitionState, ControllerError>,
}

/// Handles one AlterPartition request. A stale broker epoch fails the whole request;
/// everything else is per partition. `NewLeaderElected` comes with records: the
/// change was made, and it moved leadership away from the requester.
pub fn alter_partition(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    request: &AlterPartitionRequest,
) -> Result<(Vec<MetadataRecord>, Vec<AlterPartitionResult>), ControllerError> {
    check_broker_epoch(image, request.broker_id, request.broker_epoch)?;
    let mut records = Vec::new();
    let mut results = Vec::new();
    let acceptable = |id: NodeId| image.is_broker_active(id);
    for topic_data in &request.topics {
        let Some(topic) = image.topic_by_id(&topic_data.topic_id) else {
            for data in &topic_data.partitions {
                results.push(AlterPartitionResult {
                    topic_id: topic_data.topic_id,
                    partition: data.partition,
                    result: Err(ControllerError::UnknownTopicId(
                        "This server does not host this topic ID.".into(),
                    )),
                });
            }
            continue;
        };
        let policy = defaults.for_topic(image, topic);
        for data in &topic_data.partitions {
            let partition = topic.partitions.get(&data.partition);
            let result = validate(image, request.broker_id, partition, data).and_then(|p| {
                let change = PartitionChangeBuilder::new(p, topic.id, &acceptable, policy)
                    .target_isr(data.new_isr.iter().map(|m| m.broker_id).collect())
                    .target_leader_recovery_state(data.leader_recovery_state)
                    .build();
                let Some(change) = change else {
                    return Ok(PartitionState::of(p));
                };
                let after = p.merged(&change);
                let moved = matches!(&change, MetadataRecord::PartitionChange { leader: Some(l), .. } if *l != request.broker_id);
                records.push(change);
                if moved {
                    return Err(ControllerError::NewLeaderElected(format!(
                        "The AlterPartition request completed the reassignment of {}-{} and elected leader {}.",
                        topic.name, data.partition, after.leader
                    )));
                }
                Ok(PartitionState::of(&after))
            });
            results.push(AlterPartitionResult {
                topic_id: topic.id,
                partition: data.partition,
                result,
            });
        }
    }
    Ok((records, results))
}

fn validate<'a>(
    image: &MetadataImage,
    broker_id: NodeId,
    partition: Option<&'a PartitionImage>,
    data: &AlterPartitionData,
) -> Result<&'a PartitionImage, ControllerError> {
    let p = partition.ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(
            "This server does not host this topic-partition.".into(),
        )
    })?;
    // Epochs newer than ours: another node is probably the active controller.
    if data.leader_epoch > p.leader_epoch || data.partition_epoch > p.partition_epoch {
        return Err(ControllerError::NotController(format!(
            "The request's epochs ({}, {}) are newer than this controller's ({}, {}).",
            data.leader_epoch, data.partition_epoch, p.leader_epoch, p.partition_epoch
        )));
    }
    if data.leader_epoch < p.leader_epoch {
        return Err(ControllerError::FencedLeaderEpoch(format!(
            "The leader epoch is {}, not {}.",
            p.leader_epoch, data.leader_epoch
        )));
    }
    if broker_id != p.leader {
        return Err(ControllerError::InvalidRequest(format!(
            "Broker {broker_id} is not the leader of the partition; {} is.",
            p.leader
        )));
    }
    if data.partition_epoch < p.partition_epoch {
        return Err(ControllerError::InvalidUpdateVersion(format!(
            "The partition epoch is {}, not {}.",
            p.partition_epoch, data.partition_epoch
        )));
    }
    let new_isr: Vec<NodeId> = data.new_isr.iter().map(|m| m.broker_id).collect();
    let mut distinct = new_isr.clone();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() != new_isr.len() || new_isr.iter().any(|r| !p.replicas.contains(r)) {
        return Err(ControllerError::InvalidRequest(format!(
            "Invalid ISR {new_isr:?} for replicas {:?}.",
            p.replicas
        )));
    }
    if !new_isr.contains(&p.leader) {
        return Err(ControllerError::InvalidRequest(format!(
            "The ISR {new_isr:?} does not include the leader {}.",
            p.leader
        )));
    }
    if data.leader_recovery_state == LeaderRecoveryState::Recovering && new_isr.len() > 1 {
        return Err(ControllerError::InvalidRequest(
            "A leader still recovering from an unclean election cannot grow the ISR.".into(),
        ));
    }
    if p.leader_recovery_state == LeaderRecoveryState::Recovered
        && data.leader_recovery_state == LeaderRecoveryState::Recovering
    {
        return Err(ControllerError::InvalidRequest(
            "The leader recovery state cannot change from RECOVERED to RECOVERING.".into(),
        ));
    }
    let ineligible: Vec<String> = data
        .new_isr
        .iter()
        .filter_map(|m| {
            let reason = match image.broker(m.broker_id) {
                None => "not registered".to_string(),
                Some(b) if b.in_controlled_shutdown => "shutting down".to_string(),
                Some(b) if b.fenced => "fenced".to_string(),
                Some(b) if m.broker_epoch != -1 && m.broker_epoch != b.epoch => format!(
                    "broker epoch mismatch: requested={} VS expected={}",
                    m.broker_epoch, b.epoch
                ),
                Some(_) => return None,
            };
            Some(format!("{} ({reason})", m.broker_id))
        })
        .collect();
    if !ineligible.is_empty() {
        return Err(ControllerError::IneligibleReplica(format!(
            "Ineligible replicas in the new ISR: {}",
            ineligible.join(", ")
        )));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_control::tests::{
        broker, change, cluster, partition_record, pc, with, Pc, T,
    };
    use std::mem::discriminant;

    fn member(id: NodeId) -> IsrMember {
        IsrMember {
            broker_id: id,
            broker_epoch: id as i64 * 10,
        }
    }

    fn request(broker: NodeId, data: AlterPartitionData) -> AlterPartitionRequest {
        AlterPartitionRequest {
            broker_id: broker,
            broker_epoch: broker as i64 * 10,
            topics: vec![AlterPartitionTopic {
                topic_id: T,
                partitions: vec![data],
            }],
        }
    }

    fn data(isr: &[NodeId]) -> AlterPartitionData {
        AlterPartitionData {
            partition: 0,
            leader_epoch: 5,
            partition_epoch: 9,
            new_isr: isr.iter().map(|id| member(*id)).collect(),
            leader_recovery_state: LeaderRecoveryState::Recovered,
        }
    }

    fn run(
        image: &MetadataImage,
        request: &AlterPartitionRequest,
    ) -> (Vec<MetadataRecord>, Result<PartitionState, ControllerError>) {
        let (records, mut results) =
            alter_partition(image, &ClusterElectionDefaults::default(), request).unwrap();
        assert_eq!(results.len(), 1);
        (records, results.remove(0).result)
    }

    fn error_kind(result: Result<PartitionState, ControllerError>) -> ControllerError {
        result.unwrap_err()
    }

    #[test]
    fn the_leader_shrinks_and_expands_the_isr() {
        let image = cluster(vec![partition_record(0, &[1, 2, 3], &[1, 2, 3], 1)]);
        let (records, result) = run(&image, &request(1, data(&[1, 2])));
        assert_eq!(
            records,
            vec![with(change(0), |_, isr, _, _| *isr = Some(vec![1, 2]))]
        );
        assert_eq!(
            result,
            Ok(PartitionState {
                leader: 1,
                isr: vec![1, 2],
                leader_epoch: 5,
                partition_epoch: 10,
                leader_recovery_state: LeaderRecoveryState::Recovered,
            })
        );
        let image = image.apply(&records);
        let mut grow = data(&[1, 2, 3]);
        grow.partition_epoch = 10;
        let (records, result) = run(&image, &request(1, grow));
        assert_eq!(
            records,
            vec![with(change(0), |_, isr, _, _| *isr = Some(vec![1, 2, 3]))]
        );
        assert_eq!(result.unwrap().partition_epoch, 11);
        // The same ISR again: nothing to write, the current state is the answer.
        let (records, result) = run(
            &image,
            &request(1, {
                let mut same = data(&[1, 2]);
                same.partition_epoch = 10;
                same
            }),
        );
        assert!(records.is_empty());
        assert_eq!(result.unwrap().isr, vec![1, 2]);
    }

    #[test]
    fn requests_kafka_refuses_are_refused_with_its_codes() {
        let image = cluster(vec![partition_record(0, &[1, 2, 3], &[1, 2], 1)]);
        let image = image.apply(&[broker(3, 30, true)]);
        let stale = AlterPartitionRequest {
            broker_epoch: 11,
            ..request(1, data(&[1]))
        };
        assert!(matches!(
            alter_partition(&image, &ClusterElectionDefaults::default(), &stale),
            Err(ControllerError::StaleBrokerEpoch(_))
        ));
        let cases: Vec<(AlterPartitionRequest, ControllerError)> = vec![
            (
                AlterPartitionRequest {
                    topics: vec![AlterPartitionTopic {
                        topic_id: TopicId::from_u128(1),
                        partitions: vec![data(&[1])],
                    }],
                    ..request(1, data(&[1]))
                },
                ControllerError::UnknownTopicId(String::new()),
            ),
            (
                request(
                    1,
                    AlterPartitionData {
                        partition: 3,
                        ..data(&[1])
                    },
                ),
                ControllerError::UnknownTopicOrPartition(String::new()),
            ),
            (
                request(
                    1,
                    AlterPartitionData {
                        leader_epoch: 6,
                        ..data(&[1])
                    },
                ),
                ControllerError::NotController(String::new()),
            ),
            (
                request(
                    1,
                    AlterPartitionData {
                        leader_epoch: 4,
                        ..data(&[1])
                    },
                ),
                ControllerError::FencedLeaderEpoch(String::new()),
            ),
            (
                request(2, data(&[1, 2])),
                ControllerError::InvalidRequest(String::new()),
            ),
            (
                request(
                    1,
                    AlterPartitionData {
                        partition_epoch: 8,
                        ..data(&[1])
                    },
                ),
                ControllerError::InvalidUpdateVersion(String::new()),
            ),
            (
                request(1, data(&[2])),
                ControllerError::InvalidRequest(String::new()),
            ),
            (
                request(1, data(&[1, 4])),
                ControllerError::InvalidRequest(String::new()),
            ),
            (
                request(1, data(&[1, 1])),
                ControllerError::InvalidRequest(String::new()),
            ),
            (
                request(
                    1,
                    AlterPartitionData {
                        leader_recovery_state: LeaderRecoveryState::Recovering,
                        ..data(&[1])
                    },
                ),
                ControllerError::InvalidRequest(String::new()),
            ),
            // 3 is fenced.
            (
                request(1, data(&[1, 2, 3])),
                ControllerError::IneligibleReplica(String::new()),
            ),
            // 2 fetched with an older incarnation's epoch.
            (
                request(
                    1,
                    AlterPartitionData {
                        new_isr: vec![
                            member(1),
                            IsrMember {
                                broker_id: 2,
                                broker_epoch: 19,
                            },
                        ],
                        ..data(&[])
                    },
                ),
                ControllerError::IneligibleReplica(String::new()),
            ),
        ];
        for (request, expected) in cases {
            let (records, result) = run(&image, &request);
            assert!(records.is_empty());
            let error = error_kind(result);
            assert_eq!(
                discriminant(&error),
                discriminant(&expected),
                "{request:?} gave {error:?}"
            );
        }
        // -1 skips the broker epoch check.
        let (records, result) = run(
            &image,
            &request(
                1,
                AlterPartitionData {
                    new_isr: vec![
                        member(1),
                        IsrMember {
                            broker_id: 2,
                            broker_epoch: -1,
                        },
                    ],
                    ..data(&[])
                },
            ),
        );
        assert!(records.is_empty());
        assert_eq!(result.unwrap().isr, vec![1, 2]);
    }

    #[test]
    fn a_recovering_leader_reports_recovery_and_shutting_down_brokers_are_ineligible() {
        let image = cluster(vec![partition_record(0, &[1, 2], &[1], 1)]);
        let image = image.apply(&[pc(
            0,
            Pc {
                leader_recovery_state: Some(LeaderRecoveryState::Recovering),
                ..Default::default()
            },
        )]);
        let mut recovered = data(&[1]);
        recovered.partition_epoch = 10;
        let (records, result) = run(&image, &request(1, recovered));
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    leader_recovery_state: Some(LeaderRecoveryState::Recovered),
                    ..Default::default()
                }
            )]
        );
        assert_eq!(
            result.unwrap().leader_recovery_state,
            LeaderRecoveryState::Recovered
        );
        let shutting = image.apply(&[MetadataRecord::BrokerRegistrationChange {
            log_dirs: None,
            broker_id: 2,
            broker_epoch: 20,
            fenced: None,
            in_controlled_shutdown: Some(true),
        }]);
        let mut grow = data(&[1, 2]);
        grow.partition_epoch = 10;
        let (_, result) = run(&shutting, &request(1, grow));
        assert!(
            matches!(result, Err(ControllerError::IneligibleReplica(m)) if m.contains("2 (shutting down)"))
        );
    }

    #[test]
    fn completing_a_reassignment_that_moves_the_leader_answers_new_leader_elected() {
        let image = cluster(vec![partition_record(0, &[1, 2, 3], &[1, 2], 1)]);
        let image = image.apply(&[pc(
            0,
            Pc {
                removing_replicas: Some(vec![1]),
                adding_replicas: Some(vec![3]),
                ..Default::default()
            },
        )]);
        let mut caught_up = data(&[1, 2, 3]);
        caught_up.partition_epoch = 10;
        let (records, result) = run(&image, &request(1, caught_up));
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    leader: Some(2),
                    isr: Some(vec![2, 3]),
                    replicas: Some(vec![2, 3]),
                    removing_replicas: Some(vec![]),
                    adding_replicas: Some(vec![]),
                    ..Default::default()
                }
            )]
        );
        assert!(matches!(result, Err(ControllerError::NewLeaderElected(_))));
    }
}
