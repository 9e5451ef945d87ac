//! Consumer-group administration through each group's coordinator: list,
//! describe, committed offsets (fetch, simple commit, delete) and deletion.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
    offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic},
    offset_fetch_request::OffsetFetchRequestGroup,
    ApiKey, ConsumerProtocolAssignment, DeleteGroupsRequest, DescribeGroupsRequest, GroupId,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
    OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::admin::Admin;
use crate::client::{BrokerInfo, Client};
use crate::coordinator::is_coordinator_error;
use crate::error::{check, Error, Result};

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// The group protocol type of Kafka consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

const GROUP_ID_NOT_FOUND: i16 = 69;
/// ListGroups v4 added the states filter.
const FIRST_STATES_FILTER_VERSION: i16 = 4;
/// OffsetFetch v2 allows "all topics" (a null topic list).
const FIRST_ALL_TOPICS_FETCH_VERSION: i16 = 2;
/// OffsetFetch v8 batches groups.
const FIRST_BATCHED_FETCH_VERSION: i16 = 8;
/// DescribeGroups v6 reports an unknown group as GROUP_ID_NOT_FOUND.
const FIRST_NOT_FOUND_DESCRIBE_VERSION: i16 = 6;
/// kafka-protocol 0.18 encodes OffsetFetch and OffsetCommit requests up to
/// v9 (v10 addresses topics by id, which the crate cannot encode yet).
const MAX_OFFSET_FETCH_VERSION: i16 = 9;
const MAX_OFFSET_COMMIT_VERSION: i16 = 9;
const MAX_CONSUMER_PROTOCOL_VERSION: i16 = 3;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    /// "consumer" for Kafka consumers, "" for a simple (commit-only) group.
    pub protocol_type: String,
    /// e.g. "Stable", "Empty" (ListGroups v4+; `None` before).
    pub state: Option<String>,
    /// "classic" or "consumer" (ListGroups v5+; `None` before).
    pub group_type: Option<String>,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// The assignment as the coordinator holds it.
    pub raw_assignment: Bytes,
    /// Decoded partitions per topic (sorted) for "consumer" groups; `None`
    /// for other protocol types.
    pub assignment: Option<Vec<TopicPartitions>>,
}

/// Partitions of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// e.g. "Stable", "Empty", "PreparingRebalance".
    pub state: String,
    pub protocol_type: String,
    /// The selected protocol (the assignor for consumers), "" when none.
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    pub coordinator: BrokerInfo,
}

/// A committed offset, from OffsetFetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    /// `None` when the committer did not know the leader epoch.
    pub leader_epoch: Option<i32>,
    pub metadata: String,
}

/// Reads the version that starts a consumer-protocol message. Newer
/// versions only append fields, so they are read as our newest.
pub(crate) fn consumer_protocol_version(buf: &mut Bytes, what: &str) -> Result<i16> {
    if buf.remaining() < 2 {
        return Err(Error::decode(what, "shorter than its version"));
    }
    let version = buf.get_i16();
    if version < 0 {
        return Err(Error::decode(what, format!("negative version {version}")));
    }
    Ok(version.min(MAX_CONSUMER_PROTOCOL_VERSION))
}

/// Decodes a consumer-protocol assignment: a version, then the fields.
pub fn decode_consumer_assignment(bytes: &Bytes) -> Result<Vec<TopicPartitions>> {
    let what = "consumer protocol assignment";
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut buf = bytes.clone();
    let version = consumer_protocol_version(&mut buf, what)?;
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| Error::decode(what, e))?;
    let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in assignment.assigned_partitions {
        topics
            .entry(tp.topic.0.to_string())
            .or_default()
            .extend(tp.partitions);
    }
    Ok(topics
        .into_iter()
        .map(|(topic, mut partitions)| {
            partitions.sort_unstable();
            partitions.dedup();
            TopicPartitions { topic, partitions }
        })
        .collect())
}

pub(crate) fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub(crate) fn group_id(value: &str) -> GroupId {
    GroupId(s(value))
}

fn context(group: &str) -> String {
    format!("group {group}")
}

