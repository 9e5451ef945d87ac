//! Admin operations: topics, partitions, configs, cluster description.

use kafka_protocol::messages::{
    alter_configs_request,
    alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic},
    create_partitions_request::CreatePartitionsTopic,
    create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig},
    delete_topics_request::DeleteTopicState,
    describe_configs_request::DescribeConfigsResource,
    describe_quorum_request, describe_quorum_response,
    elect_leaders_request::TopicPartitions,
    incremental_alter_configs_request,
    list_partition_reassignments_request::ListPartitionReassignmentsTopics,
    AlterConfigsRequest, AlterPartitionReassignmentsRequest, ApiKey, BrokerId,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeConfigsRequest, DescribeQuorumRequest, DescribeQuorumResponse, ElectLeadersRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest, MetadataRequest, TopicName,
    UnregisterBrokerRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{BrokerInfo, Client, Metadata, TopicMetadata};
use crate::error::{check, Error, Result};

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

fn topic_name(value: &str) -> TopicName {
    TopicName(s(value))
}

fn opt_string(value: Option<StrBytes>) -> Option<String> {
    value.map(|v| v.to_string())
}

/// A partition and the brokers its replicas are placed on.
pub type ReplicaAssignment = (i32, Vec<i32>);

/// A topic to create; -1 partitions or replication factor means the
/// broker's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            partitions: -1,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }
}

/// The kind of resource a config belongs to (Kafka's ConfigResource.Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Topic = 2,
    Broker = 4,
    BrokerLogger = 8,
}

/// Where a config value comes from (Kafka's ConfigEntry.ConfigSource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Unknown,
    DynamicTopicConfig,
    DynamicBrokerConfig,
    DynamicDefaultBrokerConfig,
    StaticBrokerConfig,
    DefaultConfig,
    DynamicBrokerLoggerConfig,
    ClientMetricsConfig,
    GroupConfig,
}

impl ConfigSource {
    pub fn from_code(code: i8) -> Self {
        match code {
            1 => Self::DynamicTopicConfig,
            2 => Self::DynamicBrokerConfig,
            3 => Self::DynamicDefaultBrokerConfig,
            4 => Self::StaticBrokerConfig,
            5 => Self::DefaultConfig,
            6 => Self::DynamicBrokerLoggerConfig,
            7 => Self::ClientMetricsConfig,
            8 => Self::GroupConfig,
            _ => Self::Unknown,
        }
    }

    /// The name Kafka's tools print.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::DynamicTopicConfig => "DYNAMIC_TOPIC_CONFIG",
            Self::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
            Self::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            Self::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
            Self::DefaultConfig => "DEFAULT_CONFIG",
            Self::DynamicBrokerLoggerConfig => "DYNAMIC_BROKER_LOGGER_CONFIG",
            Self::ClientMetricsConfig => "CLIENT_METRICS_CONFIG",
            Self::GroupConfig => "GROUP_CONFIG",
        }
    }
}

/// One config of a resource, from DescribeConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    /// Where the value may come from, most precedent first (only when asked for).
    pub synonyms: Vec<ConfigSynonym>,
}

/// A config a value may come from (Kafka's ConfigEntry.ConfigSynonym).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// An IncrementalAlterConfigs operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    Set(String, String),
    /// Back to the default.
    Delete(String),
    /// Adds to a list-valued config.
    Append(String, String),
    /// Removes from a list-valued config.
    Subtract(String, String),
}

impl AlterConfigOp {
    fn parts(&self) -> (&str, i8, Option<&str>) {
        match self {
            Self::Set(k, v) => (k, 0, Some(v)),
            Self::Delete(k) => (k, 1, None),
            Self::Append(k, v) => (k, 2, Some(v)),
            Self::Subtract(k, v) => (k, 3, Some(v)),
        }
    }
}

