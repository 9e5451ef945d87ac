//! One partition's next state, as Kafka's PartitionChangeBuilder computes it: the
//! caller sets targets (ISR, replicas, reassignment lists, recovery state) and an
//! election type; `build` completes a reassignment the ISR allows, tracks KIP-966
//! eligible leader replicas, elects a leader and returns the `PartitionChange`
//! record, or `None` when nothing changes.

use strom_types::{NodeId, TopicId};

use crate::image::{MetadataImage, PartitionImage, TopicImage};
use crate::records::{ConfigResource, LeaderRecoveryState, MetadataRecord, NO_LEADER};

/// How a leader may be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// The first replica when it can lead; otherwise as `Online`.
    Preferred,
    /// A clean leader: an acceptable ISR member (or ELR member when the ISR is empty).
    Online,
    /// As `Online`, and when there is none, any acceptable replica (may lose data).
    Unclean,
}

/// Kafka's `min.insync.replicas` default.
pub const DEFAULT_MIN_INSYNC_REPLICAS: i32 = 1;

/// What elections of one topic's partitions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionPolicy {
    /// The topic's `min.insync.replicas`, capped at its replication factor.
    pub min_insync_replicas: usize,
    /// `unclean.leader.election.enable`.
    pub unclean_leader_election: bool,
    /// KIP-966 eligible leader replicas (`eligible.leader.replicas.version` >= 1).
    pub elr_enabled: bool,
}

impl ElectionPolicy {
    /// The election an automatic change of this topic uses.
    pub fn election(&self) -> Election {
        if self.unclean_leader_election {
            Election::Unclean
        } else {
            Election::Online
        }
    }
}

/// The cluster-wide settings a topic falls back to when neither the topic nor the
/// cluster's dynamic broker config sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterElectionDefaults {
    pub min_insync_replicas: i32,
    pub unclean_leader_election: bool,
    pub elr_enabled: bool,
}

impl Default for ClusterElectionDefaults {
    fn default() -> Self {
        Self {
            min_insync_replicas: DEFAULT_MIN_INSYNC_REPLICAS,
            unclean_leader_election: false,
            elr_enabled: true,
        }
    }
}

impl ClusterElectionDefaults {
    /// A topic's effective policy: its own config, else the cluster's dynamic default,
    /// else these. As Kafka, min ISR never exceeds the topic's replication factor.
    pub fn for_topic(&self, image: &MetadataImage, topic: &TopicImage) -> ElectionPolicy {
        let lookup = |name: &str| {
            image
                .config(&ConfigResource::Topic(topic.name.clone()), name)
                .or_else(|| image.config(&ConfigResource::Broker(None), name))
                .map(str::to_string)
        };
        let min_isr = lookup("min.insync.replicas")
            .and_then(|v| v.trim().parse::<i32>().ok())
            .unwrap_or(self.min_insync_replicas)
            .max(1) as usize;
        let unclean = lookup("unclean.leader.election.enable")
            .map(|v| v.trim().eq_ignore_ascii_case("true"))
            .unwrap_or(self.unclean_leader_election);
        let replication_factor = topic
            .partitions
            .values()
            .next()
            .map_or(min_isr, |p| p.replicas.len());
        ElectionPolicy {
            min_insync_replicas: min_isr.min(replication_factor),
            unclean_leader_election: unclean,
            elr_enabled: self.elr_enabled,
        }
    }
}

/// Computes one `PartitionChange`.
pub struct PartitionChangeBuilder<'a> {
    partition: &'a PartitionImage,
    topic_id: TopicId,
    partition_id: i32,
    is_acceptable_leader: &'a dyn Fn(NodeId) -> bool,
    min_isr: usize,
    elr_enabled: bool,
    election: Election,
    target_isr: Vec<NodeId>,
    target_replicas: Vec<NodeId>,
    target_removing: Vec<NodeId>,
    target_adding: Vec<NodeId>,
    target_elr: Vec<NodeId>,
    target_recovery: LeaderRecoveryState,
    unclean_shutdown_replicas: Vec<NodeId>,
    target_directories: Option<Vec<uuid::Uuid>>,
}

