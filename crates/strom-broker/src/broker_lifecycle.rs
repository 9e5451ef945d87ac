//! A broker's membership in a cluster of several nodes, as Kafka's BrokerLifecycleManager:
//! it registers with the active controller (a new incarnation, with the broker epoch it
//! had at its last clean shutdown, KIP-966), heartbeats until the controller unfences it
//! (once it has applied the metadata log up to its registration), keeps heartbeating, and
//! at shutdown asks to shut down and waits until the controller has moved its leadership
//! away (controlled shutdown).
//!
//! A one-voter node has none of this: it registers itself directly (`Broker::register`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::assign_replicas_to_dirs_request::{
    DirectoryData, PartitionData, TopicData,
};
use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::{
    AssignReplicasToDirsRequest, BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest,
};
use kafka_protocol::protocol::StrBytes;
use strom_metadata::records::LOST_DIR;
use strom_types::ErrorCode;
use tracing::{debug, info, warn};

use crate::broker::Broker;

const REGISTRATION_VERSION: i16 = 4;
const HEARTBEAT_VERSION: i16 = 1;
const ASSIGN_REPLICAS_TO_DIRS_VERSION: i16 = 0;
/// The most replica dirs one AssignReplicasToDirs carries.
const MAX_ASSIGNMENTS_PER_REQUEST: usize = 2000;
/// The longest the broker waits before looking again for replicas whose dir the
/// controller does not know (a metadata change wakes it sooner).
const ASSIGNMENT_RETRY: Duration = Duration::from_secs(1);
/// How often a heartbeat pause checks for a log dir that went offline, which is reported
/// at once rather than at the next heartbeat.
const OFFLINE_DIR_POLL: Duration = Duration::from_millis(50);
/// Between heartbeats while fenced or shutting down: Kafka's broker asks again at once.
const EAGER_HEARTBEAT: Duration = Duration::from_millis(50);
/// Between registration attempts while no controller answers.
const REGISTRATION_BACKOFF: Duration = Duration::from_millis(200);
/// The longest a controlled shutdown waits for the controller.
const CONTROLLED_SHUTDOWN_WAIT: Duration = Duration::from_secs(30);
/// The broker epoch a clean shutdown leaves in the log dir (read only when the log dir's
/// clean-shutdown marker is there too).
const CLEAN_SHUTDOWN_EPOCH_FILE: &str = "clean-shutdown-broker-epoch";

/// This process's standing with the controller.
pub struct Lifecycle {
    incarnation_id: uuid::Uuid,
    /// The epoch of the last clean shutdown, -1 if there was none (KIP-966).
    previous_broker_epoch: i64,
    broker_epoch: AtomicI64,
    fenced: AtomicBool,
    want_shut_down: AtomicBool,
    shut_down_granted: tokio::sync::Notify,
    unfenced: tokio::sync::Notify,
    /// Woken when the image changes: replicas may need their dir assigned.
    dir_assignments: Arc<tokio::sync::Notify>,
}