/// The cluster as DescribeCluster (or Metadata) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster_id: String,
    pub controller_id: i32,
    pub brokers: Vec<BrokerInfo>,
    /// Ids of the listed brokers that are fenced (only listed when asked for, KIP-1073).
    pub fenced: Vec<i32>,
}

/// One replica of the metadata log as the quorum's leader sees it (Kafka's
/// QuorumInfo.ReplicaState); offsets are exclusive ends, timestamps the leader's wall clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    pub replica_id: i32,
    /// -1 when unknown.
    pub log_end_offset: i64,
    pub last_fetch_timestamp: Option<i64>,
    pub last_caught_up_timestamp: Option<i64>,
}

/// The metadata quorum, from DescribeQuorum (Kafka's QuorumInfo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumInfo {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
}

/// Kafka's leader election types (ElectLeaders).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    Preferred = 0,
    Unclean = 1,
}

/// One partition's outcome in ElectLeaders or AlterPartitionReassignments.
#[derive(Debug)]
pub struct PartitionOutcome {
    pub topic: String,
    pub partition: i32,
    pub result: Result<()>,
}

/// A partition being moved, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
}

/// Admin operations over a [`Client`].
#[derive(Debug)]
pub struct Admin {
    client: Client,
}

impl Admin {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    fn timeout_ms(&self) -> i32 {
        // Leave the broker a little less than our own wait, so its
        // REQUEST_TIMED_OUT arrives before we give up.
        let ms = self
            .client
            .config()
            .request_timeout
            .as_millis()
            .saturating_sub(1000);
        i32::try_from(ms.max(1000)).unwrap_or(i32::MAX)
    }

    /// Creates topics; the outer error is for the request, the inner ones
    /// per topic, in the order given.
    pub async fn create_topics(
        &mut self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        Ok(self
            .create_topics_described(topics, validate_only)
            .await?
            .into_iter()
            .map(|(name, result)| (name, result.map(|_| ())))
            .collect())
    }

    /// As [`Admin::create_topics`], with each created (or validated) topic's partition
    /// count and replication factor as the controller reports them (-1 when it does not).
    pub async fn create_topics_described(
        &mut self,
        topics: &[NewTopic],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<(i32, i16)>)>> {
        let topics: Vec<_> = topics.iter().map(|t| (t, &[][..])).collect();
        self.create_assigned(&topics, validate_only).await
    }

    /// Creates one topic whose partitions are placed on the given brokers: (partition,
    /// replicas) for partitions 0, 1, ...; its partition count and replication factor are
    /// left to the assignment, `topic`'s are not sent.
    pub async fn create_topic_assigned(
        &mut self,
        topic: &NewTopic,
        assignments: &[ReplicaAssignment],
        validate_only: bool,
    ) -> Result<(i32, i16)> {
        let topic = NewTopic {
            partitions: -1,
            replication_factor: -1,
            ..topic.clone()
        };
        single(
            self.create_assigned(&[(&topic, assignments)], validate_only)
                .await?,
        )
    }

