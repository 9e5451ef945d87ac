//! What the active controller does for brokers: registrations, heartbeats and fencing,
//! decided by strom-metadata's `ClusterControl` and committed through the quorum.
//!
//! `ClusterControl` holds broker sessions in memory only, as Kafka's heartbeat manager
//! does: a node that becomes the active controller (a new Raft term) starts a fresh one
//! from the image, giving every registered broker a full session.

use strom_metadata::cluster_control::{
    BrokerHeartbeatReply, BrokerHeartbeatRequest, BrokerRegistrationReply,
    BrokerRegistrationRequest, ClusterControl, ClusterControlConfig,
};
use strom_metadata::elect_leaders::{balance_partition_leaders, elect_unclean_leaders};
use strom_metadata::partition_change::ClusterElectionDefaults;
use strom_metadata::{ControllerError, MetadataImage, MetadataRecord};
use tracing::{info, warn};

use crate::broker::{now_ms, write_failure, Broker, MetadataWriteError};

/// Kafka's bound on the elections of one balancing round (MAX_ELECTIONS_PER_IMBALANCE).
const MAX_ELECTIONS_PER_IMBALANCE: usize = 1000;

/// The term a `ClusterControl` was made in, and the state.
pub(crate) type ClusterControlSlot = std::sync::Mutex<Option<(u64, ClusterControl)>>;

impl Broker {
    fn cluster_control_config(&self) -> ClusterControlConfig {
        ClusterControlConfig {
            session_timeout_ms: self.config.cluster.broker_session_timeout_ms.max(1) as u64,
            election: self.election_defaults(),
        }
    }

    /// The election settings a topic falls back to: this node's static
    /// `min.insync.replicas` and `unclean.leader.election.enable`, else Kafka's defaults.
    /// (Dynamic cluster defaults and topic configs are looked up in the image.)
    pub(crate) fn election_defaults(&self) -> ClusterElectionDefaults {
        let fallback = ClusterElectionDefaults::default();
        let explicit = |name: &str| self.config.explicit.get(name).map(|v| v.trim());
        ClusterElectionDefaults {
            min_insync_replicas: explicit("min.insync.replicas")
                .and_then(|v| v.parse().ok())
                .unwrap_or(fallback.min_insync_replicas),
            unclean_leader_election: explicit("unclean.leader.election.enable")
                .map_or(fallback.unclean_leader_election, |v| {
                    v.eq_ignore_ascii_case("true")
                }),
            ..fallback
        }
    }

    /// Runs `f` on this term's `ClusterControl`, made fresh when the term changed.
    fn with_cluster_control<T>(
        &self,
        image: &MetadataImage,
        f: impl FnOnce(&mut ClusterControl) -> T,
    ) -> T {
        let quorum = self.metadata_quorum();
        let term = quorum.map_or(0, |q| q.status().term);
        let mut slot = self
            .cluster_control
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().map(|(t, _)| *t) != Some(term) {
            let now = now_ms() as u64;
            let mut control = ClusterControl::new(self.cluster_control_config(), image, now);
            // This node's own broker cannot have another live incarnation: it is this
            // process. Its old session must not hold up its registration.
            control.expire_session(self.config.node_id);
            // The previous active controller's broker shares its process: its session
            // runs from when the quorum last heard from it, not from this election (so a
            // killed controller's partitions move one election sooner than in Kafka). It
            // keeps two heartbeat intervals, in case it is alive and only lost the vote.
            if let Some((previous, silent)) = quorum.and_then(|q| q.last_heard_leader()) {
                let cluster = &self.config.cluster;
                let grace = (cluster.broker_session_timeout_ms
                    - 2 * cluster.broker_heartbeat_interval_ms)
                    .max(0) as u64;
                let silent_ms = u64::try_from(silent.as_millis()).unwrap_or(u64::MAX);
                if let Ok(previous) = strom_types::NodeId::try_from(previous) {
                    control.last_heard_at(previous, now.saturating_sub(silent_ms.min(grace)));
                }
            }
            *slot = Some((term, control));
        }
        let (_, control) = slot.as_mut().expect("just set");
        f(control)
    }

    /// BrokerRegistration on the active controller.
    pub async fn controller_register(
        &self,
        request: BrokerRegistrationRequest,
    ) -> Result<BrokerRegistrationReply, MetadataWriteError<ControllerError>> {
        let reply = self
            .write_metadata_at(|image, next_offset| {
                self.with_cluster_control(image, |control| {
                    control.register_broker(image, &request, next_offset, now_ms() as u64)
                })
            })
            .await?;
        info!(
            broker = request.broker_id,
            epoch = reply.broker_epoch,
            "broker registered"
        );
        self.ensure_observer(request.broker_id).await?;
        Ok(reply)
    }

    /// Makes a registered broker that is not a voter an observer of the metadata log (an
    /// openraft learner the leader sends the log to). Run after its registration and at
    /// each heartbeat, so a registration committed just before a failover still gets one.
    async fn ensure_observer<E>(&self, broker_id: i32) -> Result<(), MetadataWriteError<E>> {
        let Some(quorum) = self.metadata_quorum() else {
            return Ok(());
        };
        let Ok(node) = u64::try_from(broker_id) else {
            return Ok(());
        };
        let voter = self.config.cluster.voters.iter().any(|v| v.id == broker_id);
        if voter || self.config.cluster.is_single_voter() || quorum.observers().contains(&node) {
            return Ok(());
        }
        // Under the controller lock: only its holder appends, so a registration's epoch
        // (the offset its record gets) stays right.
        let _serial = self.controller_lock().await;
        quorum.add_observer(node).await.map_err(write_failure)
    }

