//! A client of a cluster: bootstrap, cluster metadata, and connections to
//! brokers by id, so requests for a partition go to its leader.

use std::collections::HashMap;
use std::time::Duration;

use kafka_protocol::messages::{
    metadata_request::MetadataRequestTopic, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::connection::{Connection, ConnectionConfig};
use crate::coordinator::CoordinatorType;
use crate::error::{check, Error, Result};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const LEADER_NOT_AVAILABLE: i16 = 5;

/// A broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

impl BrokerInfo {
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition of a topic, from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    pub partition: i32,
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub offline_replicas: Vec<i32>,
    pub error_code: i16,
}

/// One topic, from Metadata. `error_code` is the topic's own error (e.g.
/// UNKNOWN_TOPIC_OR_PARTITION); check it with [`TopicMetadata::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub name: String,
    pub topic_id: Uuid,
    pub is_internal: bool,
    pub error_code: i16,
    /// Sorted by partition id.
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    pub fn check(&self) -> Result<()> {
        check(self.error_code, None, format!("topic {}", self.name))
    }
}

/// A whole Metadata response in plain types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub cluster_id: Option<String>,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    pub topics: Vec<TopicMetadata>,
}

impl Metadata {
    fn from_response(response: MetadataResponse) -> Self {
        let brokers = response
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect();
        let topics = response
            .topics
            .into_iter()
            .map(|t| {
                let mut partitions: Vec<_> = t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionMetadata {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.into_iter().map(|b| b.0).collect(),
                        offline_replicas: p.offline_replicas.into_iter().map(|b| b.0).collect(),
                        error_code: p.error_code,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                TopicMetadata {
                    name: t.name.map(|n| n.0.to_string()).unwrap_or_default(),
                    topic_id: t.topic_id,
                    is_internal: t.is_internal,
                    error_code: t.error_code,
                    partitions,
                }
            })
            .collect();
        Metadata {
            cluster_id: response.cluster_id.map(|c| c.to_string()),
            controller_id: response.controller_id.0,
            brokers,
            topics,
        }
    }
}

/// Connections to a cluster, found from one or more bootstrap addresses.
#[derive(Debug)]
pub struct Client {
    bootstrap: Vec<String>,
    config: ConnectionConfig,
    bootstrap_conn: Option<Connection>,
    brokers: HashMap<i32, BrokerInfo>,
    conns: HashMap<i32, Connection>,
    topics: HashMap<String, TopicMetadata>,
    controller_id: i32,
    /// Group and transaction coordinators found so far, by key type and
    /// key (see `coordinator.rs`).
    pub(crate) coordinators: HashMap<(CoordinatorType, String), BrokerInfo>,
}

impl Client {
    /// `bootstrap` is a comma-separated list of host:port; nothing is
    /// connected until the first request.
    pub fn new(bootstrap: &str, config: ConnectionConfig) -> Result<Self> {
        let bootstrap: Vec<String> = bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if bootstrap.is_empty() {
            return Err(Error::InvalidArgument(
                "no bootstrap broker given".to_owned(),
            ));
        }
        Ok(Client {
            bootstrap,
            config,
            bootstrap_conn: None,
            brokers: HashMap::new(),
            conns: HashMap::new(),
            topics: HashMap::new(),
            controller_id: -1,
            coordinators: HashMap::new(),
        })
    }

    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// A connection to any broker (the first bootstrap address that answers).
    pub async fn any_connection(&mut self) -> Result<&mut Connection> {
        if self.bootstrap_conn.as_ref().is_some_and(|c| !c.is_usable()) {
            self.bootstrap_conn = None;
        }
        self.conns.retain(|_, c| c.is_usable());
        if self.bootstrap_conn.is_none() {
            // Any broker will do: reuse a connection we already have.
            if let Some(conn) = self.conns.values_mut().next() {
                return Ok(conn);
            }
            let mut last_err = None;
            for addr in &self.bootstrap {
                match Connection::connect(addr, self.config.clone()).await {
                    Ok(conn) => {
                        self.bootstrap_conn = Some(conn);
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            if self.bootstrap_conn.is_none() {
                return Err(last_err.unwrap_or_else(|| {
                    Error::InvalidArgument("no bootstrap broker given".to_owned())
                }));
            }
        }
        self.bootstrap_conn
            .as_mut()
            .ok_or_else(|| Error::Protocol("bootstrap connection vanished".to_owned()))
    }

    /// A connection to broker `id`, as advertised in the last metadata.
    pub async fn broker_connection(&mut self, id: i32) -> Result<&mut Connection> {
        if self.conns.get(&id).is_some_and(|c| !c.is_usable()) {
            self.conns.remove(&id);
        }
        if !self.conns.contains_key(&id) {
            if !self.brokers.contains_key(&id) {
                self.metadata(Some(&[]), false).await?;
            }
            let broker = self.brokers.get(&id).ok_or_else(|| {
                Error::Protocol(format!("broker {id} is not in the cluster metadata"))
            })?;
            let addr = broker.addr();
            // The bootstrap connection may already be this broker.
            let conn = match self.bootstrap_conn.take() {
                Some(conn) if conn.addr() == addr => conn,
                other => {
                    self.bootstrap_conn = other;
                    Connection::connect(&addr, self.config.clone()).await?
                }
            };
            self.conns.insert(id, conn);
        }
        self.conns
            .get_mut(&id)
            .ok_or_else(|| Error::Protocol(format!("connection to broker {id} vanished")))
    }

    /// A new connection to broker `id` that the caller owns (e.g. to
    /// pipeline requests on it); the client's own connections are not used.
    pub async fn dedicated_connection(&mut self, id: i32) -> Result<Connection> {
        if !self.brokers.contains_key(&id) {
            self.metadata(Some(&[]), false).await?;
        }
        let broker = self.brokers.get(&id).ok_or_else(|| {
            Error::Protocol(format!("broker {id} is not in the cluster metadata"))
        })?;
        Connection::connect(&broker.addr(), self.config.clone()).await
    }

    /// Learns a broker's address from outside Metadata (a FindCoordinator
    /// answer), so [`Client::broker_connection`] can reach it.
    pub(crate) fn remember_broker(&mut self, broker: &BrokerInfo) {
        self.brokers
            .entry(broker.id)
            .or_insert_with(|| broker.clone());
    }

    /// The ids of all brokers in the last metadata (fetched when unknown).
    pub async fn broker_ids(&mut self) -> Result<Vec<i32>> {
        if self.brokers.is_empty() {
            self.metadata(Some(&[]), false).await?;
        }
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Sends `request` to the controller's broker, the one admin changes go to.
    pub async fn send_to_controller<R: kafka_protocol::protocol::Request>(
        &mut self,
        request: &R,
    ) -> Result<R::Response> {
        self.controller_connection().await?.send(request).await
    }

    /// The broker admin requests go to: the controller Metadata names (in
    /// KRaft clusters a broker that forwards to the real controller).
    pub async fn controller_connection(&mut self) -> Result<&mut Connection> {
        if self.controller_id < 0 {
            self.metadata(Some(&[]), false).await?;
        }
        let id = self.controller_id;
        if id >= 0 && self.brokers.contains_key(&id) {
            self.broker_connection(id).await
        } else {
            self.any_connection().await
        }
    }

    /// Fetches metadata for `topics` (`None`: all topics) and refreshes the
    /// cached brokers and topics.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
        allow_auto_topic_creation: bool,
    ) -> Result<Metadata> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(allow_auto_topic_creation);
        let response = self.any_connection().await?.send(&request).await?;
        check(response.error_code, None, "metadata")?;
        let metadata = Metadata::from_response(response);
        self.brokers = metadata.brokers.iter().map(|b| (b.id, b.clone())).collect();
        self.controller_id = metadata.controller_id;
        for topic in &metadata.topics {
            if topic.error_code == 0 {
                self.topics.insert(topic.name.clone(), topic.clone());
            } else {
                self.topics.remove(&topic.name);
            }
        }
        Ok(metadata)
    }

    /// Cached metadata of a topic, fetched when missing. Retriable errors
    /// (a topic being created, a leader being elected) are retried until
    /// `wait` has passed.
    pub async fn topic(
        &mut self,
        name: &str,
        allow_auto_topic_creation: bool,
        wait: Duration,
    ) -> Result<TopicMetadata> {
        if let Some(topic) = self.topics.get(name) {
            return Ok(topic.clone());
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let metadata = self
                .metadata(Some(&[name.to_owned()]), allow_auto_topic_creation)
                .await?;
            let topic = metadata
                .topics
                .into_iter()
                .find(|t| t.name == name)
                .ok_or_else(|| {
                    Error::Protocol(format!("metadata response does not mention topic {name}"))
                })?;
            let ready = topic.check().and_then(|()| {
                match topic
                    .partitions
                    .iter()
                    .find(|p| p.error_code != 0 && p.leader < 0)
                {
                    Some(p) => check(p.error_code, None, format!("{name}-{}", p.partition)),
                    None => Ok(()),
                }
            });
            match ready {
                Ok(()) => return Ok(topic),
                // Without auto-creation, waiting will not make the topic appear.
                Err(e)
                    if !allow_auto_topic_creation
                        && topic.error_code == UNKNOWN_TOPIC_OR_PARTITION =>
                {
                    return Err(e)
                }
                Err(e) if e.is_retriable() && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Forgets a topic's cached metadata (after NOT_LEADER_OR_FOLLOWER etc.).
    pub fn invalidate(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    /// The leader of a partition from cached metadata.
    pub async fn leader(&mut self, topic: &str, partition: i32, wait: Duration) -> Result<i32> {
        let meta = self.topic(topic, false, wait).await?;
        let p = meta
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .ok_or_else(|| {
                Error::kafka(
                    UNKNOWN_TOPIC_OR_PARTITION,
                    Some(format!("topic {topic} has no partition {partition}")),
                    format!("{topic}-{partition}"),
                )
            })?;
        if p.leader < 0 {
            self.invalidate(topic);
            check(p.error_code, None, format!("{topic}-{partition}"))?;
            return Err(Error::kafka(
                LEADER_NOT_AVAILABLE,
                None,
                format!("{topic}-{partition}"),
            ));
        }
        Ok(p.leader)
    }
}
