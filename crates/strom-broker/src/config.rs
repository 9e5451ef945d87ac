//! Broker configuration, typed from Kafka's config names. The binary gathers
//! name/value pairs from a file, the environment and flags; this module only
//! parses and checks them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use strom_metadata::broker_config::{BrokerConfigLayers, GroupConfigLimits};
use strom_metadata::topic_config::TOPIC_CONFIGS;
use strom_metadata::{ConfigResource, MetadataImage};
use strom_replication::ReplicaSelector;
use strom_types::NodeId;
use thiserror::Error;

use crate::security_config::{ListenerSecurity, SecurityProtocol};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {name}: {why}")]
    Invalid {
        name: String,
        value: String,
        why: String,
    },
}

/// One `NAME://host:port` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        format!("{host}:{}", self.port)
            .parse()
            .map_err(|e| ConfigError::Invalid {
                name: "listeners".into(),
                value: format!("{}:{}", self.host, self.port),
                why: format!("{e}"),
            })
    }
}

pub use strom_metadata::broker_config::{BrokerConfigDef, BROKER_CONFIGS};

/// `process.roles`: what this node does in the cluster (both by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessRoles {
    /// Hosts partitions and serves clients.
    pub broker: bool,
    /// Votes in the metadata quorum and can be the active controller.
    pub controller: bool,
}

/// One voter of `controller.quorum.voters` (`id@host:port`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    pub id: NodeId,
    pub host: String,
    pub port: u16,
}

/// How this node takes part in the cluster, with Kafka's (KRaft's) config names.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub roles: ProcessRoles,
    /// `controller.quorum.voters`; empty: this node alone is the quorum, in process,
    /// with no controller listener needed (a one-node cluster with no configuration).
    pub voters: Vec<QuorumVoter>,
    /// `controller.listener.names` (default `CONTROLLER`).
    pub controller_listener_names: Vec<String>,
    /// `inter.broker.listener.name`: the listener followers fetch from and brokers
    /// reach each other on (default: the first broker listener).
    pub inter_broker_listener_name: String,
    /// `broker.rack`, for rack-aware placement and fetching from the closest replica.
    pub rack: Option<String>,
    /// `replica.selector.class` (KIP-392): unset, the leader serves every consumer fetch;
    /// Kafka's RackAwareReplicaSelector sends consumers to a replica in their `client.rack`.
    pub replica_selector: ReplicaSelector,
    pub broker_session_timeout_ms: i64,
    pub broker_heartbeat_interval_ms: i64,
    pub controller_quorum_election_timeout_ms: i64,
    pub controller_quorum_fetch_timeout_ms: i64,
    pub replica_lag_time_max_ms: i64,
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_min_bytes: i32,
    pub replica_fetch_wait_max_ms: i32,
    pub replica_fetch_response_max_bytes: i32,
    pub replica_fetch_backoff_ms: i32,
    pub auto_leader_rebalance_enable: bool,
    pub leader_imbalance_check_interval_seconds: i64,
    /// Parsed and shown as Kafka 4 does, but, as in its KRaft controller, balancing
    /// moves every partition not led by its preferred replica whatever this share.
    pub leader_imbalance_per_broker_percentage: i32,
    /// `unclean.leader.election.interval.ms`: how often the active controller elects
    /// leaders for leaderless partitions of topics with `unclean.leader.election.enable`.
    pub unclean_leader_election_interval_ms: i64,
    pub metadata_log_max_record_bytes_between_snapshots: i64,
    /// `cluster.id`: what Kafka's `kafka-storage format --cluster-id` writes into
    /// `meta.properties`. Unset on a node of several voters, it is derived from
    /// `controller.quorum.voters`, so the nodes of one configuration agree with no
    /// formatting step.
    pub cluster_id: Option<String>,
}

impl ClusterConfig {
    /// This node is the whole quorum: no controller listener, nothing to reach.
    pub fn is_single_voter(&self) -> bool {
        self.voters.is_empty()
    }

    pub fn is_controller_listener(&self, name: &str) -> bool {
        self.controller_listener_names.iter().any(|n| n == name)
    }
}

pub fn parse_process_roles(value: &str) -> Result<ProcessRoles, ConfigError> {
    let mut roles = ProcessRoles {
        broker: false,
        controller: false,
    };
    for role in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            "broker" if !roles.broker => roles.broker = true,
            "controller" if !roles.controller => roles.controller = true,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "process.roles".into(),
                    value: value.into(),
                    why: format!(
                        "unknown or repeated role {role:?}: expected broker, controller or both"
                    ),
                })
            }
        }
    }
    if !roles.broker && !roles.controller {
        return Err(ConfigError::Invalid {
            name: "process.roles".into(),
            value: value.into(),
            why: "no role given".into(),
        });
    }
    Ok(roles)
}

