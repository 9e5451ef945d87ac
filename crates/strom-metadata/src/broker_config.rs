//! Broker configs as Kafka 4.x treats them at run time: which may change
//! without a restart (for one broker only, or also as the cluster-wide
//! default), which are read-only, how DescribeConfigs reports a broker config
//! with its synonyms and sources, and the layered lookup that topic configs
//! fall back to (dynamic per-broker, dynamic default, static, built-in).

use std::collections::BTreeMap;

use crate::topic_config::{BrokerConfigLookup, ConfigSource, ConfigType, TOPIC_CONFIGS};

/// Whether and where a broker config may be changed while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicScope {
    /// Only at start-up (a file, the environment or flags).
    ReadOnly,
    /// Per broker only, never as the cluster-wide default.
    PerBroker,
    /// Per broker or as the cluster-wide default.
    ClusterWide,
}

/// A broker config: its name, built-in default, Kafka type and dynamic scope.
pub struct BrokerConfigDef {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub config_type: ConfigType,
    pub scope: DynamicScope,
}

macro_rules! broker_defs {
    ($(($name:expr, $default:expr, $ty:ident, $scope:ident)),* $(,)?) => {
        &[$(BrokerConfigDef { name: $name, default: $default, config_type: ConfigType::$ty, scope: DynamicScope::$scope }),*]
    };
}