/// The fields of a `PartitionChange` being assembled (`None`: unchanged).
#[derive(Default)]
struct Change {
    leader: Option<NodeId>,
    isr: Option<Vec<NodeId>>,
    replicas: Option<Vec<NodeId>>,
    removing: Option<Vec<NodeId>>,
    adding: Option<Vec<NodeId>>,
    elr: Option<Vec<NodeId>>,
    last_known_elr: Option<Vec<NodeId>>,
    recovery: Option<LeaderRecoveryState>,
    directories: Option<Vec<uuid::Uuid>>,
}

impl<'a> PartitionChangeBuilder<'a> {
    /// Starts from the partition as it is; `is_acceptable_leader` says which brokers
    /// may lead (normally: unfenced and not in controlled shutdown).
    pub fn new(
        partition: &'a PartitionImage,
        topic_id: TopicId,
        is_acceptable_leader: &'a dyn Fn(NodeId) -> bool,
        policy: ElectionPolicy,
    ) -> Self {
        Self {
            partition,
            topic_id,
            partition_id: partition.partition,
            is_acceptable_leader,
            min_isr: policy.min_insync_replicas,
            elr_enabled: policy.elr_enabled,
            election: policy.election(),
            target_isr: partition.isr.clone(),
            target_replicas: partition.replicas.clone(),
            target_removing: partition.removing_replicas.clone(),
            target_adding: partition.adding_replicas.clone(),
            target_elr: partition.elr.clone(),
            target_recovery: partition.leader_recovery_state,
            unclean_shutdown_replicas: Vec::new(),
            target_directories: None,
        }
    }

    pub fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    pub fn target_isr(mut self, isr: Vec<NodeId>) -> Self {
        self.target_isr = isr;
        self
    }

    pub fn target_replicas(mut self, replicas: Vec<NodeId>) -> Self {
        self.target_replicas = replicas;
        self
    }

    pub fn target_removing(mut self, removing: Vec<NodeId>) -> Self {
        self.target_removing = removing;
        self
    }

    pub fn target_adding(mut self, adding: Vec<NodeId>) -> Self {
        self.target_adding = adding;
        self
    }

    pub fn target_leader_recovery_state(mut self, state: LeaderRecoveryState) -> Self {
        self.target_recovery = state;
        self
    }

    /// Replicas whose broker restarted without a clean shutdown: they may have lost
    /// committed records, so they leave the ELR and cannot lead.
    /// The replicas' log dirs, in `replicas` order (AssignReplicasToDirs).
    pub fn target_directories(mut self, directories: Vec<uuid::Uuid>) -> Self {
        self.target_directories = Some(directories);
        self
    }

    pub fn unclean_shutdown_replicas(mut self, replicas: Vec<NodeId>) -> Self {
        self.unclean_shutdown_replicas = replicas;
        self
    }

    /// The change, or `None` when the partition would stay as it is.
    pub fn build(mut self) -> Option<MetadataRecord> {
        let mut change = Change::default();
        self.complete_reassignment_if_possible();
        self.track_eligible_leader_replicas();
        self.elect(&mut change);
        // Dropping a replica from the assignment fences its fetches with a new leader epoch.
        if change.leader.is_none()
            && !self
                .partition
                .replicas
                .iter()
                .all(|r| self.target_replicas.contains(r))
        {
            change.leader = Some(self.partition.leader);
        }
        self.set_elr(&mut change);
        if change.isr.is_none()
            && (!self.target_isr.is_empty() || self.elr_enabled)
            && self.target_isr != self.partition.isr
        {
            change.isr = Some(self.target_isr.clone());
        }
        self.update_last_known_leader(&mut change);
        if !self.target_replicas.is_empty() && self.target_replicas != self.partition.replicas {
            change.replicas = Some(self.target_replicas.clone());
        }
        if self.target_removing != self.partition.removing_replicas {
            change.removing = Some(self.target_removing.clone());
        }
        if self.target_adding != self.partition.adding_replicas {
            change.adding = Some(self.target_adding.clone());
        }
        if self.target_recovery != self.partition.leader_recovery_state {
            change.recovery = Some(self.target_recovery);
        }
        if let Some(directories) = &self.target_directories {
            let current: Vec<uuid::Uuid> = self
                .partition
                .replicas
                .iter()
                .map(|r| self.partition.directory(*r))
                .collect();
            if *directories != current {
                change.directories = Some(directories.clone());
            }
        }
        let Change {
            leader,
            isr,
            replicas,
            removing,
            adding,
            elr,
            last_known_elr,
            recovery,
            directories,
        } = change;
        if leader.is_none()
            && isr.is_none()
            && replicas.is_none()
            && removing.is_none()
            && adding.is_none()
            && elr.is_none()
            && last_known_elr.is_none()
            && recovery.is_none()
            && directories.is_none()
        {
            return None;
        }
        Some(MetadataRecord::PartitionChange {
            topic_id: self.topic_id,
            partition: self.partition_id,
            leader,
            isr,
            replicas,
            removing_replicas: removing,
            adding_replicas: adding,
            elr,
            last_known_elr,
            leader_recovery_state: recovery,
            directories,
        })
    }

