//! Topic config definitions: names, types, defaults and broker-level synonyms
//! as Apache Kafka 4.x has them, with validation and the resolution order
//! DescribeConfigs reports (topic override, then broker configs, then default).

use std::collections::BTreeMap;

/// DescribeConfigs' `config_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
}

/// DescribeConfigs' `config_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConfigSource {
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    GroupConfig = 8,
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    Any,
    AtLeast(i64),
    Between(i64, i64),
    Ratio,
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
    /// Kafka's ThrottledReplicaListValidator: `*` or `partition:broker` pairs.
    ThrottledReplicas,
}

/// One broker config that stands in for a topic config, and how its unit
/// converts to the topic config's (e.g. hours to milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct Synonym {
    pub name: &'static str,
    pub multiplier: i64,
}

const fn syn(name: &'static str) -> Synonym {
    Synonym {
        name,
        multiplier: 1,
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub config_type: ConfigType,
    pub default: &'static str,
    /// Broker configs consulted in order when the topic has no override.
    pub synonyms: &'static [Synonym],
    pub doc: &'static str,
    rule: Rule,
}

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
const LONG_MAX: &str = "9223372036854775807";
/// Confluent's default subject naming for schema validation (the only one strom serves).
pub const TOPIC_NAME_STRATEGY: &str = "io.confluent.kafka.serializers.subject.TopicNameStrategy";

macro_rules! def {
    ($name:expr, $ty:ident, $default:expr, $rule:expr, [$($syn:expr),*], $doc:expr) => {
        TopicConfigDef { name: $name, config_type: ConfigType::$ty, default: $default, rule: $rule, synonyms: &[$($syn),*], doc: $doc }
    };
}

pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def!(
        "cleanup.policy",
        List,
        "delete",
        Rule::ListOf(&["compact", "delete"]),
        [syn("log.cleanup.policy")],
        "How old segments are cleaned: delete by retention, compact by key, or both."
    ),
    def!(
        "compression.gzip.level",
        Int,
        "-1",
        Rule::Between(-1, 9),
        [syn("compression.gzip.level")],
        "The gzip level used when compression.type is gzip."
    ),
    def!(
        "compression.lz4.level",
        Int,
        "9",
        Rule::Between(1, 17),
        [syn("compression.lz4.level")],
        "The lz4 level used when compression.type is lz4."
    ),
    def!(
        "compression.type",
        String,
        "producer",
        Rule::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        [syn("compression.type")],
        "The codec batches are stored with; producer keeps the producer's codec."
    ),
    def!(
        "compression.zstd.level",
        Int,
        "3",
        Rule::Between(-131072, 22),
        [syn("compression.zstd.level")],
        "The zstd level used when compression.type is zstd."
    ),
    def!(
        "confluent.key.schema.validation",
        Boolean,
        "false",
        Rule::OneOf(&["true", "false"]),
        [],
        "Refuse records whose key carries no schema id registered under the key's subject."
    ),
    def!(
        "confluent.key.subject.name.strategy",
        String,
        TOPIC_NAME_STRATEGY,
        Rule::OneOf(&[TOPIC_NAME_STRATEGY]),
        [],
        "How the key's subject is named for schema validation: <topic>-key."
    ),
    def!(
        "confluent.value.schema.validation",
        Boolean,
        "false",
        Rule::OneOf(&["true", "false"]),
        [],
        "Refuse records whose value carries no schema id registered under the value's subject."
    ),
    def!(
        "confluent.value.subject.name.strategy",
        String,
        TOPIC_NAME_STRATEGY,
        Rule::OneOf(&[TOPIC_NAME_STRATEGY]),
        [],
        "How the value's subject is named for schema validation: <topic>-value."
    ),
    def!(
        "delete.retention.ms",
        Long,
        "86400000",
        Rule::AtLeast(0),
        [syn("log.cleaner.delete.retention.ms")],
        "How long tombstones are kept in a compacted topic."
    ),
    def!(
        "file.delete.delay.ms",
        Long,
        "60000",
        Rule::AtLeast(0),
        [syn("log.segment.delete.delay.ms")],
        "How long a deleted segment's files wait before removal."
    ),
    def!(
        "flush.messages",
        Long,
        LONG_MAX,
        Rule::AtLeast(1),
        [syn("log.flush.interval.messages")],
        "Force an fsync after this many messages."
    ),
    def!(
        "flush.ms",
        Long,
        LONG_MAX,
        Rule::AtLeast(0),
        [syn("log.flush.interval.ms")],
        "Force an fsync after this much time."
    ),
    def!(
        "follower.replication.throttled.replicas",
        List,
        "",
        Rule::ThrottledReplicas,
        [],
        "Replicas whose follower replication is throttled."
    ),
    def!(
        "index.interval.bytes",
        Int,
        "4096",
        Rule::AtLeast(0),
        [syn("log.index.interval.bytes")],
        "Bytes between offset index entries."
    ),
    def!(
        "leader.replication.throttled.replicas",
        List,
        "",
        Rule::ThrottledReplicas,
        [],
        "Replicas whose leader replication is throttled."
    ),
    def!(
        "local.retention.bytes",
        Long,
        "-2",
        Rule::AtLeast(-2),
        [syn("log.local.retention.bytes")],
        "Local retention size when tiered storage is on."
    ),
    def!(
        "local.retention.ms",
        Long,
        "-2",
        Rule::AtLeast(-2),
        [syn("log.local.retention.ms")],
        "Local retention time when tiered storage is on."
    ),
    def!(
        "max.compaction.lag.ms",
        Long,
        LONG_MAX,
        Rule::AtLeast(1),
        [syn("log.cleaner.max.compaction.lag.ms")],
        "Longest a record may stay uncompacted."
    ),
    def!(
        "max.message.bytes",
        Int,
        "1048588",
        Rule::AtLeast(0),
        [syn("message.max.bytes")],
        "Largest record batch the topic accepts."
    ),
    def!(
        "message.timestamp.after.max.ms",
        Long,
        "3600000",
        Rule::AtLeast(0),
        [syn("log.message.timestamp.after.max.ms")],
        "How far in the future a CreateTime timestamp may be."
    ),
    def!(
        "message.timestamp.before.max.ms",
        Long,
        LONG_MAX,
        Rule::AtLeast(0),
        [syn("log.message.timestamp.before.max.ms")],
        "How far in the past a CreateTime timestamp may be."
    ),
    def!(
        "message.timestamp.type",
        String,
        "CreateTime",
        Rule::OneOf(&["CreateTime", "LogAppendTime"]),
        [syn("log.message.timestamp.type")],
        "Whether timestamps are the producer's or the broker's append time."
    ),
    def!(
        "min.cleanable.dirty.ratio",
        Double,
        "0.5",
        Rule::Ratio,
        [syn("log.cleaner.min.cleanable.ratio")],
        "Dirty share of the log that makes it eligible for compaction."
    ),
    def!(
        "min.compaction.lag.ms",
        Long,
        "0",
        Rule::AtLeast(0),
        [syn("log.cleaner.min.compaction.lag.ms")],
        "Shortest time a record stays uncompacted."
    ),
    def!(
        "min.insync.replicas",
        Int,
        "1",
        Rule::AtLeast(1),
        [syn("min.insync.replicas")],
        "In-sync replicas an acks=all write needs."
    ),
    def!(
        "preallocate",
        Boolean,
        "false",
        Rule::OneOf(&["true", "false"]),
        [syn("log.preallocate")],
        "Preallocate segment files."
    ),
    def!(
        "remote.storage.enable",
        Boolean,
        "false",
        Rule::OneOf(&["true", "false"]),
        [],
        "Tiered storage for this topic."
    ),
    def!(
        "retention.bytes",
        Long,
        "-1",
        Rule::Any,
        [syn("log.retention.bytes")],
        "Largest size of a partition before old segments are deleted; -1 is unlimited."
    ),
    def!(
        "retention.ms",
        Long,
        "604800000",
        Rule::AtLeast(-1),
        [
            syn("log.retention.ms"),
            Synonym {
                name: "log.retention.minutes",
                multiplier: MINUTE_MS
            },
            Synonym {
                name: "log.retention.hours",
                multiplier: HOUR_MS
            }
        ],
        "Longest time a segment is kept; -1 is unlimited."
    ),
    def!(
        "segment.bytes",
        Int,
        "1073741824",
        Rule::AtLeast(1_048_576),
        [syn("log.segment.bytes")],
        "Size at which a segment is rolled."
    ),
    def!(
        "segment.index.bytes",
        Int,
        "10485760",
        Rule::AtLeast(4),
        [syn("log.index.size.max.bytes")],
        "Largest offset index of a segment."
    ),
    def!(
        "segment.jitter.ms",
        Long,
        "0",
        Rule::AtLeast(0),
        [
            syn("log.roll.jitter.ms"),
            Synonym {
                name: "log.roll.jitter.hours",
                multiplier: HOUR_MS
            }
        ],
        "Random jitter subtracted from segment.ms."
    ),
    def!(
        "segment.ms",
        Long,
        "604800000",
        Rule::AtLeast(1),
        [
            syn("log.roll.ms"),
            Synonym {
                name: "log.roll.hours",
                multiplier: HOUR_MS
            }
        ],
        "Time after which a segment is rolled."
    ),
    def!(
        "unclean.leader.election.enable",
        Boolean,
        "false",
        Rule::OneOf(&["true", "false"]),
        [syn("unclean.leader.election.enable")],
        "Allow an out-of-sync replica to become leader."
    ),
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks one topic config value; the error is the message Kafka's
/// INVALID_CONFIG carries.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    let def = topic_config_def(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    def.validate(value)
}