/// `controller.quorum.voters`: `id@host:port,...`, as KRaft writes it.
pub fn parse_quorum_voters(value: &str) -> Result<Vec<QuorumVoter>, ConfigError> {
    let invalid = |why: String| ConfigError::Invalid {
        name: "controller.quorum.voters".into(),
        value: value.into(),
        why,
    };
    let mut voters: Vec<QuorumVoter> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, address) = item
            .split_once('@')
            .ok_or_else(|| invalid(format!("{item:?} is not id@host:port")))?;
        let id: NodeId = id
            .parse()
            .map_err(|_| invalid(format!("{id:?} is not a node id")))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| invalid(format!("{item:?} is not id@host:port")))?;
        let port = port
            .parse()
            .map_err(|_| invalid(format!("{port:?} is not a port")))?;
        if id < 0 {
            return Err(invalid(format!("node id {id} is negative")));
        }
        if voters.iter().any(|v| v.id == id) {
            return Err(invalid(format!("node id {id} is named twice")));
        }
        voters.push(QuorumVoter {
            id,
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port,
        });
    }
    Ok(voters)
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    /// Each listener's security protocol and its TLS and SASL settings, by listener name.
    pub security: BTreeMap<String, ListenerSecurity>,
    /// `authorizer.class.name` set to Kafka's StandardAuthorizer: ACLs are checked, with
    /// `super.users` and `allow.everyone.if.no.acl.found`. None: everything is allowed.
    pub authorizer: Option<strom_security::acl::Authorizer>,
    /// The first of `log_dirs`: it holds `meta.properties`, the broker-wide files and,
    /// unless `metadata.log.dir` names another, the metadata log.
    pub log_dir: PathBuf,
    /// `metadata.log.dir`: where the metadata log (`__cluster_metadata-0`) lives, by
    /// default the first of `log.dirs`. Outside `log.dirs` it holds no partition, only
    /// the metadata log and its own `meta.properties`, as in Kafka.
    pub metadata_log_dir: PathBuf,
    /// Every `log.dirs` entry (Kafka's JBOD), `log_dir` first; partitions are spread
    /// over them.
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub socket_request_max_bytes: usize,
    pub log_retention_check_interval_ms: u64,
    pub max_connections: usize,
    /// Connection limits (Kafka's ConnectionQuotas, `connection_quotas.rs`):
    /// `max.connections.per.ip` and its `.overrides` (`host:count,...`),
    /// `max.connection.creation.rate` (connections per second; over it, accepts are
    /// delayed). All three are dynamic, as `max.connections` is.
    pub max_connections_per_ip: i64,
    pub max_connections_per_ip_overrides: String,
    pub max_connection_creation_rate: i64,
    /// `quota.window.num` (11) and `quota.window.size.seconds` (1): the samples the
    /// connection creation rate and client quotas are measured over.
    pub quota_window_num: u32,
    pub quota_window_size_seconds: u32,
    /// `controller.quota.window.num` (11) and `controller.quota.window.size.seconds`
    /// (1): the controller mutation quota's token bucket holds this many seconds of
    /// its rate.
    pub controller_quota_window_num: u32,
    pub controller_quota_window_size_seconds: u32,
    /// `connections.max.idle.ms` (600000): a connection with no socket activity this
    /// long is closed, even with a request in flight, as Kafka's selector does; < 0 never.
    pub connections_max_idle_ms: i64,
    /// `strom.request.read.timeout.ms` (60000): once a request's first byte has arrived,
    /// its whole frame must be read within this (time spent waiting for
    /// `queued.max.request.bytes` not counted), or the connection is closed.
    pub request_read_timeout_ms: u64,
    /// `log.cleaner.backoff.ms`: how often compacted logs are looked at.
    pub log_cleaner_backoff_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms`: how often the log dir's
    /// `replication-offset-checkpoint` is written.
    pub replica_high_watermark_checkpoint_interval_ms: u64,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.replication.factor`, capped at the live brokers when
    /// the topic is created so a single broker works with no configuration.
    pub offsets_topic_replication_factor: i16,
    pub offsets_topic_segment_bytes: i32,
    /// `transaction.state.log.*`: the partitions, replication factor (capped at the live
    /// brokers, as for `__consumer_offsets`), segment size and min ISR of `__transaction_state`.
    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_replication_factor: i16,
    pub transaction_state_log_segment_bytes: i32,
    pub transaction_state_log_min_isr: i32,
    /// `transaction.partition.verification.enable` (true): a transactional batch that would
    /// start a transaction on a partition is checked with the coordinator first (KIP-890).
    pub transaction_partition_verification_enable: bool,
    /// `transaction.max.timeout.ms`: the longest transaction timeout a producer may ask for.
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: idle transactional ids are forgotten after it.
    pub transactional_id_expiration_ms: i32,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub transaction_abort_timed_out_cleanup_interval_ms: i32,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub transaction_remove_expired_cleanup_interval_ms: i32,
    /// Group coordinator settings (`group.*`, `offsets.retention.*`, `offset.metadata.max.bytes`).
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_max_size: i32,
    /// KIP-848 consumer groups: `group.consumer.*`.
    pub group_consumer_session_timeout_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
    pub group_consumer_max_size: i32,
    /// Bounds on the group-level `consumer.*` configs (KIP-848).
    pub group_consumer_min_session_timeout_ms: i32,
    pub group_consumer_max_session_timeout_ms: i32,
    pub group_consumer_min_heartbeat_interval_ms: i32,
    pub group_consumer_max_heartbeat_interval_ms: i32,
    /// `group.coordinator.append.linger.ms` (Kafka 4.0: 5): how long a group
    /// request that wrote records waits before it is answered, as Kafka's
    /// coordinator batches its writes for that long.
    pub group_coordinator_append_linger_ms: i32,
    pub offsets_retention_minutes: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: i32,
    /// `fetch.max.bytes` (55 MiB, as Kafka): the most record bytes one Fetch
    /// response carries, whatever the request's `max_bytes` says.
    pub fetch_max_bytes: i32,
    /// `max.incremental.fetch.session.cache.slots` (1000): fetch sessions kept.
    pub max_incremental_fetch_session_cache_slots: usize,
    /// `queued.max.request.bytes` (-1, as Kafka): the bytes of requests read
    /// and not yet answered, over all connections; <= 0 is unbounded.
    pub queued_max_request_bytes: i64,
    /// `strom.fetch.zero.copy` (true): fetched record bytes go from the log
    /// files to the socket with sendfile (Linux); false copies them through
    /// memory.
    pub fetch_zero_copy: bool,
    /// `strom.log.max.open.files` (default: half the process's open-file limit): how
    /// many segment files (logs and indexes) stay open at most; others are reopened when
    /// used. The rest of the limit is for sockets and files being read.
    pub log_max_open_files: Option<usize>,
    /// `producer.id.expiration.ms` (86400000): a producer idle this long, with no open
    /// transaction, is forgotten by the partitions it wrote to. Dynamic.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms` (600000): how often they are looked for.
    pub producer_id_expiration_check_interval_ms: u64,
    /// `strom.producer.ids.per.partition.max` (100000): the most producer ids one
    /// partition tracks; a batch from one more fails with POLICY_VIOLATION.
    pub max_producer_ids_per_partition: usize,
    /// Where Prometheus scrapes `/metrics`; empty disables it.
    pub metrics_listener: Option<SocketAddr>,
    /// Roles, quorum, listeners between nodes, and replication settings.
    pub cluster: ClusterConfig,
    /// Every config that was set explicitly, by Kafka name.
    pub explicit: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self::from_map(BTreeMap::new()).expect("defaults are valid")
    }
}

