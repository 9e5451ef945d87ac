//! A member of a classic consumer group: JoinGroup, SyncGroup (as leader it
//! assigns partitions with Kafka's range assignor), Heartbeat, commits in
//! its generation and LeaveGroup. It fetches nothing: pair it with a
//! [`Consumer`](crate::Consumer) positioned at the committed offsets.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    consumer_protocol_assignment::TopicPartition as AssignedPartitions,
    consumer_protocol_subscription::TopicPartition as OwnedPartitions,
    join_group_request::JoinGroupRequestProtocol, leave_group_request::MemberIdentity,
    sync_group_request::SyncGroupRequestAssignment, ApiKey, ConsumerProtocolAssignment,
    ConsumerProtocolSubscription, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::client::Client;
use crate::error::{check, Error, Result};
use crate::groups::{
    commit_offsets, consumer_protocol_version, decode_consumer_assignment, group_id, s,
    CommitMember, TopicPartition, TopicPartitions, CONSUMER_PROTOCOL_TYPE,
};

/// The assignor this member offers (Kafka's `RangeAssignor` name).
pub const RANGE_PROTOCOL: &str = "range";
const CONSUMER_PROTOCOL_VERSION: i16 = 3;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
/// Join attempts before giving up on a group that keeps rebalancing.
const MAX_JOIN_ATTEMPTS: usize = 20;

#[derive(Debug, Clone)]
pub struct GroupMemberConfig {
    /// Without a heartbeat for this long the coordinator drops the member.
    pub session_timeout: Duration,
    /// How long the coordinator waits for members to rejoin a rebalance.
    pub rebalance_timeout: Duration,
    /// Static membership (KIP-345), when set.
    pub group_instance_id: Option<String>,
}

impl Default for GroupMemberConfig {
    fn default() -> Self {
        // Kafka's consumer defaults: session.timeout.ms, max.poll.interval.ms.
        Self {
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            group_instance_id: None,
        }
    }
}

/// What the members of a classic group exchange through the coordinator: the protocol
/// type, the protocols a member offers with its metadata, the group leader's assignment,
/// and what a member does with its own.
pub trait GroupProtocol: Send {
    fn protocol_type(&self) -> &str;
    /// (name, metadata) of each protocol this member supports, preferred first.
    fn protocols(&self, generation: i32) -> Result<Vec<(String, Bytes)>>;
    /// As the group's leader: each member's assignment, from every member's metadata for
    /// the chosen protocol.
    fn assign(
        &mut self,
        client: &mut Client,
        protocol: &str,
        members: &[(String, Bytes)],
    ) -> impl std::future::Future<Output = Result<Vec<(String, Bytes)>>> + Send;
    /// This member's assignment from SyncGroup.
    fn assigned(&mut self, assignment: &Bytes) -> Result<()>;
    /// After leaving the group.
    fn left(&mut self) {}
}

/// A member of a classic group with protocol type "consumer", assigning with Kafka's
/// range assignor.
pub type GroupMember = ClassicMember<ConsumerProtocol>;

/// The consumer protocol: topics subscribed, partitions assigned.
#[derive(Debug)]
pub struct ConsumerProtocol {
    topics: Vec<String>,
    assignment: Vec<TopicPartitions>,
}

impl GroupProtocol for ConsumerProtocol {
    fn protocol_type(&self) -> &str {
        CONSUMER_PROTOCOL_TYPE
    }

    fn protocols(&self, generation: i32) -> Result<Vec<(String, Bytes)>> {
        let subscription = encode_subscription(&self.topics, &self.assignment, generation)?;
        Ok(vec![(RANGE_PROTOCOL.to_owned(), subscription)])
    }

    async fn assign(
        &mut self,
        client: &mut Client,
        _protocol: &str,
        members: &[(String, Bytes)],
    ) -> Result<Vec<(String, Bytes)>> {
        let mut subscriptions = BTreeMap::new();
        for (member, metadata) in members {
            subscriptions.insert(member.clone(), decode_subscription(metadata)?);
        }
        let mut counts = BTreeMap::new();
        for topic in subscriptions.values().flatten() {
            if counts.contains_key(topic) {
                continue;
            }
            // A subscribed topic that does not exist gets no partitions.
            client.invalidate(topic);
            if let Ok(meta) = client.topic(topic, false, Duration::ZERO).await {
                counts.insert(topic.clone(), meta.partitions.len() as i32);
            }
        }
        range_assign(&subscriptions, &counts)
            .into_iter()
            .map(|(member, parts)| Ok((member, encode_assignment(&parts)?)))
            .collect()
    }

    fn assigned(&mut self, assignment: &Bytes) -> Result<()> {
        self.assignment = decode_consumer_assignment(assignment)?;
        Ok(())
    }

