//! One simulated node's metadata side: the state machine that builds the metadata image
//! from committed records, and the active controller's loop (registration, heartbeats,
//! fencing, AlterPartition, topic creation) proposing records through the quorum.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_metadata::alter_partition::alter_partition;
use strom_metadata::cluster_control::{ClusterControl, ClusterControlConfig};
use strom_metadata::controller::{create_topic, NewTopic, TopicDefaults};
use strom_metadata::{MetadataImage, MetadataRecord};
use strom_raft::{MetadataStateMachine, Quorum};
use strom_types::TopicId;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::messages::{ControllerReply, ControllerRequest, Message, Payload};
use crate::net::{lock, SharedWorld};
use crate::SimConfig;

/// The committed metadata as this node applied it.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    /// The offset of the last applied entry, -1 before any.
    pub offset: i64,
    pub image: MetadataImage,
}

/// The quorum's state machine: the metadata image, built only from committed records.
#[derive(Clone, Default)]
pub struct ImageSm(pub Arc<Mutex<Applied>>);

impl ImageSm {
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(Applied {
            offset: -1,
            image: MetadataImage::default(),
        })))
    }

    pub fn applied(&self) -> Applied {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl MetadataStateMachine for ImageSm {
    type Record = MetadataRecord;

    fn apply(&mut self, offset: u64, records: &[MetadataRecord]) {
        let mut applied = self.0.lock().unwrap_or_else(|e| e.into_inner());
        applied.image = applied.image.apply(records);
        applied.offset = offset as i64;
    }

    fn snapshot(&self) -> Vec<MetadataRecord> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .image
            .to_records()
    }

    fn restore(&mut self, offset: u64, records: Vec<MetadataRecord>) {
        let mut applied = self.0.lock().unwrap_or_else(|e| e.into_inner());
        applied.image = MetadataImage::default().apply(&records);
        applied.offset = offset as i64;
    }
}

pub const TOPIC: &str = "sim";
const CONTROLLER_TICK: Duration = Duration::from_millis(5);
/// A proposal not committed by then (a leader cut off from the majority keeps leading in
/// openraft 0.9 until it hears a higher term) gives up controllership.
const PROPOSE_TIMEOUT: Duration = Duration::from_millis(2000);

/// The controller side of one node: active while its quorum leads.
pub struct Controller {
    pub node: strom_types::NodeId,
    pub quorum: Arc<Quorum<ImageSm>>,
    pub sm: ImageSm,
    pub world: SharedWorld,
    pub inbox: UnboundedReceiver<Message>,
    pub config: SimConfig,
    pub topic_id: TopicId,
}

impl Controller {
    fn reply(&self, to: &Message, reply: ControllerReply) {
        let Payload::Controller { id, .. } = &to.payload else {
            return;
        };
        lock(&self.world).send(Message {
            from: self.node,
            from_incarnation: 0,
            to: to.from,
            to_incarnation: Some(to.from_incarnation),
            payload: Payload::ControllerReply { id: *id, reply },
        });
    }

    fn now_ms(&self) -> u64 {
        lock(&self.world).now_ms()
    }

    fn cluster_config(&self) -> ClusterControlConfig {
        let mut config = ClusterControlConfig {
            session_timeout_ms: self.config.session_timeout_ms,
            ..ClusterControlConfig::default()
        };
        config.election.min_insync_replicas = self.config.min_insync_replicas as i32;
        config.election.elr_enabled = self.config.elr_enabled;
        config
    }

    /// Proposes and waits for the commit; false when this node is no longer the leader.
    async fn propose(&self, what: &str, records: Vec<MetadataRecord>) -> bool {
        let count = records.len();
        let changes: Vec<String> = records
            .iter()
            .filter_map(|r| match r {
                MetadataRecord::PartitionChange { .. }
                | MetadataRecord::BrokerRegistrationChange { .. }
                | MetadataRecord::RegisterBroker { .. } => Some(format!("{r:?}")),
                _ => None,
            })
            .collect();
        match tokio::time::timeout(PROPOSE_TIMEOUT, self.quorum.propose(records)).await {
            Ok(Ok(offset)) => {
                lock(&self.world).trace(format!(
                    "controller {} committed {what} ({count} records) at {offset}: {}",
                    self.node,
                    changes.join(", ")
                ));
                true
            }
            Ok(Err(e)) => {
                lock(&self.world).trace(format!("controller {} failed {what}: {e}", self.node));
                false
            }
            Err(_) => {
                lock(&self.world).trace(format!(
                    "controller {} timed out proposing {what}",
                    self.node
                ));
                false
            }
        }
    }

