//! v2 consumer instances: each is a task that owns its Kafka clients (a group member for
//! subscriptions, a fetching consumer, an admin for offsets) and serves its commands one at
//! a time, as Confluent's proxy serialises calls on one KafkaConsumer. Between commands it
//! heartbeats, and rejoins at once when the group rebalances, so a REST consumer never
//! holds up the Kafka clients beside it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;
use strom_client::{
    Admin, Consumer, ConsumerConfig, ConsumerRecord, GroupMember, GroupMemberConfig, OffsetSpec,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::{RestError, RestResult, CONSUMER_ALREADY_EXISTS};
use crate::media::EmbeddedFormat;
use crate::{Proxy, ProxyConfig};

pub type TopicPartition = (String, i32);

/// How often a subscribed instance heartbeats (Kafka's heartbeat.interval.ms).
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
/// Commands waiting for a busy instance.
const COMMAND_QUEUE: usize = 16;
/// The longest records read (Confluent bounds `timeout` by its request timeout too).
const MAX_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    None,
}

#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub format: EmbeddedFormat,
    pub offset_reset: OffsetReset,
    pub auto_commit: bool,
    pub fetch_min_bytes: i32,
    pub request_timeout: Duration,
}

pub enum Command {
    Subscribe {
        topics: Vec<String>,
        pattern: Option<Regex>,
        reply: oneshot::Sender<RestResult<()>>,
    },
    Subscription(oneshot::Sender<Vec<String>>),
    Unsubscribe(oneshot::Sender<RestResult<()>>),
    Assign(Vec<TopicPartition>, oneshot::Sender<RestResult<()>>),
    Assignment(oneshot::Sender<RestResult<Vec<TopicPartition>>>),
    Seek(Vec<(TopicPartition, Seek)>, oneshot::Sender<RestResult<()>>),
    Records {
        timeout: Duration,
        max_bytes: usize,
        reply: oneshot::Sender<RestResult<Vec<ConsumerRecord>>>,
    },
    /// `None`: everything read so far.
    Commit(Option<Commits>, oneshot::Sender<RestResult<()>>),
    Committed(
        Vec<TopicPartition>,
        oneshot::Sender<RestResult<Vec<(TopicPartition, i64, String)>>>,
    ),
    Close(oneshot::Sender<()>),
}

/// Offsets to commit, with the metadata strings given for some of them.
#[derive(Debug, Default)]
pub struct Commits {
    pub offsets: BTreeMap<TopicPartition, i64>,
    pub metadata: BTreeMap<TopicPartition, String>,
}

#[derive(Debug, Clone, Copy)]
pub enum Seek {
    Offset(i64),
    Beginning,
    End,
    /// The first offset at or after this time (ms).
    Timestamp(i64),
}

/// A live instance as the HTTP handlers see it.
#[derive(Clone)]
pub struct Handle {
    pub format: EmbeddedFormat,
    pub request_timeout: Duration,
    commands: mpsc::Sender<Command>,
    last_used: Arc<Mutex<Instant>>,
}