impl TopicConfigDef {
    pub fn validate(&self, value: &str) -> Result<(), String> {
        let invalid = |why: &str| {
            format!(
                "Invalid value {value} for configuration {}: {why}",
                self.name
            )
        };
        match self.config_type {
            ConfigType::Int => {
                value
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| invalid("Not a number of type INT"))?;
            }
            ConfigType::Short => {
                value
                    .trim()
                    .parse::<i16>()
                    .map_err(|_| invalid("Not a number of type SHORT"))?;
            }
            ConfigType::Long => {
                value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| invalid("Not a number of type LONG"))?;
            }
            ConfigType::Double => {
                value
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| invalid("Not a number of type DOUBLE"))?;
            }
            ConfigType::Boolean => {
                if !value.trim().eq_ignore_ascii_case("true")
                    && !value.trim().eq_ignore_ascii_case("false")
                {
                    return Err(invalid("Expected value to be either true or false"));
                }
            }
            ConfigType::String | ConfigType::List => {}
        }
        match self.rule {
            Rule::Any => Ok(()),
            Rule::AtLeast(min) => {
                let n: i64 = value.trim().parse().map_err(|_| invalid("Not a number"))?;
                if n < min {
                    return Err(invalid(&format!("Value must be at least {min}")));
                }
                Ok(())
            }
            Rule::Between(min, max) => {
                let n: i64 = value.trim().parse().map_err(|_| invalid("Not a number"))?;
                if n < min || n > max {
                    return Err(invalid(&format!("Value must be in [{min}, {max}]")));
                }
                Ok(())
            }
            Rule::Ratio => {
                let n: f64 = value.trim().parse().map_err(|_| invalid("Not a number"))?;
                if !(0.0..=1.0).contains(&n) {
                    return Err(invalid("Value must be in [0.0, 1.0]"));
                }
                Ok(())
            }
            Rule::OneOf(allowed) => {
                if allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim())) {
                    Ok(())
                } else {
                    Err(invalid(&format!(
                        "String must be one of: {}",
                        allowed.join(", ")
                    )))
                }
            }
            Rule::ThrottledReplicas => {
                if is_valid_throttled_replicas(value) {
                    Ok(())
                } else {
                    Err(invalid(&format!(
                        "{} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
                        self.name
                    )))
                }
            }
            Rule::ListOf(allowed) => {
                for item in split_list(value) {
                    if !allowed.contains(&item) {
                        return Err(invalid(&format!(
                            "Value must be a list of: {}",
                            allowed.join(", ")
                        )));
                    }
                }
                Ok(())
            }
        }
    }
}

