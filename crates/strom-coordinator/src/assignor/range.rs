//! The `range` assignor: for every topic, the members subscribed to it, in a stable
//! order, receive contiguous partition ranges; the first `partitions % members` of them
//! get one extra. The order puts static members first (by instance id) so a bounced
//! static member gets its ranges back, then dynamic members by member id. With equal
//! partition counts and subscriptions the result is co-partitioned.

use std::collections::{BTreeMap, BTreeSet};

use super::{Assignment, GroupSpec};

/// Members in range order: static ones by instance id, then dynamic ones by member id.
fn ordered(spec: &GroupSpec) -> Vec<&str> {
    let mut members: Vec<(&str, Option<&str>)> = spec
        .members
        .iter()
        .map(|(id, m)| (id.as_str(), m.instance_id.as_deref()))
        .collect();
    members.sort_by(|(id_a, inst_a), (id_b, inst_b)| match (inst_a, inst_b) {
        (Some(a), Some(b)) => a.cmp(b).then(id_a.cmp(id_b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => id_a.cmp(id_b),
    });
    members.into_iter().map(|(id, _)| id).collect()
}

pub(super) fn assign(spec: &GroupSpec) -> BTreeMap<String, Assignment> {
    let order = ordered(spec);
    let mut result: BTreeMap<String, Assignment> = BTreeMap::new();
    for topic in spec.partitions.keys() {
        let subscribers: Vec<&str> = order
            .iter()
            .copied()
            .filter(|m| {
                spec.members
                    .get(*m)
                    .is_some_and(|s| s.subscribed.contains(topic))
            })
            .collect();
        let Ok(members) = i32::try_from(subscribers.len()) else {
            continue;
        };
        if members == 0 {
            continue;
        }
        let partitions = spec.partition_count(topic);
        let quota = partitions / members;
        let mut extra = partitions % members;
        let mut next = 0i32;
        for member in subscribers {
            let mut size = quota;
            if extra > 0 {
                size += 1;
                extra -= 1;
            }
            let end = next.saturating_add(size).min(partitions);
            if next < end {
                let range: BTreeSet<i32> = (next..end).collect();
                result
                    .entry(member.to_owned())
                    .or_default()
                    .insert(*topic, range);
            }
            next = end;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::super::{assign, MemberSpec, RANGE};
    use super::*;
    use strom_types::TopicId;

    fn topic(n: u8) -> TopicId {
        TopicId::from_bytes([n; 16])
    }

    fn member(instance: Option<&str>, topics: &[TopicId]) -> MemberSpec {
        MemberSpec {
            instance_id: instance.map(str::to_owned),
            subscribed: topics.iter().copied().collect(),
            current: Assignment::new(),
        }
    }

    fn parts(list: &[(TopicId, &[i32])]) -> Assignment {
        list.iter()
            .map(|(t, ps)| (*t, ps.iter().copied().collect()))
            .collect()
    }

    #[test]
    fn co_partitions_equal_topics_with_extras_first() {
        let (t1, t2) = (topic(1), topic(2));
        let spec = GroupSpec {
            members: [
                ("m1".to_owned(), member(None, &[t1, t2])),
                ("m0".to_owned(), member(None, &[t1, t2])),
            ]
            .into(),
            partitions: [(t1, 3), (t2, 3)].into(),
        };
        let out = assign(RANGE, &spec);
        assert_eq!(out["m0"], parts(&[(t1, &[0, 1]), (t2, &[0, 1])]));
        assert_eq!(out["m1"], parts(&[(t1, &[2]), (t2, &[2])]));
    }

    #[test]
    fn static_members_first_and_heterogeneous_topics() {
        let (t1, t2) = (topic(1), topic(2));
        let spec = GroupSpec {
            members: [
                ("a".to_owned(), member(None, &[t1])),
                ("z".to_owned(), member(Some("i0"), &[t1, t2])),
                ("b".to_owned(), member(None, &[t1, t2])),
            ]
            .into(),
            partitions: [(t1, 7), (t2, 2)].into(),
        };
        let out = assign(RANGE, &spec);
        // t1 over [z, a, b]: 3, 2, 2. t2 over [z, b]: 1, 1.
        assert_eq!(out["z"], parts(&[(t1, &[0, 1, 2]), (t2, &[0])]));
        assert_eq!(out["a"], parts(&[(t1, &[3, 4])]));
        assert_eq!(out["b"], parts(&[(t1, &[5, 6]), (t2, &[1])]));
    }

    #[test]
    fn more_members_than_partitions_leaves_some_empty() {
        let t1 = topic(1);
        let spec = GroupSpec {
            members: [
                ("a".to_owned(), member(None, &[t1])),
                ("b".to_owned(), member(None, &[t1])),
                ("c".to_owned(), member(None, &[t1])),
            ]
            .into(),
            partitions: [(t1, 2)].into(),
        };
        let out = assign(RANGE, &spec);
        assert_eq!(out["a"], parts(&[(t1, &[0])]));
        assert_eq!(out["b"], parts(&[(t1, &[1])]));
        assert_eq!(out["c"], Assignment::new());
    }
}
