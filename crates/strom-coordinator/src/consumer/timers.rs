//! Consumer group timers: session expiry and the rebalance timeout of members that
//! do not revoke in time. Both remove the member (its partitions move on).

use crate::output::Output;
use crate::records::MemberState;
use crate::shard::{session_timeout_ms, Group, GroupCoordinatorShard};

impl GroupCoordinatorShard {
    /// Removes members whose session or revocation deadline passed.
    pub(crate) fn fire_consumer_timers(&mut self, now_ms: i64, out: &mut Output) {
        let mut expired: Vec<(String, String)> = Vec::new();
        for (group_id, group) in &mut self.groups {
            let Group::Consumer(group) = group else {
                continue;
            };
            for member in group.members.values_mut() {
                let session_over = member.session_deadline_ms.is_some_and(|d| d <= now_ms);
                let revocation_over = match member.rebalance_deadline {
                    Some((deadline, epoch)) if deadline <= now_ms => {
                        member.rebalance_deadline = None;
                        // Only if the member is still stuck at the epoch it had to leave.
                        member.member_epoch == epoch
                    }
                    _ => false,
                };
                if session_over || revocation_over {
                    expired.push((group_id.clone(), member.member_id.clone()));
                }
            }
        }
        for (group_id, member_id) in expired {
            self.fence_consumer_member(out, &group_id, &member_id);
        }
    }

    /// After load: every member gets a full session, and members that still have
    /// partitions to revoke a full rebalance timeout.
    pub(crate) fn consumer_loaded(&mut self, now_ms: i64) {
        for (group_id, group) in self.groups.iter_mut() {
            let Some(group) = group.as_consumer_mut() else {
                continue;
            };
            let session_ms = i64::from(session_timeout_ms(
                &self.group_overrides,
                &self.config,
                group_id,
            ));
            for member in group.members.values_mut() {
                member.session_deadline_ms = Some(now_ms.saturating_add(session_ms));
                member.rebalance_deadline = (member.state == MemberState::UnrevokedPartitions)
                    .then(|| {
                        (
                            now_ms.saturating_add(i64::from(member.rebalance_timeout_ms.max(0))),
                            member.member_epoch,
                        )
                    });
            }
        }
    }
}