impl Handle {
    /// Sends a command and waits for its answer; a closed instance is "not found".
    pub async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> RestResult<T> {
        self.touch();
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| RestError::consumer_instance_not_found())?;
        let answer = answer
            .await
            .map_err(|_| RestError::consumer_instance_not_found());
        self.touch();
        answer
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

/// Every live instance, by group and name.
pub struct Instances {
    live: Mutex<HashMap<(String, String), Handle>>,
    max: usize,
    idle_timeout: Duration,
}

impl Instances {
    pub fn new(config: &ProxyConfig) -> Self {
        Self {
            live: Mutex::new(HashMap::new()),
            max: config.max_consumer_instances,
            idle_timeout: config.consumer_instance_timeout,
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Handle>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, group: &str, name: &str) -> RestResult<Handle> {
        self.live()
            .get(&(group.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(RestError::consumer_instance_not_found)
    }

    /// Starts an instance; 40902 if the name is taken in the group.
    pub fn create(
        &self,
        proxy: &Proxy,
        group: &str,
        name: &str,
        config: InstanceConfig,
    ) -> RestResult<()> {
        let mut live = self.live();
        let key = (group.to_owned(), name.to_owned());
        if live.contains_key(&key) {
            return Err(RestError::new(
                axum::http::StatusCode::CONFLICT,
                CONSUMER_ALREADY_EXISTS,
                "Consumer with specified consumer ID already exists in the specified consumer group.",
            ));
        }
        if live.len() >= self.max {
            return Err(RestError::http(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                format!("Too many consumer instances (at most {})", self.max),
            ));
        }
        let consumer_config = ConsumerConfig {
            min_bytes: config.fetch_min_bytes,
            max_wait: Duration::from_millis(200),
            ..ConsumerConfig::default()
        };
        let instance = Instance {
            group: group.to_owned(),
            config: config.clone(),
            admin: Admin::new(proxy.client()?),
            consumer: Consumer::new(proxy.client()?, consumer_config),
            member_client: Some(proxy.client()?),
            bootstrap: proxy.config.bootstrap.clone(),
            connection: proxy.config.connection.clone(),
            metadata_max_age: proxy.config.consumer_metadata_max_age,
            subscription: None,
            manual: None,
            unresolved: Vec::new(),
        };
        let (commands, inbox) = mpsc::channel(COMMAND_QUEUE);
        tokio::spawn(instance.run(inbox));
        live.insert(
            key,
            Handle {
                format: config.format,
                request_timeout: config.request_timeout,
                commands,
                last_used: Arc::new(Mutex::new(Instant::now())),
            },
        );
        Ok(())
    }

    /// Removes an instance from the map; the caller closes it.
    pub fn remove(&self, group: &str, name: &str) -> Option<Handle> {
        self.live().remove(&(group.to_owned(), name.to_owned()))
    }

    fn expired(&self) -> Vec<Handle> {
        let mut live = self.live();
        let expired: Vec<_> = live
            .iter()
            .filter(|(_, h)| h.idle_for() > self.idle_timeout)
            .map(|(k, _)| k.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|k| live.remove(&k))
            .collect()
    }
}

/// Closes instances idle for longer than `consumer.instance.timeout.ms`.
pub async fn expire_idle(proxy: Arc<Proxy>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for handle in proxy.instances.expired() {
            tracing::info!("closing an idle REST consumer instance");
            let _ = handle.call(Command::Close).await;
        }
    }
}

struct Subscription {
    topics: Vec<String>,
    /// Matched against the whole topic name.
    pattern: Option<Regex>,
    /// `None` until the first read joins the group.
    member: Option<GroupMember>,
    /// When the pattern was last matched against the cluster's topics.
    matched_at: Instant,
}

struct Instance {
    group: String,
    config: InstanceConfig,
    admin: Admin,
    /// Reads the assigned partitions; its positions are what was handed out.
    consumer: Consumer,
    /// The client a group member is made with (kept while not subscribed).
    member_client: Option<strom_client::Client>,
    bootstrap: String,
    connection: strom_client::ConnectionConfig,
    /// `consumer.metadata.max.age.ms`: how often a pattern is matched again.
    metadata_max_age: Duration,
    subscription: Option<Subscription>,
    manual: Option<Vec<TopicPartition>>,
    /// Assigned partitions whose position comes from the committed offset or the reset
    /// policy at the next read.
    unresolved: Vec<TopicPartition>,
}

impl Instance {
    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) {
        let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = inbox.recv() => {
                    let Some(command) = command else { break };
                    if let Command::Close(reply) = command {
                        self.close().await;
                        let _ = reply.send(());
                        break;
                    }
                    self.handle(command).await;
                }
                _ = heartbeat.tick() => self.heartbeat().await,
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                topics,
                pattern,
                reply,
            } => {
                let _ = reply.send(self.subscribe(topics, pattern));
            }
            Command::Subscription(reply) => {
                // A pattern's topics are those matched at the last join, as Kafka's consumer
                // reports them.
                let topics = match &self.subscription {
                    Some(Subscription {
                        member: Some(member),
                        ..
                    }) => member.topics().to_vec(),
                    Some(s) => s.topics.clone(),
                    None => Vec::new(),
                };
                let _ = reply.send(topics);
            }
            Command::Unsubscribe(reply) => {
                let _ = reply.send(self.unsubscribe().await);
            }
            Command::Assign(partitions, reply) => {
                let _ = reply.send(self.assign(partitions));
            }
            Command::Assignment(reply) => {
                let _ = reply.send(self.assignment().await);
            }
            Command::Seek(seeks, reply) => {
                let _ = reply.send(self.seek(seeks).await);
            }
            Command::Records {
                timeout,
                max_bytes,
                reply,
            } => {
                let _ = reply.send(self.records(timeout, max_bytes).await);
            }
            Command::Commit(offsets, reply) => {
                let _ = reply.send(self.commit(offsets).await);
            }
            Command::Committed(partitions, reply) => {
                let _ = reply.send(self.committed(partitions).await);
            }
            Command::Close(reply) => {
                let _ = reply.send(());
            }
        }
    }