fn parse<T: std::str::FromStr>(
    map: &BTreeMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match map.get(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name: name.into(),
                value: value.clone(),
                why: e.to_string(),
            }),
    }
}

/// A number config with Kafka's `atLeast(min)` validator.
fn at_least<T>(
    map: &BTreeMap<String, String>,
    name: &str,
    default: T,
    min: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let value = parse(map, name, default)?;
    if value < min {
        return Err(ConfigError::Invalid {
            name: name.into(),
            value: value.to_string(),
            why: format!("value must be at least {min}"),
        });
    }
    Ok(value)
}

/// `listener.name.<listener>.max.connections` or `.max.connection.creation.rate`: the
/// base name of a per-listener connection limit.
fn listener_connection_limit(name: &str) -> Option<&str> {
    let (_, base) = name.strip_prefix("listener.name.")?.split_once('.')?;
    matches!(base, "max.connections" | "max.connection.creation.rate").then_some(base)
}

pub fn parse_listeners(name: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    let invalid = |why: &str| ConfigError::Invalid {
        name: name.into(),
        value: value.into(),
        why: why.into(),
    };
    let mut listeners = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (listener_name, address) = item
            .split_once("://")
            .ok_or_else(|| invalid("expected NAME://host:port"))?;
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| invalid("expected NAME://host:port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse().map_err(|_| invalid("port is not a number"))?;
        listeners.push(Listener {
            name: listener_name.to_string(),
            host: host.to_string(),
            port,
        });
    }
    if listeners.is_empty() {
        return Err(invalid("no listener given"));
    }
    Ok(listeners)
}