impl Admin {
    /// The request timeout of this admin's client.
    fn group_timeout(&mut self) -> Duration {
        self.client().config().request_timeout
    }

    /// Groups on every broker, sorted by id. `states` (e.g. "Stable") keeps
    /// only groups in those states (needs ListGroups v4+).
    pub async fn list_groups(&mut self, states: &[String]) -> Result<Vec<ListedGroup>> {
        let mut groups = Vec::new();
        for id in self.client().broker_ids().await? {
            groups.extend(self.list_groups_on(id, states).await?);
        }
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    async fn list_groups_on(&mut self, broker: i32, states: &[String]) -> Result<Vec<ListedGroup>> {
        let deadline = tokio::time::Instant::now() + self.group_timeout();
        loop {
            let conn = self.client().broker_connection(broker).await?;
            let version = conn.version(ApiKey::ListGroups)?;
            let mut request = ListGroupsRequest::default();
            if !states.is_empty() {
                if version < FIRST_STATES_FILTER_VERSION {
                    return Err(Error::UnsupportedVersion {
                        addr: conn.addr().to_owned(),
                        api: "ListGroups with a states filter".to_owned(),
                    });
                }
                request.states_filter = states.iter().map(|st| s(st)).collect();
            }
            let response = conn.send(&request).await?;
            if is_coordinator_error(response.error_code) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            check(
                response.error_code,
                None,
                format!("list groups on broker {broker}"),
            )?;
            return Ok(response
                .groups
                .into_iter()
                .map(|g| ListedGroup {
                    group_id: g.group_id.0.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    state: (version >= FIRST_STATES_FILTER_VERSION)
                        .then(|| g.group_state.to_string()),
                    group_type: (version >= 5).then(|| g.group_type.to_string()),
                })
                .collect());
        }
    }

    /// Describes one group. An unknown group is GROUP_ID_NOT_FOUND (also
    /// from brokers that answer it with the state "Dead").
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription> {
        let timeout = self.group_timeout();
        let (response, version) = self
            .client()
            .send_to_coordinator(
                group,
                ApiKey::DescribeGroups,
                i16::MAX,
                timeout,
                |_| DescribeGroupsRequest::default().with_groups(vec![group_id(group)]),
                |r| r.groups.first().map(|g| g.error_code),
            )
            .await?;
        let coordinator = self.client().coordinator(group).await?;
        let described = response
            .groups
            .into_iter()
            .find(|g| g.group_id.0.as_str() == group)
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "DescribeGroups response does not mention group {group}"
                ))
            })?;
        check(
            described.error_code,
            described.error_message.as_deref(),
            context(group),
        )?;
        if version < FIRST_NOT_FOUND_DESCRIBE_VERSION
            && described.group_state.as_str() == "Dead"
            && described.members.is_empty()
        {
            return Err(Error::kafka(
                GROUP_ID_NOT_FOUND,
                Some(format!("Group {group} not found.")),
                context(group),
            ));
        }
        let protocol_type = described.protocol_type.to_string();
        let members = described
            .members
            .into_iter()
            .map(|m| {
                let assignment = if protocol_type == CONSUMER_PROTOCOL_TYPE {
                    Some(decode_consumer_assignment(&m.member_assignment)?)
                } else {
                    None
                };
                Ok(MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    raw_assignment: m.member_assignment,
                    assignment,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: described.group_state.to_string(),
            protocol_type,
            protocol: described.protocol_data.to_string(),
            members,
            coordinator,
        })
    }

    /// All offsets the group has committed, by topic and partition.
    pub async fn list_group_offsets(
        &mut self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, CommittedOffset>> {
        let timeout = self.group_timeout();
        let (response, version) = self
            .client()
            .send_to_coordinator(
                group,
                ApiKey::OffsetFetch,
                MAX_OFFSET_FETCH_VERSION,
                timeout,
                |version| {
                    if version >= FIRST_BATCHED_FETCH_VERSION {
                        OffsetFetchRequest::default().with_groups(vec![
                            OffsetFetchRequestGroup::default()
                                .with_group_id(group_id(group))
                                .with_topics(None),
                        ])
                    } else {
                        OffsetFetchRequest::default()
                            .with_group_id(group_id(group))
                            .with_topics(None)
                    }
                },
                |r| Some(offset_fetch_error(r)),
            )
            .await?;
        if version < FIRST_ALL_TOPICS_FETCH_VERSION {
            return Err(Error::UnsupportedVersion {
                addr: self.client().coordinator(group).await?.addr(),
                api: "OffsetFetch for all topics".to_owned(),
            });
        }
        offsets_from(response, group)
    }

    /// Commits offsets outside any generation (generation -1, no member id),
    /// as a tool or a consumer without group management does. The group
    /// must have no active members. Results are per partition.
    pub async fn commit_group_offsets(
        &mut self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        self.commit_group_offsets_with_metadata(group, offsets, &BTreeMap::new())
            .await
    }

    /// [`Admin::commit_group_offsets`] with each partition's metadata string where given.
    pub async fn commit_group_offsets_with_metadata(
        &mut self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
        metadata: &BTreeMap<TopicPartition, String>,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let member = CommitMember {
            generation: -1,
            member_id: "",
            group_instance_id: None,
        };
        commit_offsets(self.client(), group, member, offsets, metadata).await
    }

    /// Deletes groups (each must be empty). Results per group, in order.
    pub async fn delete_groups(&mut self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let timeout = self.group_timeout();
        // One batched lookup first; a group it fails for is looked up (and
        // retried) again on its own below.
        if groups.len() > 1 {
            self.client().find_coordinators(groups).await?;
        }
        let mut results = Vec::with_capacity(groups.len());
        for group in groups {
            let sent = self
                .client()
                .send_to_coordinator(
                    group,
                    ApiKey::DeleteGroups,
                    i16::MAX,
                    timeout,
                    |_| DeleteGroupsRequest::default().with_groups_names(vec![group_id(group)]),
                    |r| r.results.first().map(|g| g.error_code),
                )
                .await;
            let result = sent.and_then(|(response, _)| {
                let found = response
                    .results
                    .iter()
                    .find(|r| r.group_id.0.as_str() == group)
                    .ok_or_else(|| {
                        Error::Protocol(format!(
                            "DeleteGroups response does not mention group {group}"
                        ))
                    })?;
                check(found.error_code, None, context(group))
            });
            results.push((group.clone(), result));
        }
        Ok(results)
    }

    /// Deletes a group's committed offsets of some partitions (OffsetDelete).
    /// A group-level error (e.g. GROUP_ID_NOT_FOUND) is the outer error;
    /// per-partition ones (e.g. GROUP_SUBSCRIBED_TO_TOPIC) are inner.
    pub async fn delete_group_offsets(
        &mut self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let mut topics: BTreeMap<&str, Vec<OffsetDeleteRequestPartition>> = BTreeMap::new();
        for (topic, partition) in partitions {
            topics
                .entry(topic)
                .or_default()
                .push(OffsetDeleteRequestPartition::default().with_partition_index(*partition));
        }
        let topics: Vec<OffsetDeleteRequestTopic> = topics
            .into_iter()
            .map(|(name, partitions)| {
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s(name)))
                    .with_partitions(partitions)
            })
            .collect();
        let timeout = self.group_timeout();
        let (response, _) = self
            .client()
            .send_to_coordinator(
                group,
                ApiKey::OffsetDelete,
                i16::MAX,
                timeout,
                |_| {
                    OffsetDeleteRequest::default()
                        .with_group_id(group_id(group))
                        .with_topics(topics.clone())
                },
                |r| Some(r.error_code),
            )
            .await?;
        check(response.error_code, None, context(group))?;
        let answered: BTreeMap<TopicPartition, i16> = response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| ((t.name.0.to_string(), p.partition_index), p.error_code))
            })
            .collect();
        Ok(per_partition(
            group,
            "OffsetDelete",
            &answered,
            partitions.iter(),
        ))
    }
}

