//! A consumer group's state: epochs, subscription metadata, members with their
//! current assignments, and the target assignment. Pure data and queries; records
//! change it only through `persist.rs`.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use regex::Regex;

use strom_types::TopicId;

use crate::assignor::Assignment;
use crate::records::MemberState;

/// Member epoch of a member that leaves.
pub(crate) const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member that leaves for now and will come back.
pub(crate) const LEAVE_STATIC_EPOCH: i32 = -2;

/// Consumer group states, named as Kafka names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    /// The group epoch is ahead of the target assignment.
    Assigning,
    /// Some member has not reached the target assignment yet.
    Reconciling,
    Stable,
    Dead,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// Topic name -> (topic id, partition count): the part of the cluster's topics the
/// group's members subscribe to.
pub(crate) type SubscriptionMetadata = BTreeMap<String, (TopicId, i32)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: BTreeSet<String>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// Transient: when the member is removed unless it heartbeats.
    pub session_deadline_ms: Option<i64>,
    /// Transient: (deadline, epoch) by which a member in UnrevokedPartitions must
    /// have revoked, or be removed if it is still at that epoch.
    pub rebalance_deadline: Option<(i64, i32)>,
}

impl ConsumerMember {
    pub fn new(member_id: &str) -> Self {
        Self {
            member_id: member_id.to_owned(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: BTreeSet::new(),
            subscribed_topic_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: -1,
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: None,
            rebalance_deadline: None,
        }
    }

    /// Stable at `epoch`: nothing left to revoke or wait for.
    pub fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }

    /// The persisted part of the member equals `other`'s.
    pub fn same_metadata(&self, other: &ConsumerMember) -> bool {
        self.instance_id == other.instance_id
            && self.rack_id == other.rack_id
            && self.client_id == other.client_id
            && self.client_host == other.client_host
            && self.subscribed_topic_names == other.subscribed_topic_names
            && self.subscribed_topic_regex == other.subscribed_topic_regex
            && self.server_assignor == other.server_assignor
            && self.rebalance_timeout_ms == other.rebalance_timeout_ms
    }

    pub fn same_assignment(&self, other: &ConsumerMember) -> bool {
        self.member_epoch == other.member_epoch
            && self.previous_member_epoch == other.previous_member_epoch
            && self.state == other.state
            && self.assigned == other.assigned
            && self.pending_revocation == other.pending_revocation
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ConsumerGroup {
    pub group_id: String,
    pub epoch: i32,
    pub subscription_metadata: SubscriptionMetadata,
    pub assignment_epoch: i32,
    /// Member id -> target assignment.
    pub targets: BTreeMap<String, Assignment>,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Transient: the topics each subscribed regex matched when last resolved. As in
    /// Kafka, a regex counts for assignment only once resolved, which happens after
    /// the heartbeat that brought it (`regex_refresh_due_ms`) or on topic changes.
    pub resolved_regexes: BTreeMap<String, BTreeSet<String>>,
    /// Transient: when the group's regexes must be resolved again.
    pub regex_refresh_due_ms: Option<i64>,
}

impl ConsumerGroup {
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_owned(),
            epoch: 0,
            subscription_metadata: SubscriptionMetadata::new(),
            assignment_epoch: 0,
            targets: BTreeMap::new(),
            members: BTreeMap::new(),
            resolved_regexes: BTreeMap::new(),
            regex_refresh_due_ms: None,
        }
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| !m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member holding `instance_id`, if any.
    pub fn static_member(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// Whether `member` subscribes to `topic`: by name, or through its regex once
    /// that is resolved.
    pub fn member_subscribes_to(&self, member: &ConsumerMember, topic: &str) -> bool {
        member.subscribed_topic_names.contains(topic)
            || member
                .subscribed_topic_regex
                .as_ref()
                .and_then(|regex| self.resolved_regexes.get(regex))
                .is_some_and(|topics| topics.contains(topic))
    }

    /// Topic names any member subscribes to: named ones, and those its resolved
    /// regex matched.
    pub fn subscribed_topics(&self) -> BTreeSet<&str> {
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(member.subscribed_topic_names.iter().map(String::as_str));
            if let Some(resolved) = member
                .subscribed_topic_regex
                .as_ref()
                .and_then(|regex| self.resolved_regexes.get(regex))
            {
                topics.extend(resolved.iter().map(String::as_str));
            }
        }
        topics
    }

    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        self.members
            .values()
            .any(|m| self.member_subscribes_to(m, topic))
    }

