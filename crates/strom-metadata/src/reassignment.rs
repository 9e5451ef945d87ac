//! Partition reassignment (KIP-455), as Kafka's controller runs it: setting target
//! replicas adds the new ones to the replica list with `adding_replicas` and
//! `removing_replicas` set; the ISR keeps the old replicas until the new ones catch
//! up, and the [`PartitionChangeBuilder`] completes the move once the ISR holds
//! every target (usually on the AlterPartition that adds the last one). Cancelling
//! reverts to the original replicas.

use std::collections::BTreeSet;

use strom_types::NodeId;

use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::partition_change::{ClusterElectionDefaults, Election, PartitionChangeBuilder};
use crate::records::MetadataRecord;

/// One partition of an AlterPartitionReassignments request: `None` cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReassignPartition {
    pub partition: i32,
    pub replicas: Option<Vec<NodeId>>,
}

pub type ReassignmentResults = Vec<(String, Vec<(i32, Result<(), ControllerError>)>)>;

/// AlterPartitionReassignments: per partition, the change or the error.
pub fn alter_partition_reassignments(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    topics: &[(String, Vec<ReassignPartition>)],
) -> (Vec<MetadataRecord>, ReassignmentResults) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    for (name, partitions) in topics {
        let topic_results = partitions
            .iter()
            .map(|target| {
                let result =
                    alter_one(image, defaults, name, target).map(|record| records.extend(record));
                (target.partition, result)
            })
            .collect();
        results.push((name.clone(), topic_results));
    }
    (records, results)
}

fn alter_one(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    name: &str,
    target: &ReassignPartition,
) -> Result<Option<MetadataRecord>, ControllerError> {
    let topic = image.topic(name).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("Unable to find a topic named {name}."))
    })?;
    let partition = topic.partitions.get(&target.partition).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!(
            "Unable to find partition {name}:{}.",
            target.partition
        ))
    })?;
    match &target.replicas {
        None => cancel(image, defaults, topic, partition),
        Some(replicas) => change(image, defaults, topic, partition, replicas),
    }
}

fn cancel(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    topic: &TopicImage,
    p: &PartitionImage,
) -> Result<Option<MetadataRecord>, ControllerError> {
    if !p.is_reassigning() {
        return Err(ControllerError::NoReassignmentInProgress(
            "No partition reassignment is in progress.".into(),
        ));
    }
    let policy = defaults.for_topic(image, topic);
    // Back to the replicas from before: drop the ones being added, keep the ones
    // being removed.
    let replicas: Vec<NodeId> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    let mut isr: Vec<NodeId> = p
        .isr
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    if isr.is_empty() {
        // Only added replicas are in sync: reverting needs an unclean election.
        let first = replicas.first().copied().ok_or_else(|| {
            ControllerError::InvalidReplicaAssignment(
                "Invalid replica assignment: addingReplicas contains all replicas.".into(),
            )
        })?;
        if !policy.unclean_leader_election {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Unable to revert partition assignment for {}:{} because it would require an unclean leader election.",
                topic.name, p.partition
            )));
        }
        isr.push(first);
    }
    let acceptable = |id: NodeId| image.is_broker_active(id);
    Ok(
        PartitionChangeBuilder::new(p, topic.id, &acceptable, policy)
            .target_isr(isr)
            .target_replicas(replicas)
            .target_removing(Vec::new())
            .target_adding(Vec::new())
            .build(),
    )
}

fn change(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    topic: &TopicImage,
    p: &PartitionImage,
    target: &[NodeId],
) -> Result<Option<MetadataRecord>, ControllerError> {
    validate_target(image, target)?;
    let removing: Vec<NodeId> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let adding: Vec<NodeId> = target
        .iter()
        .copied()
        .filter(|r| !p.replicas.contains(r))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // The targets first, so the preferred leader is the target's first replica.
    let replicas: Vec<NodeId> = target.iter().chain(removing.iter()).copied().collect();
    let acceptable = |id: NodeId| image.is_broker_active(id);
    // A reassignment's own elections are clean, whatever the topic says.
    let mut builder =
        PartitionChangeBuilder::new(p, topic.id, &acceptable, defaults.for_topic(image, topic))
            .election(Election::Online);
    if replicas != p.replicas {
        builder = builder.target_replicas(replicas);
    }
    if !removing.is_empty() {
        builder = builder.target_removing(removing);
    }
    if !adding.is_empty() {
        builder = builder.target_adding(adding);
    }
    Ok(builder.build())
}

