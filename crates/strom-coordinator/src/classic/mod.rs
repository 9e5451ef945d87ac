//! Classic (pre-KIP-848) groups: JoinGroup/SyncGroup/Heartbeat/LeaveGroup rebalances.

pub(crate) mod group;
pub(crate) mod join;
pub(crate) mod persist;
pub(crate) mod rebalance;
pub(crate) mod responses;
pub(crate) mod sync;

use crate::config::GroupConfig;
use crate::member_id::MemberIdGen;
use crate::output::Output;

pub use group::ClassicGroupState;

/// What a classic-group operation needs besides the group itself.
pub(crate) struct Ctx<'a> {
    pub config: &'a GroupConfig,
    pub now_ms: i64,
    pub out: &'a mut Output,
    pub ids: &'a mut MemberIdGen,
}

impl Ctx<'_> {
    /// `now_ms + delay_ms`, saturating.
    pub fn after(&self, delay_ms: i32) -> i64 {
        self.now_ms.saturating_add(i64::from(delay_ms))
    }
}