    /// Whether a member other than `member_id` subscribes to `regex`.
    pub fn regex_used_by_other(&self, regex: &str, member_id: &str) -> bool {
        self.members
            .values()
            .any(|m| m.member_id != member_id && m.subscribed_topic_regex.as_deref() == Some(regex))
    }

    /// Resolves every regex members subscribe to against `topics`; forgets the rest.
    pub fn resolve_regexes<'a>(&mut self, topics: impl Iterator<Item = &'a str> + Clone) {
        let regexes: BTreeSet<&String> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.as_ref())
            .collect();
        let resolved: BTreeMap<String, BTreeSet<String>> = regexes
            .into_iter()
            .map(|regex| {
                let matched = topics
                    .clone()
                    .filter(|t| regex_matches(regex, t))
                    .map(str::to_owned)
                    .collect();
                (regex.clone(), matched)
            })
            .collect();
        self.regex_refresh_due_ms = None;
        self.resolved_regexes = resolved;
    }

    /// The assignor most members asked for (ties: the smallest name), if any did.
    pub fn preferred_assignor(&self) -> Option<&str> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for name in self
            .members
            .values()
            .filter_map(|m| m.server_assignor.as_deref())
        {
            *counts.entry(name).or_default() += 1;
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in counts {
            if best.is_none_or(|(_, c)| count > c) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name)
    }

    /// Who owns each partition now (assigned or pending revocation), with the
    /// owner's epoch. A partition in here is not free for anyone else.
    pub fn partition_owners(&self) -> BTreeMap<(TopicId, i32), (&str, i32)> {
        let mut owners = BTreeMap::new();
        for member in self.members.values() {
            for assignment in [&member.assigned, &member.pending_revocation] {
                for (topic, partitions) in assignment {
                    for p in partitions {
                        owners.insert(
                            (*topic, *p),
                            (member.member_id.as_str(), member.member_epoch),
                        );
                    }
                }
            }
        }
        owners
    }

    /// Earliest session or rebalance deadline of the group's members, or the
    /// pending regex resolution.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| {
                m.session_deadline_ms
                    .into_iter()
                    .chain(m.rebalance_deadline.map(|(d, _)| d))
            })
            .chain(self.regex_refresh_due_ms)
            .min()
    }
}

/// Topic name lookup from an id, through the group's subscription metadata first
/// and then the cluster's topics.
pub(crate) fn topic_name<'a>(
    metadata: &'a SubscriptionMetadata,
    topics: &'a BTreeMap<String, (TopicId, i32)>,
    id: &TopicId,
) -> Option<&'a str> {
    metadata
        .iter()
        .chain(topics.iter())
        .find(|(_, (tid, _))| tid == id)
        .map(|(name, _)| name.as_str())
}

/// Kafka's internal topics, which a regex subscription never matches.
const INTERNAL_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// Compiled subscription patterns kept per thread; a group's few patterns are
/// matched against every topic on each metadata change, so compiling once matters.
const COMPILED_PATTERNS_KEPT: usize = 256;

thread_local! {
    static COMPILED_PATTERNS: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

/// The whole-name regex for `pattern`, or `None` when it does not compile.
fn compiled(pattern: &str) -> Option<Regex> {
    COMPILED_PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(re) = cache.get(pattern) {
            return re.clone();
        }
        if cache.len() >= COMPILED_PATTERNS_KEPT {
            cache.clear();
        }
        let re = Regex::new(&format!("^(?:{pattern})$")).ok();
        cache.insert(pattern.to_owned(), re.clone());
        re
    })
}

/// Kafka matches subscription regexes (RE2J) against whole topic names; the
/// `regex` crate speaks the same RE2 dialect. An invalid pattern matches nothing.
pub(crate) fn regex_matches(pattern: &str, topic: &str) -> bool {
    !INTERNAL_TOPICS.contains(&topic) && compiled(pattern).is_some_and(|re| re.is_match(topic))
}

/// Checks a subscription regex as Kafka does before accepting it.
pub(crate) fn regex_is_valid(pattern: &str) -> bool {
    compiled(pattern).is_some()
}