/// Kafka's validateManualPartitionAssignment for a reassignment target.
fn validate_target(image: &MetadataImage, target: &[NodeId]) -> Result<(), ControllerError> {
    if target.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if image.broker(id).is_none() {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if previous == Some(id) {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
        previous = Some(id);
    }
    Ok(())
}

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub partition: i32,
    pub replicas: Vec<NodeId>,
    pub adding_replicas: Vec<NodeId>,
    pub removing_replicas: Vec<NodeId>,
}

/// ListPartitionReassignments: `None` lists every reassigning partition; otherwise
/// the given partitions that are reassigning. Topics with none are left out.
pub fn list_partition_reassignments(
    image: &MetadataImage,
    topics: Option<&[(String, Vec<i32>)]>,
) -> Vec<(String, Vec<OngoingReassignment>)> {
    let ongoing = |p: &PartitionImage| OngoingReassignment {
        partition: p.partition,
        replicas: p.replicas.clone(),
        adding_replicas: p.adding_replicas.clone(),
        removing_replicas: p.removing_replicas.clone(),
    };
    let mut result = Vec::new();
    match topics {
        None => {
            for topic in image.topics() {
                let list: Vec<_> = topic
                    .partitions
                    .values()
                    .filter(|p| p.is_reassigning())
                    .map(ongoing)
                    .collect();
                if !list.is_empty() {
                    result.push((topic.name.clone(), list));
                }
            }
        }
        Some(requested) => {
            for (name, partitions) in requested {
                let Some(topic) = image.topic(name) else {
                    continue;
                };
                let list: Vec<_> = partitions
                    .iter()
                    .filter_map(|i| topic.partitions.get(i))
                    .filter(|p| p.is_reassigning())
                    .map(ongoing)
                    .collect();
                if !list.is_empty() {
                    result.push((name.clone(), list));
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alter_partition::{
        alter_partition, AlterPartitionData, AlterPartitionRequest, AlterPartitionTopic, IsrMember,
    };
    use crate::cluster_control::tests::{broker, cluster, partition_record, pc, Pc, T};
    use crate::records::{ConfigResource, LeaderRecoveryState};

    fn defaults() -> ClusterElectionDefaults {
        ClusterElectionDefaults::default()
    }

    fn reassign(
        image: &MetadataImage,
        partition: i32,
        replicas: Option<Vec<NodeId>>,
    ) -> (Vec<MetadataRecord>, Result<(), ControllerError>) {
        let (records, mut results) = alter_partition_reassignments(
            image,
            &defaults(),
            &[(
                "t".to_string(),
                vec![ReassignPartition {
                    partition,
                    replicas,
                }],
            )],
        );
        (records, results.remove(0).1.remove(0).1)
    }

    /// Brokers 1..=4, partition 0 on [1, 2, 3] led by 1.
    fn four_brokers() -> MetadataImage {
        cluster(vec![partition_record(0, &[1, 2, 3], &[1, 2, 3], 1)]).apply(&[broker(4, 40, false)])
    }

    fn isr_update(image: &MetadataImage, isr: &[NodeId]) -> (Vec<MetadataRecord>, bool) {
        let p = image.partition(&T, 0).unwrap();
        let request = AlterPartitionRequest {
            broker_id: p.leader,
            broker_epoch: p.leader as i64 * 10,
            topics: vec![AlterPartitionTopic {
                topic_id: T,
                partitions: vec![AlterPartitionData {
                    partition: 0,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    new_isr: isr
                        .iter()
                        .map(|id| IsrMember {
                            broker_id: *id,
                            broker_epoch: -1,
                        })
                        .collect(),
                    leader_recovery_state: LeaderRecoveryState::Recovered,
                }],
            }],
        };
        let (records, results) = alter_partition(image, &defaults(), &request).unwrap();
        (records, results[0].result.is_ok())
    }

    #[test]
    fn a_move_adds_replicas_keeps_the_isr_and_completes_when_they_catch_up() {
        let image = four_brokers();
        let (records, result) = reassign(&image, 0, Some(vec![4, 2, 3]));
        assert_eq!(result, Ok(()));
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    replicas: Some(vec![4, 2, 3, 1]),
                    removing_replicas: Some(vec![1]),
                    adding_replicas: Some(vec![4]),
                    ..Default::default()
                }
            )]
        );
        let image = image.apply(&records);
        assert_eq!(
            list_partition_reassignments(&image, None),
            vec![(
                "t".to_string(),
                vec![OngoingReassignment {
                    partition: 0,
                    replicas: vec![4, 2, 3, 1],
                    adding_replicas: vec![4],
                    removing_replicas: vec![1],
                }]
            )]
        );
        // 4 catches up: the leader adds it to the ISR, which completes the move and
        // hands leadership to the new preferred replica.
        let (records, ok) = isr_update(&image, &[1, 2, 3, 4]);
        assert!(!ok, "the leader moved: NEW_LEADER_ELECTED");
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    leader: Some(4),
                    isr: Some(vec![2, 3, 4]),
                    replicas: Some(vec![4, 2, 3]),
                    removing_replicas: Some(vec![]),
                    adding_replicas: Some(vec![]),
                    ..Default::default()
                }
            )]
        );
        let image = image.apply(&records);
        assert!(list_partition_reassignments(&image, None).is_empty());
        assert_eq!(
            reassign(&image, 0, None).1,
            Err(ControllerError::NoReassignmentInProgress(
                "No partition reassignment is in progress.".into()
            ))
        );
    }

    #[test]
    fn reordering_completes_at_once_and_invalid_targets_are_refused() {
        let image = four_brokers();
        let (records, result) = reassign(&image, 0, Some(vec![3, 2, 1]));
        assert_eq!(result, Ok(()));
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    replicas: Some(vec![3, 2, 1]),
                    ..Default::default()
                }
            )]
        );
        for (target, message) in [
            (vec![], "The manual partition assignment includes an empty replica list."),
            (vec![1, 9], "The manual partition assignment includes broker 9, but no such broker is registered."),
            (vec![1, 2, 1], "The manual partition assignment includes the broker 1 more than once."),
        ] {
            assert_eq!(
                reassign(&image, 0, Some(target)),
                (
                    vec![],
                    Err(ControllerError::InvalidReplicaAssignment(message.into()))
                )
            );
        }
        assert_eq!(
            reassign(&image, 5, Some(vec![1])).1,
            Err(ControllerError::UnknownTopicOrPartition(
                "Unable to find partition t:5.".into()
            ))
        );
        let (_, mut results) = alter_partition_reassignments(
            &image,
            &defaults(),
            &[(
                "x".to_string(),
                vec![ReassignPartition {
                    partition: 0,
                    replicas: None,
                }],
            )],
        );
        assert_eq!(
            results.remove(0).1.remove(0).1,
            Err(ControllerError::UnknownTopicOrPartition(
                "Unable to find a topic named x.".into()
            ))
        );
    }

    #[test]
    fn cancelling_reverts_to_the_original_replicas() {
        let image = four_brokers();
        let (records, _) = reassign(&image, 0, Some(vec![4, 2, 3]));
        let image = image.apply(&records);
        let (records, result) = reassign(&image, 0, None);
        assert_eq!(result, Ok(()));
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    // 4 leaves the replicas: a new leader epoch fences it.
                    leader: Some(1),
                    replicas: Some(vec![2, 3, 1]),
                    removing_replicas: Some(vec![]),
                    adding_replicas: Some(vec![]),
                    ..Default::default()
                }
            )]
        );
        let image = image.apply(&records);
        assert!(!image.partition(&T, 0).unwrap().is_reassigning());
    }

    #[test]
    fn cancelling_when_only_added_replicas_are_in_sync_needs_unclean_election() {
        // A move from [1] to [2] where 1 already dropped out of the ISR.
        let image = cluster(vec![partition_record(0, &[2, 1], &[2], 2)]).apply(&[pc(
            0,
            Pc {
                removing_replicas: Some(vec![1]),
                adding_replicas: Some(vec![2]),
                ..Default::default()
            },
        )]);
        assert_eq!(
            reassign(&image, 0, None),
            (
                vec![],
                Err(ControllerError::InvalidReplicaAssignment(
                    "Unable to revert partition assignment for t:0 because it would require an unclean leader election.".into()
                ))
            )
        );
        let image = image.apply(&[MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: "unclean.leader.election.enable".into(),
            value: Some("true".into()),
        }]);
        let (records, result) = reassign(&image, 0, None);
        assert_eq!(result, Ok(()));
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    leader: Some(1),
                    isr: Some(vec![1]),
                    replicas: Some(vec![1]),
                    removing_replicas: Some(vec![]),
                    adding_replicas: Some(vec![]),
                    ..Default::default()
                }
            )]
        );
    }

    #[test]
    fn listing_given_partitions_skips_unknown_and_idle_ones() {
        let image = cluster(vec![
            partition_record(0, &[1, 2], &[1, 2], 1),
            partition_record(1, &[1, 2], &[1, 2], 1),
        ]);
        let (records, _) = reassign(&image, 1, Some(vec![3, 2]));
        let image = image.apply(&records);
        let listed = list_partition_reassignments(
            &image,
            Some(&[("t".to_string(), vec![0, 1, 7]), ("x".to_string(), vec![0])]),
        );
        assert_eq!(
            listed,
            vec![(
                "t".to_string(),
                vec![OngoingReassignment {
                    partition: 1,
                    replicas: vec![3, 2, 1],
                    adding_replicas: vec![3],
                    removing_replicas: vec![1],
                }]
            )]
        );
    }
}