/// The broker configs strom itself reads, besides the topic configs' broker synonyms.
/// Listener changes need a restart in strom, so those two are read-only here.
pub const BROKER_CONFIGS: &[BrokerConfigDef] = broker_defs![
    ("advertised.listeners", None, String, ReadOnly),
    ("auto.create.topics.enable", Some("true"), Boolean, ReadOnly),
    (
        "auto.leader.rebalance.enable",
        Some("true"),
        Boolean,
        ReadOnly
    ),
    ("broker.heartbeat.interval.ms", Some("2000"), Int, ReadOnly),
    ("broker.rack", None, String, ReadOnly),
    ("broker.session.timeout.ms", Some("9000"), Int, ReadOnly),
    ("connections.max.idle.ms", Some("600000"), Long, ReadOnly),
    ("controller.listener.names", None, List, ReadOnly),
    (
        "controller.quorum.election.timeout.ms",
        Some("1000"),
        Int,
        ReadOnly
    ),
    (
        "controller.quorum.fetch.timeout.ms",
        Some("2000"),
        Int,
        ReadOnly
    ),
    ("controller.quorum.voters", Some(""), List, ReadOnly),
    ("default.replication.factor", Some("1"), Int, ReadOnly),
    ("inter.broker.listener.name", None, String, ReadOnly),
    ("fetch.max.bytes", Some("57671680"), Int, ReadOnly),
    (
        "follower.replication.throttled.rate",
        Some("9223372036854775807"),
        Long,
        PerBroker
    ),
    (
        "group.consumer.heartbeat.interval.ms",
        Some("5000"),
        Int,
        ReadOnly
    ),
    (
        "group.consumer.max.heartbeat.interval.ms",
        Some("15000"),
        Int,
        ReadOnly
    ),
    (
        "group.consumer.max.session.timeout.ms",
        Some("60000"),
        Int,
        ReadOnly
    ),
    ("group.consumer.max.size", Some("2147483647"), Int, ReadOnly),
    (
        "group.consumer.min.heartbeat.interval.ms",
        Some("5000"),
        Int,
        ReadOnly
    ),
    (
        "group.consumer.min.session.timeout.ms",
        Some("45000"),
        Int,
        ReadOnly
    ),
    (
        "group.consumer.session.timeout.ms",
        Some("45000"),
        Int,
        ReadOnly
    ),
    (
        "group.initial.rebalance.delay.ms",
        Some("3000"),
        Int,
        ReadOnly
    ),
    (
        "group.max.session.timeout.ms",
        Some("1800000"),
        Int,
        ReadOnly
    ),
    ("group.max.size", Some("2147483647"), Int, ReadOnly),
    ("group.min.session.timeout.ms", Some("6000"), Int, ReadOnly),
    (
        "listeners",
        Some("PLAINTEXT://127.0.0.1:9092"),
        String,
        ReadOnly
    ),
    (
        "leader.imbalance.check.interval.seconds",
        Some("300"),
        Long,
        ReadOnly
    ),
    (
        "unclean.leader.election.interval.ms",
        Some("300000"),
        Long,
        ReadOnly
    ),
    (
        "leader.imbalance.per.broker.percentage",
        Some("10"),
        Int,
        ReadOnly
    ),
    (
        "leader.replication.throttled.rate",
        Some("9223372036854775807"),
        Long,
        PerBroker
    ),
    ("listener.security.protocol.map", None, String, ReadOnly),
    ("log.cleaner.backoff.ms", Some("15000"), Long, ClusterWide),
    ("log.dirs", Some("./data"), String, ReadOnly),
    ("metadata.log.dir", None, String, ReadOnly),
    (
        "log.retention.check.interval.ms",
        Some("300000"),
        Long,
        ReadOnly
    ),
    ("log.retention.hours", Some("168"), Int, ReadOnly),
    ("log.roll.hours", Some("168"), Int, ReadOnly),
    (
        "max.connection.creation.rate",
        Some("2147483647"),
        Int,
        ClusterWide
    ),
    ("max.connections", Some("2147483647"), Int, ClusterWide),
    (
        "max.connections.per.ip",
        Some("2147483647"),
        Int,
        ClusterWide
    ),
    (
        "max.connections.per.ip.overrides",
        Some(""),
        String,
        ClusterWide
    ),
    (
        "max.incremental.fetch.session.cache.slots",
        Some("1000"),
        Int,
        ReadOnly
    ),
    ("node.id", Some("1"), Int, ReadOnly),
    ("num.partitions", Some("1"), Int, ReadOnly),
    ("offset.metadata.max.bytes", Some("4096"), Int, ReadOnly),
    (
        "offsets.retention.check.interval.ms",
        Some("600000"),
        Long,
        ReadOnly
    ),
    ("offsets.retention.minutes", Some("10080"), Int, ReadOnly),
    ("offsets.topic.num.partitions", Some("50"), Int, ReadOnly),
    (
        "offsets.topic.replication.factor",
        Some("3"),
        Short,
        ReadOnly
    ),
    (
        "offsets.topic.segment.bytes",
        Some("104857600"),
        Int,
        ReadOnly
    ),
    (
        "producer.id.expiration.check.interval.ms",
        Some("600000"),
        Int,
        ReadOnly
    ),
    (
        "producer.id.expiration.ms",
        Some("86400000"),
        Int,
        ClusterWide
    ),
    (
        "metadata.log.max.record.bytes.between.snapshots",
        Some("20971520"),
        Long,
        ReadOnly
    ),
    ("process.roles", Some("broker,controller"), List, ReadOnly),
    ("replica.fetch.backoff.ms", Some("1000"), Int, ReadOnly),
    ("replica.fetch.max.bytes", Some("1048576"), Int, ReadOnly),
    ("replica.fetch.min.bytes", Some("1"), Int, ReadOnly),
    (
        "replica.fetch.response.max.bytes",
        Some("10485760"),
        Int,
        ReadOnly
    ),
    ("replica.fetch.wait.max.ms", Some("500"), Int, ReadOnly),
    (
        "replica.high.watermark.checkpoint.interval.ms",
        Some("5000"),
        Long,
        ReadOnly
    ),
    ("replica.lag.time.max.ms", Some("30000"), Long, ReadOnly),
    ("replica.selector.class", None, String, ReadOnly),
    ("queued.max.request.bytes", Some("-1"), Long, ReadOnly),
    ("quota.window.num", Some("11"), Int, ReadOnly),
    ("quota.window.size.seconds", Some("1"), Int, ReadOnly),
    ("controller.quota.window.num", Some("11"), Int, ReadOnly),
    (
        "controller.quota.window.size.seconds",
        Some("1"),
        Int,
        ReadOnly
    ),
    ("socket.request.max.bytes", Some("104857600"), Int, ReadOnly),
    ("strom.fetch.zero.copy", Some("true"), Boolean, ReadOnly),
    ("strom.log.max.open.files", None, Int, ReadOnly),
    (
        "strom.request.read.timeout.ms",
        Some("60000"),
        Long,
        ReadOnly
    ),
    (
        "strom.producer.ids.per.partition.max",
        Some("100000"),
        Int,
        ReadOnly
    ),
    (
        "strom.metrics.listener",
        Some("127.0.0.1:9644"),
        String,
        ReadOnly
    ),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Some("10000"),
        Int,
        ReadOnly
    ),
    ("transaction.max.timeout.ms", Some("900000"), Int, ReadOnly),
    (
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        Some("3600000"),
        Int,
        ReadOnly
    ),
    ("transaction.state.log.min.isr", Some("2"), Int, ReadOnly),
    (
        "transaction.state.log.num.partitions",
        Some("50"),
        Int,
        ReadOnly
    ),
    (
        "transaction.state.log.replication.factor",
        Some("3"),
        Short,
        ReadOnly
    ),
    (
        "transaction.state.log.segment.bytes",
        Some("104857600"),
        Int,
        ReadOnly
    ),
    (
        "transactional.id.expiration.ms",
        Some("604800000"),
        Int,
        ReadOnly
    ),
];