    async fn create_assigned(
        &mut self,
        topics: &[(&NewTopic, &[ReplicaAssignment])],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<(i32, i16)>)>> {
        let request = CreateTopicsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|(t, assignments)| {
                        CreatableTopic::default()
                            .with_name(topic_name(&t.name))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_assignments(
                                assignments
                                    .iter()
                                    .map(|(partition, brokers)| {
                                        CreatableReplicaAssignment::default()
                                            .with_partition_index(*partition)
                                            .with_broker_ids(
                                                brokers.iter().copied().map(BrokerId).collect(),
                                            )
                                    })
                                    .collect(),
                            )
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(s(k))
                                            .with_value(Some(s(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only);
        let response = self.client.send_to_controller(&request).await?;
        Ok(per_name(
            topics.iter().map(|(t, _)| t.name.as_str()),
            response.topics.iter().map(|r| {
                let name = r.name.0.to_string();
                let result = check(
                    r.error_code,
                    r.error_message.as_deref(),
                    format!("topic {name}"),
                )
                .map(|()| (r.num_partitions, r.replication_factor));
                (name, result)
            }),
        ))
    }

    /// Creates one topic.
    pub async fn create_topic(&mut self, topic: NewTopic) -> Result<()> {
        single(
            self.create_topics(std::slice::from_ref(&topic), false)
                .await?,
        )
    }

    pub async fn delete_topics(&mut self, names: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let request = DeleteTopicsRequest::default()
            .with_topics(
                names
                    .iter()
                    .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                    .collect(),
            )
            .with_topic_names(names.iter().map(|n| topic_name(n)).collect())
            .with_timeout_ms(self.timeout_ms());
        let response = self.client.send_to_controller(&request).await?;
        for name in names {
            self.client.invalidate(name);
        }
        Ok(per_name(
            names.iter().map(String::as_str),
            response.responses.iter().map(|r| {
                let name = r.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                let result = check(
                    r.error_code,
                    r.error_message.as_deref(),
                    format!("topic {name}"),
                );
                (name, result)
            }),
        ))
    }

    /// All topics (including internal ones), sorted by name.
    pub async fn list_topics(&mut self) -> Result<Vec<TopicMetadata>> {
        let mut topics = self.client.metadata(None, false).await?.topics;
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Metadata of the named topics; a missing topic has its error_code set.
    pub async fn describe_topics(&mut self, names: &[String]) -> Result<Vec<TopicMetadata>> {
        Ok(self.client.metadata(Some(names), false).await?.topics)
    }

    /// What the caller may do on each topic: Kafka's bit field of AclOperation codes, by topic
    /// name (Metadata v8+ with `include_topic_authorized_operations`); `None` for all topics.
    /// A topic that does not exist is left out.
    pub async fn topic_authorized_operations(
        &mut self,
        topics: Option<&[String]>,
    ) -> Result<Vec<(String, i32)>> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|n| {
                        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                            .with_name(Some(topic_name(n)))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false)
            .with_include_topic_authorized_operations(true);
        let response = self.client.any_connection().await?.send(&request).await?;
        Ok(response
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| Some((t.name?.0.to_string(), t.topic_authorized_operations)))
            .collect())
    }

    /// The whole Metadata response for some topics (`None`: all).
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> Result<Metadata> {
        self.client.metadata(topics, false).await
    }

    /// Configs of one resource (`keys`: `None` for all).
    pub async fn describe_configs(
        &mut self,
        resource_type: ResourceType,
        name: &str,
        keys: Option<&[String]>,
    ) -> Result<Vec<ConfigEntry>> {
        self.describe_configs_checked(resource_type, name, keys, false)
            .await
    }

    /// As [`Admin::describe_configs`]; with `synonyms`, each entry also lists the
    /// configs its value may come from, in Kafka's order of precedence.
    pub async fn describe_configs_checked(
        &mut self,
        resource_type: ResourceType,
        name: &str,
        keys: Option<&[String]>,
        synonyms: bool,
    ) -> Result<Vec<ConfigEntry>> {
        let request = DescribeConfigsRequest::default()
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(resource_type as i8)
                .with_resource_name(s(name))
                .with_configuration_keys(
                    keys.map(|k| k.iter().map(|k| s(k)).collect()),
                )])
            .with_include_synonyms(synonyms);
        let response = self
            .resource_connection(resource_type, name)
            .await?
            .send(&request)
            .await?;
        let result =
            response.results.into_iter().next().ok_or_else(|| {
                Error::Protocol("DescribeConfigs response has no result".to_owned())
            })?;
        check(
            result.error_code,
            result.error_message.as_deref(),
            context(resource_type, name),
        )?;
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: opt_string(c.value),
                source: ConfigSource::from_code(c.config_source),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
                synonyms: c
                    .synonyms
                    .into_iter()
                    .map(|syn| ConfigSynonym {
                        name: syn.name.to_string(),
                        value: opt_string(syn.value),
                        source: ConfigSource::from_code(syn.source),
                    })
                    .collect(),
            })
            .collect())
    }

    /// Applies set/delete/append/subtract operations to a resource's configs.
    pub async fn incremental_alter_configs(
        &mut self,
        resource_type: ResourceType,
        name: &str,
        ops: &[AlterConfigOp],
    ) -> Result<()> {
        self.incremental_alter_configs_checked(resource_type, name, ops, false)
            .await
    }

    /// As [`Admin::incremental_alter_configs`]; with `validate_only` the broker only checks
    /// the operations.
    pub async fn incremental_alter_configs_checked(
        &mut self,
        resource_type: ResourceType,
        name: &str,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<()> {
        use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let configs = ops
            .iter()
            .map(|op| {
                let (key, operation, value) = op.parts();
                AlterableConfig::default()
                    .with_name(s(key))
                    .with_config_operation(operation)
                    .with_value(value.map(s))
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource_type as i8)
                .with_resource_name(s(name))
                .with_configs(configs)])
            .with_validate_only(validate_only);
        let response = self
            .resource_connection(resource_type, name)
            .await?
            .send(&request)
            .await?;
        let result = response.responses.first().ok_or_else(|| {
            Error::Protocol("IncrementalAlterConfigs response has no result".to_owned())
        })?;
        check(
            result.error_code,
            result.error_message.as_deref(),
            context(resource_type, name),
        )
    }

    /// Replaces all dynamic configs of a resource (the legacy AlterConfigs:
    /// any config not given goes back to its default).
    pub async fn alter_configs(
        &mut self,
        resource_type: ResourceType,
        name: &str,
        configs: &[(String, String)],
    ) -> Result<()> {
        use alter_configs_request::{AlterConfigsResource, AlterableConfig};
        let request =
            AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource_type as i8)
                .with_resource_name(s(name))
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            AlterableConfig::default()
                                .with_name(s(k))
                                .with_value(Some(s(v)))
                        })
                        .collect(),
                )]);
        let response = self
            .resource_connection(resource_type, name)
            .await?
            .send(&request)
            .await?;
        let result = response
            .responses
            .first()
            .ok_or_else(|| Error::Protocol("AlterConfigs response has no result".to_owned()))?;
        check(
            result.error_code,
            result.error_message.as_deref(),
            context(resource_type, name),
        )
    }

    /// Whether the broker speaks IncrementalAlterConfigs (else use
    /// [`Admin::alter_configs`]).
    pub async fn supports_incremental_alter(&mut self) -> Result<bool> {
        Ok(self
            .client
            .controller_connection()
            .await?
            .supports(ApiKey::IncrementalAlterConfigs))
    }

    /// Grows a topic to `total` partitions.
    pub async fn create_partitions(&mut self, topic: &str, total: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(topic))
                .with_count(total)
                .with_assignments(None)])
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(false);
        let response = self.client.send_to_controller(&request).await?;
        self.client.invalidate(topic);
        let result = response
            .results
            .first()
            .ok_or_else(|| Error::Protocol("CreatePartitions response has no result".to_owned()))?;
        check(
            result.error_code,
            result.error_message.as_deref(),
            format!("topic {topic}"),
        )
    }

    /// Cluster id, controller and brokers; uses Metadata on brokers that
    /// lack DescribeCluster.
    pub async fn describe_cluster(&mut self) -> Result<ClusterInfo> {
        let conn = self.client.any_connection().await?;
        if !conn.supports(ApiKey::DescribeCluster) {
            let metadata = self.client.metadata(Some(&[]), false).await?;
            return Ok(ClusterInfo {
                cluster_id: metadata.cluster_id.unwrap_or_default(),
                controller_id: metadata.controller_id,
                brokers: metadata.brokers,
                fenced: Vec::new(),
            });
        }
        self.describe_cluster_brokers(false).await
    }

    /// As [`Admin::describe_cluster`], with fenced brokers listed and marked where the
    /// broker serves DescribeCluster v2 (KIP-1073).
    pub async fn describe_cluster_with_fenced(&mut self) -> Result<ClusterInfo> {
        let conn = self.client.any_connection().await?;
        if !conn.supports(ApiKey::DescribeCluster) {
            return self.describe_cluster().await;
        }
        self.describe_cluster_brokers(true).await
    }

    async fn describe_cluster_brokers(&mut self, include_fenced: bool) -> Result<ClusterInfo> {
        let conn = self.client.any_connection().await?;
        let request = DescribeClusterRequest::default()
            .with_endpoint_type(1)
            .with_include_fenced_brokers(
                include_fenced && conn.version(ApiKey::DescribeCluster)? >= 2,
            );
        let response = conn.send(&request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            "describe cluster",
        )?;
        let mut fenced: Vec<i32> = response
            .brokers
            .iter()
            .filter(|b| b.is_fenced)
            .map(|b| b.broker_id.0)
            .collect();
        fenced.sort_unstable();
        let mut brokers: Vec<_> = response
            .brokers
            .into_iter()
            .map(|b| BrokerInfo {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: opt_string(b.rack),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterInfo {
            cluster_id: response.cluster_id.to_string(),
            controller_id: response.controller_id.0,
            brokers,
            fenced,
        })
    }

    /// Decommissions a broker (UnregisterBroker, Kafka's `kafka-cluster.sh unregister`):
    /// sent to any broker, which forwards it to the active controller.
    pub async fn unregister_broker(&mut self, broker_id: i32) -> Result<()> {
        let request = UnregisterBrokerRequest::default().with_broker_id(BrokerId(broker_id));
        let response = self.client.any_connection().await?.send(&request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            format!("unregister broker {broker_id}"),
        )
    }

    /// Elects leaders: `None` asks for every partition (the broker then leaves out
    /// those that need no election). The outer error is the request's.
    pub async fn elect_leaders(
        &mut self,
        election: ElectionType,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<PartitionOutcome>> {
        let request = ElectLeadersRequest::default()
            .with_election_type(election as i8)
            .with_topic_partitions(partitions.map(|topics| {
                topics
                    .iter()
                    .map(|(topic, partitions)| {
                        TopicPartitions::default()
                            .with_topic(topic_name(topic))
                            .with_partitions(partitions.clone())
                    })
                    .collect()
            }))
            .with_timeout_ms(self.timeout_ms());
        let response = self.client.send_to_controller(&request).await?;
        check(response.error_code, None, "elect leaders")?;
        Ok(response
            .replica_election_results
            .into_iter()
            .flat_map(|topic| {
                let name = topic.topic.to_string();
                topic
                    .partition_result
                    .into_iter()
                    .map(move |p| PartitionOutcome {
                        topic: name.clone(),
                        partition: p.partition_id,
                        result: check(
                            p.error_code,
                            p.error_message.as_deref(),
                            format!("{name}-{}", p.partition_id),
                        ),
                    })
            })
            .collect())
    }

    /// Moves partitions to new replicas (`Some`) or cancels their moves (`None`).
    pub async fn alter_partition_reassignments(
        &mut self,
        targets: &[(String, i32, Option<Vec<i32>>)],
    ) -> Result<Vec<PartitionOutcome>> {
        let mut topics: Vec<ReassignableTopic> = Vec::new();
        for (topic, partition, replicas) in targets {
            let entry = ReassignablePartition::default()
                .with_partition_index(*partition)
                .with_replicas(
                    replicas
                        .as_ref()
                        .map(|r| r.iter().copied().map(BrokerId).collect()),
                );
            match topics.iter_mut().find(|t| t.name.as_str() == topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    ReassignableTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let request = AlterPartitionReassignmentsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(self.timeout_ms());
        let response = self.client.send_to_controller(&request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            "alter partition reassignments",
        )?;
        Ok(response
            .responses
            .into_iter()
            .flat_map(|topic| {
                let name = topic.name.to_string();
                topic.partitions.into_iter().map(move |p| PartitionOutcome {
                    topic: name.clone(),
                    partition: p.partition_index,
                    result: check(
                        p.error_code,
                        p.error_message.as_deref(),
                        format!("{name}-{}", p.partition_index),
                    ),
                })
            })
            .collect())
    }

    /// The partitions being moved: all (`None`) or among those given.
    pub async fn list_partition_reassignments(
        &mut self,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<Reassignment>> {
        let request = ListPartitionReassignmentsRequest::default()
            .with_topics(partitions.map(|topics| {
                topics
                    .iter()
                    .map(|(topic, partitions)| {
                        ListPartitionReassignmentsTopics::default()
                            .with_name(topic_name(topic))
                            .with_partition_indexes(partitions.clone())
                    })
                    .collect()
            }))
            .with_timeout_ms(self.timeout_ms());
        let response = self.client.send_to_controller(&request).await?;
        check(
            response.error_code,
            response.error_message.as_deref(),
            "list partition reassignments",
        )?;
        let ids = |ids: Vec<BrokerId>| ids.into_iter().map(|b| b.0).collect();
        let mut listed: Vec<Reassignment> = response
            .topics
            .into_iter()
            .flat_map(|topic| {
                let name = topic.name.to_string();
                topic.partitions.into_iter().map(move |p| Reassignment {
                    topic: name.clone(),
                    partition: p.partition_index,
                    replicas: ids(p.replicas),
                    adding_replicas: ids(p.adding_replicas),
                    removing_replicas: ids(p.removing_replicas),
                })
            })
            .collect();
        listed.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(listed)
    }

    /// The metadata quorum (`__cluster_metadata-0`) as its leader describes it. Only the
    /// leader answers: a node that is not says NOT_LEADER_OR_FOLLOWER, and the next
    /// known broker is asked.
    pub async fn describe_quorum(&mut self) -> Result<QuorumInfo> {
        let request = DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(topic_name(METADATA_TOPIC))
                .with_partitions(vec![
                    describe_quorum_request::PartitionData::default().with_partition_index(0)
                ]),
        ]);
        let first = {
            let conn = self.client.any_connection().await?;
            quorum_info(conn.send(&request).await?)
        };
        let Err(error) = first else {
            return first;
        };
        if error.code() != Some(NOT_LEADER_OR_FOLLOWER) {
            return Err(error);
        }
        let ids: Vec<i32> = self
            .client
            .metadata(Some(&[]), false)
            .await?
            .brokers
            .iter()
            .map(|b| b.id)
            .collect();
        let mut last = error;
        for id in ids {
            let answer = match self.client.broker_connection(id).await {
                Ok(conn) => conn.send(&request).await.and_then(quorum_info),
                Err(e) => Err(e),
            };
            match answer {
                Ok(info) => return Ok(info),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Broker configs must be asked of that broker; others of any broker.
    async fn resource_connection(
        &mut self,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<&mut crate::Connection> {
        match (resource_type, name.parse::<i32>()) {
            (ResourceType::Broker | ResourceType::BrokerLogger, Ok(id)) => {
                self.client.broker_connection(id).await
            }
            _ => self.client.controller_connection().await,
        }
    }
}

const METADATA_TOPIC: &str = "__cluster_metadata";
const NOT_LEADER_OR_FOLLOWER: i16 = 6;

fn quorum_info(response: DescribeQuorumResponse) -> Result<QuorumInfo> {
    check(
        response.error_code,
        response.error_message.as_deref(),
        "describe quorum",
    )?;
    let partition = response
        .topics
        .into_iter()
        .find(|t| t.topic_name.as_str() == METADATA_TOPIC)
        .and_then(|t| t.partitions.into_iter().find(|p| p.partition_index == 0))
        .ok_or_else(|| {
            Error::Protocol(format!("the response does not describe {METADATA_TOPIC}-0"))
        })?;
    check(
        partition.error_code,
        partition.error_message.as_deref(),
        format!("{METADATA_TOPIC}-0"),
    )?;
    let replicas = |states: Vec<describe_quorum_response::ReplicaState>| {
        states
            .into_iter()
            .map(|r| QuorumReplica {
                replica_id: r.replica_id.0,
                log_end_offset: r.log_end_offset,
                last_fetch_timestamp: (r.last_fetch_timestamp >= 0)
                    .then_some(r.last_fetch_timestamp),
                last_caught_up_timestamp: (r.last_caught_up_timestamp >= 0)
                    .then_some(r.last_caught_up_timestamp),
            })
            .collect()
    };
    Ok(QuorumInfo {
        leader_id: partition.leader_id.0,
        leader_epoch: partition.leader_epoch,
        high_watermark: partition.high_watermark,
        voters: replicas(partition.current_voters),
        observers: replicas(partition.observers),
    })
}

fn context(resource_type: ResourceType, name: &str) -> String {
    match resource_type {
        ResourceType::Topic => format!("topic {name}"),
        ResourceType::Broker => format!("broker {name}"),
        ResourceType::BrokerLogger => format!("broker logger {name}"),
    }
}

/// Orders per-name results as requested; a name the broker left out is an error.
fn per_name<'a, T>(
    requested: impl Iterator<Item = &'a str>,
    results: impl Iterator<Item = (String, Result<T>)>,
) -> Vec<(String, Result<T>)> {
    let mut results: Vec<_> = results.map(Some).collect();
    requested
        .map(|name| {
            let found = results
                .iter_mut()
                .find(|r| r.as_ref().is_some_and(|(n, _)| n == name))
                .and_then(Option::take);
            match found {
                Some(result) => result,
                None => (
                    name.to_owned(),
                    Err(Error::Protocol(format!(
                        "the response does not mention topic {name}"
                    ))),
                ),
            }
        })
        .collect()
}

fn single<T>(mut results: Vec<(String, Result<T>)>) -> Result<T> {
    match results.pop() {
        Some((_, result)) => result,
        None => Err(Error::Protocol("empty response".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_name_keeps_request_order_and_flags_missing() {
        let results = per_name(
            ["a", "b", "c"].into_iter(),
            vec![
                ("c".to_owned(), Ok(())),
                ("a".to_owned(), check(36, None, "topic a")),
            ]
            .into_iter(),
        );
        let summary: Vec<_> = results
            .iter()
            .map(|(n, r)| (n.as_str(), r.as_ref().map_err(|e| e.to_string())))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", Err("topic a: TOPIC_ALREADY_EXISTS".to_owned())),
                (
                    "b",
                    Err("protocol error: the response does not mention topic b".to_owned())
                ),
                ("c", Ok(&())),
            ]
        );
    }

    #[test]
    fn config_sources_have_kafka_names() {
        assert_eq!(ConfigSource::from_code(1).name(), "DYNAMIC_TOPIC_CONFIG");
        assert_eq!(ConfigSource::from_code(5).name(), "DEFAULT_CONFIG");
        assert_eq!(ConfigSource::from_code(4).name(), "STATIC_BROKER_CONFIG");
        assert_eq!(ConfigSource::from_code(42).name(), "UNKNOWN");
    }

    #[test]
    fn alter_ops_map_to_protocol_codes() {
        assert_eq!(
            AlterConfigOp::Set("a".into(), "1".into()).parts(),
            ("a", 0, Some("1"))
        );
        assert_eq!(AlterConfigOp::Delete("a".into()).parts(), ("a", 1, None));
        assert_eq!(
            AlterConfigOp::Append("a".into(), "x".into()).parts(),
            ("a", 2, Some("x"))
        );
        assert_eq!(
            AlterConfigOp::Subtract("a".into(), "x".into()).parts(),
            ("a", 3, Some("x"))
        );
    }
}