    fn subscribe(&mut self, mut topics: Vec<String>, pattern: Option<Regex>) -> RestResult<()> {
        if self.manual.is_some() {
            return Err(RestError::illegal_state(
                "Subscription to topics, partitions and pattern are mutually exclusive",
            ));
        }
        if self.subscription.is_some() {
            // Kafka's consumer replaces its subscription; so does Confluent's proxy.
            return Err(RestError::new(
                axum::http::StatusCode::CONFLICT,
                crate::error::CONSUMER_ALREADY_SUBSCRIBED,
                "Consumer cannot subscribe the the specified target because it has already subscribed to other topics.",
            ));
        }
        topics.sort();
        topics.dedup();
        self.subscription = Some(Subscription {
            topics,
            pattern,
            member: None,
            matched_at: Instant::now(),
        });
        Ok(())
    }

    async fn unsubscribe(&mut self) -> RestResult<()> {
        self.leave_group().await;
        self.subscription = None;
        self.manual = None;
        self.consumer.clear_assignment();
        self.unresolved.clear();
        Ok(())
    }

    fn assign(&mut self, partitions: Vec<TopicPartition>) -> RestResult<()> {
        if self.subscription.is_some() {
            return Err(RestError::illegal_state(
                "Subscription to topics, partitions and pattern are mutually exclusive",
            ));
        }
        self.consumer.clear_assignment();
        self.unresolved = partitions.clone();
        self.manual = Some(partitions);
        Ok(())
    }

    async fn assignment(&mut self) -> RestResult<Vec<TopicPartition>> {
        Ok(self.assigned())
    }

