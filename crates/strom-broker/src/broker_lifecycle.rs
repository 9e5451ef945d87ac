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

use kafka_protocol::messages::broker_registration_request::Listener;
use kafka_protocol::messages::{BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest};
use kafka_protocol::protocol::StrBytes;
use strom_types::ErrorCode;
use tracing::{debug, info, warn};

use crate::broker::Broker;

const REGISTRATION_VERSION: i16 = 4;
const HEARTBEAT_VERSION: i16 = 1;
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
        }
    }

    /// The epoch the controller gave this incarnation, -1 before registration.
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::Acquire)
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
            .with_previous_broker_epoch(lifecycle.previous_broker_epoch);
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
            .with_want_shut_down(want_shut_down);
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

async fn heartbeat_loop(broker: std::sync::Weak<Broker>) {
    loop {
        let pause = {
            let Some(broker) = broker.upgrade() else {
                return;
            };
            broker.heartbeat().await;
            let lifecycle = &broker.lifecycle;
            if lifecycle.is_fenced() || lifecycle.want_shut_down.load(Ordering::Acquire) {
                EAGER_HEARTBEAT
            } else {
                Duration::from_millis(
                    broker.config.cluster.broker_heartbeat_interval_ms.max(1) as u64
                )
            }
        };
        tokio::time::sleep(pause).await;
    }
}