/// OffsetCommit for `group` as `member_id` in `generation` (-1 and "" for
/// a simple commit). Results are per partition, in key order.
/// Who commits: a member of a generation, or no one (-1, "") for a tool.
pub(crate) struct CommitMember<'a> {
    pub generation: i32,
    pub member_id: &'a str,
    pub group_instance_id: Option<&'a str>,
}

pub(crate) async fn commit_offsets(
    client: &mut Client,
    group: &str,
    member: CommitMember<'_>,
    offsets: &BTreeMap<TopicPartition, i64>,
    metadata: &BTreeMap<TopicPartition, String>,
) -> Result<Vec<(TopicPartition, Result<()>)>> {
    let CommitMember {
        generation,
        member_id,
        group_instance_id,
    } = member;
    let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
    for (tp, offset) in offsets {
        topics.entry(&tp.0).or_default().push(
            OffsetCommitRequestPartition::default()
                .with_partition_index(tp.1)
                .with_committed_offset(*offset)
                .with_committed_metadata(metadata.get(tp).map(|m| s(m))),
        );
    }
    let topics: Vec<OffsetCommitRequestTopic> = topics
        .into_iter()
        .map(|(name, partitions)| {
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(name)))
                .with_partitions(partitions)
        })
        .collect();
    let timeout = client.config().request_timeout;
    let (response, _) = client
        .send_to_coordinator(
            group,
            ApiKey::OffsetCommit,
            MAX_OFFSET_COMMIT_VERSION,
            timeout,
            |version| {
                let request = OffsetCommitRequest::default()
                    .with_group_id(group_id(group))
                    .with_generation_id_or_member_epoch(generation)
                    .with_member_id(s(member_id))
                    .with_topics(topics.clone());
                // Static membership (v7+) only where the version has it.
                match group_instance_id {
                    Some(id) if version >= 7 => request.with_group_instance_id(Some(s(id))),
                    _ => request,
                }
            },
            |r| {
                r.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| p.error_code)
                    .find(|c| is_coordinator_error(*c))
            },
        )
        .await?;
    let answered: BTreeMap<TopicPartition, i16> = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.0.to_string(), p.partition_index), p.error_code))
        })
        .collect();
    Ok(per_partition(
        group,
        "OffsetCommit",
        &answered,
        offsets.keys(),
    ))
}

