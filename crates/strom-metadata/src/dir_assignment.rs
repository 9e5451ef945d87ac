//! AssignReplicasToDirs (KIP-858), as Kafka's ReplicationControlManager handles it: a
//! broker tells the controller which of its log dirs holds each of its replicas, so that
//! when a dir goes offline (BrokerHeartbeat's offline dirs, `ClusterControl::
//! directories_offline`) the controller knows which partitions to move.

use strom_types::{NodeId, TopicId};

use crate::cluster_control::{check_broker_epoch, leader_and_isr_updates};
use crate::error::ControllerError;
use crate::image::MetadataImage;
use crate::partition_change::{ClusterElectionDefaults, PartitionChangeBuilder};
use crate::records::{MetadataRecord, NO_LEADER};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaDir {
    pub topic_id: TopicId,
    pub partition: i32,
    pub dir: uuid::Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignReplicasToDirsRequest {
    pub broker_id: NodeId,
    pub broker_epoch: i64,
    pub assignments: Vec<ReplicaDir>,
}

/// Each assignment's outcome, in request order.
pub type AssignmentResults = Vec<Result<(), ControllerError>>;

/// The records recording each replica's dir, and a result per assignment (in request
/// order). A replica placed in a dir the broker's registration does not have online
/// leaves the ISR at once, as a dir going offline does.
pub fn assign_replicas_to_dirs(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    request: &AssignReplicasToDirsRequest,
) -> Result<(Vec<MetadataRecord>, AssignmentResults), ControllerError> {
    let broker_id = request.broker_id;
    let broker = check_broker_epoch(image, broker_id, request.broker_epoch)?.clone();
    let mut records = Vec::new();
    let mut results = Vec::with_capacity(request.assignments.len());
    let mut working = image.clone();
    for assignment in &request.assignments {
        let Some(topic) = working.topic_by_id(&assignment.topic_id).cloned() else {
            results.push(Err(ControllerError::UnknownTopicId(format!(
                "unknown topic id {}",
                assignment.topic_id
            ))));
            continue;
        };
        let Some(partition) = topic.partitions.get(&assignment.partition) else {
            results.push(Err(ControllerError::UnknownTopicOrPartition(format!(
                "unknown partition {}-{}",
                topic.name, assignment.partition
            ))));
            continue;
        };
        if !partition.replicas.contains(&broker_id) {
            results.push(Err(ControllerError::NotLeaderOrFollower(format!(
                "broker {broker_id} holds no replica of {}-{}",
                topic.name, assignment.partition
            ))));
            continue;
        }
        results.push(Ok(()));
        if partition.directory(broker_id) == assignment.dir {
            continue;
        }
        let policy = defaults.for_topic(&working, &topic);
        let acceptable = |r: NodeId| working.is_replica_active(r, partition);
        let change = PartitionChangeBuilder::new(partition, topic.id, &acceptable, policy)
            .target_directories(partition.directories_with(broker_id, assignment.dir))
            .build();
        let mut changed: Vec<MetadataRecord> = change.into_iter().collect();
        if !broker.has_online_dir(assignment.dir) && partition.isr.contains(&broker_id) {
            let placed = working.apply(&changed);
            changed.extend(leader_and_isr_updates(
                &placed,
                defaults,
                broker_id,
                NO_LEADER,
                NO_LEADER,
                |p| p.partition == assignment.partition && p.isr.contains(&broker_id),
            ));
            // `leader_and_isr_updates` walks every topic: keep this partition's only.
            changed.retain(|r| {
                !matches!(r, MetadataRecord::PartitionChange { topic_id, .. } if *topic_id != topic.id)
            });
        }
        working = working.apply(&changed);
        records.extend(changed);
    }
    Ok((records, results))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_control::tests::{cluster, partition_record, T};
    use crate::cluster_control::{BrokerHeartbeatRequest, ClusterControl, ClusterControlConfig};
    use crate::records::{LOST_DIR, UNASSIGNED_DIR};

    const DIR_A: uuid::Uuid = uuid::Uuid::from_u128(0xa);
    const DIR_B: uuid::Uuid = uuid::Uuid::from_u128(0xb);

    fn with_dirs(image: MetadataImage, broker: NodeId, epoch: i64) -> MetadataImage {
        image.apply(&[MetadataRecord::BrokerRegistrationChange {
            broker_id: broker,
            broker_epoch: epoch,
            fenced: None,
            in_controlled_shutdown: None,
            log_dirs: Some(vec![DIR_A, DIR_B]),
        }])
    }

    fn assign(image: &MetadataImage, partition: i32, dir: uuid::Uuid) -> MetadataImage {
        let request = AssignReplicasToDirsRequest {
            broker_id: 1,
            broker_epoch: 10,
            assignments: vec![ReplicaDir {
                topic_id: T,
                partition,
                dir,
            }],
        };
        let (records, results) =
            assign_replicas_to_dirs(image, &ClusterElectionDefaults::default(), &request).unwrap();
        assert_eq!(results, vec![Ok(())]);
        image.apply(&records)
    }

    #[test]
    fn assignments_record_each_replicas_dir() {
        let image = with_dirs(
            cluster(vec![
                partition_record(0, &[1, 2, 3], &[1, 2, 3], 1),
                partition_record(1, &[2, 1], &[2, 1], 2),
            ]),
            1,
            10,
        );
        let image = assign(&image, 0, DIR_A);
        let image = assign(&image, 1, DIR_B);
        let p0 = image.partition(&T, 0).unwrap();
        assert_eq!(p0.directories, vec![DIR_A, UNASSIGNED_DIR, UNASSIGNED_DIR]);
        assert_eq!((p0.leader, p0.isr.clone()), (1, vec![1, 2, 3]));
        assert_eq!(p0.partition_epoch, 10);
        let p1 = image.partition(&T, 1).unwrap();
        assert_eq!(p1.directory(1), DIR_B);
        assert_eq!(p1.directory(2), UNASSIGNED_DIR);

        // The same assignment again changes nothing.
        let request = AssignReplicasToDirsRequest {
            broker_id: 1,
            broker_epoch: 10,
            assignments: vec![
                ReplicaDir {
                    topic_id: T,
                    partition: 0,
                    dir: DIR_A,
                },
                ReplicaDir {
                    topic_id: T,
                    partition: 7,
                    dir: DIR_A,
                },
                ReplicaDir {
                    topic_id: TopicId::from_u128(0xdead),
                    partition: 0,
                    dir: DIR_A,
                },
            ],
        };
        let (records, results) =
            assign_replicas_to_dirs(&image, &ClusterElectionDefaults::default(), &request).unwrap();
        assert!(records.is_empty());
        assert!(results[0].is_ok());
        assert!(matches!(
            results[1],
            Err(ControllerError::UnknownTopicOrPartition(_))
        ));
        assert!(matches!(
            results[2],
            Err(ControllerError::UnknownTopicId(_))
        ));
        let stale = AssignReplicasToDirsRequest {
            broker_epoch: 9,
            ..request
        };
        assert!(matches!(
            assign_replicas_to_dirs(&image, &ClusterElectionDefaults::default(), &stale),
            Err(ControllerError::StaleBrokerEpoch(_))
        ));
    }

    #[test]
    fn an_offline_dir_moves_leadership_of_its_partitions_only() {
        let image = with_dirs(
            cluster(vec![
                partition_record(0, &[1, 2, 3], &[1, 2, 3], 1),
                partition_record(1, &[1, 2, 3], &[1, 2, 3], 1),
                partition_record(2, &[2, 1, 3], &[2, 1, 3], 2),
                partition_record(3, &[2, 3], &[2, 3], 2),
            ]),
            1,
            10,
        );
        let image = assign(&image, 0, DIR_A);
        let image = assign(&image, 1, DIR_B);
        let image = assign(&image, 2, DIR_A);
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        let heartbeat = BrokerHeartbeatRequest {
            broker_id: 1,
            broker_epoch: 10,
            current_metadata_offset: 100,
            want_fence: false,
            want_shut_down: false,
            offline_log_dirs: vec![DIR_A],
        };
        let (records, reply) = control.heartbeat(&image, &heartbeat, 101, 1).unwrap();
        assert!(!reply.is_fenced);
        let after = image.apply(&records);
        let p0 = after.partition(&T, 0).unwrap();
        assert_eq!((p0.leader, p0.isr.clone()), (2, vec![2, 3]));
        assert_eq!(p0.leader_epoch, 6);
        let p1 = after.partition(&T, 1).unwrap();
        assert_eq!(
            (p1.leader, p1.isr.clone()),
            (1, vec![1, 2, 3]),
            "dir B is fine"
        );
        let p2 = after.partition(&T, 2).unwrap();
        assert_eq!((p2.leader, p2.isr.clone()), (2, vec![2, 3]));
        assert_eq!(p2.leader_epoch, 5, "the leader stays");
        assert_eq!(after.partition(&T, 3), image.partition(&T, 3));
        assert_eq!(after.broker(1).unwrap().log_dirs, vec![DIR_B]);
        assert!(!after.broker(1).unwrap().fenced);

        // Reported again: nothing new.
        let (again, _) = control.heartbeat(&after, &heartbeat, 105, 2).unwrap();
        assert!(again.is_empty());

        // The last dir offline: no dir online, not "all online".
        let heartbeat = BrokerHeartbeatRequest {
            offline_log_dirs: vec![DIR_A, DIR_B],
            ..heartbeat
        };
        let (records, _) = control.heartbeat(&after, &heartbeat, 106, 3).unwrap();
        let after = after.apply(&records);
        assert_eq!(after.broker(1).unwrap().log_dirs, vec![LOST_DIR]);
        let p1 = after.partition(&T, 1).unwrap();
        assert_eq!((p1.leader, p1.isr.clone()), (2, vec![2, 3]));
        // A replica then placed in an offline dir never joins as leader.
        assert!(!after.is_replica_active(1, p1));
    }

    #[test]
    fn a_dir_missing_from_a_new_registration_takes_its_replicas_out_of_the_isr() {
        let image = with_dirs(
            cluster(vec![
                partition_record(0, &[1, 2, 3], &[1, 2, 3], 1),
                partition_record(1, &[2, 1, 3], &[2, 1, 3], 2),
            ]),
            1,
            10,
        );
        let image = assign(&image, 0, DIR_A);
        let image = assign(&image, 1, DIR_B);
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        control.expire_session(1);
        let registration = crate::cluster_control::BrokerRegistrationRequest {
            broker_id: 1,
            incarnation_id: uuid::Uuid::from_u128(77),
            endpoints: vec![],
            rack: None,
            previous_broker_epoch: 10,
            log_dirs: vec![DIR_B],
        };
        let (records, reply) = control
            .register_broker(&image, &registration, 200, 1)
            .unwrap();
        assert_eq!(reply.broker_epoch, 200);
        let after = image.apply(&records);
        let p0 = after.partition(&T, 0).unwrap();
        assert_eq!((p0.leader, p0.isr.clone()), (2, vec![2, 3]));
        let p1 = after.partition(&T, 1).unwrap();
        assert_eq!((p1.leader, p1.isr.clone()), (2, vec![2, 1, 3]));
    }

    #[test]
    fn a_replica_keeps_its_dir_through_a_reassignment_and_the_fields_replay_from_json() {
        let image = with_dirs(
            cluster(vec![partition_record(0, &[1, 2], &[1, 2], 1)]),
            1,
            10,
        );
        let image = assign(&image, 0, DIR_B);
        let moved = image.apply(&[crate::cluster_control::tests::pc(
            0,
            crate::cluster_control::tests::Pc {
                replicas: Some(vec![3, 1]),
                ..Default::default()
            },
        )]);
        let p = moved.partition(&T, 0).unwrap();
        assert_eq!(p.directories, vec![UNASSIGNED_DIR, DIR_B]);
        // The image's records rebuild it, dirs included.
        let rebuilt = MetadataImage::default().apply(&moved.to_records());
        assert_eq!(rebuilt.partition(&T, 0), Some(p));
        assert_eq!(rebuilt.broker(1).unwrap().log_dirs, vec![DIR_A, DIR_B]);
        for record in moved.to_records() {
            assert_eq!(
                MetadataRecord::from_json(&record.to_json()).unwrap(),
                record
            );
        }
        // A change written before dir ids leaves the dirs as they were.
        let old =
            format!(r#"{{"type":"PartitionChange","topic_id":"{T}","partition":0,"isr":[3]}}"#);
        let old = MetadataRecord::from_json(old.as_bytes()).unwrap();
        let after = moved.apply(&[old]);
        assert_eq!(after.partition(&T, 0).unwrap().directories, p.directories);
        let old_change =
            br#"{"type":"BrokerRegistrationChange","broker_id":1,"broker_epoch":10,"fenced":true}"#;
        let after = moved.apply(&[MetadataRecord::from_json(old_change).unwrap()]);
        assert_eq!(after.broker(1).unwrap().log_dirs, vec![DIR_A, DIR_B]);
    }
}