impl Lifecycle {
    pub fn new(log_dir: &Path, clean_shutdown: bool) -> Self {
        let previous_broker_epoch = if clean_shutdown {
            std::fs::read_to_string(log_dir.join(CLEAN_SHUTDOWN_EPOCH_FILE))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(-1)
        } else {
            -1
        };
        let _ = std::fs::remove_file(log_dir.join(CLEAN_SHUTDOWN_EPOCH_FILE));
        Self {
            incarnation_id: uuid::Uuid::new_v4(),
            previous_broker_epoch,
            broker_epoch: AtomicI64::new(-1),
            fenced: AtomicBool::new(true),
            want_shut_down: AtomicBool::new(false),
            shut_down_granted: tokio::sync::Notify::new(),
            unfenced: tokio::sync::Notify::new(),
            dir_assignments: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// The epoch the controller gave this incarnation, -1 before registration.
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
    }

    /// The image changed: look for replicas whose dir the controller does not know.
    pub fn wake_dir_assignments(&self) {
        self.dir_assignments.notify_one();
    }

    /// Written at a clean shutdown, before the log dir's marker, so the next start of
    /// this broker tells the controller it lost nothing.
    pub fn write_clean_shutdown_epoch(&self, log_dir: &Path) -> std::io::Result<()> {
        let epoch = self.broker_epoch();
        if epoch < 0 {
            return Ok(());
        }
        let path = log_dir.join(CLEAN_SHUTDOWN_EPOCH_FILE);
        let mut file = std::fs::File::create(&path)?;
        std::io::Write::write_all(&mut file, format!("{epoch}\n").as_bytes())?;
        file.sync_all()
    }
}

impl Broker {
    /// Registers with the active controller, starts the heartbeats, and returns once the
    /// controller has unfenced this broker.
    pub async fn join_cluster(self: &Arc<Self>) {
        self.register_with_controller().await;
        tokio::spawn(heartbeat_loop(Arc::downgrade(self)));
        tokio::spawn(dir_assignment_loop(Arc::downgrade(self)));
        let lifecycle = &self.lifecycle;
        let mut waited = Duration::ZERO;
        while lifecycle.is_fenced() {
            let unfenced = lifecycle.unfenced.notified();
            if tokio::time::timeout(Duration::from_secs(5), unfenced)
                .await
                .is_err()
            {
                waited += Duration::from_secs(5);
                info!(
                    waited_s = waited.as_secs(),
                    "waiting for the controller to unfence this broker"
                );
            }
        }
        info!(
            broker_epoch = lifecycle.broker_epoch(),
            "the controller unfenced this broker"
        );
        // Unfenced means caught up with the committed metadata log: only now does the
        // image tell which partition dirs no topic owns.
        let broker = self.clone();
        let _ = tokio::task::spawn_blocking(move || broker.remove_stray_partition_dirs()).await;
    }

    /// Registers until a controller accepts; sets the broker epoch.
    async fn register_with_controller(&self) {
        let lifecycle = &self.lifecycle;
        let request = BrokerRegistrationRequest::default()
            .with_broker_id(BrokerId(self.config.node_id))
            .with_cluster_id(StrBytes::from_string(self.cluster_id.clone()))
            .with_incarnation_id(lifecycle.incarnation_id)
            .with_listeners(
                self.config
                    .advertised_listeners
                    .iter()
                    .filter(|l| !self.config.cluster.is_controller_listener(&l.name))
                    .map(|l| {
                        Listener::default()
                            .with_name(StrBytes::from_string(l.name.clone()))
                            .with_host(StrBytes::from_string(l.host.clone()))
                            .with_port(l.port)
                            .with_security_protocol(0)
                    })
                    .collect(),
            )
            .with_rack(self.config.cluster.rack.clone().map(StrBytes::from_string))
            .with_previous_broker_epoch(lifecycle.previous_broker_epoch)
            .with_log_dirs(self.log_dir_ids(false));
        let mut attempts = 0u64;
        loop {
            attempts += 1;
            match self.call_controller(&request, REGISTRATION_VERSION).await {
                Ok(response) if response.error_code == 0 => {
                    lifecycle
                        .broker_epoch
                        .store(response.broker_epoch, Ordering::Release);
                    info!(
                        broker_epoch = response.broker_epoch,
                        previous_broker_epoch = lifecycle.previous_broker_epoch,
                        "registered with the controller"
                    );
                    return;
                }
                Ok(response) => {
                    let code = ErrorCode::try_from_code(response.error_code);
                    if attempts % 25 == 1 {
                        warn!(error = ?code, "the controller refused the registration; retrying");
                    }
                }
                Err(e) => {
                    if attempts % 25 == 1 {
                        info!(error = %e, "no controller answered the registration yet; retrying");
                    }
                }
            }
            tokio::time::sleep(REGISTRATION_BACKOFF).await;
        }
    }

