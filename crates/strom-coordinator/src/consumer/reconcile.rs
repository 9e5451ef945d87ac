//! Moves one member's current assignment towards its target, one safe step at a time.
//!
//! A member first gives up what it must lose (it stays at its epoch, in
//! UnrevokedPartitions, until a heartbeat no longer lists those partitions); only
//! then does it move to the target epoch and receive new partitions, and only those
//! no other member still owns (the rest wait, in UnreleasedPartitions). So no
//! partition is ever owned by two members.

use std::collections::{BTreeMap, BTreeSet};

use strom_types::TopicId;

use crate::assignor::Assignment;
use crate::records::MemberState;

use super::group::ConsumerMember;

/// Partitions someone owns (assigned or pending revocation).
pub(crate) type Owners<'a> = BTreeMap<(TopicId, i32), (&'a str, i32)>;

/// Whether the member still reports owning any of `partitions`. Not reporting at
/// all counts as still owning them.
fn owns_any(owned: Option<&Assignment>, partitions: &Assignment) -> bool {
    let Some(owned) = owned else { return true };
    owned.iter().any(|(topic, ps)| {
        partitions
            .get(topic)
            .is_some_and(|pending| ps.iter().any(|p| pending.contains(p)))
    })
}

/// Whether every reported partition is in `assigned` (`None` is not a subset).
pub(crate) fn is_subset(owned: Option<&Assignment>, assigned: &Assignment) -> bool {
    let Some(owned) = owned else { return false };
    owned
        .iter()
        .all(|(topic, ps)| ps.is_empty() || assigned.get(topic).is_some_and(|a| ps.is_subset(a)))
}

/// The member after one reconciliation step towards `target` at `target_epoch`.
pub(crate) fn reconcile(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owners: &Owners<'_>,
    owned: Option<&Assignment>,
) -> ConsumerMember {
    let step = Step {
        member,
        target_epoch,
        target,
        owners,
        owned,
    };
    match member.state {
        MemberState::Stable if member.member_epoch == target_epoch => member.clone(),
        MemberState::Stable | MemberState::UnreleasedPartitions => step.next(member.member_epoch),
        MemberState::UnrevokedPartitions => {
            if owns_any(owned, &member.pending_revocation) {
                member.clone()
            } else {
                // Revocation acknowledged: the member may move past its epoch.
                step.next(member.member_epoch.saturating_add(1))
            }
        }
    }
}

struct Step<'a> {
    member: &'a ConsumerMember,
    target_epoch: i32,
    target: &'a Assignment,
    owners: &'a Owners<'a>,
    owned: Option<&'a Assignment>,
}

