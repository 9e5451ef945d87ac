//! OffsetCommit, OffsetFetch, OffsetDelete and offset/group expiry.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_types::ErrorCode;

use crate::classic::group::ClassicGroup;
use crate::classic::responses::code_of;
use crate::classic::ClassicGroupState;
use crate::consumer::group::ConsumerGroup;
use crate::offsets::{is_expired, ExpiryBase};
use crate::output::{Output, Reply};
use crate::records::{CoordinatorRecord, OffsetCommitValue, RECORD_VALUE_VERSION};
use crate::shard::{Group, GroupCoordinatorShard};

/// OffsetCommit v2-4 may carry a retention time; -1 means "use the broker's".
const DEFAULT_RETENTION_TIME_MS: i64 = -1;
/// OffsetCommit v9+ reports a missing group as GROUP_ID_NOT_FOUND.
const GROUP_ID_NOT_FOUND_COMMIT_VERSION: i16 = 9;
/// OffsetFetch v8+ fetches for several groups at once.
const MULTI_GROUP_FETCH_VERSION: i16 = 8;

/// One group's fetch: `None` topics means every committed partition.
type FetchTopics = Option<Vec<(String, Vec<i32>)>>;

impl ClassicGroup {
    /// Kafka's classic-group commit check. Transactional commits (TxnOffsetCommit)
    /// skip the state checks: old versions carry no member, and a commit within a
    /// transaction is not refused mid-rebalance.
    pub(crate) fn validate_offset_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        transactional: bool,
    ) -> Result<(), ErrorCode> {
        if self.is_state(ClassicGroupState::Dead) {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        if generation_id < 0 && self.is_state(ClassicGroupState::Empty) {
            // A "simple" commit: no group membership involved.
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.validate_member(member_id, instance_id)?;
            if generation_id != self.generation_id {
                return Err(ErrorCode::IllegalGeneration);
            }
        } else if !transactional && !self.is_state(ClassicGroupState::Empty) {
            return Err(ErrorCode::UnknownMemberId);
        }
        if !transactional && self.is_state(ClassicGroupState::CompletingRebalance) {
            return Err(ErrorCode::RebalanceInProgress);
        }
        Ok(())
    }

    fn expiry_base(&self) -> Option<ExpiryBase> {
        match (&self.protocol_type, self.state) {
            (None, _) => Some(ExpiryBase::CommitTime),
            (Some(_), ClassicGroupState::Empty) => {
                Some(ExpiryBase::StateTime(self.state_timestamp_ms))
            }
            // A stable consumer group still loses offsets of topics it no longer subscribes to.
            (Some(_), ClassicGroupState::Stable)
                if self.uses_consumer_protocol() && self.subscribed_topics.is_some() =>
            {
                Some(ExpiryBase::CommitTime)
            }
            _ => None,
        }
    }
}

/// OffsetCommit v9+ is required of consumer-protocol members.
const CONSUMER_MEMBER_COMMIT_VERSION: i16 = 9;

impl ConsumerGroup {
    /// Kafka's consumer-group commit check: simple commits only into an empty group;
    /// members must commit at their current epoch (and with OffsetCommit v9+, which
    /// does not apply to TxnOffsetCommit).
    pub(crate) fn validate_offset_commit(
        &self,
        member_id: &str,
        member_epoch: i32,
        api_version: i16,
        transactional: bool,
    ) -> Result<(), ErrorCode> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id)
            .ok_or(ErrorCode::UnknownMemberId)?;
        if !transactional && api_version < CONSUMER_MEMBER_COMMIT_VERSION {
            return Err(ErrorCode::UnsupportedVersion);
        }
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }

    /// Kafka's consumer-group fetch check: anonymous fetches pass, members must
    /// fetch at their current epoch.
    fn validate_offset_fetch(
        &self,
        member_id: Option<&str>,
        member_epoch: i32,
    ) -> Result<(), ErrorCode> {
        if member_id.is_none() && member_epoch < 0 {
            return Ok(());
        }
        let member = self
            .members
            .get(member_id.unwrap_or(""))
            .ok_or(ErrorCode::UnknownMemberId)?;
        if member_epoch != member.member_epoch {
            return Err(ErrorCode::StaleMemberEpoch);
        }
        Ok(())
    }
}

/// Java's `String.length()`: UTF-16 code units, which is what Kafka limits.
pub(crate) fn java_length(s: &str) -> usize {
    s.encode_utf16().count()
}