    /// One heartbeat; re-registers when the controller no longer knows this incarnation.
    async fn heartbeat(&self) {
        let lifecycle = &self.lifecycle;
        let want_shut_down = lifecycle.want_shut_down.load(Ordering::Acquire);
        let request = BrokerHeartbeatRequest::default()
            .with_broker_id(BrokerId(self.config.node_id))
            .with_broker_epoch(lifecycle.broker_epoch())
            .with_current_metadata_offset(self.image_offset())
            .with_want_fence(false)
            .with_want_shut_down(want_shut_down)
            .with_offline_log_dirs(self.log_dir_ids(true));
        match self.call_controller(&request, HEARTBEAT_VERSION).await {
            Ok(response) if response.error_code == 0 => {
                let was_fenced = lifecycle.fenced.swap(response.is_fenced, Ordering::AcqRel);
                if was_fenced && !response.is_fenced {
                    lifecycle.unfenced.notify_waiters();
                } else if !was_fenced && response.is_fenced && !want_shut_down {
                    warn!("the controller fenced this broker");
                }
                if want_shut_down && response.should_shut_down {
                    lifecycle.shut_down_granted.notify_waiters();
                }
            }
            Ok(response) => {
                let code = ErrorCode::try_from_code(response.error_code);
                match code {
                    Some(ErrorCode::StaleBrokerEpoch | ErrorCode::BrokerIdNotRegistered) => {
                        warn!(error = ?code, "the controller does not know this broker's epoch; registering again");
                        lifecycle.fenced.store(true, Ordering::Release);
                        self.register_with_controller().await;
                    }
                    _ => debug!(error = ?code, "heartbeat refused"),
                }
            }
            Err(e) => debug!(error = %e, "heartbeat failed"),
        }
    }

    /// The directory ids of the log dirs that are offline (`true`) or online (KIP-858). A
    /// dir offline since start has no id known; the controller learns of its replicas from
    /// the registration, which lacks it, and from `assign_replica_dirs`.
    pub(crate) fn log_dir_ids(&self, offline: bool) -> Vec<uuid::Uuid> {
        self.data_dirs()
            .iter()
            .filter(|d| d.is_offline() == offline)
            .filter_map(|d| d.id())
            .collect()
    }

    /// The replicas whose dir the controller's image does not have right: (dir, topic id,
    /// partition). An online replica's is the id of the dir it is in; an offline replica
    /// the controller still counts as online is reported in its dir, or in Kafka's LOST
    /// dir when that dir's id could not be read.
    fn pending_dir_assignments(&self) -> Vec<(uuid::Uuid, uuid::Uuid, i32)> {
        let image = self.image();
        let node = self.config.node_id;
        let Some(registration) = image.broker(node) else {
            return Vec::new();
        };
        let mut pending = Vec::new();
        for partition in self.all_partitions() {
            let Some(spec) = image
                .topic_by_id(&partition.topic_id)
                .and_then(|t| t.partitions.get(&partition.index))
                .filter(|p| p.replicas.contains(&node))
            else {
                continue;
            };
            let current = spec.directory(node);
            let dir = partition.data_dir();
            let target = if dir.is_offline() {
                if !registration.has_online_dir(current) {
                    continue;
                }
                dir.id().unwrap_or(LOST_DIR)
            } else {
                match dir.id() {
                    Some(id) => id,
                    None => continue,
                }
            };
            if current != target {
                pending.push((target, partition.topic_id, partition.index));
            }
        }
        pending.sort_unstable();
        pending
    }

