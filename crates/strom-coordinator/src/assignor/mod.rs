//! Server-side partition assignors of consumer groups, as pure functions.
//!
//! An assignor sees each member's subscription (topic ids of subscribed topics that
//! exist), its static identity and its previous target assignment, plus the partition
//! count of every subscribed topic, and returns every member's new target.

mod range;
mod uniform;

use std::collections::{BTreeMap, BTreeSet};

use strom_types::TopicId;

/// Partitions per topic id.
pub(crate) type Assignment = BTreeMap<TopicId, BTreeSet<i32>>;

/// `uniform`: balanced across members, sticky where possible (Kafka's default).
pub(crate) const UNIFORM: &str = "uniform";
/// `range`: contiguous ranges per topic over members in a stable order.
pub(crate) const RANGE: &str = "range";

/// The names this build implements.
pub(crate) fn is_known(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// One member as the assignor sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MemberSpec {
    pub instance_id: Option<String>,
    /// Subscribed topics that exist (present in `GroupSpec::partitions`).
    pub subscribed: BTreeSet<TopicId>,
    /// The member's previous target assignment, for stickiness.
    pub current: Assignment,
}

/// The whole group as the assignor sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct GroupSpec {
    pub members: BTreeMap<String, MemberSpec>,
    /// Partition count of every subscribed topic.
    pub partitions: BTreeMap<TopicId, i32>,
}

impl GroupSpec {
    /// Partition count of `topic`, 0 when unknown or negative.
    fn partition_count(&self, topic: &TopicId) -> i32 {
        self.partitions.get(topic).copied().unwrap_or(0).max(0)
    }
}

/// Runs the assignor called `name` (unknown names fall back to `uniform`). Every
/// member of `spec` appears in the result, possibly with nothing.
pub(crate) fn assign(name: &str, spec: &GroupSpec) -> BTreeMap<String, Assignment> {
    let mut result = if name == RANGE {
        range::assign(spec)
    } else {
        uniform::assign(spec)
    };
    for member in spec.members.keys() {
        result.entry(member.clone()).or_default();
    }
    result
}

/// Number of partitions in an assignment.
#[cfg(test)]
pub(crate) fn count(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}