impl BrokerConfig {
    pub fn from_map(map: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let listeners = parse_listeners(
            "listeners",
            map.get("listeners")
                .map_or("PLAINTEXT://127.0.0.1:9092", String::as_str),
        )?;
        let cluster = cluster_config(&map, &listeners)?;
        let security = listeners_security(&map, &listeners, &cluster)?;
        let advertised_listeners = match map.get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v)?,
            // Controller listeners are not advertised to clients, as in Kafka.
            None => listeners
                .iter()
                .filter(|l| !cluster.is_controller_listener(&l.name))
                .map(|l| Listener {
                    host: if l.host.is_empty() || l.host == "0.0.0.0" {
                        "127.0.0.1".into()
                    } else {
                        l.host.clone()
                    },
                    ..l.clone()
                })
                .collect(),
        };
        let log_dirs = map
            .get("log.dirs")
            .or_else(|| map.get("log.dir"))
            .cloned()
            .unwrap_or_else(|| "./data".into());
        let log_dirs: Vec<PathBuf> = log_dirs
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        for (i, dir) in log_dirs.iter().enumerate() {
            if log_dirs[..i].contains(dir) {
                return Err(ConfigError::Invalid {
                    name: "log.dirs".into(),
                    value: dir.display().to_string(),
                    why: "a log dir is listed twice".into(),
                });
            }
        }
        let log_dirs = if log_dirs.is_empty() {
            vec![PathBuf::from("./data")]
        } else {
            log_dirs
        };
        let log_dir = log_dirs[0].clone();
        let metadata_log_dir = map
            .get("metadata.log.dir")
            .map(|d| d.trim())
            .filter(|d| !d.is_empty())
            .map_or_else(|| log_dir.clone(), PathBuf::from);
        let metrics_listener = match map.get("strom.metrics.listener").map(|s| s.trim()) {
            Some("") => None,
            Some(v) => {
                Some(
                    v.parse()
                        .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
                            name: "strom.metrics.listener".into(),
                            value: v.into(),
                            why: e.to_string(),
                        })?,
                )
            }
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9644))),
        };
        let num_partitions = parse(&map, "num.partitions", 1i32)?;
        if num_partitions < 1 {
            return Err(ConfigError::Invalid {
                name: "num.partitions".into(),
                value: num_partitions.to_string(),
                why: "must be at least 1".into(),
            });
        }
        let max_connections_per_ip =
            i64::from(at_least(&map, "max.connections.per.ip", i32::MAX, 0)?);
        let max_connections_per_ip_overrides = map
            .get("max.connections.per.ip.overrides")
            .cloned()
            .unwrap_or_default();
        crate::connection_quotas::parse_per_ip_overrides(&max_connections_per_ip_overrides)
            .map_err(|why| ConfigError::Invalid {
                name: "max.connections.per.ip.overrides".into(),
                value: max_connections_per_ip_overrides.clone(),
                why,
            })?;
        if max_connections_per_ip == 0 && max_connections_per_ip_overrides.trim().is_empty() {
            return Err(ConfigError::Invalid {
                name: "max.connections.per.ip".into(),
                value: "0".into(),
                why: "max.connections.per.ip can be set to zero only if max.connections.per.ip.overrides property is set".into(),
            });
        }
        let connections_max_idle_ms = parse(&map, "connections.max.idle.ms", 600_000i64)?;
        let failed_authentication_delay_ms =
            parse(&map, "connection.failed.authentication.delay.ms", 100i64)?;
        if connections_max_idle_ms >= 0 && failed_authentication_delay_ms >= connections_max_idle_ms
        {
            return Err(ConfigError::Invalid {
                name: "connection.failed.authentication.delay.ms".into(),
                value: failed_authentication_delay_ms.to_string(),
                why: format!("connection.failed.authentication.delay.ms={failed_authentication_delay_ms} should always be less than connections.max.idle.ms={connections_max_idle_ms} to prevent failed authentication responses from timing out"),
            });
        }
        for name in map
            .keys()
            .filter(|n| listener_connection_limit(n).is_some())
        {
            parse(&map, name, 0i32)?;
        }
        let config = Self {
            node_id: parse(&map, "node.id", 1)?,
            listeners,
            advertised_listeners,
            security,
            authorizer: authorizer(&map)?,
            log_dir,
            metadata_log_dir,
            log_dirs,
            num_partitions,
            default_replication_factor: parse(&map, "default.replication.factor", 1)?,
            auto_create_topics_enable: parse(&map, "auto.create.topics.enable", true)?,
            socket_request_max_bytes: parse(&map, "socket.request.max.bytes", 104_857_600usize)?,
            log_retention_check_interval_ms: parse(
                &map,
                "log.retention.check.interval.ms",
                300_000u64,
            )?,
            max_connections: at_least(&map, "max.connections", i32::MAX, 0)? as usize,
            max_connections_per_ip,
            max_connections_per_ip_overrides,
            max_connection_creation_rate: i64::from(at_least(
                &map,
                "max.connection.creation.rate",
                i32::MAX,
                0,
            )?),
            quota_window_num: at_least(&map, "quota.window.num", 11, 1)?,
            quota_window_size_seconds: at_least(&map, "quota.window.size.seconds", 1, 1)?,
            controller_quota_window_num: at_least(&map, "controller.quota.window.num", 11, 1)?,
            controller_quota_window_size_seconds: at_least(
                &map,
                "controller.quota.window.size.seconds",
                1,
                1,
            )?,
            connections_max_idle_ms,
            request_read_timeout_ms: at_least(&map, "strom.request.read.timeout.ms", 60_000u64, 1)?,
            log_cleaner_backoff_ms: parse(&map, "log.cleaner.backoff.ms", 15_000u64)?,
            replica_high_watermark_checkpoint_interval_ms: parse(
                &map,
                "replica.high.watermark.checkpoint.interval.ms",
                5_000u64,
            )?,
            offsets_topic_num_partitions: parse(&map, "offsets.topic.num.partitions", 50)?.max(1),
            offsets_topic_replication_factor: parse(&map, "offsets.topic.replication.factor", 3)?
                .max(1),
            offsets_topic_segment_bytes: parse(&map, "offsets.topic.segment.bytes", 104_857_600)?,
            transaction_state_log_num_partitions: parse(
                &map,
                "transaction.state.log.num.partitions",
                50,
            )?
            .max(1),
            transaction_state_log_replication_factor: parse(
                &map,
                "transaction.state.log.replication.factor",
                3,
            )?
            .max(1),
            transaction_state_log_segment_bytes: parse(
                &map,
                "transaction.state.log.segment.bytes",
                104_857_600,
            )?,
            transaction_state_log_min_isr: parse(&map, "transaction.state.log.min.isr", 2)?,
            transaction_partition_verification_enable: parse(
                &map,
                "transaction.partition.verification.enable",
                true,
            )?,
            transaction_max_timeout_ms: parse(&map, "transaction.max.timeout.ms", 900_000)?.max(1),
            transactional_id_expiration_ms: parse(
                &map,
                "transactional.id.expiration.ms",
                604_800_000,
            )?
            .max(1),
            transaction_abort_timed_out_cleanup_interval_ms: parse(
                &map,
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                10_000,
            )?
            .max(1),
            transaction_remove_expired_cleanup_interval_ms: parse(
                &map,
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                3_600_000,
            )?
            .max(1),
            group_min_session_timeout_ms: parse(&map, "group.min.session.timeout.ms", 6_000)?,
            group_max_session_timeout_ms: parse(&map, "group.max.session.timeout.ms", 1_800_000)?,
            group_initial_rebalance_delay_ms: parse(
                &map,
                "group.initial.rebalance.delay.ms",
                3_000,
            )?,
            group_max_size: parse(&map, "group.max.size", i32::MAX)?,
            group_consumer_session_timeout_ms: parse(
                &map,
                "group.consumer.session.timeout.ms",
                45_000,
            )?,
            group_consumer_heartbeat_interval_ms: parse(
                &map,
                "group.consumer.heartbeat.interval.ms",
                5_000,
            )?,
            group_consumer_max_size: parse(&map, "group.consumer.max.size", i32::MAX)?,
            group_consumer_min_session_timeout_ms: parse(
                &map,
                "group.consumer.min.session.timeout.ms",
                45_000,
            )?,
            group_consumer_max_session_timeout_ms: parse(
                &map,
                "group.consumer.max.session.timeout.ms",
                60_000,
            )?,
            group_consumer_min_heartbeat_interval_ms: parse(
                &map,
                "group.consumer.min.heartbeat.interval.ms",
                5_000,
            )?,
            group_consumer_max_heartbeat_interval_ms: parse(
                &map,
                "group.consumer.max.heartbeat.interval.ms",
                15_000,
            )?,
            group_coordinator_append_linger_ms: parse(
                &map,
                "group.coordinator.append.linger.ms",
                5,
            )?,
            offsets_retention_minutes: parse(&map, "offsets.retention.minutes", 10_080)?,
            offsets_retention_check_interval_ms: parse(
                &map,
                "offsets.retention.check.interval.ms",
                600_000,
            )?,
            offset_metadata_max_bytes: parse(&map, "offset.metadata.max.bytes", 4_096)?,
            fetch_max_bytes: at_least(&map, "fetch.max.bytes", 57_671_680, 1024)?,
            max_incremental_fetch_session_cache_slots: at_least(
                &map,
                "max.incremental.fetch.session.cache.slots",
                1000,
                0,
            )? as usize,
            queued_max_request_bytes: parse(&map, "queued.max.request.bytes", -1i64)?,
            fetch_zero_copy: parse(&map, "strom.fetch.zero.copy", true)?,
            producer_id_expiration_ms: parse(&map, "producer.id.expiration.ms", 86_400_000i64)?,
            producer_id_expiration_check_interval_ms: parse(
                &map,
                "producer.id.expiration.check.interval.ms",
                600_000u64,
            )?,
            max_producer_ids_per_partition: parse(
                &map,
                "strom.producer.ids.per.partition.max",
                strom_log::DEFAULT_MAX_PRODUCER_IDS,
            )?
            .max(1),
            log_max_open_files: match map.get("strom.log.max.open.files") {
                None => None,
                Some(_) => Some(at_least(&map, "strom.log.max.open.files", 0, 8)? as usize),
            },
            metrics_listener,
            cluster,
            explicit: map,
        };
        for (name, value) in &config.explicit {
            if let Some(def) = TOPIC_CONFIGS
                .iter()
                .find(|d| d.synonyms.iter().any(|s| s.name == name))
            {
                let multiplier = def
                    .synonyms
                    .iter()
                    .find(|s| s.name == name)
                    .map_or(1, |s| s.multiplier);
                let value_in_topic_units = match value.trim().parse::<i64>() {
                    Ok(n) if multiplier != 1 => n.saturating_mul(multiplier).to_string(),
                    _ => value.clone(),
                };
                def.validate(&value_in_topic_units)
                    .map_err(|why| ConfigError::Invalid {
                        name: name.clone(),
                        value: value.clone(),
                        why,
                    })?;
            } else if !BROKER_CONFIGS.iter().any(|d| d.name == name)
                && name != "log.dir"
                && listener_connection_limit(name).is_none()
                && !crate::security_config::is_security_config(name)
            {
                tracing::warn!(config = %name, "the configuration was supplied but isn't a known config");
            }
        }
        Ok(config)
    }
}