/// Kafka's other dynamic broker configs. strom has no part they tune yet
/// (thread pools, SASL, metric reporters), but Kafka accepts them without a
/// restart, so strom stores and reports them the same way.
const KAFKA_DYNAMIC_CONFIGS: &[(&str, ConfigType, DynamicScope)] = {
    use ConfigType::*;
    use DynamicScope::*;
    &[
        ("background.threads", Int, ClusterWide),
        ("log.cleaner.dedupe.buffer.size", Long, ClusterWide),
        ("log.cleaner.io.buffer.load.factor", Double, ClusterWide),
        ("log.cleaner.io.buffer.size", Int, ClusterWide),
        ("log.cleaner.io.max.bytes.per.second", Double, ClusterWide),
        ("log.cleaner.threads", Int, ClusterWide),
        ("metric.reporters", List, ClusterWide),
        ("num.io.threads", Int, ClusterWide),
        ("num.network.threads", Int, ClusterWide),
        ("num.recovery.threads.per.data.dir", Int, ClusterWide),
        ("num.replica.fetchers", Int, ClusterWide),
        (
            "transaction.partition.verification.enable",
            Boolean,
            ClusterWide,
        ),
        ("listener.security.protocol.map", String, PerBroker),
        ("principal.builder.class", String, PerBroker),
        ("sasl.enabled.mechanisms", List, PerBroker),
        ("sasl.jaas.config", String, PerBroker),
        ("sasl.kerberos.kinit.cmd", String, PerBroker),
        ("sasl.kerberos.min.time.before.relogin", Long, PerBroker),
        ("sasl.kerberos.principal.to.local.rules", List, PerBroker),
        ("sasl.kerberos.service.name", String, PerBroker),
        ("sasl.kerberos.ticket.renew.jitter", Double, PerBroker),
        (
            "sasl.kerberos.ticket.renew.window.factor",
            Double,
            PerBroker,
        ),
        ("sasl.login.refresh.buffer.seconds", Short, PerBroker),
        ("sasl.login.refresh.min.period.seconds", Short, PerBroker),
        ("sasl.login.refresh.window.factor", Double, PerBroker),
        ("sasl.login.refresh.window.jitter", Double, PerBroker),
        ("sasl.mechanism.inter.broker.protocol", String, PerBroker),
    ]
};

/// Per-listener configs that may still be set cluster-wide.
const CLUSTER_LEVEL_LISTENER_CONFIGS: &[&str] = &[
    "max.connections",
    "max.connection.creation.rate",
    "num.network.threads",
];

/// What strom knows of a broker config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerConfigKind {
    pub config_type: Option<ConfigType>,
    pub scope: DynamicScope,
    /// Passwords are never returned by DescribeConfigs.
    pub sensitive: bool,
}

/// A topic config's broker synonym: the first of each topic config's list is
/// dynamic in Kafka; the unit variants (hours, minutes) are not.
fn topic_synonym(name: &str) -> Option<(&'static crate::topic_config::TopicConfigDef, bool)> {
    TOPIC_CONFIGS.iter().find_map(|def| {
        def.synonyms
            .iter()
            .position(|s| s.name == name)
            .map(|i| (def, i == 0 && def.synonyms[i].multiplier == 1))
    })
}