impl Step<'_> {
    fn with(
        &self,
        state: MemberState,
        epoch: i32,
        assigned: Assignment,
        revoke: Assignment,
    ) -> ConsumerMember {
        let mut next = self.member.clone();
        next.state = state;
        next.previous_member_epoch = self.member.member_epoch;
        next.member_epoch = epoch;
        next.assigned = assigned;
        next.pending_revocation = revoke;
        next
    }

    /// `revoking_epoch` is the epoch the member keeps if it must revoke first.
    fn next(&self, revoking_epoch: i32) -> ConsumerMember {
        let mut kept = Assignment::new();
        let mut revoke = Assignment::new();
        let mut incoming = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<TopicId> = self
            .target
            .keys()
            .chain(self.member.assigned.keys())
            .copied()
            .collect();
        let empty = BTreeSet::new();
        for topic in topics {
            let target = self.target.get(&topic).unwrap_or(&empty);
            let current = self.member.assigned.get(&topic).unwrap_or(&empty);
            let keep: BTreeSet<i32> = current.intersection(target).copied().collect();
            let lose: BTreeSet<i32> = current.difference(&keep).copied().collect();
            let mut gain = BTreeSet::new();
            for p in target.difference(&keep) {
                if self.owners.contains_key(&(topic, *p)) {
                    unreleased = true;
                } else {
                    gain.insert(*p);
                }
            }
            for (map, set) in [
                (&mut kept, keep),
                (&mut revoke, lose),
                (&mut incoming, gain),
            ] {
                if !set.is_empty() {
                    map.insert(topic, set);
                }
            }
        }
        if !revoke.is_empty() && owns_any(self.owned, &revoke) {
            return self.with(
                MemberState::UnrevokedPartitions,
                revoking_epoch,
                kept,
                revoke,
            );
        }
        for (topic, ps) in incoming {
            kept.entry(topic).or_default().extend(ps);
        }
        let state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        self.with(state, self.target_epoch, kept, Assignment::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(n: u8) -> TopicId {
        TopicId::from_bytes([n; 16])
    }

    fn parts(list: &[(u8, &[i32])]) -> Assignment {
        list.iter()
            .map(|(n, ps)| (t(*n), ps.iter().copied().collect()))
            .collect()
    }

    fn member(
        epoch: i32,
        state: MemberState,
        assigned: Assignment,
        revoking: Assignment,
    ) -> ConsumerMember {
        let mut m = ConsumerMember::new("m");
        m.member_epoch = epoch;
        m.previous_member_epoch = epoch - 1;
        m.state = state;
        m.assigned = assigned;
        m.pending_revocation = revoking;
        m
    }

    fn shape(m: &ConsumerMember) -> (i32, i32, MemberState, Assignment, Assignment) {
        (
            m.member_epoch,
            m.previous_member_epoch,
            m.state,
            m.assigned.clone(),
            m.pending_revocation.clone(),
        )
    }

    #[test]
    fn revokes_before_moving_to_the_new_epoch() {
        let m = member(
            1,
            MemberState::Stable,
            parts(&[(1, &[0, 1, 2, 3])]),
            Assignment::new(),
        );
        let target = parts(&[(1, &[0, 1])]);
        let owners = Owners::new();
        let owned = parts(&[(1, &[0, 1, 2, 3])]);
        let step = reconcile(&m, 2, &target, &owners, Some(&owned));
        assert_eq!(
            shape(&step),
            (
                1,
                1,
                MemberState::UnrevokedPartitions,
                parts(&[(1, &[0, 1])]),
                parts(&[(1, &[2, 3])])
            )
        );
        // Still listing a revoked partition: no progress.
        let again = reconcile(&step, 2, &target, &owners, Some(&parts(&[(1, &[0, 1, 3])])));
        assert_eq!(again, step);
        // Not reporting at all: no progress either.
        assert_eq!(reconcile(&step, 2, &target, &owners, None), step);
        // Acknowledged: moves to the target epoch.
        let done = reconcile(&step, 2, &target, &owners, Some(&parts(&[(1, &[0, 1])])));
        assert_eq!(
            shape(&done),
            (
                2,
                1,
                MemberState::Stable,
                parts(&[(1, &[0, 1])]),
                Assignment::new()
            )
        );
    }

    #[test]
    fn waits_for_partitions_others_still_own() {
        let m = member(1, MemberState::Stable, Assignment::new(), Assignment::new());
        let target = parts(&[(1, &[2, 3])]);
        let owners: Owners<'_> = [((t(1), 3), ("other", 1))].into();
        let step = reconcile(&m, 2, &target, &owners, Some(&Assignment::new()));
        assert_eq!(
            shape(&step),
            (
                2,
                1,
                MemberState::UnreleasedPartitions,
                parts(&[(1, &[2])]),
                Assignment::new()
            )
        );
        // Released: the rest arrives at the same epoch.
        let done = reconcile(
            &step,
            2,
            &target,
            &Owners::new(),
            Some(&parts(&[(1, &[2])])),
        );
        assert_eq!(
            shape(&done),
            (
                2,
                2,
                MemberState::Stable,
                parts(&[(1, &[2, 3])]),
                Assignment::new()
            )
        );
    }

    #[test]
    fn partitions_already_dropped_need_no_revocation_round() {
        let m = member(
            3,
            MemberState::Stable,
            parts(&[(1, &[0]), (2, &[0])]),
            Assignment::new(),
        );
        let target = parts(&[(1, &[0])]);
        let step = reconcile(&m, 4, &target, &Owners::new(), Some(&parts(&[(1, &[0])])));
        assert_eq!(
            shape(&step),
            (
                4,
                3,
                MemberState::Stable,
                parts(&[(1, &[0])]),
                Assignment::new()
            )
        );
        assert_eq!(reconcile(&step, 4, &target, &Owners::new(), None), step);
    }

    #[test]
    fn subset_rules() {
        let assigned = parts(&[(1, &[0, 1])]);
        assert!(is_subset(Some(&parts(&[(1, &[1])])), &assigned));
        assert!(is_subset(Some(&Assignment::new()), &assigned));
        assert!(!is_subset(Some(&parts(&[(2, &[0])])), &assigned));
        assert!(!is_subset(None, &assigned));
    }
}