/// Kafka's KRaft authorizer, the one `authorizer.class.name` may name.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

fn authorizer(
    map: &BTreeMap<String, String>,
) -> Result<Option<strom_security::acl::Authorizer>, ConfigError> {
    let class = map
        .get("authorizer.class.name")
        .map(|c| c.trim())
        .unwrap_or("");
    if class.is_empty() {
        return Ok(None);
    }
    if class != STANDARD_AUTHORIZER && class != "kafka.security.authorizer.AclAuthorizer" {
        return Err(ConfigError::Invalid {
            name: "authorizer.class.name".into(),
            value: class.into(),
            why: format!("the only authorizer served is {STANDARD_AUTHORIZER}"),
        });
    }
    let mut super_users = Vec::new();
    for user in map
        .get("super.users")
        .map(String::as_str)
        .unwrap_or("")
        .split(';')
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        if strom_security::KafkaPrincipal::parse(user).is_none() {
            return Err(ConfigError::Invalid {
                name: "super.users".into(),
                value: user.into(),
                why: "each super user is a principal such as User:admin, separated by ;".into(),
            });
        }
        super_users.push(user.to_string());
    }
    let allow_if_no_acl = parse(map, "allow.everyone.if.no.acl.found", false)?;
    Ok(Some(strom_security::acl::Authorizer::new(
        super_users,
        allow_if_no_acl,
    )))
}

/// Every listener's security. Listeners between nodes stay PLAINTEXT for now: the
/// replica fetcher and the controller's channel have no TLS or SASL client yet.
fn listeners_security(
    map: &BTreeMap<String, String>,
    listeners: &[Listener],
    cluster: &ClusterConfig,
) -> Result<BTreeMap<String, ListenerSecurity>, ConfigError> {
    let protocols = crate::security_config::protocol_map(map, &cluster.controller_listener_names)?;
    let mut security = BTreeMap::new();
    for listener in listeners {
        let protocol = *protocols
            .get(&listener.name)
            .ok_or_else(|| ConfigError::Invalid {
                name: "listener.security.protocol.map".into(),
                value: map
                    .get("listener.security.protocol.map")
                    .cloned()
                    .unwrap_or_default(),
                why: format!(
                    "no security protocol defined for listener {}",
                    listener.name
                ),
            })?;
        let between_nodes = cluster.is_controller_listener(&listener.name)
            || (listener.name == cluster.inter_broker_listener_name && !cluster.is_single_voter());
        if between_nodes && protocol != SecurityProtocol::Plaintext {
            return Err(ConfigError::Invalid {
                name: "listener.security.protocol.map".into(),
                value: format!("{}:{}", listener.name, protocol.name()),
                why: format!(
                    "listener {} carries traffic between nodes, which is PLAINTEXT only so far; give clients their own listener",
                    listener.name
                ),
            });
        }
        security.insert(
            listener.name.clone(),
            crate::security_config::listener_security(map, &listener.name, protocol)?,
        );
    }
    Ok(security)
}

