//! Broker registration, heartbeats, fencing and controlled shutdown, as Kafka's
//! ClusterControlManager and BrokerHeartbeatManager do them. Liveness (last contact,
//! metadata offset, controlled shutdown progress) lives only in the active
//! controller's memory; every durable change is a record the caller writes.
//!
//! Contract: calls are serialized, `now_ms` is the caller's clock, `next_offset` is
//! the offset the returned records will be written at, and the caller applies the
//! returned records to the image before its next call.

use std::collections::BTreeMap;

use strom_types::NodeId;

use crate::error::ControllerError;
use crate::image::{MetadataImage, PartitionImage};
use crate::partition_change::{ClusterElectionDefaults, PartitionChangeBuilder};
use crate::records::{BrokerEndpoint, MetadataRecord, LOST_DIR, NO_LEADER};

/// Kafka's `broker.session.timeout.ms` default.
pub const DEFAULT_BROKER_SESSION_TIMEOUT_MS: u64 = 9000;

#[derive(Debug, Clone, Copy)]
pub struct ClusterControlConfig {
    /// `broker.session.timeout.ms`: a broker silent for longer is fenced.
    pub session_timeout_ms: u64,
    pub election: ClusterElectionDefaults,
}

impl Default for ClusterControlConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms: DEFAULT_BROKER_SESSION_TIMEOUT_MS,
            election: ClusterElectionDefaults::default(),
        }
    }
}

/// BrokerRegistration, as far as the controller's decisions go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistrationRequest {
    pub broker_id: NodeId,
    pub incarnation_id: uuid::Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// KIP-966: the epoch the broker had before a clean shutdown, -1 when unknown.
    pub previous_broker_epoch: i64,
    /// The ids of its online log dirs (KIP-858).
    pub log_dirs: Vec<uuid::Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerRegistrationReply {
    pub broker_epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerHeartbeatRequest {
    pub broker_id: NodeId,
    pub broker_epoch: i64,
    /// The last metadata offset the broker has applied.
    pub current_metadata_offset: i64,
    /// The broker is not ready to be unfenced (or wants to be fenced).
    pub want_fence: bool,
    pub want_shut_down: bool,
    /// The ids of its log dirs an I/O error took offline (KIP-858).
    pub offline_log_dirs: Vec<uuid::Uuid>,
}

/// BrokerHeartbeat's response fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerHeartbeatReply {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub in_controlled_shutdown: bool,
    pub should_shut_down: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrokerState {
    Fenced,
    Unfenced,
    ControlledShutdown,
    ShutdownNow,
}

/// What the active controller knows of one broker's session (never in the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Session {
    last_contact_ms: u64,
    /// The last metadata offset the broker reported, -1 before its first heartbeat.
    metadata_offset: i64,
    fenced: bool,
    /// Offset of the records that moved its leaderships away; set while shutting down.
    controlled_shutdown_offset: Option<i64>,
    /// Offset of its latest RegisterBroker record: it is unfenced once caught up to it.
    registration_offset: i64,
}

impl Session {
    fn state(&self) -> BrokerState {
        if self.controlled_shutdown_offset.is_some() {
            BrokerState::ControlledShutdown
        } else if self.fenced {
            BrokerState::Fenced
        } else {
            BrokerState::Unfenced
        }
    }
}

/// The active controller's view of broker liveness.
#[derive(Debug, Clone)]
pub struct ClusterControl {
    config: ClusterControlConfig,
    sessions: BTreeMap<NodeId, Session>,
}

impl ClusterControl {
    /// A controller that just became active: every registered broker gets a full session
    /// from `now_ms`, as Kafka's new heartbeat manager does.
    pub fn new(config: ClusterControlConfig, image: &MetadataImage, now_ms: u64) -> Self {
        let sessions = image
            .brokers()
            .map(|b| {
                (
                    b.id,
                    Session {
                        last_contact_ms: now_ms,
                        metadata_offset: -1,
                        fenced: b.fenced,
                        controlled_shutdown_offset: None,
                        registration_offset: b.epoch,
                    },
                )
            })
            .collect();
        Self { config, sessions }
    }

    /// Forgets a broker's session: its registered incarnation is known to be gone (the
    /// controller's own process restarted), so a new one may register at once.
    pub fn expire_session(&mut self, broker_id: NodeId) {
        self.sessions.remove(&broker_id);
    }

    /// Starts a broker's session no later than `at_ms`: the new active controller knows
    /// when it last heard from the previous one, and a broker in that process that
    /// was alive would have found the new controller since.
    pub fn last_heard_at(&mut self, broker_id: NodeId, at_ms: u64) {
        if let Some(session) = self.sessions.get_mut(&broker_id) {
            session.last_contact_ms = session.last_contact_ms.min(at_ms);
        }
    }