/// Splits a comma-separated list config value, dropping blanks.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Where a broker-level config's value came from, as the broker knows it.
pub trait BrokerConfigLookup {
    /// Every value a broker config is set to other than its built-in
    /// default, with its source, highest precedence first.
    fn broker_config(&self, name: &str) -> Vec<(String, ConfigSource)>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    /// The other places a value is set, in precedence order after this one.
    pub synonyms: Vec<(String, String, ConfigSource)>,
}

/// Resolves every topic config for a topic with the given overrides.
pub fn resolve_topic_configs(
    overrides: &BTreeMap<String, String>,
    broker: &dyn BrokerConfigLookup,
) -> Vec<ResolvedConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| resolve_one(def, overrides, broker))
        .collect()
}

pub fn resolve_topic_config(
    name: &str,
    overrides: &BTreeMap<String, String>,
    broker: &dyn BrokerConfigLookup,
) -> Option<ResolvedConfig> {
    topic_config_def(name).map(|def| resolve_one(def, overrides, broker))
}

fn resolve_one(
    def: &'static TopicConfigDef,
    overrides: &BTreeMap<String, String>,
    broker: &dyn BrokerConfigLookup,
) -> ResolvedConfig {
    let mut found: Vec<(String, String, ConfigSource)> = Vec::new();
    if let Some(value) = overrides.get(def.name) {
        found.push((
            def.name.to_string(),
            value.clone(),
            ConfigSource::TopicConfig,
        ));
    }
    for synonym in def.synonyms {
        for (value, source) in broker.broker_config(synonym.name) {
            let converted = match value.trim().parse::<i64>() {
                Ok(n) if synonym.multiplier != 1 => {
                    n.saturating_mul(synonym.multiplier).to_string()
                }
                _ => value,
            };
            found.push((synonym.name.to_string(), converted, source));
        }
    }
    // Broker synonyms rank by source first, then by their listed order.
    found.sort_by_key(|(_, _, source)| *source);
    found.push((
        def.name.to_string(),
        def.default.to_string(),
        ConfigSource::DefaultConfig,
    ));
    let (_, value, source) = found[0].clone();
    ResolvedConfig {
        name: def.name,
        value,
        source,
        synonyms: found,
    }
}

