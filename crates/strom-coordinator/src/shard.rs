//! One coordinator shard: the groups and offsets of one `__consumer_offsets` partition.

use std::collections::BTreeMap;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, LeaveGroupRequest, LeaveGroupResponse,
    SyncGroupRequest,
};
use strom_types::ErrorCode;

use crate::classic::group::{ClassicGroup, Parked, Protocol};
use crate::classic::join::JoinArgs;
use crate::classic::responses::{code_of, join_error, str_bytes, sync_error};
use crate::classic::sync::{Leaving, SyncArgs};
use crate::classic::{ClassicGroupState, Ctx};
use crate::config::GroupConfig;
use crate::consumer::group::ConsumerGroup;
use crate::member_id::MemberIdGen;
use crate::offsets::{OffsetStore, PendingOffsets, StoredOffset};
use crate::output::{Output, Reply};
use crate::records::{CoordinatorRecord, DecodedRecord, RecordError};

/// Client identity from the request header and connection, recorded per member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub client_id: String,
    /// As Kafka shows it, e.g. `/127.0.0.1`.
    pub client_host: String,
}

/// A group of any type; a group id belongs to exactly one type.
#[derive(Debug, Clone)]
pub(crate) enum Group {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

impl Group {
    pub(crate) fn as_classic_mut(&mut self) -> Option<&mut ClassicGroup> {
        match self {
            Group::Classic(group) => Some(group),
            Group::Consumer(_) => None,
        }
    }

    pub(crate) fn as_classic(&self) -> Option<&ClassicGroup> {
        match self {
            Group::Classic(group) => Some(group),
            Group::Consumer(_) => None,
        }
    }

    pub(crate) fn as_consumer(&self) -> Option<&ConsumerGroup> {
        match self {
            Group::Consumer(group) => Some(group),
            Group::Classic(_) => None,
        }
    }

    pub(crate) fn as_consumer_mut(&mut self) -> Option<&mut ConsumerGroup> {
        match self {
            Group::Consumer(group) => Some(group),
            Group::Classic(_) => None,
        }
    }

    /// Whether members subscribe to `topic` (its offsets neither expire nor delete).
    pub(crate) fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match self {
            Group::Classic(group) => group.is_subscribed_to_topic(topic),
            Group::Consumer(group) => group.is_subscribed_to_topic(topic),
        }
    }

    /// Earliest timer of the group, if any.
    fn next_deadline_ms(&self) -> Option<i64> {
        match self {
            Group::Classic(group) => group.next_deadline_ms(),
            Group::Consumer(group) => group.next_deadline_ms(),
        }
    }
}

/// The group coordinator for one `__consumer_offsets` partition. Sans-io: every
/// call takes the current time and returns the records to append and the replies
/// to send (see [`Output`]).
#[derive(Debug, Clone)]
pub struct GroupCoordinatorShard {
    pub(crate) config: GroupConfig,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) offsets: OffsetStore,
    /// TxnOffsetCommit offsets of open transactions, per producer id.
    pub(crate) pending: PendingOffsets,
    /// Log position of the next record: records are ordered by it (a transaction's
    /// offset replaces a committed one only if written later). Replay sets it from
    /// real log offsets; live records take it in emission order, which is log order.
    pub(crate) next_position: i64,
    pub(crate) ids: MemberIdGen,
    /// Next run of offset/group expiry.
    pub(crate) next_expiry_ms: Option<i64>,
    /// The cluster's topics (name -> id, partition count), from `set_topic_metadata`.
    pub(crate) topics: BTreeMap<String, (strom_types::TopicId, i32)>,
    /// Whether `set_topic_metadata` was called; consumer groups wait for it.
    pub(crate) topics_known: bool,
    /// Groups' own configs, from `set_group_configs`.
    pub(crate) group_overrides: BTreeMap<String, crate::config::GroupOverrides>,
}

/// A consumer group's session timeout from its own configs or the broker's;
/// a free function so callers can hold `groups` mutably meanwhile.
pub(crate) fn session_timeout_ms(
    overrides: &BTreeMap<String, crate::config::GroupOverrides>,
    config: &GroupConfig,
    group_id: &str,
) -> i32 {
    overrides
        .get(group_id)
        .and_then(|o| o.consumer_session_timeout_ms)
        .unwrap_or(config.consumer_session_timeout_ms)
}

