//! A classic group's state: members, generation, protocol, rebalance bookkeeping.
//! Pure data and rules; the request flows live in `join.rs`, `sync.rs` and `timers.rs`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::protocol::StrBytes;
use strom_types::ErrorCode;

use crate::subscription::subscribed_topics;

/// Kafka's `ConsumerProtocol.PROTOCOL_TYPE`.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Classic group states, named as Kafka names them in DescribeGroups/ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicGroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl ClassicGroupState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// A request the shard holds until it can answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parked {
    pub request_id: u64,
    pub api_version: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

#[derive(Debug, Clone)]
pub(crate) struct ClassicMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    pub assignment: Bytes,
    pub awaiting_join: Option<Parked>,
    pub awaiting_sync: Option<Parked>,
    /// Joined but has not yet seen a completed join phase; may expire while parked.
    pub is_new: bool,
    pub heartbeat_deadline_ms: Option<i64>,
}

impl ClassicMember {
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|name| self.protocols.iter().find(|p| p.name == name))
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// The first protocol in this member's preference order that is a candidate.
    fn vote<'a>(&'a self, candidates: &BTreeSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// Members parked in a rebalance count as alive; new members do not.
    pub fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join.is_some() || self.awaiting_sync.is_some())
    }
}

/// The pending completion of the join phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinTimer {
    /// First rebalance of an empty group: wait `delay_ms`, extend while members keep arriving.
    InitialDelay {
        deadline_ms: i64,
        delay_ms: i32,
        remaining_ms: i32,
    },
    /// Complete the join phase at the rebalance timeout.
    Complete { deadline_ms: i64 },
}

impl JoinTimer {
    pub fn deadline_ms(self) -> i64 {
        match self {
            Self::InitialDelay { deadline_ms, .. } | Self::Complete { deadline_ms } => deadline_ms,
        }
    }
}

/// Members that have not sent SyncGroup by `deadline_ms` are removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyncTimer {
    pub deadline_ms: i64,
    pub generation_id: i32,
}

#[derive(Debug, Clone)]
pub(crate) struct ClassicGroup {
    pub group_id: String,
    pub state: ClassicGroupState,
    pub previous_state: ClassicGroupState,
    pub state_timestamp_ms: Option<i64>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// In join order: the leader falls to the oldest remaining member.
    pub members: Vec<ClassicMember>,
    /// group.instance.id -> member id.
    pub static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED -> session deadline.
    pub pending_join: BTreeMap<String, i64>,
    pub pending_sync: BTreeSet<String>,
    pub new_member_added: bool,
    pub join_timer: Option<JoinTimer>,
    pub sync_timer: Option<SyncTimer>,
    /// Topics the members subscribe to, computed at each generation (consumer protocol only).
    pub subscribed_topics: Option<BTreeSet<String>>,
}

