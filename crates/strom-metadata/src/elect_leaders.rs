//! ElectLeaders (preferred and unclean), automatic preferred-leader balancing, and
//! unclean elections for leaderless partitions, as Kafka's controller does them.

use strom_types::NodeId;

use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::partition_change::{ClusterElectionDefaults, Election, PartitionChangeBuilder};
use crate::records::MetadataRecord;

/// Kafka's ElectionType codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    Preferred = 0,
    Unclean = 1,
}

impl ElectionType {
    pub fn from_code(code: i8) -> Result<Self, ControllerError> {
        match code {
            0 => Ok(Self::Preferred),
            1 => Ok(Self::Unclean),
            other => Err(ControllerError::InvalidRequest(format!(
                "Unknown election type {other}"
            ))),
        }
    }
}

/// One topic's results: per partition, success or the error to answer with.
pub type TopicElectionResults = (String, Vec<(i32, Result<(), ControllerError>)>);

/// ElectLeaders. `partitions: None` means every partition; then partitions that
/// need no election are left out of the results, as Kafka does.
pub fn elect_leaders(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    election: ElectionType,
    partitions: Option<&[(String, Vec<i32>)]>,
) -> (Vec<MetadataRecord>, Vec<TopicElectionResults>) {
    let mut records = Vec::new();
    let mut results = Vec::new();
    match partitions {
        None => {
            for topic in image.topics() {
                let mut topic_results = Vec::new();
                for &partition in topic.partitions.keys() {
                    let result = elect_leader(image, defaults, &topic.name, partition, election);
                    match result {
                        Err(ControllerError::ElectionNotNeeded(_)) => {}
                        Err(e) => topic_results.push((partition, Err(e))),
                        Ok(record) => {
                            records.push(record);
                            topic_results.push((partition, Ok(())));
                        }
                    }
                }
                results.push((topic.name.clone(), topic_results));
            }
        }
        Some(requested) => {
            for (topic, partitions) in requested {
                let topic_results = partitions
                    .iter()
                    .map(|&partition| {
                        let result = elect_leader(image, defaults, topic, partition, election)
                            .map(|record| records.push(record));
                        (partition, result)
                    })
                    .collect();
                results.push((topic.clone(), topic_results));
            }
        }
    }
    (records, results)
}

fn elect_leader(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    topic_name: &str,
    partition: i32,
    election: ElectionType,
) -> Result<MetadataRecord, ControllerError> {
    let topic = image.topic(topic_name).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!("No such topic as {topic_name}"))
    })?;
    let p = topic.partitions.get(&partition).ok_or_else(|| {
        ControllerError::UnknownTopicOrPartition(format!(
            "No such partition as {topic_name}-{partition}"
        ))
    })?;
    let not_needed = match election {
        ElectionType::Preferred => has_preferred_leader(p),
        ElectionType::Unclean => p.has_leader(),
    };
    if not_needed {
        return Err(ControllerError::ElectionNotNeeded(
            "Leader election not needed for topic partition.".into(),
        ));
    }
    let builder_election = match election {
        ElectionType::Preferred => Election::Preferred,
        ElectionType::Unclean => Election::Unclean,
    };
    let acceptable = |id: NodeId| image.is_broker_active(id);
    let policy = defaults.for_topic(image, topic);
    PartitionChangeBuilder::new(p, topic.id, &acceptable, policy)
        .election(builder_election)
        .build()
        .ok_or_else(|| match election {
            ElectionType::Preferred => ControllerError::PreferredLeaderNotAvailable(
                "The preferred leader was not available.".into(),
            ),
            ElectionType::Unclean => ControllerError::EligibleLeadersNotAvailable(
                "Eligible topic partition leaders are not available.".into(),
            ),
        })
}

fn has_preferred_leader(p: &PartitionImage) -> bool {
    p.preferred_leader() == Some(p.leader)
}

/// Automatic rebalancing (`auto.leader.rebalance.enable`), as Kafka's KRaft controller
/// does it: a preferred election for up to `max_elections` partitions not led by their
/// first replica, whatever share of a broker's partitions that is
/// (`leader.imbalance.per.broker.percentage` was the ZooKeeper controller's threshold).
/// Returns the records and whether more may remain (then the caller runs again at once).
pub fn balance_partition_leaders(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    max_elections: usize,
) -> (Vec<MetadataRecord>, bool) {
    let acceptable = |id: NodeId| image.is_broker_active(id);
    let records = changes(image, max_elections, |topic, p| {
        if has_preferred_leader(p) {
            return None;
        }
        PartitionChangeBuilder::new(p, topic.id, &acceptable, defaults.for_topic(image, topic))
            .election(Election::Preferred)
            .build()
    });
    let more = records.len() >= max_elections;
    (records, more)
}