    fn left(&mut self) {
        self.assignment.clear();
    }
}

/// One member of a classic group speaking protocol `P`.
#[derive(Debug)]
pub struct ClassicMember<P> {
    client: Client,
    group: String,
    protocol: P,
    config: GroupMemberConfig,
    member_id: String,
    generation: i32,
    leader: bool,
}

fn sorted_unique(topics: &[String]) -> Vec<String> {
    let mut topics = topics.to_vec();
    topics.sort();
    topics.dedup();
    topics
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl ClassicMember<ConsumerProtocol> {
    /// A member of `group` subscribed to `topics`; nothing is sent until
    /// [`GroupMember::join`].
    pub fn new(client: Client, group: &str, topics: &[String], config: GroupMemberConfig) -> Self {
        Self::with_protocol(
            client,
            group,
            ConsumerProtocol {
                topics: sorted_unique(topics),
                assignment: Vec::new(),
            },
            config,
        )
    }

    /// The topics subscribed to (sorted).
    pub fn topics(&self) -> &[String] {
        &self.protocol.topics
    }

    /// Changes the subscription; the group hears of it at the next [`GroupMember::join`].
    pub fn set_topics(&mut self, topics: &[String]) {
        self.protocol.topics = sorted_unique(topics);
    }

    /// The partitions of the last completed rebalance, sorted by topic.
    pub fn assignment(&self) -> &[TopicPartitions] {
        &self.protocol.assignment
    }
}

impl<P: GroupProtocol> ClassicMember<P> {
    /// A member of `group` speaking `protocol`; nothing is sent until `join`.
    pub fn with_protocol(
        client: Client,
        group: &str,
        protocol: P,
        config: GroupMemberConfig,
    ) -> Self {
        Self {
            client,
            group: group.to_owned(),
            protocol,
            config,
            member_id: String::new(),
            generation: -1,
            leader: false,
        }
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }

    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// Joins (or rejoins) the group and waits for this generation's
    /// assignment, going round again when the group rebalances meanwhile.
    pub async fn join(&mut self) -> Result<()> {
        let mut last = None;
        for _ in 0..MAX_JOIN_ATTEMPTS {
            match self.join_once().await {
                Ok(()) => return Ok(()),
                Err(e) => match e.code() {
                    Some(MEMBER_ID_REQUIRED | REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION) => {
                        last = Some(e)
                    }
                    Some(UNKNOWN_MEMBER_ID) => {
                        self.member_id.clear();
                        last = Some(e);
                    }
                    _ => return Err(e),
                },
            }
        }
        Err(last.unwrap_or_else(|| Error::Protocol("join attempts exhausted".to_owned())))
    }

    async fn join_once(&mut self) -> Result<()> {
        let protocols: Vec<JoinGroupRequestProtocol> = self
            .protocol
            .protocols(self.generation)?
            .into_iter()
            .map(|(name, metadata)| {
                JoinGroupRequestProtocol::default()
                    .with_name(s(&name))
                    .with_metadata(metadata)
            })
            .collect();
        let preferred = protocols
            .first()
            .map(|p| p.name.to_string())
            .unwrap_or_default();
        let protocol_type = self.protocol.protocol_type().to_owned();
        let timeout = self.client.config().request_timeout + self.config.rebalance_timeout;
        let (group, member_id, config) = (&self.group, &self.member_id, &self.config);
        let (joined, _) = self
            .client
            .send_to_coordinator(
                group,
                ApiKey::JoinGroup,
                i16::MAX,
                timeout,
                |version| {
                    let mut request = JoinGroupRequest::default()
                        .with_group_id(group_id(group))
                        .with_session_timeout_ms(millis(config.session_timeout))
                        .with_member_id(s(member_id))
                        .with_protocol_type(s(&protocol_type))
                        .with_protocols(protocols.clone());
                    if version >= 1 {
                        request.rebalance_timeout_ms = millis(config.rebalance_timeout);
                    }
                    if version >= 5 {
                        request.group_instance_id = config.group_instance_id.as_deref().map(s);
                    }
                    request
                },
                |r| Some(r.error_code),
            )
            .await?;
        if joined.error_code == MEMBER_ID_REQUIRED {
            // KIP-394: rejoin at once with the id the coordinator gave us.
            self.member_id = joined.member_id.to_string();
        }
        check(
            joined.error_code,
            None,
            format!("join group {}", self.group),
        )?;
        self.member_id = joined.member_id.to_string();
        self.generation = joined.generation_id;
        self.leader = joined.leader == joined.member_id;
        let protocol = joined
            .protocol_name
            .as_deref()
            .map(|p| p.to_string())
            .unwrap_or(preferred);

        let mut assignments = Vec::new();
        if self.leader && !joined.skip_assignment {
            let members: Vec<(String, Bytes)> = joined
                .members
                .iter()
                .map(|m| (m.member_id.to_string(), m.metadata.clone()))
                .collect();
            for (member, assignment) in self
                .protocol
                .assign(&mut self.client, &protocol, &members)
                .await?
            {
                assignments.push(
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&member))
                        .with_assignment(assignment),
                );
            }
        }
        let (group, member_id, config) = (&self.group, &self.member_id, &self.config);
        let generation = self.generation;
        let sync_timeout = self.client.config().request_timeout + config.rebalance_timeout;
        let (synced, _) = self
            .client
            .send_to_coordinator(
                group,
                ApiKey::SyncGroup,
                i16::MAX,
                sync_timeout,
                |version| {
                    let mut request = SyncGroupRequest::default()
                        .with_group_id(group_id(group))
                        .with_generation_id(generation)
                        .with_member_id(s(member_id))
                        .with_assignments(assignments.clone());
                    if version >= 3 {
                        request.group_instance_id = config.group_instance_id.as_deref().map(s);
                    }
                    if version >= 5 {
                        request.protocol_type = Some(s(&protocol_type));
                        request.protocol_name = Some(s(&protocol));
                    }
                    request
                },
                |r| Some(r.error_code),
            )
            .await?;
        check(
            synced.error_code,
            None,
            format!("sync group {}", self.group),
        )?;
        self.protocol.assigned(&synced.assignment)
    }

    /// Tells the coordinator this member is alive. REBALANCE_IN_PROGRESS
    /// (and UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION) mean: call `join` again.
    pub async fn heartbeat(&mut self) -> Result<()> {
        let (group, member_id, config) = (&self.group, &self.member_id, &self.config);
        let generation = self.generation;
        let timeout = self.client.config().request_timeout;
        let (response, _) = self
            .client
            .send_to_coordinator(
                group,
                ApiKey::Heartbeat,
                i16::MAX,
                timeout,
                |version| {
                    let mut request = HeartbeatRequest::default()
                        .with_group_id(group_id(group))
                        .with_generation_id(generation)
                        .with_member_id(s(member_id));
                    if version >= 3 {
                        request.group_instance_id = config.group_instance_id.as_deref().map(s);
                    }
                    request
                },
                |r| Some(r.error_code),
            )
            .await?;
        check(
            response.error_code,
            None,
            format!("heartbeat to group {}", self.group),
        )
    }

    /// Commits offsets in this member's generation; results per partition.
    pub async fn commit(
        &mut self,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        self.commit_with_metadata(offsets, &BTreeMap::new()).await
    }

    /// [`ClassicMember::commit`] with each partition's metadata string where given.
    pub async fn commit_with_metadata(
        &mut self,
        offsets: &BTreeMap<TopicPartition, i64>,
        metadata: &BTreeMap<TopicPartition, String>,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let member = CommitMember {
            generation: self.generation,
            member_id: &self.member_id,
            group_instance_id: self.config.group_instance_id.as_deref(),
        };
        commit_offsets(&mut self.client, &self.group, member, offsets, metadata).await
    }

    /// Leaves the group so it rebalances without waiting for the session
    /// to expire.
    pub async fn leave(&mut self) -> Result<()> {
        let (group, member_id, config) = (&self.group, &self.member_id, &self.config);
        let timeout = self.client.config().request_timeout;
        let (response, version) = self
            .client
            .send_to_coordinator(
                group,
                ApiKey::LeaveGroup,
                i16::MAX,
                timeout,
                |version| {
                    if version >= 3 {
                        LeaveGroupRequest::default()
                            .with_group_id(group_id(group))
                            .with_members(vec![MemberIdentity::default()
                                .with_member_id(s(member_id))
                                .with_group_instance_id(
                                    config.group_instance_id.as_deref().map(s),
                                )])
                    } else {
                        LeaveGroupRequest::default()
                            .with_group_id(group_id(group))
                            .with_member_id(s(member_id))
                    }
                },
                |r| Some(r.error_code),
            )
            .await?;
        let context = format!("leave group {}", self.group);
        check(response.error_code, None, context.clone())?;
        if version >= 3 {
            for m in &response.members {
                check(m.error_code, None, context.clone())?;
            }
        }
        self.generation = -1;
        self.member_id.clear();
        self.protocol.left();
        Ok(())
    }
}