/// Kafka's ThrottledReplicaListValidator: every comma-separated item, trimmed, is empty
/// or `partition:broker` in digits (trailing empty items dropped, as Java's split does),
/// or the items together are `*`.
pub fn is_valid_throttled_replicas(value: &str) -> bool {
    let mut items: Vec<&str> = value.split(',').map(str::trim).collect();
    while items.len() > 1 && items.last() == Some(&"") {
        items.pop();
    }
    let pair = |item: &str| {
        item.is_empty()
            || item.split_once(':').is_some_and(|(p, b)| {
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
                digits(p) && digits(b)
            })
    };
    items.iter().all(|item| pair(item)) || items.concat() == "*"
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broker(Vec<(&'static str, &'static str, ConfigSource)>);
    impl BrokerConfigLookup for Broker {
        fn broker_config(&self, name: &str) -> Vec<(String, ConfigSource)> {
            self.0
                .iter()
                .filter(|(n, _, _)| *n == name)
                .map(|(_, v, s)| (v.to_string(), *s))
                .collect()
        }
    }

    #[test]
    fn throttled_replica_lists_are_checked_as_kafka_checks_them() {
        for valid in ["", "*", " * ", "0:1", "0:1, 1:2", "0:1,", "0:1,,1:2"] {
            assert_eq!(
                validate_topic_config("leader.replication.throttled.replicas", valid),
                Ok(()),
                "{valid:?}"
            );
        }
        for invalid in ["a", "0", "0:", ":1", "0 : 1", "0:-1", "*,0:1"] {
            assert_eq!(
                validate_topic_config("follower.replication.throttled.replicas", invalid),
                Err(format!(
                    "Invalid value {invalid} for configuration follower.replication.throttled.replicas: follower.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                )),
                "{invalid:?}"
            );
        }
    }

    #[test]
    fn defaults_come_from_kafka() {
        let resolved =
            resolve_topic_config("retention.ms", &BTreeMap::new(), &Broker(vec![])).unwrap();
        assert_eq!(resolved.value, "604800000");
        assert_eq!(resolved.source, ConfigSource::DefaultConfig);
        let resolved =
            resolve_topic_config("max.message.bytes", &BTreeMap::new(), &Broker(vec![])).unwrap();
        assert_eq!(resolved.value, "1048588");
    }

    #[test]
    fn override_beats_broker_beats_default() {
        let broker = Broker(vec![(
            "log.retention.hours",
            "2",
            ConfigSource::StaticBrokerConfig,
        )]);
        let resolved = resolve_topic_config("retention.ms", &BTreeMap::new(), &broker).unwrap();
        assert_eq!(resolved.value, "7200000");
        assert_eq!(resolved.source, ConfigSource::StaticBrokerConfig);
        let overrides = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let resolved = resolve_topic_config("retention.ms", &overrides, &broker).unwrap();
        assert_eq!(resolved.value, "5");
        assert_eq!(resolved.source, ConfigSource::TopicConfig);
        assert_eq!(resolved.synonyms.len(), 3);
    }

    #[test]
    fn ms_synonym_beats_hours_at_the_same_source() {
        let broker = Broker(vec![
            ("log.retention.hours", "2", ConfigSource::StaticBrokerConfig),
            ("log.retention.ms", "1000", ConfigSource::StaticBrokerConfig),
        ]);
        let resolved = resolve_topic_config("retention.ms", &BTreeMap::new(), &broker).unwrap();
        assert_eq!(resolved.value, "1000");
    }

    #[test]
    fn validation_follows_types_and_rules() {
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "-2").is_err());
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
        assert!(validate_topic_config("compression.type", "zstd").is_ok());
        assert!(validate_topic_config("compression.type", "brotli").is_err());
        assert!(validate_topic_config("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate_topic_config("segment.bytes", "1000").is_err());
        assert!(validate_topic_config("no.such.config", "1").is_err());
        assert!(validate_topic_config("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate_topic_config("preallocate", "yes").is_err());
    }
}