/// Unclean elections for leaderless partitions of topics with
/// `unclean.leader.election.enable` (Kafka's maybeElectUncleanLeaders, run when
/// that config is turned on).
pub fn elect_unclean_leaders(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    max_elections: usize,
) -> (Vec<MetadataRecord>, bool) {
    let acceptable = |id: NodeId| image.is_broker_active(id);
    let records = changes(image, max_elections, |topic, p| {
        let policy = defaults.for_topic(image, topic);
        if p.has_leader() || !policy.unclean_leader_election {
            return None;
        }
        PartitionChangeBuilder::new(p, topic.id, &acceptable, policy)
            .election(Election::Unclean)
            .build()
    });
    let more = records.len() >= max_elections;
    (records, more)
}

fn changes(
    image: &MetadataImage,
    max: usize,
    mut change: impl FnMut(&TopicImage, &PartitionImage) -> Option<MetadataRecord>,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics() {
        for p in topic.partitions.values() {
            if records.len() >= max {
                return records;
            }
            records.extend(change(topic, p));
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster_control::tests::{change, cluster, partition_record, pc, with, Pc};
    use crate::records::{ConfigResource, LeaderRecoveryState, NO_LEADER};

    fn defaults() -> ClusterElectionDefaults {
        ClusterElectionDefaults::default()
    }

    fn fence(image: &MetadataImage, id: NodeId) -> MetadataImage {
        image.apply(&[MetadataRecord::BrokerRegistrationChange {
            log_dirs: None,
            broker_id: id,
            broker_epoch: id as i64 * 10,
            fenced: Some(true),
            in_controlled_shutdown: None,
        }])
    }

    #[test]
    fn preferred_election_as_kafka_answers_it() {
        let image = cluster(vec![
            partition_record(0, &[1, 2], &[1, 2], 2),
            partition_record(1, &[1, 2], &[1, 2], 1),
            partition_record(2, &[3, 2], &[2], 2),
        ]);
        let request = vec![
            ("t".to_string(), vec![0, 1, 2, 9]),
            ("nope".to_string(), vec![0]),
        ];
        let (records, results) =
            elect_leaders(&image, &defaults(), ElectionType::Preferred, Some(&request));
        assert_eq!(
            records,
            vec![with(change(0), |leader, _, _, _| *leader = Some(1))]
        );
        assert_eq!(
            results,
            vec![
                (
                    "t".to_string(),
                    vec![
                        (0, Ok(())),
                        (
                            1,
                            Err(ControllerError::ElectionNotNeeded(
                                "Leader election not needed for topic partition.".into()
                            ))
                        ),
                        (
                            2,
                            Err(ControllerError::PreferredLeaderNotAvailable(
                                "The preferred leader was not available.".into()
                            ))
                        ),
                        (
                            9,
                            Err(ControllerError::UnknownTopicOrPartition(
                                "No such partition as t-9".into()
                            ))
                        ),
                    ]
                ),
                (
                    "nope".to_string(),
                    vec![(
                        0,
                        Err(ControllerError::UnknownTopicOrPartition(
                            "No such topic as nope".into()
                        ))
                    )]
                ),
            ]
        );
        // Every partition: those needing nothing are left out.
        let (records, results) = elect_leaders(&image, &defaults(), ElectionType::Preferred, None);
        assert_eq!(records.len(), 1);
        assert_eq!(
            results,
            vec![(
                "t".to_string(),
                vec![
                    (0, Ok(())),
                    (
                        2,
                        Err(ControllerError::PreferredLeaderNotAvailable(
                            "The preferred leader was not available.".into()
                        ))
                    ),
                ]
            )]
        );
    }

    #[test]
    fn unclean_election_as_kafka_answers_it() {
        let image = cluster(vec![
            partition_record(0, &[1, 2], &[1], NO_LEADER),
            partition_record(1, &[1, 2], &[1, 2], 2),
            partition_record(2, &[1, 3], &[1], NO_LEADER),
        ]);
        let image = fence(&fence(&image, 1), 3);
        let request = vec![("t".to_string(), vec![0, 1, 2])];
        let (records, results) =
            elect_leaders(&image, &defaults(), ElectionType::Unclean, Some(&request));
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    leader: Some(2),
                    isr: Some(vec![2]),
                    leader_recovery_state: Some(LeaderRecoveryState::Recovering),
                    ..Default::default()
                }
            )]
        );
        assert_eq!(
            results[0].1,
            vec![
                (0, Ok(())),
                (
                    1,
                    Err(ControllerError::ElectionNotNeeded(
                        "Leader election not needed for topic partition.".into()
                    ))
                ),
                (
                    2,
                    Err(ControllerError::EligibleLeadersNotAvailable(
                        "Eligible topic partition leaders are not available.".into()
                    ))
                ),
            ]
        );
    }

    #[test]
    fn rebalancing_moves_leaders_back_to_preferred_replicas() {
        let image = cluster(vec![
            partition_record(0, &[1, 2], &[1, 2], 2),
            partition_record(1, &[1, 2], &[1, 2], 1),
            partition_record(2, &[2, 1], &[2, 1], 2),
            partition_record(3, &[3, 1], &[1], 1),
        ]);
        let (records, more) = balance_partition_leaders(&image, &defaults(), 1000);
        // Partition 3's preferred leader is out of the ISR: nothing to do there.
        assert_eq!(
            records,
            vec![with(change(0), |leader, _, _, _| *leader = Some(1))]
        );
        assert!(!more);
        let (records, more) = balance_partition_leaders(&image, &defaults(), 0);
        assert!(records.is_empty() && more);
    }

    #[test]
    fn every_partition_goes_back_to_its_preferred_leader_however_few_a_broker_has_lost() {
        // Broker 1 prefers 0..=9 and leads 9 of them (10% off, under the ZooKeeper
        // controller's 10% threshold); broker 2 prefers 10, 11 and leads neither; broker 3
        // prefers 12, led by 1, but is out of the ISR.
        let mut partitions: Vec<MetadataRecord> = (0..9)
            .map(|i| partition_record(i, &[1, 2], &[1, 2], 1))
            .collect();
        partitions.push(partition_record(9, &[1, 2], &[1, 2], 2));
        partitions.push(partition_record(10, &[2, 1], &[1, 2], 1));
        partitions.push(partition_record(11, &[2, 3], &[2, 3], 3));
        partitions.push(partition_record(12, &[3, 1], &[1], 1));
        let image = cluster(partitions);

        let (records, more) = balance_partition_leaders(&image, &defaults(), 2);
        assert_eq!(
            records,
            vec![
                with(change(9), |leader, _, _, _| *leader = Some(1)),
                with(change(10), |leader, _, _, _| *leader = Some(2)),
            ]
        );
        assert!(more, "the bound was reached: run again");
        let (records, more) = balance_partition_leaders(&image, &defaults(), 1000);
        assert_eq!(records.len(), 3, "{records:?}");
        assert!(!more);
        let image = image.apply(&records);
        assert_eq!(image.topic("t").unwrap().partitions[&11].leader, 2);
        // Only partition 12 is left off its preferred leader, which cannot lead it.
        assert_eq!(
            balance_partition_leaders(&image, &defaults(), 1000),
            (vec![], false)
        );
    }

    #[test]
    fn a_fenced_preferred_replica_is_not_made_leader() {
        let image = fence(&cluster(vec![partition_record(0, &[2, 1], &[1, 2], 1)]), 2);
        assert_eq!(
            balance_partition_leaders(&image, &defaults(), 1000),
            (vec![], false)
        );
    }

    #[test]
    fn leaderless_partitions_get_unclean_leaders_only_where_enabled() {
        let image = cluster(vec![partition_record(0, &[1, 2], &[1], NO_LEADER)]);
        let image = fence(&image, 1);
        assert!(elect_unclean_leaders(&image, &defaults(), 10).0.is_empty());
        let image = image.apply(&[MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: "unclean.leader.election.enable".into(),
            value: Some("true".into()),
        }]);
        let (records, _) = elect_unclean_leaders(&image, &defaults(), 10);
        assert_eq!(
            records,
            vec![pc(
                0,
                Pc {
                    leader: Some(2),
                    isr: Some(vec![2]),
                    leader_recovery_state: Some(LeaderRecoveryState::Recovering),
                    ..Default::default()
                }
            )]
        );
    }
}