    fn complete_reassignment_if_possible(&mut self) {
        if let Some((replicas, isr)) = completed_reassignment(
            &self.target_replicas,
            &self.target_removing,
            &self.target_adding,
            &self.target_isr,
        ) {
            self.target_replicas = replicas;
            self.target_isr = isr;
            self.target_removing.clear();
            self.target_adding.clear();
        }
    }

    /// KIP-966: while the ISR is below min ISR, members leaving it keep every committed
    /// record (the high watermark cannot pass them), so they stay eligible to lead.
    fn track_eligible_leader_replicas(&mut self) {
        if !self.elr_enabled {
            return;
        }
        if self.target_isr.len() >= self.min_isr {
            self.target_elr.clear();
            return;
        }
        let mut elr: Vec<NodeId> = self
            .target_elr
            .iter()
            .chain(self.partition.isr.iter())
            .copied()
            .filter(|r| !self.target_isr.contains(r))
            .filter(|r| !self.unclean_shutdown_replicas.contains(r))
            .collect();
        elr.sort_unstable();
        elr.dedup();
        self.target_elr = elr;
    }

    fn acceptable(&self, replica: NodeId) -> bool {
        replica != NO_LEADER && (self.is_acceptable_leader)(replica)
    }

    /// A clean leader: in the target ISR, or in the ELR while the ISR is empty.
    fn is_valid_new_leader(&self, replica: NodeId) -> bool {
        (self.target_isr.contains(&replica)
            || (self.target_isr.is_empty() && self.target_elr.contains(&replica)))
            && self.acceptable(replica)
    }

    /// With ISR and ELR empty, the leader the partition last had (KIP-966 balanced
    /// recovery) may lead again. Kafka also picks it when it is not alive; strom
    /// requires it to be acceptable, so a leader is never a fenced broker.
    fn last_known_leader(&self) -> Option<NodeId> {
        if !self.elr_enabled || !self.target_elr.is_empty() || !self.target_isr.is_empty() {
            return None;
        }
        match self.partition.last_known_elr.as_slice() {
            [leader] if self.acceptable(*leader) => Some(*leader),
            _ => None,
        }
    }

    /// The leader and whether choosing it was unclean.
    fn choose_leader(&self) -> (NodeId, bool) {
        let current = self.partition.leader;
        if self.election == Election::Preferred {
            if let Some(&preferred) = self.target_replicas.first() {
                if self.is_valid_new_leader(preferred) {
                    return (preferred, false);
                }
            }
        }
        if self.is_valid_new_leader(current) {
            return (current, false);
        }
        if let Some(&leader) = self
            .target_replicas
            .iter()
            .find(|r| self.is_valid_new_leader(**r))
        {
            return (leader, false);
        }
        if let Some(leader) = self.last_known_leader() {
            return (leader, true);
        }
        if self.election == Election::Unclean {
            if let Some(&leader) = self.target_replicas.iter().find(|r| self.acceptable(**r)) {
                return (leader, true);
            }
        }
        (NO_LEADER, false)
    }

    fn elect(&mut self, change: &mut Change) {
        let (leader, unclean) = self.choose_leader();
        if leader == self.partition.leader {
            return;
        }
        if self.target_elr.contains(&leader) {
            // An ELR member holds every committed record: it becomes the ISR.
            self.target_isr = vec![leader];
            self.target_elr.retain(|r| *r != leader);
        }
        change.leader = Some(leader);
        if unclean {
            change.isr = Some(vec![leader]);
            if self.partition.leader_recovery_state != LeaderRecoveryState::Recovering {
                change.recovery = Some(LeaderRecoveryState::Recovering);
                self.target_recovery = LeaderRecoveryState::Recovering;
            }
        }
    }