/// Reads and checks the cluster configs as KafkaConfig validates them for KRaft.
fn cluster_config(
    map: &BTreeMap<String, String>,
    listeners: &[Listener],
) -> Result<ClusterConfig, ConfigError> {
    let invalid = |name: &str, value: &str, why: String| ConfigError::Invalid {
        name: name.into(),
        value: value.into(),
        why,
    };
    let roles_value = map
        .get("process.roles")
        .map_or("broker,controller", String::as_str);
    let roles = parse_process_roles(roles_value)?;
    let node_id: NodeId = parse(map, "node.id", 1)?;
    let voters_value = map
        .get("controller.quorum.voters")
        .map_or("", String::as_str);
    let voters = parse_quorum_voters(voters_value)?;
    let controller_listener_names: Vec<String> = map
        .get("controller.listener.names")
        .map_or("CONTROLLER", String::as_str)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let is_controller_listener = |name: &str| controller_listener_names.iter().any(|n| n == name);
    if voters.is_empty() && !roles.controller {
        return Err(invalid(
            "controller.quorum.voters",
            voters_value,
            "a node without the controller role must be given the quorum's voters".into(),
        ));
    }
    if roles.controller && !voters.is_empty() {
        if !voters.iter().any(|v| v.id == node_id) {
            return Err(invalid(
                "controller.quorum.voters",
                voters_value,
                format!("node.id {node_id} has the controller role but is not a voter"),
            ));
        }
        if !listeners.iter().any(|l| is_controller_listener(&l.name)) {
            return Err(invalid(
                "listeners",
                map.get("listeners").map_or("", String::as_str),
                format!(
                    "a controller needs a listener named in controller.listener.names ({})",
                    controller_listener_names.join(",")
                ),
            ));
        }
    }
    if !roles.controller && listeners.iter().any(|l| is_controller_listener(&l.name)) {
        return Err(invalid(
            "listeners",
            map.get("listeners").map_or("", String::as_str),
            "a node without the controller role may not listen on a controller listener".into(),
        ));
    }
    let broker_listeners: Vec<&Listener> = listeners
        .iter()
        .filter(|l| !is_controller_listener(&l.name))
        .collect();
    if roles.broker && broker_listeners.is_empty() {
        return Err(invalid(
            "listeners",
            map.get("listeners").map_or("", String::as_str),
            "a broker needs a listener besides the controller listeners".into(),
        ));
    }
    if !roles.broker && !broker_listeners.is_empty() {
        return Err(invalid(
            "listeners",
            map.get("listeners").map_or("", String::as_str),
            "a controller-only node listens on controller listeners only".into(),
        ));
    }
    let inter_broker_listener_name = match map.get("inter.broker.listener.name") {
        Some(name) => {
            if is_controller_listener(name) || !broker_listeners.iter().any(|l| &l.name == name) {
                return Err(invalid(
                    "inter.broker.listener.name",
                    name,
                    "must name one of this broker's listeners, not a controller listener".into(),
                ));
            }
            name.clone()
        }
        None => broker_listeners
            .first()
            .map_or_else(|| "PLAINTEXT".to_string(), |l| l.name.clone()),
    };
    let rack = map
        .get("broker.rack")
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let replica_selector =
        ReplicaSelector::from_class_name(map.get("replica.selector.class").map(String::as_str))
            .map_err(|why| {
                invalid(
                    "replica.selector.class",
                    map.get("replica.selector.class").map_or("", String::as_str),
                    why,
                )
            })?;
    let cluster_id = map
        .get("cluster.id")
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
        .or_else(|| (!voters.is_empty()).then(|| cluster_id_of_voters(&voters)));
    Ok(ClusterConfig {
        roles,
        voters,
        controller_listener_names,
        inter_broker_listener_name,
        rack,
        replica_selector,
        broker_session_timeout_ms: at_least(map, "broker.session.timeout.ms", 9_000, 1)?.into(),
        broker_heartbeat_interval_ms: at_least(map, "broker.heartbeat.interval.ms", 2_000, 1)?
            .into(),
        controller_quorum_election_timeout_ms: at_least(
            map,
            "controller.quorum.election.timeout.ms",
            1_000,
            1,
        )?
        .into(),
        controller_quorum_fetch_timeout_ms: at_least(
            map,
            "controller.quorum.fetch.timeout.ms",
            2_000,
            1,
        )?
        .into(),
        replica_lag_time_max_ms: parse(map, "replica.lag.time.max.ms", 30_000i64)?.max(1),
        replica_fetch_max_bytes: at_least(map, "replica.fetch.max.bytes", 1_048_576, 0)?,
        replica_fetch_min_bytes: parse(map, "replica.fetch.min.bytes", 1)?,
        replica_fetch_wait_max_ms: at_least(map, "replica.fetch.wait.max.ms", 500, 0)?,
        replica_fetch_response_max_bytes: at_least(
            map,
            "replica.fetch.response.max.bytes",
            10_485_760,
            0,
        )?,
        replica_fetch_backoff_ms: at_least(map, "replica.fetch.backoff.ms", 1_000, 0)?,
        auto_leader_rebalance_enable: parse(map, "auto.leader.rebalance.enable", true)?,
        leader_imbalance_check_interval_seconds: at_least(
            map,
            "leader.imbalance.check.interval.seconds",
            300,
            1,
        )?,
        unclean_leader_election_interval_ms: at_least(
            map,
            "unclean.leader.election.interval.ms",
            300_000,
            1,
        )?,
        leader_imbalance_per_broker_percentage: parse(
            map,
            "leader.imbalance.per.broker.percentage",
            10,
        )?,
        metadata_log_max_record_bytes_between_snapshots: parse(
            map,
            "metadata.log.max.record.bytes.between.snapshots",
            20_971_520i64,
        )?
        .max(1),
        cluster_id,
    })
}