/// One result per partition asked about, from the error codes a response gave;
/// a partition the response left out is a protocol error.
fn per_partition<'a>(
    group: &str,
    api: &str,
    answered: &BTreeMap<TopicPartition, i16>,
    asked: impl Iterator<Item = &'a TopicPartition>,
) -> Vec<(TopicPartition, Result<()>)> {
    asked
        .map(|tp| {
            let result = match answered.get(tp) {
                Some(code) => check(*code, None, format!("group {group} {}-{}", tp.0, tp.1)),
                None => Err(Error::Protocol(format!(
                    "{api} response does not mention {}-{}",
                    tp.0, tp.1
                ))),
            };
            (tp.clone(), result)
        })
        .collect()
}

/// The group-level error of an OffsetFetch response (either layout).
fn offset_fetch_error(response: &OffsetFetchResponse) -> i16 {
    match response.groups.first() {
        Some(g) if g.error_code != 0 => g.error_code,
        _ => response.error_code,
    }
}

/// Committed offsets from an OffsetFetch response of either layout;
/// partitions without a commit (offset -1) are left out.
fn offsets_from(
    response: OffsetFetchResponse,
    group: &str,
) -> Result<BTreeMap<TopicPartition, CommittedOffset>> {
    check(offset_fetch_error(&response), None, context(group))?;
    let mut rows = Vec::new();
    for g in &response.groups {
        for t in &g.topics {
            for p in &t.partitions {
                let metadata = p.metadata.as_deref().unwrap_or("");
                let offset = (p.committed_offset, p.committed_leader_epoch, metadata);
                rows.push((t.name.0.as_str(), p.partition_index, p.error_code, offset));
            }
        }
    }
    for t in &response.topics {
        for p in &t.partitions {
            let metadata = p.metadata.as_deref().unwrap_or("");
            let offset = (p.committed_offset, p.committed_leader_epoch, metadata);
            rows.push((t.name.0.as_str(), p.partition_index, p.error_code, offset));
        }
    }
    let mut offsets = BTreeMap::new();
    for (topic, partition, code, (offset, epoch, metadata)) in rows {
        check(code, None, format!("group {group} {topic}-{partition}"))?;
        if offset >= 0 {
            offsets.insert(
                (topic.to_owned(), partition),
                CommittedOffset {
                    offset,
                    leader_epoch: (epoch >= 0).then_some(epoch),
                    metadata: metadata.to_owned(),
                },
            );
        }
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTp;
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };
    use kafka_protocol::protocol::Encodable;

    fn assignment_bytes(version: i16, parts: &[(&str, &[i32])]) -> Bytes {
        let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
            parts
                .iter()
                .map(|(t, p)| {
                    AssignedTp::default()
                        .with_topic(TopicName(s(t)))
                        .with_partitions(p.to_vec())
                })
                .collect(),
        );
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        assignment
            .encode(&mut buf, version.min(MAX_CONSUMER_PROTOCOL_VERSION))
            .unwrap();
        buf.freeze()
    }

    #[test]
    fn assignments_decode_sorted_by_topic_and_partition() {
        let bytes = assignment_bytes(3, &[("b", &[2, 0]), ("a", &[1]), ("b", &[1])]);
        assert_eq!(
            decode_consumer_assignment(&bytes).unwrap(),
            vec![
                TopicPartitions {
                    topic: "a".into(),
                    partitions: vec![1]
                },
                TopicPartitions {
                    topic: "b".into(),
                    partitions: vec![0, 1, 2]
                },
            ]
        );
        // A future version is read as the newest we know.
        let bytes = assignment_bytes(7, &[("t", &[0])]);
        assert_eq!(
            decode_consumer_assignment(&bytes).unwrap()[0].partitions,
            [0]
        );
        assert_eq!(decode_consumer_assignment(&Bytes::new()).unwrap(), vec![]);
    }

    #[test]
    fn bad_assignments_are_decode_errors() {
        let err = decode_consumer_assignment(&Bytes::from_static(&[0])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode consumer protocol assignment: shorter than its version"
        );
        let err = decode_consumer_assignment(&Bytes::from_static(&[0xff, 0xff])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode consumer protocol assignment: negative version -1"
        );
        // An array count with no elements behind it.
        let truncated = Bytes::from_static(&[0, 0, 0, 0, 0, 5]);
        assert!(matches!(
            decode_consumer_assignment(&truncated),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn offsets_are_read_from_both_layouts() {
        let v7 =
            OffsetFetchResponse::default().with_topics(vec![OffsetFetchResponseTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(5)
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(s("m"))),
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(1)
                        .with_committed_offset(-1),
                ])]);
        let offsets = offsets_from(v7, "g").unwrap();
        assert_eq!(
            offsets.into_iter().collect::<Vec<_>>(),
            vec![(
                ("t".to_owned(), 0),
                CommittedOffset {
                    offset: 5,
                    leader_epoch: None,
                    metadata: "m".into()
                }
            )]
        );
        let v8 =
            OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
                .with_group_id(group_id("g"))
                .with_topics(vec![OffsetFetchResponseTopics::default()
                    .with_name(TopicName(s("u")))
                    .with_partitions(vec![OffsetFetchResponsePartitions::default()
                        .with_partition_index(2)
                        .with_committed_offset(9)
                        .with_committed_leader_epoch(4)])])]);
        let offsets = offsets_from(v8, "g").unwrap();
        assert_eq!(offsets[&("u".to_owned(), 2)].offset, 9);
        assert_eq!(offsets[&("u".to_owned(), 2)].leader_epoch, Some(4));

        let failed = OffsetFetchResponse::default().with_groups(vec![
            OffsetFetchResponseGroup::default().with_error_code(GROUP_ID_NOT_FOUND),
        ]);
        assert_eq!(
            offsets_from(failed, "g").unwrap_err().to_string(),
            "group g: GROUP_ID_NOT_FOUND"
        );
    }
}