impl ClassicGroup {
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_owned(),
            state: ClassicGroupState::Empty,
            previous_state: ClassicGroupState::Empty,
            state_timestamp_ms: None,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: Vec::new(),
            static_members: BTreeMap::new(),
            pending_join: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_timer: None,
            subscribed_topics: None,
        }
    }

    pub fn is_state(&self, state: ClassicGroupState) -> bool {
        self.state == state
    }

    /// No members and in Empty: another group type may take the id.
    pub fn is_empty_group(&self) -> bool {
        self.members.is_empty() && self.is_state(ClassicGroupState::Empty)
    }

    pub fn member(&self, member_id: &str) -> Option<&ClassicMember> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    pub fn member_mut(&mut self, member_id: &str) -> Option<&mut ClassicMember> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    pub fn has_member(&self, member_id: &str) -> bool {
        self.member(member_id).is_some()
    }

    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_join.contains_key(member_id)
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    pub fn has_all_members_joined(&self) -> bool {
        self.pending_join.is_empty() && self.members.iter().all(|m| m.awaiting_join.is_some())
    }

    pub fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// The largest rebalance timeout among members.
    pub fn rebalance_timeout_ms(&self) -> i32 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms)
            .max()
            .unwrap_or(0)
    }

    pub fn transition_to(&mut self, state: ClassicGroupState, now_ms: i64) {
        self.previous_state = self.state;
        self.state = state;
        self.state_timestamp_ms = Some(now_ms);
    }

    /// Whether PreparingRebalance may be entered from the current state.
    pub fn can_rebalance(&self) -> bool {
        matches!(
            self.state,
            ClassicGroupState::Stable
                | ClassicGroupState::CompletingRebalance
                | ClassicGroupState::Empty
        )
    }

    /// Adds a member; the first one fixes the protocol type and becomes leader.
    pub fn add(&mut self, member: ClassicMember) {
        if let Some(instance_id) = &member.instance_id {
            self.static_members
                .insert(instance_id.clone(), member.member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.pending_join.remove(&member.member_id);
        self.members.push(member);
    }

    /// Removes a member (or pending member); leadership passes to the oldest member left.
    pub fn remove(&mut self, member_id: &str) -> Option<ClassicMember> {
        let removed = self
            .members
            .iter()
            .position(|m| m.member_id == member_id)
            .map(|index| self.members.remove(index));
        if let Some(instance_id) = removed.as_ref().and_then(|m| m.instance_id.as_ref()) {
            self.static_members.remove(instance_id);
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        self.pending_join.remove(member_id);
        self.pending_sync.remove(member_id);
        removed
    }

    /// Kafka's rule: an empty group takes any non-empty protocol set; otherwise the
    /// type must match and one protocol must be supported by every current member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.is_state(ClassicGroupState::Empty) {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| {
                !self.members.is_empty()
                    && self
                        .members
                        .iter()
                        .all(|m| m.protocols.iter().any(|q| q.name == p.name))
            })
    }

    /// Protocol names every member supports.
    fn candidate_protocols(&self) -> BTreeSet<&str> {
        let Some(first) = self.members.first() else {
            return BTreeSet::new();
        };
        first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|q| q.name == *name))
            })
            .collect()
    }

    /// Each member votes for its most preferred candidate; most votes wins
    /// (ties go to the smallest name, for determinism).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in &self.members {
            if let Some(name) = member.vote(&candidates) {
                *votes.entry(name).or_default() += 1;
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name.to_owned())
    }

    /// Checks that `member_id` (and the static identity, if given) belongs to the group.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ErrorCode> {
        if let Some(instance_id) = instance_id {
            match self.static_members.get(instance_id) {
                None => return Err(ErrorCode::UnknownMemberId),
                Some(existing) if existing != member_id => return Err(ErrorCode::FencedInstanceId),
                Some(_) => {}
            }
        }
        if !self.has_member(member_id) {
            return Err(ErrorCode::UnknownMemberId);
        }
        Ok(())
    }

    /// Keeps the current leader if it rejoined, else picks the first member that did.
    /// False when nobody rejoined.
    pub fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.as_deref() else {
            return false;
        };
        if self
            .member(leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        match self.members.iter().find(|m| m.awaiting_join.is_some()) {
            Some(member) => {
                self.leader_id = Some(member.member_id.clone());
                true
            }
            None => false,
        }
    }

    /// Starts the next generation: picks the protocol and moves to CompletingRebalance,
    /// or to Empty when no member is left.
    pub fn init_next_generation(&mut self, now_ms: i64) {
        self.generation_id = self.generation_id.wrapping_add(1);
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(ClassicGroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(ClassicGroupState::CompletingRebalance, now_ms);
        }
        self.pending_sync.clear();
    }

    /// Union of the members' subscribed topics for consumer-protocol groups; `None`
    /// when unknown (other protocol types, or unparsable metadata).
    pub fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut all = BTreeSet::new();
        for member in &self.members {
            all.extend(subscribed_topics(&member.metadata(Some(protocol)))?);
        }
        Some(all)
    }

    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    /// The member list a leader receives in its JoinGroup response.
    pub fn leader_member_list(&self) -> Vec<JoinGroupResponseMember> {
        self.members
            .iter()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                    .with_group_instance_id(m.instance_id.clone().map(StrBytes::from_string))
                    .with_metadata(m.metadata(self.protocol_name.as_deref()))
            })
            .collect()
    }

    /// Earliest timer of this group, if any.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let members = self.members.iter().filter_map(|m| m.heartbeat_deadline_ms);
        let pending = self.pending_join.values().copied();
        let timers = self
            .join_timer
            .map(JoinTimer::deadline_ms)
            .into_iter()
            .chain(self.sync_timer.map(|t| t.deadline_ms));
        members.chain(pending).chain(timers).min()
    }
}