    pub async fn run(mut self) {
        let mut active: Option<ClusterControl> = None;
        loop {
            tokio::time::sleep(CONTROLLER_TICK).await;
            let mut pending = Vec::new();
            while let Ok(message) = self.inbox.try_recv() {
                pending.push(message);
            }
            if !self.quorum.is_leader() {
                if active.take().is_some() {
                    lock(&self.world).trace(format!("controller {} resigned", self.node));
                }
                for message in &pending {
                    self.reply(message, ControllerReply::NotController);
                }
                continue;
            }
            if active.is_none() {
                // Everything committed by earlier leaders is applied before deciding.
                if self.quorum.catch_up().await.is_err() {
                    for message in &pending {
                        self.reply(message, ControllerReply::NotController);
                    }
                    continue;
                }
                let image = self.sm.applied().image;
                active = Some(ClusterControl::new(
                    self.cluster_config(),
                    &image,
                    self.now_ms(),
                ));
                let term = self.quorum.status().term;
                lock(&self.world).trace(format!("controller {} active in term {term}", self.node));
            }
            let mut messages = pending.into_iter();
            for message in messages.by_ref() {
                let Some(control) = active.as_mut() else {
                    self.reply(&message, ControllerReply::NotController);
                    continue;
                };
                let Payload::Controller { request, .. } = &message.payload else {
                    continue;
                };
                let image = self.sm.applied().image;
                let next_offset = self.quorum.status().last_offset.map_or(1, |o| o + 1) as i64;
                let now = self.now_ms();
                let (what, records, reply) = match request {
                    ControllerRequest::Register(request) => {
                        match control.register_broker(&image, request, next_offset, now) {
                            Ok((records, reply)) => (
                                "registration",
                                records,
                                ControllerReply::Registered(Ok(reply.broker_epoch)),
                            ),
                            Err(e) => ("", vec![], ControllerReply::Registered(Err(e))),
                        }
                    }
                    ControllerRequest::Heartbeat(request) => {
                        match control.heartbeat(&image, request, next_offset, now) {
                            Ok((records, reply)) => {
                                ("heartbeat", records, ControllerReply::Heartbeat(Ok(reply)))
                            }
                            Err(e) => ("", vec![], ControllerReply::Heartbeat(Err(e))),
                        }
                    }
                    ControllerRequest::AlterPartition(request) => {
                        match alter_partition(&image, &control.config().election, request) {
                            Ok((records, results)) => (
                                "alter-partition",
                                records,
                                ControllerReply::AlterPartition(Ok(results)),
                            ),
                            Err(e) => ("", vec![], ControllerReply::AlterPartition(Err(e))),
                        }
                    }
                };
                if !records.is_empty() && !self.propose(what, records).await {
                    active = None;
                    self.reply(&message, ControllerReply::NotController);
                    continue;
                }
                self.reply(&message, reply);
            }
            let Some(control) = active.as_mut() else {
                continue;
            };
            let image = self.sm.applied().image;
            let fenced = control.fence_expired(&image, self.now_ms());
            if !fenced.is_empty() && !self.propose("session expiry", fenced).await {
                active = None;
                continue;
            }
            let image = self.sm.applied().image;
            if image.topic(TOPIC).is_none()
                && image.active_brokers().count() >= self.config.nodes as usize
            {
                let spec = NewTopic {
                    name: TOPIC.into(),
                    num_partitions: self.config.partitions,
                    replication_factor: self.config.nodes as i16,
                    assignments: vec![],
                    configs: vec![(
                        "min.insync.replicas".into(),
                        Some(self.config.min_insync_replicas.to_string()),
                    )],
                };
                let defaults = TopicDefaults {
                    num_partitions: 1,
                    replication_factor: 1,
                };
                match create_topic(&image, &spec, defaults, self.topic_id) {
                    Ok((records, _)) => {
                        if !self.propose("topic creation", records).await {
                            active = None;
                        }
                    }
                    Err(e) => lock(&self.world)
                        .observed
                        .violations
                        .push(format!("topic creation refused: {e}")),
                }
            }
        }
    }
}