impl GroupCoordinatorShard {
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            offsets: OffsetStore::default(),
            pending: PendingOffsets::default(),
            next_position: 0,
            ids: MemberIdGen::new(0),
            next_expiry_ms: None,
            topics: BTreeMap::new(),
            topics_known: false,
            group_overrides: BTreeMap::new(),
        }
    }

    /// Hands over every group's own configs; they apply from each member's next heartbeat.
    pub fn set_group_configs(
        &mut self,
        overrides: BTreeMap<String, crate::config::GroupOverrides>,
    ) {
        self.group_overrides = overrides;
    }

    /// A consumer group's session timeout: its own config, else the broker's.
    pub(crate) fn consumer_session_timeout_ms(&self, group_id: &str) -> i32 {
        session_timeout_ms(&self.group_overrides, &self.config, group_id)
    }

    /// A consumer group's heartbeat interval: its own config, else the broker's.
    pub(crate) fn consumer_heartbeat_interval_ms(&self, group_id: &str) -> i32 {
        self.group_overrides
            .get(group_id)
            .and_then(|o| o.consumer_heartbeat_interval_ms)
            .unwrap_or(self.config.consumer_heartbeat_interval_ms)
    }

    /// Seeds member-id generation; pass a random value so ids differ across loads.
    pub fn with_member_id_seed(mut self, seed: u64) -> Self {
        self.ids = MemberIdGen::new(seed);
        self
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Starts the expiry schedule the first time the shard sees a clock.
    pub(crate) fn observe(&mut self, now_ms: i64) {
        if self.next_expiry_ms.is_none() {
            self.next_expiry_ms =
                Some(now_ms.saturating_add(self.config.offsets_retention_check_interval_ms));
        }
    }

    pub(crate) fn classic_mut(&mut self, group_id: &str) -> Option<&mut ClassicGroup> {
        self.groups
            .get_mut(group_id)
            .and_then(Group::as_classic_mut)
    }

    /// Applies one non-transactional record of the shard's partition as the next in
    /// log order: `replay_at` without a known offset. Live operations apply their
    /// own records through the same code.
    pub fn replay(&mut self, record: &CoordinatorRecord) -> Result<(), RecordError> {
        self.replay_at(self.next_position, None, record)
    }

    /// Load path: applies the data record at log `offset`, written in a batch of
    /// `producer` (`Some((producer_id, producer_epoch))` for a transactional batch,
    /// whose offset commits stay pending until the producer's control record). Call
    /// with every data record in offset order, and [`replay_control`] for every
    /// control record, before [`loaded`].
    ///
    /// [`replay_control`]: GroupCoordinatorShard::replay_control
    /// [`loaded`]: GroupCoordinatorShard::loaded
    pub fn replay_at(
        &mut self,
        offset: i64,
        producer: Option<(i64, i16)>,
        record: &CoordinatorRecord,
    ) -> Result<(), RecordError> {
        self.next_position = self.next_position.max(offset.saturating_add(1));
        match record.decode()? {
            DecodedRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: Some(value),
            } => {
                // Offsets of an unknown group belong to a "simple" (member-less) group.
                self.ensure_group(&group);
                let stored = StoredOffset {
                    value,
                    position: offset,
                };
                match producer {
                    None => self.offsets.put(&group, &topic, partition, stored),
                    Some((producer_id, _)) => {
                        self.pending
                            .put(producer_id, &group, &topic, partition, stored)
                    }
                }
            }
            DecodedRecord::OffsetCommit {
                group,
                topic,
                partition,
                value: None,
            } => {
                // A tombstone takes open transactions' offsets for the partition too.
                self.offsets.remove(&group, &topic, partition);
                self.pending.remove_partition(&group, &topic, partition);
            }
            DecodedRecord::ClassicGroup {
                group,
                value: Some(value),
            } => match self.groups.get_mut(&group).and_then(Group::as_classic_mut) {
                Some(existing) => existing.apply_value(&value),
                None => {
                    self.groups.insert(
                        group.clone(),
                        Group::Classic(ClassicGroup::from_value(&group, &value)),
                    );
                }
            },
            DecodedRecord::ClassicGroup { group, value: None } => {
                if self
                    .groups
                    .get(&group)
                    .and_then(Group::as_classic)
                    .is_some()
                {
                    self.groups.remove(&group);
                }
            }
            consumer => self.replay_consumer(consumer),
        }
        Ok(())
    }

    /// A group id with offsets but no group becomes a simple (empty classic) group.
    pub(crate) fn ensure_group(&mut self, group_id: &str) {
        if !self.groups.contains_key(group_id) {
            self.groups.insert(
                group_id.to_owned(),
                Group::Classic(ClassicGroup::new(group_id)),
            );
        }
    }

    /// Load path: applies the control record at log `offset` that ends
    /// `producer_id`'s transaction. On commit its pending offsets become committed,
    /// each unless a non-transactional commit of that partition was written later;
    /// on abort they are dropped.
    pub fn replay_control(&mut self, offset: i64, producer_id: i64, commit: bool) {
        self.next_position = self.next_position.max(offset.saturating_add(1));
        let Some(pending) = self.pending.take(producer_id) else {
            return;
        };
        if !commit {
            return;
        }
        for (group, topic, partition, stored) in pending.iter() {
            let newer = self
                .offsets
                .get(group, topic, partition)
                .is_none_or(|committed| stored.position > committed.position);
            if newer {
                self.ensure_group(group);
                self.offsets.put(group, topic, partition, stored.clone());
            }
        }
    }

    /// Live path: the runtime wrote `producer_id`'s commit or abort marker at
    /// `marker_offset` of this shard's partition. Applies it as
    /// [`replay_control`](GroupCoordinatorShard::replay_control) does; the output is
    /// empty today (the marker itself is the record).
    pub fn complete_transaction(
        &mut self,
        now_ms: i64,
        producer_id: i64,
        commit: bool,
        marker_offset: i64,
    ) -> Output {
        self.observe(now_ms);
        self.replay_control(marker_offset, producer_id, commit);
        Output::default()
    }

    /// Emits records and applies them, so live changes take the replay path.
    pub(crate) fn append(&mut self, out: &mut Output, records: Vec<CoordinatorRecord>) {
        for record in records {
            // Records built by this shard always decode.
            let _ = self.replay(&record);
            out.records.push(record);
        }
    }

    /// Emits one transactional batch for the producer and applies it (pending).
    pub(crate) fn append_transactional(
        &mut self,
        out: &mut Output,
        producer_id: i64,
        producer_epoch: i16,
        records: Vec<CoordinatorRecord>,
    ) {
        if records.is_empty() {
            return;
        }
        for record in &records {
            let _ = self.replay_at(
                self.next_position,
                Some((producer_id, producer_epoch)),
                record,
            );
        }
        out.transactional_records
            .push(crate::output::TransactionalRecords {
                producer_id,
                producer_epoch,
                records,
            });
    }

    /// Call once after the partition has been replayed: loaded members must heartbeat
    /// within their session timeout from `now_ms`, and expiry is scheduled.
    pub fn loaded(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        self.next_expiry_ms =
            Some(now_ms.saturating_add(self.config.offsets_retention_check_interval_ms));
        let max_size = usize::try_from(self.config.max_size).unwrap_or(0);
        let mut ctx = Ctx {
            config: &self.config,
            now_ms,
            out: &mut out,
            ids: &mut self.ids,
        };
        for group in self.groups.values_mut().filter_map(Group::as_classic_mut) {
            for member in &mut group.members {
                member.heartbeat_deadline_ms =
                    Some(now_ms.saturating_add(i64::from(member.session_timeout_ms)));
            }
            // group.max.size may have shrunk since the group was written.
            if group.members.len() > max_size {
                group.prepare_rebalance(&mut ctx, "group.max.size is below the member count");
            }
        }
        self.consumer_loaded(now_ms);
        out
    }

    /// The shard moves elsewhere: answers every parked request with NOT_COORDINATOR.
    pub fn unload(&mut self) -> Output {
        let mut out = Output::default();
        for group in self.groups.values_mut().filter_map(Group::as_classic_mut) {
            for member in &mut group.members {
                if let Some(parked) = member.awaiting_join.take() {
                    let response = join_error(
                        parked.api_version,
                        &member.member_id,
                        ErrorCode::NotCoordinator,
                    );
                    out.reply(parked.request_id, Reply::JoinGroup(response));
                }
                if let Some(parked) = member.awaiting_sync.take() {
                    out.reply(
                        parked.request_id,
                        Reply::SyncGroup(sync_error(ErrorCode::NotCoordinator)),
                    );
                }
            }
        }
        out
    }

    /// When `tick` should next run, if anything is scheduled.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.groups
            .values()
            .filter_map(Group::next_deadline_ms)
            .chain(self.next_expiry_ms)
            .min()
    }

    /// Runs everything due at `now_ms`: session expiry, join/sync timeouts, the end of
    /// initial rebalance delays and (every `offsets.retention.check.interval.ms`) expiry.
    pub fn tick(&mut self, now_ms: i64) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let mut ctx = Ctx {
            config: &self.config,
            now_ms,
            out: &mut out,
            ids: &mut self.ids,
        };
        for group in self.groups.values_mut().filter_map(Group::as_classic_mut) {
            if group.next_deadline_ms().is_some_and(|d| d <= now_ms) {
                group.fire_timers(&mut ctx);
            }
        }
        self.fire_consumer_timers(now_ms, &mut out);
        self.fire_regex_refreshes(now_ms, &mut out);
        if self.next_expiry_ms.is_some_and(|d| d <= now_ms) {
            self.expire(now_ms, &mut out);
            self.next_expiry_ms =
                Some(now_ms.saturating_add(self.config.offsets_retention_check_interval_ms));
        }
        out
    }

    /// JoinGroup. `client` comes from the request header and the connection.
    pub fn join_group(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        client: &ClientInfo,
        request: JoinGroupRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let parked = Parked {
            request_id,
            api_version,
        };
        let group_id = request.group_id.0.to_string();
        let member_id = request.member_id.to_string();
        let fail = |out: &mut Output, member_id: &str, error: ErrorCode| {
            out.reply(
                request_id,
                Reply::JoinGroup(join_error(api_version, member_id, error)),
            );
        };
        if group_id.is_empty() {
            fail(&mut out, &member_id, ErrorCode::InvalidGroupId);
            return out;
        }
        let session_ms = request.session_timeout_ms;
        if session_ms < self.config.min_session_timeout_ms
            || session_ms > self.config.max_session_timeout_ms
        {
            fail(&mut out, &member_id, ErrorCode::InvalidSessionTimeout);
            return out;
        }
        // A new member may turn an empty consumer group into a classic one (offsets stay).
        if member_id.is_empty()
            && self
                .consumer(&group_id)
                .is_some_and(ConsumerGroup::is_empty)
        {
            let records = self.delete_group_records(&group_id);
            let records = records
                .into_iter()
                .filter(|r| !r.is_offset_commit())
                .collect();
            self.append(&mut out, records);
        }
        if !self.groups.contains_key(&group_id) {
            if !member_id.is_empty() {
                fail(&mut out, &member_id, ErrorCode::UnknownMemberId);
                return out;
            }
            self.groups.insert(
                group_id.clone(),
                Group::Classic(ClassicGroup::new(&group_id)),
            );
        }
        let args = JoinArgs {
            member_id,
            instance_id: request.group_instance_id.map(|s| s.to_string()),
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
            session_timeout_ms: session_ms,
            // v0 has no rebalance timeout: the session timeout serves as both.
            rebalance_timeout_ms: if api_version == 0 {
                session_ms
            } else {
                request.rebalance_timeout_ms
            },
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .into_iter()
                .map(|p| Protocol {
                    name: p.name.to_string(),
                    metadata: p.metadata,
                })
                .collect(),
        };
        let Some(group) = self
            .groups
            .get_mut(&group_id)
            .and_then(Group::as_classic_mut)
        else {
            fail(
                &mut out,
                &args.member_id,
                ErrorCode::InconsistentGroupProtocol,
            );
            return out;
        };
        let mut ctx = Ctx {
            config: &self.config,
            now_ms,
            out: &mut out,
            ids: &mut self.ids,
        };
        group.join(&mut ctx, parked, args);
        out
    }

    /// SyncGroup. The leader's call completes the sync of every member.
    pub fn sync_group(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        request: SyncGroupRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let group_id = request.group_id.0.to_string();
        let error = if group_id.is_empty() {
            Some(ErrorCode::InvalidGroupId)
        } else {
            match self.classic_mut(&group_id) {
                Some(group) if !group.is_state(ClassicGroupState::Empty) => None,
                _ => Some(ErrorCode::UnknownMemberId),
            }
        };
        if let Some(error) = error {
            out.reply(request_id, Reply::SyncGroup(sync_error(error)));
            return out;
        }
        let args = SyncArgs {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.map(|s| s.to_string()),
            generation_id: request.generation_id,
            protocol_type: request.protocol_type.map(|s| s.to_string()),
            protocol_name: request.protocol_name.map(|s| s.to_string()),
            assignments: request
                .assignments
                .into_iter()
                .map(|a| (a.member_id.to_string(), a.assignment))
                .collect(),
        };
        let Some(group) = self
            .groups
            .get_mut(&group_id)
            .and_then(Group::as_classic_mut)
        else {
            return out;
        };
        let mut ctx = Ctx {
            config: &self.config,
            now_ms,
            out: &mut out,
            ids: &mut self.ids,
        };
        let parked = Parked {
            request_id,
            api_version,
        };
        group.sync(&mut ctx, parked, args);
        out
    }

    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        request_id: u64,
        _api_version: i16,
        request: HeartbeatRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let group_id = request.group_id.0.to_string();
        let mut ctx = Ctx {
            config: &self.config,
            now_ms,
            out: &mut out,
            ids: &mut self.ids,
        };
        let result = match self
            .groups
            .get_mut(&group_id)
            .and_then(Group::as_classic_mut)
        {
            _ if group_id.is_empty() => Err(ErrorCode::InvalidGroupId),
            None => Err(ErrorCode::UnknownMemberId),
            Some(group) => group.heartbeat(
                &mut ctx,
                request.member_id.as_str(),
                request.group_instance_id.as_deref(),
                request.generation_id,
            ),
        };
        out.reply(
            request_id,
            Reply::Heartbeat(HeartbeatResponse::default().with_error_code(code_of(result))),
        );
        out
    }

    /// LeaveGroup: one member (v0-2) or a batch, static members by instance id (v3+).
    pub fn leave_group(
        &mut self,
        now_ms: i64,
        request_id: u64,
        api_version: i16,
        request: LeaveGroupRequest,
    ) -> Output {
        self.observe(now_ms);
        let mut out = Output::default();
        let group_id = request.group_id.0.to_string();
        let leaving: Vec<Leaving> = if api_version < 3 {
            vec![Leaving {
                member_id: request.member_id.to_string(),
                instance_id: None,
            }]
        } else {
            request
                .members
                .iter()
                .map(|m| Leaving {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                })
                .collect()
        };
        let mut ctx = Ctx {
            config: &self.config,
            now_ms,
            out: &mut out,
            ids: &mut self.ids,
        };
        let results = match self
            .groups
            .get_mut(&group_id)
            .and_then(Group::as_classic_mut)
        {
            _ if group_id.is_empty() => Err(ErrorCode::InvalidGroupId),
            None => Err(ErrorCode::UnknownMemberId),
            Some(group) => Ok(group.leave(&mut ctx, &leaving)),
        };
        let response = match results {
            Err(error) => LeaveGroupResponse::default().with_error_code(error.code()),
            Ok(results) if api_version < 3 => {
                let result = results
                    .first()
                    .copied()
                    .unwrap_or(Err(ErrorCode::UnknownServerError));
                LeaveGroupResponse::default().with_error_code(code_of(result))
            }
            Ok(results) => LeaveGroupResponse::default().with_members(
                leaving
                    .iter()
                    .zip(results)
                    .map(|(m, result)| {
                        MemberResponse::default()
                            .with_member_id(str_bytes(&m.member_id))
                            .with_group_instance_id(m.instance_id.as_deref().map(str_bytes))
                            .with_error_code(code_of(result))
                    })
                    .collect(),
            ),
        };
        out.reply(request_id, Reply::LeaveGroup(response));
        out
    }
}