    pub fn config(&self) -> &ClusterControlConfig {
        &self.config
    }

    /// Unfenced and heard from within the session timeout.
    pub fn has_valid_session(&self, broker_id: NodeId, now_ms: u64) -> bool {
        self.sessions.get(&broker_id).is_some_and(|s| {
            !s.fenced
                && s.last_contact_ms
                    .saturating_add(self.config.session_timeout_ms)
                    >= now_ms
        })
    }

    /// BrokerRegistration. A new incarnation gets the epoch `next_offset` and starts
    /// fenced; the same incarnation registering again keeps its epoch and state.
    pub fn register_broker(
        &mut self,
        image: &MetadataImage,
        request: &BrokerRegistrationRequest,
        next_offset: i64,
        now_ms: u64,
    ) -> Result<(Vec<MetadataRecord>, BrokerRegistrationReply), ControllerError> {
        let broker_id = request.broker_id;
        let existing = image.broker(broker_id);
        let same_incarnation =
            existing.is_some_and(|b| b.incarnation_id == Some(request.incarnation_id));
        if existing.is_some() && !same_incarnation && self.has_valid_session(broker_id, now_ms) {
            return Err(ControllerError::DuplicateBrokerRegistration(
                "Another broker is registered with that broker id.".into(),
            ));
        }
        let mut records = Vec::new();
        let (epoch, fenced, in_controlled_shutdown) = match existing {
            Some(b) if same_incarnation => (b.epoch, b.fenced, b.in_controlled_shutdown),
            _ => {
                // A restart without a clean shutdown may have lost records it had
                // acknowledged: it leaves every ISR and ELR.
                if existing.is_some_and(|b| request.previous_broker_epoch != b.epoch) {
                    records.extend(self.leader_and_isr_updates(
                        image,
                        NO_LEADER,
                        NO_LEADER,
                        broker_id,
                        |p| p.isr.contains(&broker_id) || p.elr.contains(&broker_id),
                    ));
                }
                (next_offset, true, false)
            }
        };
        records.push(MetadataRecord::RegisterBroker {
            broker_id,
            endpoints: request.endpoints.clone(),
            rack: request.rack.clone(),
            incarnation_id: Some(request.incarnation_id),
            broker_epoch: epoch,
            fenced,
            in_controlled_shutdown,
            log_dirs: request.log_dirs.clone(),
        });
        // A dir that held replicas and is not among those it registered now (it could not
        // be opened at start) is offline: the broker leaves those partitions' ISRs.
        let registered = image.apply(&records);
        if let Some(b) = registered.broker(broker_id) {
            records.extend(self.leader_and_isr_updates(
                &registered,
                broker_id,
                NO_LEADER,
                NO_LEADER,
                |p| p.isr.contains(&broker_id) && !b.has_online_dir(p.directory(broker_id)),
            ));
        }
        let previous = self.sessions.get(&broker_id).filter(|_| same_incarnation);
        let session = Session {
            last_contact_ms: now_ms,
            metadata_offset: previous
                .filter(|s| s.fenced != fenced)
                .map_or(-1, |s| s.metadata_offset),
            fenced,
            controlled_shutdown_offset: None,
            registration_offset: next_offset,
        };
        self.sessions.insert(broker_id, session);
        Ok((
            records,
            BrokerRegistrationReply {
                broker_epoch: epoch,
            },
        ))
    }