/// How a broker config name behaves; `None` for names strom does not know
/// (Kafka accepts those as dynamic configs, and so does strom).
pub fn broker_config_kind(name: &str) -> Option<BrokerConfigKind> {
    if let Some(def) = BROKER_CONFIGS.iter().find(|d| d.name == name) {
        return Some(BrokerConfigKind {
            config_type: Some(def.config_type),
            scope: def.scope,
            sensitive: false,
        });
    }
    if let Some((def, primary)) = topic_synonym(name) {
        let config_type = if primary {
            def.config_type
        } else {
            ConfigType::Int
        };
        return Some(BrokerConfigKind {
            config_type: Some(config_type),
            scope: if primary {
                DynamicScope::ClusterWide
            } else {
                DynamicScope::ReadOnly
            },
            sensitive: false,
        });
    }
    if let Some((_, config_type, scope)) = KAFKA_DYNAMIC_CONFIGS.iter().find(|(n, _, _)| *n == name)
    {
        return Some(BrokerConfigKind {
            config_type: Some(*config_type),
            scope: *scope,
            sensitive: name == "sasl.jaas.config",
        });
    }
    if let Some(base) = listener_override_base(name) {
        let scope = if CLUSTER_LEVEL_LISTENER_CONFIGS.contains(&base) {
            DynamicScope::ClusterWide
        } else {
            DynamicScope::PerBroker
        };
        return Some(BrokerConfigKind {
            config_type: None,
            scope,
            sensitive: base.ends_with("password") || base.ends_with("jaas.config"),
        });
    }
    None
}

/// `listener.name.<listener>.<config>` names a per-listener override of `<config>`.
fn listener_override_base(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("listener.name.")?;
    let (_, base) = rest.split_once('.')?;
    (!base.is_empty()).then_some(base)
}

/// Checks one dynamic broker config change as Kafka's controller does:
/// read-only names, SSL configs without a listener prefix, per-broker names
/// at the cluster default, and the value's type. The message is Kafka's.
pub fn validate_dynamic_broker_config(
    name: &str,
    value: Option<&str>,
    per_broker: bool,
) -> Result<(), String> {
    if name.starts_with("ssl.") {
        return Err(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: {name}"
        ));
    }
    let Some(kind) = broker_config_kind(name) else {
        return Ok(());
    };
    match kind.scope {
        DynamicScope::ReadOnly => {
            return Err(format!("Cannot update these configs dynamically: {name}"))
        }
        DynamicScope::PerBroker if !per_broker => {
            return Err(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {name}"
            ))
        }
        _ => {}
    }
    let Some(value) = value else {
        return Ok(());
    };
    if let Some((def, true)) = topic_synonym(name) {
        return def
            .validate(value)
            .map_err(|why| format!("Invalid value {value} for configuration {name}: {why}"));
    }
    let parses = match kind.config_type {
        Some(ConfigType::Int) => value.trim().parse::<i32>().is_ok(),
        Some(ConfigType::Short) => value.trim().parse::<i16>().is_ok(),
        Some(ConfigType::Long) => value.trim().parse::<i64>().is_ok(),
        Some(ConfigType::Double) => value.trim().parse::<f64>().is_ok(),
        Some(ConfigType::Boolean) => {
            matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false")
        }
        _ => true,
    };
    if !parses {
        return Err(format!(
            "Invalid value {value} for configuration {name}: not a valid {:?}",
            kind.config_type.unwrap_or(ConfigType::String)
        ));
    }
    validate_connection_limit(name, value)
}

/// Kafka's bounds on the connection limits: at least 0 broker-wide, above 0 per listener,
/// and override hosts of the allowed characters.
fn validate_connection_limit(name: &str, value: &str) -> Result<(), String> {
    const LIMITS: [&str; 3] = [
        "max.connections",
        "max.connections.per.ip",
        "max.connection.creation.rate",
    ];
    if LIMITS.contains(&name) {
        if value.trim().parse::<i32>().is_ok_and(|n| n < 0) {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Value must be at least 0"
            ));
        }
    } else if let Some(base @ ("max.connections" | "max.connection.creation.rate")) =
        listener_override_base(name)
    {
        if !value.trim().parse::<i32>().is_ok_and(|n| n > 0) {
            return Err(format!("Invalid {base} {value}"));
        }
    } else if name == "max.connections.per.ip.overrides" {
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let valid = entry.rsplit_once(':').is_some_and(|(host, count)| {
                count.trim().parse::<i32>().is_ok()
                    && host.trim().chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '-' | '%' | '.' | '_' | ':')
                    })
            });
            if !valid {
                return Err(format!("{name} contains invalid addresses : {entry}"));
            }
        }
    }
    Ok(())
}