    /// UnregisterBroker on the active controller (Kafka's ReplicationControlManager
    /// `unregisterBroker`): the broker leaves every ISR and ELR and the cluster, and stops
    /// receiving the metadata log. As in Kafka, a live broker is not refused.
    pub async fn controller_unregister(
        &self,
        broker_id: i32,
    ) -> Result<(), MetadataWriteError<ControllerError>> {
        self.write_metadata(|image| {
            let records = self.with_cluster_control(image, |control| {
                control.unregister_broker(image, broker_id)
            })?;
            Ok((records, ()))
        })
        .await?;
        info!(broker = broker_id, "broker unregistered");
        // Should this fail, the session timer's sweep removes the learner later.
        self.remove_unregistered_observers().await;
        Ok(())
    }

    /// Removes the learners whose brokers are no longer registered (an unregistration
    /// whose membership change failed, or was cut short by a failover). A registration
    /// is committed before its learner is added, so no registering broker is removed; a
    /// race with a new registration is mended by that broker's next heartbeat.
    async fn remove_unregistered_observers(&self) {
        let Some(quorum) = self.metadata_quorum() else {
            return;
        };
        let image = self.image();
        for node in quorum.observers() {
            if i32::try_from(node).is_ok_and(|id| image.broker(id).is_some()) {
                continue;
            }
            let _serial = self.controller_lock().await;
            if let Err(e) = quorum.remove_observer(node).await {
                warn!(node, error = %e, "removing the learner of an unregistered broker failed; retrying later");
            }
        }
    }

    /// BrokerHeartbeat on the active controller.
    pub async fn controller_heartbeat(
        &self,
        request: BrokerHeartbeatRequest,
    ) -> Result<BrokerHeartbeatReply, MetadataWriteError<ControllerError>> {
        let reply = self
            .write_metadata_at(|image, next_offset| {
                self.with_cluster_control(image, |control| {
                    control.heartbeat(image, &request, next_offset, now_ms() as u64)
                })
            })
            .await?;
        // The heartbeat is committed either way; the next one tries again.
        if let Err(e) = self
            .ensure_observer::<ControllerError>(request.broker_id)
            .await
        {
            let (_, message) =
                e.into_error(|e| (crate::errors::controller_error_code(&e), e.to_string()));
            warn!(broker = request.broker_id, error = %message, "adding the broker as a learner failed");
        }
        Ok(reply)
    }

    /// The active controller's session timer: fences expired brokers, twice a second.
    pub async fn run_session_timer(self: std::sync::Arc<Self>) {
        let broker = std::sync::Arc::downgrade(&self);
        drop(self);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let Some(broker) = broker.upgrade() else {
                return;
            };
            broker.controller_fence_expired().await;
        }
    }

    /// Fences the brokers whose sessions expired (the active controller's timer).
    pub async fn controller_fence_expired(&self) {
        if !self.is_active_controller() {
            return;
        }
        self.remove_unregistered_observers().await;
        let fenced = self
            .write_metadata(|image| {
                let records = self.with_cluster_control(image, |control| {
                    control.fence_expired(image, now_ms() as u64)
                });
                let count = records.len();
                Ok::<_, std::convert::Infallible>((records, count))
            })
            .await;
        if let Ok(records) = fenced {
            if records > 0 {
                info!(records, "fenced brokers whose sessions expired");
            }
        }
    }

    /// One round of automatic preferred-leader balancing (`auto.leader.rebalance.enable`)
    /// on the active controller; true when the bound was reached and more may remain.
    pub async fn controller_balance_leaders(&self) -> bool {
        let (elected, more) = self
            .controller_election_round(|image, defaults| {
                balance_partition_leaders(image, defaults, MAX_ELECTIONS_PER_IMBALANCE)
            })
            .await;
        if elected > 0 {
            info!(elected, "moved leaders back to their preferred replicas");
        }
        more
    }

    /// One round of unclean elections for leaderless partitions of topics with
    /// `unclean.leader.election.enable`, on the active controller; true when the bound
    /// was reached and more may remain.
    pub async fn controller_elect_unclean_leaders(&self) -> bool {
        let (elected, more) = self
            .controller_election_round(|image, defaults| {
                elect_unclean_leaders(image, defaults, MAX_ELECTIONS_PER_IMBALANCE)
            })
            .await;
        if elected > 0 {
            warn!(elected, "elected unclean leaders for leaderless partitions");
        }
        more
    }

    /// Writes the elections `compute` decides, on the active controller only: how many
    /// partitions changed, and whether the round hit its bound.
    async fn controller_election_round(
        &self,
        compute: impl Fn(&MetadataImage, &ClusterElectionDefaults) -> (Vec<MetadataRecord>, bool),
    ) -> (usize, bool) {
        if !self.is_active_controller() {
            return (0, false);
        }
        let defaults = self.election_defaults();
        self.write_metadata(|image| {
            let (records, more) = compute(image, &defaults);
            let elected = records.len();
            Ok::<_, std::convert::Infallible>((records, (elected, more)))
        })
        .await
        .unwrap_or((0, false))
    }
}