    /// BrokerHeartbeat: renews the session and moves the broker between fenced,
    /// unfenced, controlled shutdown and shut down.
    pub fn heartbeat(
        &mut self,
        image: &MetadataImage,
        request: &BrokerHeartbeatRequest,
        next_offset: i64,
        now_ms: u64,
    ) -> Result<(Vec<MetadataRecord>, BrokerHeartbeatReply), ControllerError> {
        let broker_id = request.broker_id;
        check_broker_epoch(image, broker_id, request.broker_epoch)?;
        let mut records = self.directories_offline(image, broker_id, &request.offline_log_dirs);
        let after_dirs;
        let image = if records.is_empty() {
            image
        } else {
            after_dirs = image.apply(&records);
            &after_dirs
        };
        let broker = check_broker_epoch(image, broker_id, request.broker_epoch)?;
        let lowest_active_offset = self.lowest_active_offset();
        let session = *self.sessions.entry(broker_id).or_insert(Session {
            last_contact_ms: now_ms,
            metadata_offset: -1,
            fenced: broker.fenced,
            controlled_shutdown_offset: None,
            registration_offset: broker.epoch,
        });
        let leads_something = || leads_any(image, broker_id);
        let current = session.state();
        let next = match current {
            BrokerState::Fenced => {
                if request.want_shut_down {
                    BrokerState::ShutdownNow
                } else if !request.want_fence
                    && request.current_metadata_offset >= session.registration_offset
                {
                    BrokerState::Unfenced
                } else {
                    BrokerState::Fenced
                }
            }
            BrokerState::Unfenced => {
                if request.want_fence {
                    if request.want_shut_down {
                        BrokerState::ShutdownNow
                    } else {
                        BrokerState::Fenced
                    }
                } else if request.want_shut_down {
                    if leads_something() {
                        BrokerState::ControlledShutdown
                    } else {
                        BrokerState::ShutdownNow
                    }
                } else {
                    BrokerState::Unfenced
                }
            }
            BrokerState::ControlledShutdown => {
                let shutdown_offset = session.controlled_shutdown_offset.unwrap_or(i64::MAX);
                if !leads_something() && shutdown_offset <= lowest_active_offset {
                    BrokerState::ShutdownNow
                } else {
                    BrokerState::ControlledShutdown
                }
            }
            BrokerState::ShutdownNow => BrokerState::ShutdownNow,
        };
        if current != next {
            match next {
                BrokerState::Fenced | BrokerState::ShutdownNow => {
                    records.extend(self.fence_records(image, broker_id, broker.epoch));
                }
                BrokerState::Unfenced => {
                    let unfence = MetadataRecord::BrokerRegistrationChange {
                        broker_id,
                        broker_epoch: broker.epoch,
                        fenced: Some(false),
                        in_controlled_shutdown: None,
                        log_dirs: None,
                    };
                    // It may lead partitions that have no leader now.
                    let unfenced = image.apply([&unfence]);
                    records.push(unfence);
                    records.extend(self.leader_and_isr_updates(
                        &unfenced,
                        NO_LEADER,
                        broker_id,
                        NO_LEADER,
                        |p| !p.has_leader(),
                    ));
                }
                BrokerState::ControlledShutdown => {
                    let mut shutting = Vec::new();
                    if !broker.in_controlled_shutdown {
                        shutting.push(MetadataRecord::BrokerRegistrationChange {
                            broker_id,
                            broker_epoch: broker.epoch,
                            fenced: None,
                            in_controlled_shutdown: Some(true),
                            log_dirs: None,
                        });
                    }
                    let shutting_down = image.apply(&shutting);
                    records.extend(shutting);
                    records.extend(self.leader_and_isr_updates(
                        &shutting_down,
                        broker_id,
                        NO_LEADER,
                        NO_LEADER,
                        |p| p.isr.contains(&broker_id),
                    ));
                }
            }
        }
        let fenced = matches!(next, BrokerState::Fenced | BrokerState::ShutdownNow);
        let in_controlled_shutdown = next == BrokerState::ControlledShutdown;
        let controlled_shutdown_offset = match next {
            BrokerState::ControlledShutdown => {
                Some(session.controlled_shutdown_offset.unwrap_or(next_offset))
            }
            _ => None,
        };
        self.sessions.insert(
            broker_id,
            Session {
                last_contact_ms: now_ms,
                metadata_offset: request.current_metadata_offset,
                fenced,
                controlled_shutdown_offset,
                registration_offset: session.registration_offset,
            },
        );
        Ok((
            records,
            BrokerHeartbeatReply {
                is_caught_up: request.current_metadata_offset >= session.registration_offset,
                is_fenced: fenced,
                in_controlled_shutdown,
                should_shut_down: next == BrokerState::ShutdownNow,
            },
        ))
    }