/// The default a broker config has when nothing sets it.
pub fn broker_config_default(name: &str) -> Option<String> {
    if let Some(def) = BROKER_CONFIGS.iter().find(|d| d.name == name) {
        return def.default.map(str::to_string);
    }
    match topic_synonym(name) {
        Some((def, true)) => Some(def.default.to_string()),
        _ => None,
    }
}

/// Names that stand for the same broker config, in Kafka's precedence order.
fn synonyms_of(name: &str) -> Vec<&str> {
    const GROUPS: &[&[&str]] = &[
        &["log.roll.ms", "log.roll.hours"],
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
        &[
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours",
        ],
    ];
    if let Some(group) = GROUPS.iter().find(|g| g.contains(&name)) {
        return group.to_vec();
    }
    if let Some(base) = listener_override_base(name) {
        return vec![name, base];
    }
    vec![name]
}

/// A broker's config values by where they were set.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigLayers<'a> {
    /// Dynamic configs of this broker (`ConfigResource::Broker(Some(id))`).
    pub dynamic_broker: &'a BTreeMap<String, String>,
    /// Cluster-wide dynamic defaults (`ConfigResource::Broker(None)`).
    pub dynamic_default: &'a BTreeMap<String, String>,
    /// Set at start-up by file, environment or flags.
    pub static_config: &'a BTreeMap<String, String>,
}

/// One broker config as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedBrokerConfig {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    pub config_type: Option<ConfigType>,
    /// (name, value, source) in precedence order, starting at this name.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

impl<'a> BrokerConfigLayers<'a> {
    fn layers(&self) -> [(&'a BTreeMap<String, String>, ConfigSource); 3] {
        [
            (self.dynamic_broker, ConfigSource::DynamicBrokerConfig),
            (
                self.dynamic_default,
                ConfigSource::DynamicDefaultBrokerConfig,
            ),
            (self.static_config, ConfigSource::StaticBrokerConfig),
        ]
    }

    /// The value in force for `name`, dynamic layers first.
    pub fn effective(&self, name: &str) -> Option<String> {
        self.layers()
            .iter()
            .find_map(|(map, _)| map.get(name).cloned())
            .or_else(|| broker_config_default(name))
    }

    /// Describes `name` for one broker (`per_broker`) or for the cluster
    /// default, where only dynamic defaults count, as Kafka does.
    pub fn describe(&self, name: &str, per_broker: bool) -> DescribedBrokerConfig {
        let kind = broker_config_kind(name);
        let sensitive = kind.is_some_and(|k| k.sensitive);
        let mut synonyms = Vec::new();
        for (map, source) in self.layers() {
            for synonym in synonyms_of(name) {
                if let Some(value) = map.get(synonym) {
                    synonyms.push((synonym.to_string(), Some(value.clone()), source));
                }
            }
        }
        for synonym in synonyms_of(name) {
            if let Some(value) = broker_config_default(synonym) {
                synonyms.push((
                    synonym.to_string(),
                    Some(value),
                    ConfigSource::DefaultConfig,
                ));
            }
        }
        if !per_broker {
            synonyms.retain(|(_, _, s)| *s == ConfigSource::DynamicDefaultBrokerConfig);
        }
        let start = synonyms
            .iter()
            .position(|(n, _, _)| n == name)
            .unwrap_or(synonyms.len());
        let mut synonyms = synonyms.split_off(start);
        if sensitive {
            for synonym in &mut synonyms {
                synonym.1 = None;
            }
        }
        let (value, source) = synonyms
            .first()
            .map_or((None, ConfigSource::DefaultConfig), |(_, v, s)| {
                (v.clone(), *s)
            });
        DescribedBrokerConfig {
            name: name.to_string(),
            value,
            source,
            read_only: kind.is_some_and(|k| k.scope == DynamicScope::ReadOnly),
            sensitive,
            config_type: kind.and_then(|k| k.config_type),
            synonyms,
        }
    }

    /// Every config name DescribeConfigs lists for this broker: strom's own,
    /// the topic configs' broker synonyms, and whatever is set anywhere.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = BROKER_CONFIGS.iter().map(|d| d.name.to_string()).collect();
        names.extend(
            TOPIC_CONFIGS
                .iter()
                .flat_map(|d| d.synonyms.iter().map(|s| s.name.to_string())),
        );
        for (map, _) in self.layers() {
            names.extend(map.keys().cloned());
        }
        names.sort();
        names.dedup();
        names.retain(|n| n != "log.dir");
        names
    }
}

