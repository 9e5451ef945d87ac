//! The `uniform` assignor: spreads partitions evenly over the members subscribed to
//! them while moving as few as possible.
//!
//! 1. Every member keeps the partitions of its previous target that are still valid
//!    (it still subscribes to the topic, the partition exists, nobody kept it first).
//! 2. Each remaining partition goes to the least-loaded member subscribed to its
//!    topic (ties: smallest member id); topics with fewer subscribers go first, as
//!    they have fewer places to go.
//! 3. While some member holds two or more partitions more than a member that could
//!    take one of them, its highest partition moves there.
//!
//! When all members subscribe to the same topics the loads end up differing by at
//! most one, and members keep what they had up to their share.

use std::collections::{BTreeMap, BTreeSet};

use strom_types::TopicId;

use super::{Assignment, GroupSpec};

type Partition = (TopicId, i32);

struct State<'a> {
    spec: &'a GroupSpec,
    owned: BTreeMap<&'a str, BTreeSet<Partition>>,
}

impl<'a> State<'a> {
    fn load(&self, member: &str) -> usize {
        self.owned.get(member).map_or(0, BTreeSet::len)
    }

    fn subscribers(&self, topic: TopicId) -> impl Iterator<Item = &'a str> + 'a {
        let spec = self.spec;
        spec.members
            .iter()
            .filter(move |(_, m)| m.subscribed.contains(&topic))
            .map(|(id, _)| id.as_str())
    }