/// A cluster id every node configured with the same voters derives alike: Kafka's
/// format (a UUID in URL-safe base64) of a name-based UUID of the voter list.
fn cluster_id_of_voters(voters: &[QuorumVoter]) -> String {
    let mut sorted: Vec<String> = voters
        .iter()
        .map(|v| format!("{}@{}:{}", v.id, v.host, v.port))
        .collect();
    sorted.sort();
    let name = format!("strom-cluster:{}", sorted.join(","));
    crate::meta_properties::cluster_id_of(&uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        name.as_bytes(),
    ))
}

impl BrokerConfig {
    /// The broker's bounds on group configs.
    pub fn group_config_limits(&self) -> GroupConfigLimits {
        GroupConfigLimits {
            min_session_timeout_ms: self.group_consumer_min_session_timeout_ms,
            max_session_timeout_ms: self.group_consumer_max_session_timeout_ms,
            min_heartbeat_interval_ms: self.group_consumer_min_heartbeat_interval_ms,
            max_heartbeat_interval_ms: self.group_consumer_max_heartbeat_interval_ms,
        }
    }
}

/// This broker's dynamic configs from one metadata image, to be layered over
/// the static ones (per-broker first, then the cluster-wide default).
#[derive(Debug, Clone, Default)]
pub struct DynamicBrokerConfigs {
    node: BTreeMap<String, String>,
    default: BTreeMap<String, String>,
}

impl DynamicBrokerConfigs {
    pub fn from_image(image: &MetadataImage, node_id: NodeId) -> Self {
        Self {
            node: image.configs(&ConfigResource::Broker(Some(node_id))),
            default: image.configs(&ConfigResource::Broker(None)),
        }
    }