    /// Fences every unfenced broker not heard from within the session timeout: its
    /// leaderships move, it leaves ISRs (into the ELR below min ISR).
    pub fn fence_expired(&mut self, image: &MetadataImage, now_ms: u64) -> Vec<MetadataRecord> {
        let timeout = self.config.session_timeout_ms;
        let stale: Vec<NodeId> = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.fenced && s.last_contact_ms.saturating_add(timeout) < now_ms)
            .map(|(id, _)| *id)
            .collect();
        let mut records = Vec::new();
        // One broker at a time, each seeing the changes made for the one before.
        let mut working = image.clone();
        for broker_id in stale {
            if let Some(session) = self.sessions.get_mut(&broker_id) {
                session.fenced = true;
                session.controlled_shutdown_offset = None;
            }
            let Some(epoch) = working.broker(broker_id).map(|b| b.epoch) else {
                continue;
            };
            let fenced = self.fence_records(&working, broker_id, epoch);
            working = working.apply(&fenced);
            records.extend(fenced);
        }
        records
    }

    /// UnregisterBroker: the broker leaves every ISR and ELR and the cluster.
    pub fn unregister_broker(
        &mut self,
        image: &MetadataImage,
        broker_id: NodeId,
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let broker = image.broker(broker_id).ok_or_else(|| {
            ControllerError::BrokerIdNotRegistered(format!(
                "Broker ID {broker_id} is not currently registered"
            ))
        })?;
        let mut records =
            self.leader_and_isr_updates(image, broker_id, NO_LEADER, broker_id, |p| {
                p.isr.contains(&broker_id) || p.elr.contains(&broker_id)
            });
        records.push(MetadataRecord::UnregisterBroker {
            broker_id,
            broker_epoch: broker.epoch,
        });
        self.sessions.remove(&broker_id);
        Ok(records)
    }

    /// When the next session may expire: call `fence_expired` then.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.sessions
            .values()
            .filter(|s| !s.fenced)
            .map(|s| {
                s.last_contact_ms
                    .saturating_add(self.config.session_timeout_ms)
                    .saturating_add(1)
            })
            .min()
    }

    /// The lowest metadata offset reported by an active broker (unfenced, not shutting
    /// down): a shutting-down broker may go once every active one has seen its moves.
    fn lowest_active_offset(&self) -> i64 {
        self.sessions
            .values()
            .filter(|s| !s.fenced && s.controlled_shutdown_offset.is_none())
            .map(|s| s.metadata_offset)
            .min()
            .unwrap_or(i64::MAX)
    }

    fn fence_records(
        &self,
        image: &MetadataImage,
        broker_id: NodeId,
        broker_epoch: i64,
    ) -> Vec<MetadataRecord> {
        let mut records =
            self.leader_and_isr_updates(image, broker_id, NO_LEADER, NO_LEADER, |p| {
                p.isr.contains(&broker_id)
            });
        records.push(MetadataRecord::BrokerRegistrationChange {
            broker_id,
            broker_epoch,
            fenced: Some(true),
            in_controlled_shutdown: None,
            log_dirs: None,
        });
        records
    }

    /// Kafka's handleDirectoriesOffline: the dirs a broker reports offline that it had
    /// registered online leave its registration, and it leaves the ISR of every partition
    /// whose replica lives in one (another leader is elected where it led), as fencing
    /// does for all its partitions.
    pub fn directories_offline(
        &self,
        image: &MetadataImage,
        broker_id: NodeId,
        offline: &[uuid::Uuid],
    ) -> Vec<MetadataRecord> {
        let Some(broker) = image.broker(broker_id) else {
            return Vec::new();
        };
        let newly_offline: Vec<uuid::Uuid> = broker
            .log_dirs
            .iter()
            .copied()
            .filter(|d| offline.contains(d))
            .collect();
        if newly_offline.is_empty() {
            return Vec::new();
        }
        let mut records =
            self.leader_and_isr_updates(image, broker_id, NO_LEADER, NO_LEADER, |p| {
                p.isr.contains(&broker_id) && newly_offline.contains(&p.directory(broker_id))
            });
        let mut online: Vec<uuid::Uuid> = broker
            .log_dirs
            .iter()
            .copied()
            .filter(|d| !newly_offline.contains(d))
            .collect();
        if online.is_empty() {
            // An empty list means "reports no dirs" (all online): none is online here.
            online.push(LOST_DIR);
        }
        records.push(MetadataRecord::BrokerRegistrationChange {
            broker_id,
            broker_epoch: broker.epoch,
            fenced: None,
            in_controlled_shutdown: None,
            log_dirs: Some(online),
        });
        records
    }

    /// Kafka's generateLeaderAndIsrUpdates: for each selected partition, removes
    /// `remove` (and `unclean_shutdown`) from the ISR and elects a leader among active
    /// brokers, counting `add` as active and `remove`/`unclean_shutdown` as not.
    fn leader_and_isr_updates(
        &self,
        image: &MetadataImage,
        remove: NodeId,
        add: NodeId,
        unclean_shutdown: NodeId,
        select: impl Fn(&PartitionImage) -> bool,
    ) -> Vec<MetadataRecord> {
        leader_and_isr_updates(
            image,
            &self.config.election,
            remove,
            add,
            unclean_shutdown,
            select,
        )
    }
}