    /// The least-loaded subscriber of `topic` (smallest id on ties).
    fn least_loaded(&self, topic: &TopicId) -> Option<(&'a str, usize)> {
        let mut best: Option<(&'a str, usize)> = None;
        for member in self.subscribers(*topic) {
            let load = self.load(member);
            if best.is_none_or(|(_, l)| load < l) {
                best = Some((member, load));
            }
        }
        best
    }

    fn give(&mut self, member: &'a str, partition: Partition) {
        self.owned.entry(member).or_default().insert(partition);
    }

    /// Keeps each member's still-valid previous partitions.
    fn keep_previous(&mut self) {
        let mut taken: BTreeSet<Partition> = BTreeSet::new();
        for (id, member) in &self.spec.members {
            for (topic, partitions) in &member.current {
                if !member.subscribed.contains(topic) {
                    continue;
                }
                let count = self.spec.partition_count(topic);
                for &p in partitions {
                    if (0..count).contains(&p) && taken.insert((*topic, p)) {
                        self.give(id, (*topic, p));
                    }
                }
            }
        }
    }

    /// Hands out partitions nobody kept.
    fn assign_remaining(&mut self) {
        let taken: BTreeSet<Partition> = self.owned.values().flatten().copied().collect();
        let mut topics: Vec<(usize, TopicId)> = self
            .spec
            .partitions
            .keys()
            .map(|t| (self.subscribers(*t).count(), *t))
            .filter(|(subscribers, _)| *subscribers > 0)
            .collect();
        topics.sort();
        for (_, topic) in topics {
            for p in 0..self.spec.partition_count(&topic) {
                if taken.contains(&(topic, p)) {
                    continue;
                }
                if let Some((member, _)) = self.least_loaded(&topic) {
                    self.give(member, (topic, p));
                }
            }
        }
    }

    /// One move from an overloaded member to one that can take the partition;
    /// false when none is left. Each move lowers the sum of squared loads, so
    /// repeating this terminates.
    fn move_one(&mut self) -> bool {
        let mut donors: Vec<(usize, &'a str)> =
            self.owned.iter().map(|(m, ps)| (ps.len(), *m)).collect();
        donors.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        for (load, donor) in donors {
            let Some(partitions) = self.owned.get(donor) else {
                continue;
            };
            for &(topic, p) in partitions.iter().rev() {
                if let Some((receiver, l)) = self.least_loaded(&topic) {
                    if l + 1 < load {
                        if let Some(ps) = self.owned.get_mut(donor) {
                            ps.remove(&(topic, p));
                        }
                        self.give(receiver, (topic, p));
                        return true;
                    }
                }
            }
        }
        false
    }
}

pub(super) fn assign(spec: &GroupSpec) -> BTreeMap<String, Assignment> {
    let mut state = State {
        spec,
        owned: BTreeMap::new(),
    };
    state.keep_previous();
    state.assign_remaining();
    while state.move_one() {}
    state
        .owned
        .into_iter()
        .map(|(member, partitions)| {
            let mut assignment = Assignment::new();
            for (topic, p) in partitions {
                assignment.entry(topic).or_default().insert(p);
            }
            (member.to_owned(), assignment)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{assign, count, MemberSpec, UNIFORM};
    use super::*;

    fn topic(n: u8) -> TopicId {
        TopicId::from_bytes([n; 16])
    }

    fn parts(list: &[(TopicId, &[i32])]) -> Assignment {
        list.iter()
            .map(|(t, ps)| (*t, ps.iter().copied().collect()))
            .collect()
    }

    fn member(topics: &[TopicId], current: Assignment) -> MemberSpec {
        MemberSpec {
            instance_id: None,
            subscribed: topics.iter().copied().collect(),
            current,
        }
    }

    #[test]
    fn fresh_group_alternates_partitions() {
        let t = topic(1);
        let spec = GroupSpec {
            members: [
                ("a".to_owned(), member(&[t], Assignment::new())),
                ("b".to_owned(), member(&[t], Assignment::new())),
            ]
            .into(),
            partitions: [(t, 5)].into(),
        };
        let out = assign(UNIFORM, &spec);
        assert_eq!(out["a"], parts(&[(t, &[0, 2, 4])]));
        assert_eq!(out["b"], parts(&[(t, &[1, 3])]));
    }

    #[test]
    fn new_member_takes_the_highest_partitions_of_the_others() {
        let t = topic(1);
        let spec = GroupSpec {
            members: [
                ("a".to_owned(), member(&[t], parts(&[(t, &[0, 1, 2, 3])]))),
                ("b".to_owned(), member(&[t], Assignment::new())),
            ]
            .into(),
            partitions: [(t, 4)].into(),
        };
        let out = assign(UNIFORM, &spec);
        assert_eq!(out["a"], parts(&[(t, &[0, 1])]));
        assert_eq!(out["b"], parts(&[(t, &[2, 3])]));
    }

    #[test]
    fn leaving_member_partitions_go_to_the_least_loaded() {
        let t = topic(1);
        // c left with [4, 5]; a and b keep theirs and share the rest.
        let spec = GroupSpec {
            members: [
                ("a".to_owned(), member(&[t], parts(&[(t, &[0, 1])]))),
                ("b".to_owned(), member(&[t], parts(&[(t, &[2, 3])]))),
            ]
            .into(),
            partitions: [(t, 6)].into(),
        };
        let out = assign(UNIFORM, &spec);
        assert_eq!(out["a"], parts(&[(t, &[0, 1, 4])]));
        assert_eq!(out["b"], parts(&[(t, &[2, 3, 5])]));
    }

    #[test]
    fn invalid_previous_partitions_are_dropped_and_duplicates_kept_once() {
        let (t1, t2) = (topic(1), topic(2));
        let spec = GroupSpec {
            members: [
                // a no longer subscribes to t2 and holds a partition beyond the count.
                (
                    "a".to_owned(),
                    member(&[t1], parts(&[(t1, &[0, 9]), (t2, &[0])])),
                ),
                ("b".to_owned(), member(&[t1, t2], parts(&[(t1, &[0])]))),
            ]
            .into(),
            partitions: [(t1, 2), (t2, 2)].into(),
        };
        let out = assign(UNIFORM, &spec);
        assert_eq!(out["a"], parts(&[(t1, &[0, 1])]));
        assert_eq!(out["b"], parts(&[(t2, &[0, 1])]));
    }

    #[test]
    fn heterogeneous_subscriptions_balance_where_possible() {
        let (t1, t2) = (topic(1), topic(2));
        let spec = GroupSpec {
            members: [
                ("a".to_owned(), member(&[t1], Assignment::new())),
                ("b".to_owned(), member(&[t1, t2], Assignment::new())),
                ("c".to_owned(), member(&[t2], Assignment::new())),
            ]
            .into(),
            partitions: [(t1, 3), (t2, 3)].into(),
        };
        let out = assign(UNIFORM, &spec);
        assert_eq!(out["a"], parts(&[(t1, &[0, 2])]));
        assert_eq!(out["b"], parts(&[(t1, &[1]), (t2, &[1])]));
        assert_eq!(out["c"], parts(&[(t2, &[0, 2])]));
        let loads: Vec<usize> = out.values().map(count).collect();
        assert_eq!(loads, vec![2, 2, 2]);
    }

    #[test]
    fn unsubscribed_and_empty_groups() {
        let t = topic(1);
        let spec = GroupSpec {
            members: [("a".to_owned(), member(&[], Assignment::new()))].into(),
            partitions: [(t, 3)].into(),
        };
        assert_eq!(assign(UNIFORM, &spec)["a"], Assignment::new());
        assert!(assign(UNIFORM, &GroupSpec::default()).is_empty());
    }
}