/// Kafka's range assignor: per topic, members subscribed to it in member id
/// order each get a contiguous range; the first `partitions % members` get
/// one extra. Every member appears in the result, perhaps with nothing.
pub fn range_assign(
    subscriptions: &BTreeMap<String, Vec<String>>,
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartitions>> {
    let mut result: BTreeMap<String, Vec<TopicPartitions>> = subscriptions
        .keys()
        .map(|m| (m.clone(), Vec::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let members: Vec<&String> = subscriptions
            .iter()
            .filter(|(_, topics)| topics.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if members.is_empty() || count <= 0 {
            continue;
        }
        let n = members.len() as i32;
        let (each, extra) = (count / n, count % n);
        for (i, member) in members.into_iter().enumerate() {
            let i = i as i32;
            let start = each * i + i.min(extra);
            let len = each + i32::from(i < extra);
            if len > 0 {
                if let Some(parts) = result.get_mut(member) {
                    parts.push(TopicPartitions {
                        topic: topic.clone(),
                        partitions: (start..start + len).collect(),
                    });
                }
            }
        }
    }
    result
}

fn versioned(version: i16, body: impl FnOnce(&mut BytesMut) -> Result<()>) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    body(&mut buf)?;
    Ok(buf.freeze())
}

/// A consumer-protocol subscription (version prefix, then the fields).
pub fn encode_subscription(
    topics: &[String],
    owned: &[TopicPartitions],
    generation: i32,
) -> Result<Bytes> {
    let subscription = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| s(t)).collect())
        .with_owned_partitions(
            owned
                .iter()
                .map(|tp| {
                    OwnedPartitions::default()
                        .with_topic(TopicName(s(&tp.topic)))
                        .with_partitions(tp.partitions.clone())
                })
                .collect(),
        )
        .with_generation_id(generation);
    versioned(CONSUMER_PROTOCOL_VERSION, |buf| {
        subscription
            .encode(buf, CONSUMER_PROTOCOL_VERSION)
            .map_err(|e| Error::encode("consumer protocol subscription", e))
    })
}