/// See [`ClusterControl`]'s method of the same name; shared with reassignments.
pub(crate) fn leader_and_isr_updates(
    image: &MetadataImage,
    defaults: &ClusterElectionDefaults,
    remove: NodeId,
    add: NodeId,
    unclean_shutdown: NodeId,
    select: impl Fn(&PartitionImage) -> bool,
) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for topic in image.topics() {
        let policy = defaults.for_topic(image, topic);
        for partition in topic.partitions.values().filter(|p| select(p)) {
            // A replica in an offline dir cannot lead.
            let acceptable = |r: NodeId| {
                r != remove
                    && r != unclean_shutdown
                    && (r == add || image.is_broker_active(r))
                    && image
                        .broker(r)
                        .is_none_or(|b| b.has_online_dir(partition.directory(r)))
            };
            let isr = partition
                .isr
                .iter()
                .copied()
                .filter(|r| *r != remove && *r != unclean_shutdown)
                .collect();
            let mut builder = PartitionChangeBuilder::new(partition, topic.id, &acceptable, policy)
                .target_isr(isr);
            if unclean_shutdown != NO_LEADER {
                builder = builder.unclean_shutdown_replicas(vec![unclean_shutdown]);
            }
            records.extend(builder.build());
        }
    }
    records
}

fn leads_any(image: &MetadataImage, broker_id: NodeId) -> bool {
    image
        .topics()
        .any(|t| t.partitions.values().any(|p| p.leader == broker_id))
}