    /// One AssignReplicasToDirs of pending assignments; whether it was answered.
    async fn assign_replica_dirs(&self, pending: &[(uuid::Uuid, uuid::Uuid, i32)]) -> bool {
        let mut directories: Vec<DirectoryData> = Vec::new();
        for (dir, topic_id, partition) in pending {
            if directories.last().is_none_or(|d| d.id != *dir) {
                directories.push(DirectoryData::default().with_id(*dir));
            }
            let Some(directory) = directories.last_mut() else {
                continue;
            };
            if directory
                .topics
                .last()
                .is_none_or(|t| t.topic_id != *topic_id)
            {
                directory
                    .topics
                    .push(TopicData::default().with_topic_id(*topic_id));
            }
            if let Some(topic) = directory.topics.last_mut() {
                topic
                    .partitions
                    .push(PartitionData::default().with_partition_index(*partition));
            }
        }
        let request = AssignReplicasToDirsRequest::default()
            .with_broker_id(BrokerId(self.config.node_id))
            .with_broker_epoch(self.lifecycle.broker_epoch())
            .with_directories(directories);
        match self
            .call_controller(&request, ASSIGN_REPLICAS_TO_DIRS_VERSION)
            .await
        {
            Ok(response) if response.error_code == 0 => {
                for refused in response.directories.iter().flat_map(|d| {
                    d.topics.iter().flat_map(move |t| {
                        t.partitions
                            .iter()
                            .filter(|p| p.error_code != 0)
                            .map(move |p| (d.id, t.topic_id, p))
                    })
                }) {
                    let (dir, topic_id, p) = refused;
                    debug!(%dir, %topic_id, partition = p.partition_index, error = p.error_code, "the controller refused a replica dir assignment");
                }
                true
            }
            Ok(response) => {
                debug!(
                    error = response.error_code,
                    "the controller refused the replica dir assignments"
                );
                false
            }
            Err(e) => {
                debug!(error = %e, "assigning replica dirs failed");
                false
            }
        }
    }

    /// Asks the controller to move this broker's leadership away and waits (bounded)
    /// until it says the broker may stop.
    pub async fn controlled_shutdown(&self) {
        if self.config.cluster.is_single_voter() || self.lifecycle.broker_epoch() < 0 {
            return;
        }
        let lifecycle = &self.lifecycle;
        let granted = lifecycle.shut_down_granted.notified();
        lifecycle.want_shut_down.store(true, Ordering::Release);
        info!("controlled shutdown: waiting for the controller to move leadership away");
        match tokio::time::timeout(CONTROLLED_SHUTDOWN_WAIT, granted).await {
            Ok(()) => info!("controlled shutdown: the controller let this broker stop"),
            Err(_) => warn!("controlled shutdown: no answer from the controller in time; stopping"),
        }
    }
}

/// Tells the controller which dir holds each replica (Kafka's AssignmentsManager), after
/// each image change and again while some are not recorded yet.
async fn dir_assignment_loop(broker: std::sync::Weak<Broker>) {
    loop {
        {
            let Some(broker) = broker.upgrade() else {
                return;
            };
            let pending = broker.pending_dir_assignments();
            for chunk in pending.chunks(MAX_ASSIGNMENTS_PER_REQUEST) {
                if !broker.assign_replica_dirs(chunk).await {
                    break;
                }
            }
            let wake = broker.lifecycle.dir_assignments.clone();
            drop(broker);
            let _ = tokio::time::timeout(ASSIGNMENT_RETRY, wake.notified()).await;
        }
    }
}

async fn heartbeat_loop(broker: std::sync::Weak<Broker>) {
    loop {
        let (pause, offline_reported) = {
            let Some(broker) = broker.upgrade() else {
                return;
            };
            let offline_reported = broker.log_dir_ids(true);
            broker.heartbeat().await;
            let lifecycle = &broker.lifecycle;
            let pause = if lifecycle.is_fenced() || lifecycle.want_shut_down.load(Ordering::Acquire)
            {
                EAGER_HEARTBEAT
            } else {
                Duration::from_millis(
                    broker.config.cluster.broker_heartbeat_interval_ms.max(1) as u64
                )
            };
            (pause, offline_reported)
        };
        // A dir going offline is reported at once (Kafka's propagateDirectoryFailure).
        let deadline = tokio::time::Instant::now() + pause;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(OFFLINE_DIR_POLL.min(pause)).await;
            let Some(broker) = broker.upgrade() else {
                return;
            };
            let offline = broker.log_dir_ids(true);
            if offline != offline_reported {
                info!(offline_dirs = ?offline, "reporting offline log dirs to the controller");
                break;
            }
        }
    }
}