    fn set_elr(&mut self, change: &mut Change) {
        let clean = change.isr.is_none();
        if !clean || !self.elr_enabled {
            self.target_elr.clear();
        }
        if self.target_elr != self.partition.elr {
            change.elr = Some(self.target_elr.clone());
        }
    }

    /// `last_known_elr` holds the leader a partition had when its ISR became empty,
    /// and is cleared once it has a leader again.
    fn update_last_known_leader(&self, change: &mut Change) {
        if !self.elr_enabled {
            if !self.partition.last_known_elr.is_empty() {
                change.last_known_elr = Some(Vec::new());
            }
            return;
        }
        let partition = self.partition;
        let isr_emptied = change.isr.as_ref().is_some_and(|isr| isr.is_empty());
        if isr_emptied && partition.last_known_elr != [partition.leader] {
            change.last_known_elr = Some(vec![partition.leader]);
        } else if (change.leader.is_some_and(|l| l >= 0)
            || (partition.leader != NO_LEADER && change.leader != Some(NO_LEADER)))
            && !partition.last_known_elr.is_empty()
        {
            change.last_known_elr = Some(Vec::new());
        }
    }
}

/// Kafka's PartitionReassignmentReplicas.maybeCompleteReassignment: a reassignment is
/// done once the ISR holds every target replica (and one of them at least). Returns
/// the final replicas and ISR.
pub fn completed_reassignment(
    replicas: &[NodeId],
    removing: &[NodeId],
    adding: &[NodeId],
    isr: &[NodeId],
) -> Option<(Vec<NodeId>, Vec<NodeId>)> {
    if removing.is_empty() && adding.is_empty() {
        return None;
    }
    let keep = |r: &&NodeId| !removing.contains(r);
    let new_isr: Vec<NodeId> = isr.iter().filter(keep).copied().collect();
    let new_replicas: Vec<NodeId> = replicas.iter().filter(keep).copied().collect();
    if new_isr.is_empty() || new_replicas.is_empty() {
        return None;
    }
    if !new_replicas.iter().all(|r| new_isr.contains(r)) {
        return None;
    }
    Some((new_replicas, new_isr))
}