    pub fn over<'a>(&'a self, config: &'a BrokerConfig) -> BrokerConfigLayers<'a> {
        BrokerConfigLayers {
            dynamic_broker: &self.node,
            dynamic_default: &self.default,
            static_config: &config.explicit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_configuration_defaults() {
        let config = BrokerConfig::default();
        assert_eq!(
            config.listeners[0].socket_addr().unwrap().to_string(),
            "127.0.0.1:9092"
        );
        assert_eq!(config.advertised_listeners[0].host, "127.0.0.1");
        assert_eq!(config.log_dir, PathBuf::from("./data"));
        assert_eq!(config.socket_request_max_bytes, 104_857_600);
        assert!(config.auto_create_topics_enable);
        assert_eq!(config.fetch_max_bytes, 57_671_680);
        assert_eq!(config.max_incremental_fetch_session_cache_slots, 1000);
    }

    #[test]
    fn connection_limits_have_kafkas_defaults_and_checks() {
        let config = BrokerConfig::default();
        assert_eq!(config.max_connections, i32::MAX as usize);
        assert_eq!(config.max_connections_per_ip, i64::from(i32::MAX));
        assert_eq!(config.max_connections_per_ip_overrides, "");
        assert_eq!(config.max_connection_creation_rate, i64::from(i32::MAX));
        assert_eq!(config.connections_max_idle_ms, 600_000);
        assert_eq!(config.request_read_timeout_ms, 60_000);
        assert_eq!(
            (config.quota_window_num, config.quota_window_size_seconds),
            (11, 1)
        );
        let with = |pairs: &[(&str, &str)]| {
            BrokerConfig::from_map(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        let config = with(&[
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip.overrides", "127.0.0.1:5, host-a:7"),
            ("connections.max.idle.ms", "-1"),
            ("listener.name.plaintext.max.connections", "10"),
        ])
        .unwrap();
        assert_eq!(config.max_connections_per_ip, 0);
        assert_eq!(config.connections_max_idle_ms, -1);
        // Zero per address needs overrides, as in Kafka.
        assert!(with(&[("max.connections.per.ip", "0")]).is_err());
        assert!(with(&[("max.connections.per.ip", "-1")]).is_err());
        assert!(with(&[("max.connections", "-1")]).is_err());
        assert!(with(&[("max.connection.creation.rate", "-1")]).is_err());
        assert!(with(&[("max.connections.per.ip.overrides", "bad host:1")]).is_err());
        assert!(with(&[("max.connections.per.ip.overrides", "127.0.0.1")]).is_err());
        assert!(with(&[("listener.name.plaintext.max.connections", "ten")]).is_err());
        assert!(with(&[("strom.request.read.timeout.ms", "0")]).is_err());
        // A failed authentication's answer must go out before the idle timer closes it.
        assert!(with(&[("connections.max.idle.ms", "100")]).is_err());
        assert!(with(&[
            ("connections.max.idle.ms", "100"),
            ("connection.failed.authentication.delay.ms", "50")
        ])
        .is_ok());
    }

    #[test]
    fn kafka_names_are_parsed_and_checked() {
        let map = BTreeMap::from([
            (
                "listeners".to_string(),
                "PLAINTEXT://127.0.0.1:19092".to_string(),
            ),
            ("auto.create.topics.enable".to_string(), "false".to_string()),
            ("num.partitions".to_string(), "3".to_string()),
            ("log.dirs".to_string(), "/tmp/a,/tmp/b".to_string()),
        ]);
        let config = BrokerConfig::from_map(map).unwrap();
        assert_eq!(config.listeners[0].port, 19092);
        assert!(!config.auto_create_topics_enable);
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.log_dir, PathBuf::from("/tmp/a"));
        assert_eq!(
            config.log_dirs,
            vec![PathBuf::from("/tmp/a"), PathBuf::from("/tmp/b")]
        );
        let twice = BTreeMap::from([("log.dirs".to_string(), "/tmp/a, /tmp/a".to_string())]);
        assert!(BrokerConfig::from_map(twice).is_err());
        let bad = BTreeMap::from([("num.partitions".to_string(), "many".to_string())]);
        assert!(BrokerConfig::from_map(bad).is_err());
        let bad = BTreeMap::from([("log.retention.ms".to_string(), "-7".to_string())]);
        assert!(BrokerConfig::from_map(bad).is_err());
        let bad = BTreeMap::from([("listeners".to_string(), "127.0.0.1:9092".to_string())]);
        assert!(BrokerConfig::from_map(bad).is_err());
        let bad = BTreeMap::from([("fetch.max.bytes".to_string(), "1023".to_string())]);
        assert!(BrokerConfig::from_map(bad).is_err());
        let bad = BTreeMap::from([(
            "max.incremental.fetch.session.cache.slots".to_string(),
            "-1".to_string(),
        )]);
        assert!(BrokerConfig::from_map(bad).is_err());
    }

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        BrokerConfig::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn no_cluster_configuration_is_a_one_voter_combined_node() {
        let cluster = BrokerConfig::default().cluster;
        assert!(cluster.roles.broker && cluster.roles.controller);
        assert!(cluster.is_single_voter());
        assert_eq!(cluster.controller_listener_names, vec!["CONTROLLER"]);
        assert_eq!(cluster.inter_broker_listener_name, "PLAINTEXT");
        assert_eq!(cluster.broker_session_timeout_ms, 9_000);
        assert_eq!(cluster.replica_lag_time_max_ms, 30_000);
        assert_eq!(cluster.rack, None);
        assert_eq!(cluster.replica_selector, ReplicaSelector::LeaderOnly);
        assert!(cluster.auto_leader_rebalance_enable);
        assert_eq!(cluster.leader_imbalance_check_interval_seconds, 300);
        assert_eq!(cluster.leader_imbalance_per_broker_percentage, 10);
    }

    #[test]
    fn leader_balancing_configs_have_kafkas_names_and_bounds() {
        let c = config(&[
            ("auto.leader.rebalance.enable", "false"),
            ("leader.imbalance.check.interval.seconds", "7"),
            ("leader.imbalance.per.broker.percentage", "25"),
        ])
        .unwrap()
        .cluster;
        assert_eq!(
            (
                c.auto_leader_rebalance_enable,
                c.leader_imbalance_check_interval_seconds,
                c.leader_imbalance_per_broker_percentage
            ),
            (false, 7, 25)
        );
        assert!(config(&[("leader.imbalance.check.interval.seconds", "0")]).is_err());
        assert!(config(&[("auto.leader.rebalance.enable", "yes")]).is_err());
    }

    #[test]
    fn the_replica_selector_is_kafkas_class_name() {
        let c = config(&[(
            "replica.selector.class",
            "org.apache.kafka.common.replica.RackAwareReplicaSelector",
        )])
        .unwrap();
        assert_eq!(c.cluster.replica_selector, ReplicaSelector::RackAware);
        // Kafka fails to start on a class it cannot load.
        assert!(config(&[("replica.selector.class", "com.example.Nearest")]).is_err());
    }

    #[test]
    fn a_three_voter_cluster_is_read_with_kraft_names() {
        let c = config(&[
            ("node.id", "2"),
            (
                "listeners",
                "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19192",
            ),
            (
                "controller.quorum.voters",
                "1@127.0.0.1:19191,2@127.0.0.1:19192,3@127.0.0.1:19193",
            ),
            ("broker.rack", "rack-b"),
        ])
        .unwrap();
        assert_eq!(c.cluster.voters.len(), 3);
        assert_eq!(
            c.cluster.voters[1],
            QuorumVoter {
                id: 2,
                host: "127.0.0.1".into(),
                port: 19192
            }
        );
        assert_eq!(c.cluster.rack.as_deref(), Some("rack-b"));
        assert_eq!(c.cluster.replica_selector, ReplicaSelector::LeaderOnly);
        // The controller listener is not advertised to clients.
        assert_eq!(c.advertised_listeners.len(), 1);
        assert_eq!(c.advertised_listeners[0].name, "PLAINTEXT");
    }

    #[test]
    fn cluster_configs_are_checked_as_kafka_checks_them() {
        let voters = "1@127.0.0.1:19191,2@127.0.0.1:19192";
        // A controller that is not a voter.
        assert!(config(&[
            ("node.id", "3"),
            ("listeners", "PLAINTEXT://:1,CONTROLLER://:2"),
            ("controller.quorum.voters", voters),
        ])
        .is_err());
        // A voter without a controller listener.
        assert!(config(&[("node.id", "1"), ("controller.quorum.voters", voters)]).is_err());
        // A broker-only node needs voters, and may not listen as a controller.
        assert!(config(&[("process.roles", "broker")]).is_err());
        assert!(config(&[
            ("process.roles", "broker"),
            ("controller.quorum.voters", voters),
            ("listeners", "PLAINTEXT://:1,CONTROLLER://:2"),
        ])
        .is_err());
        assert!(config(&[
            ("process.roles", "broker"),
            ("node.id", "4"),
            ("controller.quorum.voters", voters),
        ])
        .is_ok());
        // A controller-only node listens on controller listeners only.
        assert!(config(&[
            ("process.roles", "controller"),
            ("node.id", "1"),
            ("controller.quorum.voters", voters),
            ("listeners", "CONTROLLER://:19191"),
        ])
        .is_ok());
        assert!(config(&[("process.roles", "worker")]).is_err());
        assert!(config(&[("controller.quorum.voters", "1@nohost")]).is_err());
        assert!(config(&[("controller.quorum.voters", "1@h:1,1@h:2")]).is_err());
    }
}