impl BrokerConfigLookup for BrokerConfigLayers<'_> {
    fn broker_config(&self, name: &str) -> Vec<(String, ConfigSource)> {
        self.layers()
            .iter()
            .filter_map(|(map, source)| map.get(name).map(|v| (v.clone(), *source)))
            .collect()
    }
}

/// Group configs (KIP-848): the names Kafka's `GroupConfig` has for consumer
/// groups, with the broker configs that give their defaults.
pub const GROUP_CONFIGS: &[(&str, &str)] = &[
    (
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
    ),
    (
        "consumer.session.timeout.ms",
        "group.consumer.session.timeout.ms",
    ),
];

/// The broker's bounds on group configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfigLimits {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub min_heartbeat_interval_ms: i32,
    pub max_heartbeat_interval_ms: i32,
}

/// Checks a group's whole set of dynamic configs as Kafka's `GroupConfig`
/// does; unset ones take Kafka's built-in defaults.
pub fn validate_group_configs(
    configs: &BTreeMap<String, String>,
    limits: &GroupConfigLimits,
) -> Result<(), String> {
    for name in configs.keys() {
        if !GROUP_CONFIGS.iter().any(|(n, _)| n == name) {
            return Err(format!("Unknown group config name: {name}"));
        }
    }
    let int = |name: &str, default: i32| -> Result<i32, String> {
        match configs.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i32>() {
                Ok(n) if n >= 1 => Ok(n),
                Ok(_) => Err(format!(
                    "Invalid value {v} for configuration {name}: Value must be at least 1"
                )),
                Err(_) => Err(format!(
                    "Invalid value {v} for configuration {name}: Not a number of type INT"
                )),
            },
        }
    };
    let heartbeat = int("consumer.heartbeat.interval.ms", 5_000)?;
    let session = int("consumer.session.timeout.ms", 45_000)?;
    if heartbeat < limits.min_heartbeat_interval_ms {
        return Err("consumer.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms".into());
    }
    if heartbeat > limits.max_heartbeat_interval_ms {
        return Err("consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms".into());
    }
    if session < limits.min_session_timeout_ms {
        return Err("consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms".into());
    }
    if session > limits.max_session_timeout_ms {
        return Err("consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms".into());
    }
    if session <= heartbeat {
        return Err(
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn connection_limits_are_validated_as_kafka_does() {
        let check =
            |name: &str, value: &str| validate_dynamic_broker_config(name, Some(value), false);
        assert!(check("max.connections", "0").is_ok());
        assert_eq!(
            check("max.connections.per.ip", "-1"),
            Err("Invalid value -1 for configuration max.connections.per.ip: Value must be at least 0".into())
        );
        assert!(check("max.connection.creation.rate", "-5").is_err());
        assert!(check("listener.name.plaintext.max.connections", "10").is_ok());
        assert_eq!(
            check("listener.name.plaintext.max.connections", "0"),
            Err("Invalid max.connections 0".into())
        );
        assert!(check("listener.name.plaintext.max.connection.creation.rate", "x").is_err());
        assert!(check(
            "max.connections.per.ip.overrides",
            "127.0.0.1:5, host-a:7,::1:2"
        )
        .is_ok());
        assert!(check("max.connections.per.ip.overrides", "").is_ok());
        assert!(check("max.connections.per.ip.overrides", "bad host:1").is_err());
        assert!(check("max.connections.per.ip.overrides", "127.0.0.1").is_err());
        assert_eq!(
            check("connections.max.idle.ms", "5"),
            Err("Cannot update these configs dynamically: connections.max.idle.ms".into())
        );
    }

    #[test]
    fn dynamic_scopes_follow_kafka() {
        assert!(validate_dynamic_broker_config("log.retention.ms", Some("1000"), false).is_ok());
        assert!(validate_dynamic_broker_config("background.threads", Some("9"), true).is_ok());
        assert!(
            validate_dynamic_broker_config("log.cleanup.policy", Some("compact"), false).is_ok()
        );
        assert_eq!(
            validate_dynamic_broker_config("num.partitions", Some("3"), true),
            Err("Cannot update these configs dynamically: num.partitions".into())
        );
        assert!(validate_dynamic_broker_config("log.retention.hours", Some("3"), true).is_err());
        assert!(validate_dynamic_broker_config(
            "sasl.kerberos.min.time.before.relogin",
            Some("58000"),
            true
        )
        .is_ok());
        assert!(validate_dynamic_broker_config(
            "sasl.kerberos.min.time.before.relogin",
            Some("58000"),
            false
        )
        .unwrap_err()
        .starts_with("Cannot update these configs at default cluster level"));
        assert!(validate_dynamic_broker_config("ssl.keystore.type", Some("PKCS12"), true).is_err());
        assert!(
            validate_dynamic_broker_config("log.cleanup.policy", Some("shred"), false).is_err()
        );
        assert!(validate_dynamic_broker_config("background.threads", Some("many"), true).is_err());
        assert!(validate_dynamic_broker_config("my.custom.config", Some("x"), false).is_ok());
    }

    #[test]
    fn describe_orders_sources_and_starts_at_the_name() {
        let dynamic_broker = map(&[("log.retention.ms", "1000")]);
        let dynamic_default = map(&[("log.retention.ms", "2000"), ("background.threads", "4")]);
        let static_config = map(&[("log.retention.hours", "2")]);
        let layers = BrokerConfigLayers {
            dynamic_broker: &dynamic_broker,
            dynamic_default: &dynamic_default,
            static_config: &static_config,
        };
        let d = layers.describe("log.retention.ms", true);
        assert_eq!(d.value.as_deref(), Some("1000"));
        assert_eq!(d.source, ConfigSource::DynamicBrokerConfig);
        assert!(!d.read_only);
        let sources: Vec<_> = d
            .synonyms
            .iter()
            .map(|(n, _, s)| (n.as_str(), *s))
            .collect();
        assert_eq!(
            sources,
            vec![
                ("log.retention.ms", ConfigSource::DynamicBrokerConfig),
                ("log.retention.ms", ConfigSource::DynamicDefaultBrokerConfig),
                ("log.retention.hours", ConfigSource::StaticBrokerConfig),
                ("log.retention.ms", ConfigSource::DefaultConfig),
                ("log.retention.hours", ConfigSource::DefaultConfig),
            ]
        );
        let d = layers.describe("log.retention.hours", true);
        assert_eq!(d.value.as_deref(), Some("2"));
        assert_eq!(d.source, ConfigSource::StaticBrokerConfig);
        assert!(d.read_only);
        let d = layers.describe("background.threads", false);
        assert_eq!(d.source, ConfigSource::DynamicDefaultBrokerConfig);
        assert_eq!(d.synonyms.len(), 1);
        let d = layers.describe("num.partitions", true);
        assert_eq!(d.value.as_deref(), Some("1"));
        assert_eq!(d.source, ConfigSource::DefaultConfig);
        assert_eq!(
            layers.effective("log.retention.ms").as_deref(),
            Some("1000")
        );
        assert_eq!(layers.effective("background.threads").as_deref(), Some("4"));
    }

    #[test]
    fn group_configs_are_bounded() {
        let limits = GroupConfigLimits {
            min_session_timeout_ms: 45_000,
            max_session_timeout_ms: 60_000,
            min_heartbeat_interval_ms: 5_000,
            max_heartbeat_interval_ms: 15_000,
        };
        assert!(
            validate_group_configs(&map(&[("consumer.session.timeout.ms", "50000")]), &limits)
                .is_ok()
        );
        assert!(
            validate_group_configs(&map(&[("consumer.session.timeout.ms", "70000")]), &limits)
                .unwrap_err()
                .contains("less than or equal to group.consumer.max.session.timeout.ms")
        );
        assert!(validate_group_configs(
            &map(&[("consumer.heartbeat.interval.ms", "1000")]),
            &limits
        )
        .is_err());
        assert!(
            validate_group_configs(&map(&[("share.session.timeout.ms", "50000")]), &limits)
                .unwrap_err()
                .starts_with("Unknown group config name")
        );
        assert!(
            validate_group_configs(&map(&[("consumer.session.timeout.ms", "x")]), &limits).is_err()
        );
    }
}