/// The topics of a consumer-protocol subscription.
pub fn decode_subscription(bytes: &Bytes) -> Result<Vec<String>> {
    let what = "consumer protocol subscription";
    let mut buf = bytes.clone();
    let version = consumer_protocol_version(&mut buf, what)?;
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version)
        .map_err(|e| Error::decode(what, e))?;
    Ok(subscription.topics.iter().map(|t| t.to_string()).collect())
}

/// A consumer-protocol assignment (version prefix, then the fields).
pub fn encode_assignment(parts: &[TopicPartitions]) -> Result<Bytes> {
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        parts
            .iter()
            .map(|tp| {
                AssignedPartitions::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(tp.partitions.clone())
            })
            .collect(),
    );
    versioned(CONSUMER_PROTOCOL_VERSION, |buf| {
        assignment
            .encode(buf, CONSUMER_PROTOCOL_VERSION)
            .map_err(|e| Error::encode("consumer protocol assignment", e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        entries
            .iter()
            .map(|(m, t)| (m.to_string(), t.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn counts(entries: &[(&str, i32)]) -> BTreeMap<String, i32> {
        entries.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn flat(result: &BTreeMap<String, Vec<TopicPartitions>>) -> Vec<(String, String, Vec<i32>)> {
        result
            .iter()
            .flat_map(|(m, parts)| {
                parts
                    .iter()
                    .map(|tp| (m.clone(), tp.topic.clone(), tp.partitions.clone()))
            })
            .collect()
    }

    #[test]
    fn range_gives_the_first_members_the_extra_partitions() {
        let result = range_assign(
            &subs(&[("c1", &["t"]), ("c0", &["t"]), ("c2", &["t"])]),
            &counts(&[("t", 7)]),
        );
        assert_eq!(
            flat(&result),
            vec![
                ("c0".into(), "t".into(), vec![0, 1, 2]),
                ("c1".into(), "t".into(), vec![3, 4]),
                ("c2".into(), "t".into(), vec![5, 6]),
            ]
        );
    }

    #[test]
    fn range_works_per_topic_and_skips_unsubscribed_members() {
        let result = range_assign(
            &subs(&[("a", &["t", "u"]), ("b", &["u"]), ("c", &["t"])]),
            &counts(&[("t", 1), ("u", 3), ("gone", 4)]),
        );
        assert_eq!(
            flat(&result),
            vec![
                ("a".into(), "t".into(), vec![0]),
                ("a".into(), "u".into(), vec![0, 1]),
                ("b".into(), "u".into(), vec![2]),
            ]
        );
        assert_eq!(result["c"], vec![]);
    }

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let owned = vec![TopicPartitions {
            topic: "t".into(),
            partitions: vec![1, 2],
        }];
        let bytes = encode_subscription(&["t".into(), "u".into()], &owned, 4).unwrap();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(decode_subscription(&bytes).unwrap(), ["t", "u"]);
        let bytes = encode_assignment(&owned).unwrap();
        assert_eq!(decode_consumer_assignment(&bytes).unwrap(), owned);
        assert!(matches!(
            decode_subscription(&Bytes::from_static(&[0])),
            Err(Error::Decode { .. })
        ));
    }
}