/// Kafka's checkBrokerEpoch.
pub fn check_broker_epoch(
    image: &MetadataImage,
    broker_id: NodeId,
    broker_epoch: i64,
) -> Result<&crate::image::BrokerImage, ControllerError> {
    let broker = image.broker(broker_id).ok_or_else(|| {
        ControllerError::StaleBrokerEpoch(format!(
            "No broker registration found for broker id {broker_id}"
        ))
    })?;
    if broker.epoch != broker_epoch {
        return Err(ControllerError::StaleBrokerEpoch(format!(
            "Expected broker epoch {}, but got broker epoch {broker_epoch}",
            broker.epoch
        )));
    }
    Ok(broker)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::records::LeaderRecoveryState;
    use strom_types::TopicId;

    pub(crate) const T: TopicId = TopicId::from_u128(0xabc);

    pub(crate) fn broker(id: NodeId, epoch: i64, fenced: bool) -> MetadataRecord {
        MetadataRecord::RegisterBroker {
            log_dirs: vec![],
            broker_id: id,
            endpoints: vec![],
            rack: None,
            incarnation_id: Some(uuid::Uuid::from_u128(id as u128)),
            broker_epoch: epoch,
            fenced,
            in_controlled_shutdown: false,
        }
    }

    pub(crate) fn partition_record(
        partition: i32,
        replicas: &[NodeId],
        isr: &[NodeId],
        leader: NodeId,
    ) -> MetadataRecord {
        MetadataRecord::Partition {
            directories: vec![],
            topic_id: T,
            partition,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 5,
            partition_epoch: 9,
            removing_replicas: vec![],
            adding_replicas: vec![],
            elr: vec![],
            last_known_elr: vec![],
            leader_recovery_state: LeaderRecoveryState::Recovered,
        }
    }

    /// Brokers 1..=3 unfenced (epochs 10, 20, 30), topic "t" with the given partitions.
    pub(crate) fn cluster(partitions: Vec<MetadataRecord>) -> MetadataImage {
        let mut records = vec![
            broker(1, 10, false),
            broker(2, 20, false),
            broker(3, 30, false),
        ];
        records.push(MetadataRecord::Topic {
            name: "t".into(),
            topic_id: T,
        });
        records.extend(partitions);
        MetadataImage::default().apply(&records)
    }

    /// The fields of a `PartitionChange` for tests (`None`: unchanged).
    #[derive(Default)]
    pub(crate) struct Pc {
        pub leader: Option<NodeId>,
        pub isr: Option<Vec<NodeId>>,
        pub replicas: Option<Vec<NodeId>>,
        pub removing_replicas: Option<Vec<NodeId>>,
        pub adding_replicas: Option<Vec<NodeId>>,
        pub leader_recovery_state: Option<LeaderRecoveryState>,
    }

    pub(crate) fn pc(partition: i32, c: Pc) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            directories: None,
            topic_id: T,
            partition,
            leader: c.leader,
            isr: c.isr,
            replicas: c.replicas,
            removing_replicas: c.removing_replicas,
            adding_replicas: c.adding_replicas,
            elr: None,
            last_known_elr: None,
            leader_recovery_state: c.leader_recovery_state,
        }
    }

    pub(crate) fn change(partition: i32) -> MetadataRecord {
        MetadataRecord::PartitionChange {
            directories: None,
            topic_id: T,
            partition,
            leader: None,
            isr: None,
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
            elr: None,
            last_known_elr: None,
            leader_recovery_state: None,
        }
    }

    pub(crate) fn with(
        record: MetadataRecord,
        f: impl FnOnce(
            &mut Option<NodeId>,
            &mut Option<Vec<NodeId>>,
            &mut Option<Vec<NodeId>>,
            &mut Option<Vec<NodeId>>,
        ),
    ) -> MetadataRecord {
        let mut record = record;
        if let MetadataRecord::PartitionChange {
            leader,
            isr,
            elr,
            last_known_elr,
            ..
        } = &mut record
        {
            f(leader, isr, elr, last_known_elr);
        }
        record
    }

    fn registration_change(
        id: NodeId,
        epoch: i64,
        fenced: Option<bool>,
        cs: Option<bool>,
    ) -> MetadataRecord {
        MetadataRecord::BrokerRegistrationChange {
            log_dirs: None,
            broker_id: id,
            broker_epoch: epoch,
            fenced,
            in_controlled_shutdown: cs,
        }
    }

    fn heartbeat(id: NodeId, epoch: i64, offset: i64) -> BrokerHeartbeatRequest {
        BrokerHeartbeatRequest {
            offline_log_dirs: vec![],
            broker_id: id,
            broker_epoch: epoch,
            current_metadata_offset: offset,
            want_fence: false,
            want_shut_down: false,
        }
    }

    fn registration(id: NodeId, incarnation: u128) -> BrokerRegistrationRequest {
        BrokerRegistrationRequest {
            log_dirs: vec![],
            broker_id: id,
            incarnation_id: uuid::Uuid::from_u128(incarnation),
            endpoints: vec![],
            rack: Some("r".into()),
            previous_broker_epoch: -1,
        }
    }

    #[test]
    fn a_new_broker_registers_fenced_with_the_offset_as_epoch_and_unfences_once_caught_up() {
        let image = MetadataImage::default();
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        let (records, reply) = control
            .register_broker(&image, &registration(4, 44), 100, 0)
            .unwrap();
        assert_eq!(reply, BrokerRegistrationReply { broker_epoch: 100 });
        assert_eq!(
            records,
            vec![MetadataRecord::RegisterBroker {
                log_dirs: vec![],
                broker_id: 4,
                endpoints: vec![],
                rack: Some("r".into()),
                incarnation_id: Some(uuid::Uuid::from_u128(44)),
                broker_epoch: 100,
                fenced: true,
                in_controlled_shutdown: false,
            }]
        );
        let image = image.apply(&records);
        let (records, reply) = control
            .heartbeat(&image, &heartbeat(4, 100, 99), 101, 10)
            .unwrap();
        assert!(records.is_empty());
        assert_eq!(
            reply,
            BrokerHeartbeatReply {
                is_caught_up: false,
                is_fenced: true,
                in_controlled_shutdown: false,
                should_shut_down: false
            }
        );
        let (records, reply) = control
            .heartbeat(&image, &heartbeat(4, 100, 100), 101, 20)
            .unwrap();
        assert_eq!(
            records,
            vec![registration_change(4, 100, Some(false), None)]
        );
        assert_eq!(
            reply,
            BrokerHeartbeatReply {
                is_caught_up: true,
                is_fenced: false,
                in_controlled_shutdown: false,
                should_shut_down: false
            }
        );
        assert!(image.apply(&records).is_broker_active(4));
        // A stale epoch is refused.
        assert_eq!(
            control.heartbeat(&image, &heartbeat(4, 99, 100), 101, 20),
            Err(ControllerError::StaleBrokerEpoch(
                "Expected broker epoch 100, but got broker epoch 99".into()
            ))
        );
        assert!(matches!(
            control.heartbeat(&image, &heartbeat(9, 1, 1), 101, 20),
            Err(ControllerError::StaleBrokerEpoch(_))
        ));
    }

    #[test]
    fn re_registration_keeps_the_epoch_and_another_incarnation_is_a_duplicate() {
        let image = cluster(vec![]);
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        let (records, reply) = control
            .register_broker(&image, &registration(1, 1), 500, 10)
            .unwrap();
        assert_eq!(reply.broker_epoch, 10);
        assert!(matches!(
            &records[..],
            [MetadataRecord::RegisterBroker {
                broker_epoch: 10,
                fenced: false,
                ..
            }]
        ));
        assert_eq!(
            control.register_broker(&image, &registration(1, 2), 500, 9000),
            Err(ControllerError::DuplicateBrokerRegistration(
                "Another broker is registered with that broker id.".into()
            ))
        );
        // Once the old session has expired, the new incarnation takes over.
        let (records, reply) = control
            .register_broker(&image, &registration(1, 2), 500, 9011)
            .unwrap();
        assert_eq!(reply.broker_epoch, 500);
        assert!(matches!(
            records.last(),
            Some(MetadataRecord::RegisterBroker {
                broker_epoch: 500,
                fenced: true,
                ..
            })
        ));
    }

    #[test]
    fn an_expired_session_fences_the_broker_and_moves_its_leaderships() {
        let image = cluster(vec![
            partition_record(0, &[1, 2, 3], &[1, 2, 3], 1),
            partition_record(1, &[2, 1], &[2, 1], 2),
            partition_record(2, &[1], &[1], 1),
        ]);
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        for id in [2, 3] {
            control
                .heartbeat(&image, &heartbeat(id, id as i64 * 10, 50), 51, 5000)
                .unwrap();
        }
        assert_eq!(control.next_deadline_ms(), Some(9001));
        assert!(control.fence_expired(&image, 9000).is_empty());
        let records = control.fence_expired(&image, 9001);
        assert_eq!(
            records,
            vec![
                with(change(0), |leader, isr, _, _| {
                    *leader = Some(2);
                    *isr = Some(vec![2, 3]);
                }),
                with(change(1), |_, isr, _, _| *isr = Some(vec![2])),
                // Min ISR 1: the ISR empties, 1 is an eligible leader and the last leader.
                with(change(2), |leader, isr, elr, lke| {
                    *leader = Some(NO_LEADER);
                    *isr = Some(vec![]);
                    *elr = Some(vec![1]);
                    *lke = Some(vec![1]);
                }),
                registration_change(1, 10, Some(true), None),
            ]
        );
        assert_eq!(control.next_deadline_ms(), Some(14001));
        let image = image.apply(&records);
        assert!(image.broker(1).unwrap().fenced);
        assert_eq!(image.partition(&T, 0).unwrap().leader_epoch, 6);
        // Back and caught up: unfenced, and it leads the partition only it can lead.
        let (records, reply) = control
            .heartbeat(&image, &heartbeat(1, 10, 60), 61, 9500)
            .unwrap();
        assert!(!reply.is_fenced);
        assert_eq!(
            records,
            vec![
                registration_change(1, 10, Some(false), None),
                with(change(2), |leader, isr, elr, lke| {
                    *leader = Some(1);
                    *isr = Some(vec![1]);
                    *elr = Some(vec![]);
                    *lke = Some(vec![]);
                }),
            ]
        );
    }

    #[test]
    fn the_previous_controllers_broker_expires_from_when_it_was_last_heard() {
        let image = cluster(vec![partition_record(0, &[1, 2, 3], &[1, 2, 3], 1)]);
        // Activated at 5000; the quorum last heard from the old controller, node 1, at 3000.
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 5000);
        control.last_heard_at(1, 3000);
        control.last_heard_at(2, 7000); // never later than the activation
        assert_eq!(control.next_deadline_ms(), Some(12001));
        assert!(control.fence_expired(&image, 12000).is_empty());
        let records = control.fence_expired(&image, 12001);
        assert_eq!(
            records.last(),
            Some(&registration_change(1, 10, Some(true), None))
        );
        assert!(records
            .iter()
            .all(|r| !matches!(r, MetadataRecord::BrokerRegistrationChange { broker_id, .. } if *broker_id != 1)));
        // Brokers 2 and 3 keep the full session from the activation.
        assert_eq!(control.next_deadline_ms(), Some(14001));
    }

    #[test]
    fn brokers_expiring_together_are_fenced_one_after_another() {
        let image = cluster(vec![partition_record(0, &[1, 2, 3], &[1, 2, 3], 1)]);
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        control
            .heartbeat(&image, &heartbeat(3, 30, 50), 51, 100)
            .unwrap();
        let records = control.fence_expired(&image, 9001);
        assert_eq!(
            records,
            vec![
                with(change(0), |leader, isr, _, _| {
                    *leader = Some(2);
                    *isr = Some(vec![2, 3]);
                }),
                registration_change(1, 10, Some(true), None),
                // Fencing 2 sees 1 already fenced.
                with(change(0), |leader, isr, _, _| {
                    *leader = Some(3);
                    *isr = Some(vec![3]);
                }),
                registration_change(2, 20, Some(true), None),
            ]
        );
        let image = image.apply(&records);
        let p = image.partition(&T, 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (3, 7, 11));
        assert_eq!(control.next_deadline_ms(), Some(9101));
        // A fenced broker's session is over: another incarnation may register.
        assert!(control
            .register_broker(&image, &registration(1, 5), 700, 9002)
            .is_ok());
    }

    #[test]
    fn controlled_shutdown_moves_leaders_then_lets_the_broker_go() {
        let image = cluster(vec![
            partition_record(0, &[1, 2], &[1, 2], 1),
            partition_record(1, &[2, 1], &[2, 1], 2),
        ]);
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        for id in [2, 3] {
            control
                .heartbeat(&image, &heartbeat(id, id as i64 * 10, 50), 51, 10)
                .unwrap();
        }
        let mut shut_down = heartbeat(1, 10, 50);
        shut_down.want_shut_down = true;
        let (records, reply) = control.heartbeat(&image, &shut_down, 60, 20).unwrap();
        assert_eq!(
            records,
            vec![
                registration_change(1, 10, None, Some(true)),
                with(change(0), |leader, isr, _, _| {
                    *leader = Some(2);
                    *isr = Some(vec![2]);
                }),
                with(change(1), |_, isr, _, _| *isr = Some(vec![2])),
            ]
        );
        assert_eq!(
            reply,
            BrokerHeartbeatReply {
                is_caught_up: true,
                is_fenced: false,
                in_controlled_shutdown: true,
                should_shut_down: false
            }
        );
        let image = image.apply(&records);
        // Not yet: broker 2 has not seen offset 60.
        let (records, reply) = control.heartbeat(&image, &shut_down, 61, 30).unwrap();
        assert!(records.is_empty());
        assert!(!reply.should_shut_down);
        control
            .heartbeat(&image, &heartbeat(2, 20, 60), 61, 30)
            .unwrap();
        control
            .heartbeat(&image, &heartbeat(3, 30, 60), 61, 30)
            .unwrap();
        let (records, reply) = control.heartbeat(&image, &shut_down, 61, 40).unwrap();
        assert_eq!(records, vec![registration_change(1, 10, Some(true), None)]);
        assert_eq!(
            reply,
            BrokerHeartbeatReply {
                is_caught_up: true,
                is_fenced: true,
                in_controlled_shutdown: false,
                should_shut_down: true
            }
        );
    }

    #[test]
    fn a_broker_leading_nothing_shuts_down_at_once() {
        let image = cluster(vec![partition_record(0, &[2, 1], &[2, 1], 2)]);
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        let mut shut_down = heartbeat(1, 10, 50);
        shut_down.want_shut_down = true;
        let (records, reply) = control.heartbeat(&image, &shut_down, 60, 20).unwrap();
        assert_eq!(
            records,
            vec![
                with(change(0), |_, isr, _, _| *isr = Some(vec![2])),
                registration_change(1, 10, Some(true), None),
            ]
        );
        assert!(reply.should_shut_down && reply.is_fenced);
    }

    #[test]
    fn an_unclean_restart_leaves_the_elr_and_unregistration_leaves_everything() {
        let mut image = cluster(vec![partition_record(0, &[1, 2], &[2], 2)]);
        image = image.apply(&[with(change(0), |_, _, elr, _| *elr = Some(vec![1]))]);
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        let (records, _) = control
            .register_broker(&image, &registration(1, 77), 300, 10_000)
            .unwrap();
        assert_eq!(
            records[0],
            with(change(0), |_, _, elr, _| *elr = Some(vec![]))
        );
        // A clean restart (previous epoch given) keeps it.
        let mut clean = registration(1, 78);
        clean.previous_broker_epoch = 10;
        let mut control = ClusterControl::new(ClusterControlConfig::default(), &image, 0);
        let (records, _) = control
            .register_broker(&image, &clean, 300, 10_000)
            .unwrap();
        assert_eq!(records.len(), 1);
        let records = control.unregister_broker(&image, 2).unwrap();
        assert_eq!(
            records,
            vec![
                // The eligible leader 1 takes over and becomes the ISR.
                with(change(0), |leader, isr, elr, _| {
                    *leader = Some(1);
                    *isr = Some(vec![1]);
                    *elr = Some(vec![]);
                }),
                MetadataRecord::UnregisterBroker {
                    broker_id: 2,
                    broker_epoch: 20
                },
            ]
        );
        assert!(matches!(
            control.unregister_broker(&image, 9),
            Err(ControllerError::BrokerIdNotRegistered(_))
        ));
    }
}