/// A leader acceptor over an image: unfenced and not in controlled shutdown.
pub fn active_in(image: &MetadataImage) -> impl Fn(NodeId) -> bool + '_ {
    move |id| image.is_broker_active(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: TopicId = TopicId::from_u128(7);

    fn partition(replicas: &[NodeId], isr: &[NodeId], leader: NodeId) -> PartitionImage {
        PartitionImage {
            directories: vec![],
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 100,
            partition_epoch: 200,
            removing_replicas: vec![],
            adding_replicas: vec![],
            elr: vec![],
            last_known_elr: vec![],
            leader_recovery_state: LeaderRecoveryState::Recovered,
        }
    }

    fn policy(min_isr: usize, unclean: bool, elr: bool) -> ElectionPolicy {
        ElectionPolicy {
            min_insync_replicas: min_isr,
            unclean_leader_election: unclean,
            elr_enabled: elr,
        }
    }

    #[derive(Default)]
    struct Expect {
        leader: Option<NodeId>,
        isr: Option<Vec<NodeId>>,
        replicas: Option<Vec<NodeId>>,
        removing: Option<Vec<NodeId>>,
        adding: Option<Vec<NodeId>>,
        elr: Option<Vec<NodeId>>,
        last_known_elr: Option<Vec<NodeId>>,
        recovery: Option<LeaderRecoveryState>,
    }

    fn record(e: Expect) -> Option<MetadataRecord> {
        Some(MetadataRecord::PartitionChange {
            directories: None,
            topic_id: TOPIC,
            partition: 0,
            leader: e.leader,
            isr: e.isr,
            replicas: e.replicas,
            removing_replicas: e.removing,
            adding_replicas: e.adding,
            elr: e.elr,
            last_known_elr: e.last_known_elr,
            leader_recovery_state: e.recovery,
        })
    }

    fn alive(ids: &'static [NodeId]) -> impl Fn(NodeId) -> bool {
        move |id| ids.contains(&id)
    }

    #[test]
    fn nothing_to_change_is_no_record() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        let ok = alive(&[1, 2, 3]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, true)).build(),
            None
        );
        // The preferred leader already leads.
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, true))
                .election(Election::Preferred)
                .build(),
            None
        );
    }

    #[test]
    fn the_current_leader_stays_while_acceptable() {
        let p = partition(&[1, 2, 3], &[2, 1, 3], 2);
        let ok = alive(&[1, 2, 3]);
        let shrink = PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, true))
            .target_isr(vec![2, 1])
            .build();
        assert_eq!(
            shrink,
            record(Expect {
                isr: Some(vec![2, 1]),
                ..Default::default()
            })
        );
        let shrunk = p.merged(shrink.as_ref().unwrap());
        assert_eq!((shrunk.leader_epoch, shrunk.partition_epoch), (100, 201));
    }

    #[test]
    fn a_lost_leader_is_replaced_by_the_first_isr_member_in_replica_order() {
        let p = partition(&[1, 2, 3], &[3, 2, 1], 1);
        let ok = alive(&[2, 3]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, true))
                .target_isr(vec![3, 2])
                .build(),
            record(Expect {
                leader: Some(2),
                isr: Some(vec![3, 2]),
                ..Default::default()
            })
        );
    }

    #[test]
    fn preferred_election_moves_leadership_to_the_first_replica() {
        let p = partition(&[1, 2, 3], &[1, 2, 3], 2);
        let ok = alive(&[1, 2, 3]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, true))
                .election(Election::Preferred)
                .build(),
            record(Expect {
                leader: Some(1),
                ..Default::default()
            })
        );
        // Not in the ISR: the current leader stays and nothing changes.
        let p = partition(&[1, 2, 3], &[2, 3], 2);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, true))
                .election(Election::Preferred)
                .build(),
            None
        );
    }

    #[test]
    fn no_acceptable_replica_means_no_leader() {
        let p = partition(&[1, 2], &[1, 2], 1);
        let ok = alive(&[]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, false))
                .target_isr(vec![1])
                .build(),
            record(Expect {
                leader: Some(NO_LEADER),
                isr: Some(vec![1]),
                ..Default::default()
            })
        );
    }

    #[test]
    fn unclean_election_only_when_enabled_and_no_clean_candidate() {
        // ISR [1] is gone; 2 is alive but out of sync.
        let p = partition(&[1, 2], &[1], NO_LEADER);
        let ok = alive(&[2]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, false)).build(),
            None
        );
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, true, false)).build(),
            record(Expect {
                leader: Some(2),
                isr: Some(vec![2]),
                recovery: Some(LeaderRecoveryState::Recovering),
                ..Default::default()
            })
        );
        // A clean candidate wins even when unclean election is enabled.
        let p = partition(&[1, 2, 3], &[1, 3], 1);
        let ok = alive(&[2, 3]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, true, false))
                .target_isr(vec![3])
                .build(),
            record(Expect {
                leader: Some(3),
                isr: Some(vec![3]),
                ..Default::default()
            })
        );
    }

    #[test]
    fn shrinking_below_min_isr_moves_members_to_the_elr() {
        let p = partition(&[1, 2, 3, 4], &[1, 2, 3, 4], 1);
        let ok = alive(&[1, 2, 3, 4]);
        let shrink = PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(3, false, true))
            .target_isr(vec![1, 2])
            .build();
        assert_eq!(
            shrink,
            record(Expect {
                isr: Some(vec![1, 2]),
                elr: Some(vec![3, 4]),
                ..Default::default()
            })
        );
        // Everything fenced: the ISR empties, the old members are all ELR, no leader,
        // and the last leader is remembered.
        let p = partition(&[1, 2, 3, 4], &[1, 2, 3, 4], 1);
        let none = alive(&[]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &none, policy(3, false, true))
                .target_isr(vec![])
                .build(),
            record(Expect {
                leader: Some(NO_LEADER),
                isr: Some(vec![]),
                elr: Some(vec![1, 2, 3, 4]),
                last_known_elr: Some(vec![1]),
                ..Default::default()
            })
        );
    }

    #[test]
    fn an_elr_member_leads_when_the_isr_is_empty() {
        let mut p = partition(&[1, 2, 3], &[], NO_LEADER);
        p.elr = vec![2, 3];
        p.last_known_elr = vec![1];
        let ok = alive(&[3]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(2, false, true)).build(),
            record(Expect {
                leader: Some(3),
                isr: Some(vec![3]),
                elr: Some(vec![2]),
                last_known_elr: Some(vec![]),
                ..Default::default()
            })
        );
        // Back at min ISR, the ELR is cleared.
        let mut p = partition(&[1, 2, 3], &[3], 3);
        p.elr = vec![2];
        let ok = alive(&[2, 3]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(2, false, true))
                .target_isr(vec![3, 2])
                .build(),
            record(Expect {
                isr: Some(vec![3, 2]),
                elr: Some(vec![]),
                ..Default::default()
            })
        );
    }

    #[test]
    fn the_last_known_leader_returns_when_isr_and_elr_are_empty() {
        let mut p = partition(&[1, 2, 3], &[], NO_LEADER);
        p.last_known_elr = vec![1];
        let ok = alive(&[1, 2]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(2, false, true)).build(),
            record(Expect {
                leader: Some(1),
                isr: Some(vec![1]),
                last_known_elr: Some(vec![]),
                recovery: Some(LeaderRecoveryState::Recovering),
                ..Default::default()
            })
        );
        // Not alive: no leader, and nothing changes.
        let ok = alive(&[2]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(2, false, true)).build(),
            None
        );
    }

    #[test]
    fn an_unclean_shutdown_replica_leaves_the_elr() {
        let mut p = partition(&[1, 2, 3], &[], NO_LEADER);
        p.elr = vec![1, 2];
        let ok = alive(&[]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(2, false, true))
                .unclean_shutdown_replicas(vec![2])
                .build(),
            record(Expect {
                elr: Some(vec![1]),
                ..Default::default()
            })
        );
    }

    #[test]
    fn a_reassignment_completes_once_the_isr_holds_the_targets() {
        let mut p = partition(&[1, 2, 3, 4], &[1, 2, 3], 1);
        p.removing_replicas = vec![1];
        p.adding_replicas = vec![4];
        let ok = alive(&[1, 2, 3, 4]);
        let done = PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, true))
            .target_isr(vec![1, 2, 3, 4])
            .build();
        assert_eq!(
            done,
            record(Expect {
                leader: Some(2),
                isr: Some(vec![2, 3, 4]),
                replicas: Some(vec![2, 3, 4]),
                removing: Some(vec![]),
                adding: Some(vec![]),
                ..Default::default()
            })
        );
        let after = p.merged(done.as_ref().unwrap());
        assert_eq!((after.leader_epoch, after.partition_epoch), (101, 201));
    }

    #[test]
    fn removing_a_follower_bumps_the_leader_epoch() {
        let mut p = partition(&[1, 2, 3], &[1, 2, 3], 1);
        p.removing_replicas = vec![3];
        let ok = alive(&[1, 2, 3]);
        assert_eq!(
            PartitionChangeBuilder::new(&p, TOPIC, &ok, policy(1, false, true)).build(),
            record(Expect {
                leader: Some(1),
                isr: Some(vec![1, 2]),
                replicas: Some(vec![1, 2]),
                removing: Some(vec![]),
                ..Default::default()
            })
        );
    }

    #[test]
    fn policy_reads_topic_then_cluster_configs_and_caps_min_isr() {
        let topic_id = TopicId::from_u128(1);
        let mut records = vec![
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id,
            },
            MetadataRecord::Partition {
                directories: vec![],
                topic_id,
                partition: 0,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                removing_replicas: vec![],
                adding_replicas: vec![],
                elr: vec![],
                last_known_elr: vec![],
                leader_recovery_state: LeaderRecoveryState::Recovered,
            },
        ];
        records.push(MetadataRecord::Config {
            resource: ConfigResource::Broker(None),
            name: "unclean.leader.election.enable".into(),
            value: Some("true".into()),
        });
        records.push(MetadataRecord::Config {
            resource: ConfigResource::Topic("t".into()),
            name: "min.insync.replicas".into(),
            value: Some("3".into()),
        });
        let image = MetadataImage::default().apply(&records);
        let topic = image.topic("t").unwrap();
        assert_eq!(
            ClusterElectionDefaults::default().for_topic(&image, topic),
            policy(2, true, true)
        );
    }
}