    fn assigned(&self) -> Vec<TopicPartition> {
        if let Some(manual) = &self.manual {
            return manual.clone();
        }
        let Some(member) = self.subscription.as_ref().and_then(|s| s.member.as_ref()) else {
            return Vec::new();
        };
        member
            .assignment()
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.clone(), p)))
            .collect()
    }

    async fn seek(&mut self, seeks: Vec<(TopicPartition, Seek)>) -> RestResult<()> {
        let assigned = self.assigned();
        for ((topic, partition), _) in &seeks {
            if !assigned.iter().any(|(t, p)| t == topic && p == partition) {
                return Err(RestError::illegal_state(format!(
                    "No current assignment for partition {topic}-{partition}"
                )));
            }
        }
        for ((topic, partition), seek) in seeks {
            let offset = match seek {
                Seek::Offset(offset) => offset,
                Seek::Beginning => self.lookup(&topic, partition, OffsetSpec::Earliest).await?,
                Seek::End => self.lookup(&topic, partition, OffsetSpec::Latest).await?,
                Seek::Timestamp(ms) => {
                    match self
                        .consumer
                        .list_offsets(&topic, &[partition], OffsetSpec::Timestamp(ms))
                        .await?
                        .get(&partition)
                        .copied()
                        .flatten()
                    {
                        Some(offset) => offset,
                        // No record at or after that time: Kafka leaves the position.
                        None => continue,
                    }
                }
            };
            self.unresolved
                .retain(|(t, p)| !(t == &topic && *p == partition));
            self.consumer.assign(&topic, partition, offset);
        }
        Ok(())
    }

    async fn lookup(&mut self, topic: &str, partition: i32, spec: OffsetSpec) -> RestResult<i64> {
        let offsets = self
            .consumer
            .list_offsets(topic, &[partition], spec)
            .await?;
        Ok(offsets.get(&partition).copied().flatten().unwrap_or(0))
    }

    async fn records(
        &mut self,
        timeout: Duration,
        max_bytes: usize,
    ) -> RestResult<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout.min(MAX_READ_TIMEOUT);
        if self.config.auto_commit {
            // Kafka's auto-commit: what earlier reads handed out counts as consumed.
            if let Err(e) = self.commit(None).await {
                tracing::debug!(error = %e.message, "REST consumer auto-commit failed");
            }
        }
        self.ensure_joined().await?;
        self.resolve_positions().await?;
        let mut records = Vec::new();
        while records.is_empty() && Instant::now() < deadline {
            records = self.consumer.poll().await?;
        }
        // Hand out at most max_bytes of keys and values; the rest is read again next time.
        let mut total = 0usize;
        let mut keep = records.len();
        for (i, r) in records.iter().enumerate() {
            total +=
                r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len());
            if total > max_bytes && i > 0 {
                keep = i;
                break;
            }
        }
        let mut rewound = std::collections::HashSet::new();
        for r in &records[keep..] {
            if rewound.insert((r.topic.clone(), r.partition)) {
                self.consumer.assign(&r.topic, r.partition, r.offset);
            }
        }
        records.truncate(keep);
        Ok(records)
    }

    /// Joins the group of a subscribed instance that is not a member yet.
    async fn ensure_joined(&mut self) -> RestResult<()> {
        let Some(subscription) = &mut self.subscription else {
            return Ok(());
        };
        if subscription.member.is_some() {
            return Ok(());
        }
        let mut topics = subscription.topics.clone();
        if let Some(pattern) = &subscription.pattern {
            topics = matching_topics(&mut self.admin, pattern).await?;
            subscription.matched_at = Instant::now();
        }
        let client = match self.member_client.take() {
            Some(client) => client,
            None => strom_client::Client::new(&self.bootstrap, self.connection.clone())?,
        };
        let mut member =
            GroupMember::new(client, &self.group, &topics, GroupMemberConfig::default());
        let joined = member.join().await;
        subscription.member = Some(member);
        joined?;
        self.reset_to_assignment();
        Ok(())
    }

    fn reset_to_assignment(&mut self) {
        self.consumer.clear_assignment();
        self.unresolved = self.assigned();
    }

    /// Positions of newly assigned partitions: the group's committed offset, else the
    /// reset policy.
    async fn resolve_positions(&mut self) -> RestResult<()> {
        if self.unresolved.is_empty() {
            return Ok(());
        }
        let committed = self.admin.list_group_offsets(&self.group).await?;
        for (topic, partition) in std::mem::take(&mut self.unresolved) {
            let key = (topic.clone(), partition);
            let offset = match committed.get(&key) {
                Some(c) if c.offset >= 0 => c.offset,
                _ => match self.config.offset_reset {
                    OffsetReset::Earliest => {
                        self.lookup(&topic, partition, OffsetSpec::Earliest).await?
                    }
                    OffsetReset::Latest => self.lookup(&topic, partition, OffsetSpec::Latest).await?,
                    OffsetReset::None => {
                        return Err(RestError::from_kafka_code(
                            -2,
                            format!("Undefined offset with no reset policy for partitions: [{topic}-{partition}]"),
                        ))
                    }
                },
            };
            self.consumer.assign(&topic, partition, offset);
        }
        Ok(())
    }

    async fn commit(&mut self, commits: Option<Commits>) -> RestResult<()> {
        let Commits { offsets, metadata } = match commits {
            Some(commits) => commits,
            None => Commits {
                offsets: self
                    .assigned()
                    .into_iter()
                    .filter_map(|(t, p)| self.consumer.position(&t, p).map(|o| ((t, p), o)))
                    .collect(),
                metadata: BTreeMap::new(),
            },
        };
        if offsets.is_empty() {
            return Ok(());
        }
        let member = self.subscription.as_mut().and_then(|s| s.member.as_mut());
        let results = match member {
            Some(member) => member.commit_with_metadata(&offsets, &metadata).await?,
            None => {
                self.admin
                    .commit_group_offsets_with_metadata(&self.group, &offsets, &metadata)
                    .await?
            }
        };
        for (_, result) in results {
            result?;
        }
        Ok(())
    }

    async fn committed(
        &mut self,
        partitions: Vec<TopicPartition>,
    ) -> RestResult<Vec<(TopicPartition, i64, String)>> {
        let committed = self.admin.list_group_offsets(&self.group).await?;
        Ok(partitions
            .into_iter()
            .filter_map(|tp| {
                let c = committed.get(&tp)?;
                (c.offset >= 0).then(|| (tp, c.offset, c.metadata.clone()))
            })
            .collect())
    }

    async fn heartbeat(&mut self) {
        if self.pattern_matches_changed().await {
            tracing::debug!(group = %self.group, "REST consumer's pattern matches other topics; it rejoins");
            self.rejoin().await;
            return;
        }
        let Some(member) = self.subscription.as_mut().and_then(|s| s.member.as_mut()) else {
            return;
        };
        if let Err(e) = member.heartbeat().await {
            // REBALANCE_IN_PROGRESS, UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID:
            // rejoin now so the group's rebalance does not wait for our next read.
            tracing::debug!(group = %self.group, error = %e, "REST consumer rejoins its group");
            self.rejoin().await;
        }
    }

    /// A joined pattern subscription matches the cluster's topics again once
    /// `consumer.metadata.max.age.ms` has passed (as a Kafka consumer does at its metadata
    /// refresh), and takes the new set as its subscription if it changed.
    async fn pattern_matches_changed(&mut self) -> bool {
        let Some(subscription) = self.subscription.as_mut() else {
            return false;
        };
        let (Some(pattern), Some(member)) = (&subscription.pattern, &mut subscription.member)
        else {
            return false;
        };
        if subscription.matched_at.elapsed() < self.metadata_max_age {
            return false;
        }
        subscription.matched_at = Instant::now();
        match matching_topics(&mut self.admin, pattern).await {
            Ok(topics) if topics != member.topics() => {
                member.set_topics(&topics);
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::debug!(group = %self.group, error = %e.message, "listing topics for a REST consumer's pattern");
                false
            }
        }
    }

    /// Joins the group again (committing first with auto-commit); on failure the next read
    /// joins from scratch.
    async fn rejoin(&mut self) {
        if self.config.auto_commit {
            let _ = self.commit(None).await;
        }
        let Some(member) = self.subscription.as_mut().and_then(|s| s.member.as_mut()) else {
            return;
        };
        match member.join().await {
            Ok(()) => self.reset_to_assignment(),
            Err(e) => {
                tracing::warn!(group = %self.group, error = %e, "REST consumer failed to rejoin; it will at its next read");
                if let Some(s) = self.subscription.as_mut() {
                    s.member = None;
                }
                self.consumer.clear_assignment();
                self.unresolved.clear();
            }
        }
    }

    async fn leave_group(&mut self) {
        if self.config.auto_commit {
            let _ = self.commit(None).await;
        }
        if let Some(mut member) = self.subscription.as_mut().and_then(|s| s.member.take()) {
            if let Err(e) = member.leave().await {
                tracing::debug!(group = %self.group, error = %e, "REST consumer leave failed");
            }
        }
    }

    async fn close(&mut self) {
        self.leave_group().await;
    }
}

/// The cluster's topics (not internal ones) that `pattern`, anchored at both ends, matches;
/// sorted as a member's subscription is.
async fn matching_topics(admin: &mut Admin, pattern: &Regex) -> RestResult<Vec<String>> {
    let mut topics: Vec<String> = admin
        .list_topics()
        .await?
        .into_iter()
        .filter(|t| !t.is_internal && pattern.is_match(&t.name))
        .map(|t| t.name)
        .collect();
    topics.sort();
    Ok(topics)
}