impl GroupCoordinatorShard {
    pub fn offset_commit(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        request: OffsetCommitRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let group_id = request.group_id.0.to_string();
        let member_id = request.member_id.to_string();
        let generation_id = request.generation_id_or_member_epoch;
        let validation = if group_id.is_empty() {
            Err(ErrorCode::InvalidGroupId)
        } else {
            match self.groups.get(&group_id) {
                Some(Group::Classic(group)) => group.validate_offset_commit(
                    &member_id,
                    request.group_instance_id.as_deref(),
                    generation_id,
                    false,
                ),
                Some(Group::Consumer(group)) => {
                    group.validate_offset_commit(&member_id, generation_id, api_version, false)
                }
                None if generation_id < 0 => Ok(()),
                None if api_version >= GROUP_ID_NOT_FOUND_COMMIT_VERSION => {
                    Err(ErrorCode::GroupIdNotFound)
                }
                None => Err(ErrorCode::IllegalGeneration),
            }
        };
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = match validation {
                        Err(error) => Err(error),
                        Ok(()) => {
                            let metadata = p.committed_metadata.as_deref().unwrap_or("");
                            let max =
                                usize::try_from(self.config.offset_metadata_max_bytes).unwrap_or(0);
                            if java_length(metadata) > max {
                                Err(ErrorCode::OffsetMetadataTooLarge)
                            } else {
                                let value = OffsetCommitValue {
                                    version: RECORD_VALUE_VERSION,
                                    offset: p.committed_offset,
                                    leader_epoch: if api_version >= 6 {
                                        p.committed_leader_epoch
                                    } else {
                                        -1
                                    },
                                    metadata: metadata.to_owned(),
                                    commit_timestamp_ms: now_ms,
                                    expire_timestamp_ms: (request.retention_time_ms
                                        != DEFAULT_RETENTION_TIME_MS
                                        && api_version <= 4)
                                        .then(|| now_ms.saturating_add(request.retention_time_ms)),
                                };
                                records.push(CoordinatorRecord::offset_commit(
                                    &group_id,
                                    topic.name.0.as_str(),
                                    p.partition_index,
                                    Some(&value),
                                ));
                                Ok(())
                            }
                        }
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code_of(result))
                })
                .collect();
            topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
        if validation.is_ok() {
            match self.groups.get_mut(&group_id) {
                Some(group) => {
                    // Commits count as liveness for members of a group that is not mid-sync.
                    let live = group.as_classic_mut().filter(|g| {
                        matches!(
                            g.state,
                            ClassicGroupState::Stable | ClassicGroupState::PreparingRebalance
                        )
                    });
                    if let Some(member) = live.and_then(|g| g.member_mut(&member_id)) {
                        member.heartbeat_deadline_ms =
                            Some(now_ms.saturating_add(i64::from(member.session_timeout_ms)));
                    }
                }
                None => {
                    // A simple group exists from its first commit on, even if nothing was written.
                    self.groups.insert(
                        group_id.clone(),
                        Group::Classic(ClassicGroup::new(&group_id)),
                    );
                }
            }
        }
        self.append(&mut out, records);
        out.reply(
            request_id,
            Reply::OffsetCommit(OffsetCommitResponse::default().with_topics(topics)),
        );
        out
    }

    /// Committed offsets of one group as v8+ response topics. With `require_stable`,
    /// partitions with an open transaction's offset answer UNSTABLE_OFFSET_COMMIT.
    fn fetch_group(
        &self,
        group_id: &str,
        topics: FetchTopics,
        require_stable: bool,
    ) -> Vec<OffsetFetchResponseTopics> {
        let exists = self.groups.get(group_id).is_some_and(|g| match g {
            Group::Classic(c) => !c.is_state(ClassicGroupState::Dead),
            Group::Consumer(_) => true,
        });
        let unstable = |topic: &str, index: i32| {
            (require_stable && self.pending.has_pending(group_id, topic, index)).then(|| {
                OffsetFetchResponsePartitions::default()
                    .with_partition_index(index)
                    .with_committed_offset(-1)
                    .with_committed_leader_epoch(-1)
                    .with_metadata(Some(StrBytes::from_static_str("")))
                    .with_error_code(ErrorCode::UnstableOffsetCommit.code())
            })
        };
        let partition = |index: i32, value: Option<&OffsetCommitValue>| {
            OffsetFetchResponsePartitions::default()
                .with_partition_index(index)
                .with_committed_offset(value.map_or(-1, |v| v.offset))
                .with_committed_leader_epoch(value.map_or(-1, |v| v.leader_epoch))
                .with_metadata(Some(StrBytes::from_string(
                    value.map(|v| v.metadata.clone()).unwrap_or_default(),
                )))
        };
        match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let partitions = partitions
                        .into_iter()
                        .map(|p| {
                            let value = if exists {
                                self.offsets.get(group_id, &topic, p).map(|s| &s.value)
                            } else {
                                None
                            };
                            unstable(&topic, p).unwrap_or_else(|| partition(p, value))
                        })
                        .collect();
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(StrBytes::from_string(topic)))
                        .with_partitions(partitions)
                })
                .collect(),
            None if !exists => Vec::new(),
            None => self
                .offsets
                .group(group_id)
                .into_iter()
                .flatten()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(StrBytes::from_string(topic.clone())))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|(p, v)| {
                                    unstable(topic, *p)
                                        .unwrap_or_else(|| partition(*p, Some(&v.value)))
                                })
                                .collect(),
                        )
                })
                .collect(),
        }
    }

    /// OffsetFetch: one group (v1-7) or several (v8+). With `require_stable` (v7+),
    /// each partition with an open transaction's offset answers
    /// UNSTABLE_OFFSET_COMMIT (per partition, in every version, as Kafka does).
    pub fn offset_fetch(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        request: OffsetFetchRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let require_stable = request.require_stable;
        let response = if api_version >= MULTI_GROUP_FETCH_VERSION {
            let groups = request
                .groups
                .into_iter()
                .map(|g| {
                    let group =
                        OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                    if g.group_id.0.is_empty() {
                        return group.with_error_code(ErrorCode::InvalidGroupId.code());
                    }
                    if let Some(consumer) = self.consumer(g.group_id.0.as_str()) {
                        let member_id = g.member_id.as_deref();
                        if let Err(error) =
                            consumer.validate_offset_fetch(member_id, g.member_epoch)
                        {
                            return group.with_error_code(error.code());
                        }
                    }
                    let topics = g.topics.map(|ts| {
                        ts.into_iter()
                            .map(|t| (t.name.0.to_string(), t.partition_indexes))
                            .collect()
                    });
                    group.with_topics(self.fetch_group(
                        g.group_id.0.as_str(),
                        topics,
                        require_stable,
                    ))
                })
                .collect();
            OffsetFetchResponse::default().with_groups(groups)
        } else if request.group_id.0.is_empty() {
            OffsetFetchResponse::default().with_error_code(ErrorCode::InvalidGroupId.code())
        } else {
            let topics = request.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let topics = self
                .fetch_group(request.group_id.0.as_str(), topics, require_stable)
                .into_iter()
                .map(|t| {
                    OffsetFetchResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(p.partition_index)
                                        .with_committed_offset(p.committed_offset)
                                        .with_committed_leader_epoch(p.committed_leader_epoch)
                                        .with_metadata(p.metadata)
                                        .with_error_code(p.error_code)
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponse::default().with_topics(topics)
        };
        out.reply(request_id, Reply::OffsetFetch(response));
        out
    }

    /// OffsetDelete: only for empty groups, or consumer groups for topics they do not subscribe to.
    pub fn offset_delete(
        &mut self,
        now_ms: i64,
        request_id: u64,
        _api_version: i16,
        request: OffsetDeleteRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let group_id = request.group_id.0.to_string();
        let group = self.groups.get(&group_id);
        let error = match group {
            _ if group_id.is_empty() => Some(ErrorCode::InvalidGroupId),
            None => Some(ErrorCode::GroupIdNotFound),
            Some(Group::Consumer(_)) => None,
            Some(Group::Classic(g)) => match g.state {
                ClassicGroupState::Dead => Some(ErrorCode::GroupIdNotFound),
                ClassicGroupState::Empty => None,
                _ if g.uses_consumer_protocol() => None,
                _ => Some(ErrorCode::NonEmptyGroup),
            },
        };
        let (Some(group), None) = (group, error) else {
            let error = error.unwrap_or(ErrorCode::GroupIdNotFound);
            out.reply(
                request_id,
                Reply::OffsetDelete(OffsetDeleteResponse::default().with_error_code(error.code())),
            );
            return out;
        };
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let name = topic.name.0.as_str();
            let subscribed = group.is_subscribed_to_topic(name);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = if subscribed {
                        Err(ErrorCode::GroupSubscribedToTopic)
                    } else {
                        // An open transaction's offset is deleted too (its
                        // tombstone drops it), as Kafka does.
                        if self
                            .offsets
                            .get(&group_id, name, p.partition_index)
                            .is_some()
                            || self.pending.has_pending(&group_id, name, p.partition_index)
                        {
                            records.push(CoordinatorRecord::offset_commit(
                                &group_id,
                                name,
                                p.partition_index,
                                None,
                            ));
                        }
                        Ok(())
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code_of(result))
                })
                .collect();
            topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
        self.append(&mut out, records);
        out.reply(
            request_id,
            Reply::OffsetDelete(OffsetDeleteResponse::default().with_topics(topics)),
        );
        out
    }

    /// Tombstones expired offsets, then empty groups left without offsets.
    pub(crate) fn expire(&mut self, now_ms: i64, out: &mut Output) {
        let retention_ms = self.config.offsets_retention_ms();
        let mut records = Vec::new();
        for (group_id, group) in &self.groups {
            // Consumer groups expire offsets from their commit time, as Kafka does.
            let base = match group {
                Group::Classic(g) => g.expiry_base(),
                Group::Consumer(_) => Some(ExpiryBase::CommitTime),
            };
            let mut all_expired = true;
            if let Some(topics) = self.offsets.group(group_id) {
                let Some(base) = base else {
                    continue;
                };
                for (topic, partitions) in topics {
                    if group.is_subscribed_to_topic(topic) {
                        all_expired = false;
                        continue;
                    }
                    for (partition, stored) in partitions {
                        // Not while an open transaction holds an offset for it.
                        if is_expired(&stored.value, base, now_ms, retention_ms)
                            && !self.pending.has_pending(group_id, topic, *partition)
                        {
                            records.push(CoordinatorRecord::offset_commit(
                                group_id, topic, *partition, None,
                            ));
                        } else {
                            all_expired = false;
                        }
                    }
                }
            }
            // A group stays while a transaction with offsets for it is open.
            let all_expired = all_expired && !self.pending.has_open_transaction(group_id);
            match group {
                Group::Classic(g) if all_expired && g.is_state(ClassicGroupState::Empty) => {
                    records.push(CoordinatorRecord::classic_group(group_id, None));
                }
                Group::Consumer(g) if all_expired && g.is_empty() => {
                    records.extend(g.delete_records());
                }
                _ => {}
            }
        }
        self.append(out, records);
    }

    /// A topic was deleted: every group's offsets for it go, as Kafka removes
    /// them so a topic re-created under the same name starts clean.
    pub fn topics_deleted(&mut self, now_ms: i64, topics: &[String]) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        // Committed and pending offsets alike, one tombstone per partition.
        let records: Vec<CoordinatorRecord> = topics
            .iter()
            .flat_map(|topic| {
                let mut holders: std::collections::BTreeSet<(String, i32)> =
                    self.offsets.holders_of(topic).into_iter().collect();
                holders.extend(self.pending.holders_of(topic));
                holders.into_iter().map(move |(group, partition)| {
                    CoordinatorRecord::offset_commit(&group, topic, partition, None)
                })
            })
            .collect();
        self.append(&mut out, records);
        out
    }

    /// Tombstones for every offset of a group (committed or pending in an open
    /// transaction), then the group itself.
    pub(crate) fn delete_group_records(&self, group_id: &str) -> Vec<CoordinatorRecord> {
        let mut partitions: std::collections::BTreeSet<(String, i32)> =
            self.offsets.partitions_of(group_id).into_iter().collect();
        partitions.extend(self.pending.partitions_of(group_id));
        let mut records: Vec<CoordinatorRecord> = partitions
            .into_iter()
            .map(|(topic, partition)| {
                CoordinatorRecord::offset_commit(group_id, &topic, partition, None)
            })
            .collect();
        match self.groups.get(group_id) {
            Some(Group::Consumer(group)) => records.extend(group.delete_records()),
            _ => records.push(CoordinatorRecord::classic_group(group_id, None)),
        }
        records
    }
}

/// Builds a group id for response structs.
pub(crate) fn group_id(s: &str) -> GroupId {
    GroupId(StrBytes::from_string(s.to_owned()))
}
