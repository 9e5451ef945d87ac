//! The rebalance state machine: entering PreparingRebalance, completing the join
//! phase, removing members, and the timers that drive it.

use bytes::Bytes;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use strom_types::ErrorCode;
use tracing::info;

use super::group::{ClassicGroup, ClassicGroupState, JoinTimer, Parked, SyncTimer};
use super::responses::{join_error, join_ok, sync_error, JoinOk};
use super::Ctx;
use crate::output::Reply;

impl ClassicGroup {
    pub(crate) fn answer_join(
        &mut self,
        ctx: &mut Ctx<'_>,
        member_id: &str,
        build: impl FnOnce(i16) -> JoinGroupResponse,
    ) {
        if let Some(parked) = self
            .member_mut(member_id)
            .and_then(|m| m.awaiting_join.take())
        {
            ctx.out.reply(
                parked.request_id,
                Reply::JoinGroup(build(parked.api_version)),
            );
        }
    }

    pub(crate) fn answer_sync(
        &mut self,
        ctx: &mut Ctx<'_>,
        member_id: &str,
        response: SyncGroupResponse,
    ) -> bool {
        match self
            .member_mut(member_id)
            .and_then(|m| m.awaiting_sync.take())
        {
            Some(parked) => {
                ctx.out.reply(parked.request_id, Reply::SyncGroup(response));
                true
            }
            None => false,
        }
    }

    /// Parks a JoinGroup; a request it supersedes (a client retry) is told to rejoin.
    pub(crate) fn park_join(&mut self, ctx: &mut Ctx<'_>, member_id: &str, parked: Parked) {
        self.answer_join(ctx, member_id, |v| {
            join_error(v, member_id, ErrorCode::RebalanceInProgress)
        });
        if let Some(member) = self.member_mut(member_id) {
            member.awaiting_join = Some(parked);
        }
    }

    pub(crate) fn park_sync(&mut self, ctx: &mut Ctx<'_>, member_id: &str, parked: Parked) {
        self.answer_sync(ctx, member_id, sync_error(ErrorCode::RebalanceInProgress));
        if let Some(member) = self.member_mut(member_id) {
            member.awaiting_sync = Some(parked);
        }
    }

    pub(crate) fn reschedule_heartbeat(&mut self, ctx: &Ctx<'_>, member_id: &str) {
        let now_ms = ctx.now_ms;
        if let Some(member) = self.member_mut(member_id) {
            member.heartbeat_deadline_ms =
                Some(now_ms.saturating_add(i64::from(member.session_timeout_ms)));
        }
    }

    /// Removes a member, answering anything it has parked so no request is left hanging.
    pub(crate) fn remove_and_answer(&mut self, ctx: &mut Ctx<'_>, member_id: &str) {
        self.answer_join(ctx, member_id, |v| {
            join_error(v, "", ErrorCode::UnknownMemberId)
        });
        self.answer_sync(ctx, member_id, sync_error(ErrorCode::UnknownMemberId));
        if self.remove(member_id).is_some() {
            info!(group = %self.group_id, member = member_id, "member removed from group");
        }
    }

    pub(crate) fn maybe_prepare_rebalance_or_complete_join(
        &mut self,
        ctx: &mut Ctx<'_>,
        reason: impl FnOnce() -> String,
    ) {
        if self.can_rebalance() {
            self.prepare_rebalance(ctx, &reason());
        } else {
            self.maybe_complete_join_phase(ctx);
        }
    }

    pub(crate) fn prepare_rebalance(&mut self, ctx: &mut Ctx<'_>, reason: &str) {
        info!(
            group = %self.group_id,
            state = self.state.name(),
            generation = self.generation_id,
            members = self.members.len(),
            reason,
            "preparing to rebalance group"
        );
        if self.is_state(ClassicGroupState::CompletingRebalance) {
            // Members waiting in SyncGroup must rejoin.
            let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
            for id in ids {
                if let Some(member) = self.member_mut(&id) {
                    member.assignment = Bytes::new();
                }
                self.answer_sync(ctx, &id, sync_error(ErrorCode::RebalanceInProgress));
            }
        }
        self.pending_sync.clear();
        self.sync_timer = None;

        let initial = self.is_state(ClassicGroupState::Empty);
        if initial {
            // A new group waits for more members before its first generation.
            let delay_ms = ctx.config.initial_rebalance_delay_ms.max(0);
            let remaining_ms = self.rebalance_timeout_ms().saturating_sub(delay_ms).max(0);
            self.new_member_added = false;
            self.join_timer = Some(JoinTimer::InitialDelay {
                deadline_ms: ctx.after(delay_ms),
                delay_ms,
                remaining_ms,
            });
        }
        self.transition_to(ClassicGroupState::PreparingRebalance, ctx.now_ms);
        if !initial {
            if self.has_all_members_joined() {
                self.complete_join(ctx);
            } else {
                self.join_timer = Some(JoinTimer::Complete {
                    deadline_ms: ctx.after(self.rebalance_timeout_ms()),
                });
            }
        }
    }

    /// Completes the join phase early once everyone rejoined (not during the initial delay).
    pub(crate) fn maybe_complete_join_phase(&mut self, ctx: &mut Ctx<'_>) {
        if self.is_state(ClassicGroupState::PreparingRebalance)
            && self.previous_state != ClassicGroupState::Empty
            && self.has_all_members_joined()
        {
            self.complete_join(ctx);
        }
    }

    /// Ends the join phase: drops dynamic members that did not rejoin, starts the next
    /// generation and answers every parked JoinGroup (the leader gets the member list).
    pub(crate) fn complete_join(&mut self, ctx: &mut Ctx<'_>) {
        self.join_timer = None;
        let not_rejoined: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.awaiting_join.is_none() && m.instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in not_rejoined {
            self.remove_and_answer(ctx, &id);
        }
        if self.is_state(ClassicGroupState::Dead) {
            return;
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that have not rejoined are left: wait for them or their session expiry.
            self.join_timer = Some(JoinTimer::Complete {
                deadline_ms: ctx.after(self.rebalance_timeout_ms()),
            });
            return;
        }
        self.init_next_generation(ctx.now_ms);
        info!(
            group = %self.group_id,
            generation = self.generation_id,
            members = self.members.len(),
            leader = self.leader_id.as_deref().unwrap_or(""),
            protocol = self.protocol_name.as_deref().unwrap_or(""),
            "group generation started"
        );
        if self.is_state(ClassicGroupState::Empty) {
            self.persist(ctx, None);
            return;
        }
        let leader_members = self.leader_member_list();
        let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        for id in ids {
            let members = if self.is_leader(&id) {
                leader_members.clone()
            } else {
                Vec::new()
            };
            let (generation_id, protocol_type, protocol_name, leader) = (
                self.generation_id,
                self.protocol_type.clone(),
                self.protocol_name.clone(),
                self.leader_id.clone(),
            );
            self.answer_join(ctx, &id, |v| {
                join_ok(
                    v,
                    JoinOk {
                        member_id: &id,
                        generation_id,
                        protocol_type: protocol_type.as_deref(),
                        protocol_name: protocol_name.as_deref(),
                        leader: leader.as_deref(),
                        members,
                        skip_assignment: false,
                    },
                )
            });
            self.reschedule_heartbeat(ctx, &id);
            if let Some(member) = self.member_mut(&id) {
                member.is_new = false;
            }
            self.pending_sync.insert(id);
        }
        self.sync_timer = Some(SyncTimer {
            deadline_ms: ctx.after(self.rebalance_timeout_ms()),
            generation_id: self.generation_id,
        });
    }

    /// A member left or expired: rebalance the rest.
    pub(crate) fn remove_member_and_update(&mut self, ctx: &mut Ctx<'_>, member_id: &str) {
        self.remove_and_answer(ctx, member_id);
        match self.state {
            ClassicGroupState::Stable | ClassicGroupState::CompletingRebalance => self
                .maybe_prepare_rebalance_or_complete_join(ctx, || {
                    format!("member {member_id} removed")
                }),
            ClassicGroupState::PreparingRebalance if self.has_all_members_joined() => {
                self.complete_join(ctx)
            }
            _ => {}
        }
    }

    /// Fires whatever timers of this group are due at `ctx.now_ms` (one pass).
    pub(crate) fn fire_timers(&mut self, ctx: &mut Ctx<'_>) {
        let now_ms = ctx.now_ms;
        if let Some(timer) = self.join_timer.filter(|t| t.deadline_ms() <= now_ms) {
            self.join_timer = None;
            self.fire_join_timer(ctx, timer);
        }
        if let Some(timer) = self.sync_timer.filter(|t| t.deadline_ms <= now_ms) {
            self.sync_timer = None;
            self.expire_pending_sync(ctx, timer.generation_id);
        }
        let due_pending: Vec<String> = self
            .pending_join
            .iter()
            .filter(|(_, deadline)| **deadline <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due_pending {
            self.remove(&id);
            if self.is_state(ClassicGroupState::PreparingRebalance) && self.has_all_members_joined()
            {
                self.complete_join(ctx);
            }
        }
        let due_members: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.heartbeat_deadline_ms.is_some_and(|d| d <= now_ms))
            .map(|m| m.member_id.clone())
            .collect();
        for id in due_members {
            // An earlier expiry in this pass may have rescheduled or removed it.
            let Some(member) = self.member_mut(&id) else {
                continue;
            };
            if member.heartbeat_deadline_ms.is_none_or(|d| d > now_ms) {
                continue;
            }
            member.heartbeat_deadline_ms = None;
            if !member.has_satisfied_heartbeat() {
                info!(group = %self.group_id, member = %id, "member's session expired; removing it from the group");
                self.remove_member_and_update(ctx, &id);
            }
        }
    }

    fn fire_join_timer(&mut self, ctx: &mut Ctx<'_>, timer: JoinTimer) {
        match timer {
            JoinTimer::InitialDelay {
                delay_ms,
                remaining_ms,
                ..
            } if self.new_member_added && remaining_ms != 0 => {
                // Members keep arriving: extend the delay, up to the rebalance timeout.
                let next_delay_ms = ctx.config.initial_rebalance_delay_ms.min(remaining_ms);
                self.new_member_added = false;
                self.join_timer = Some(JoinTimer::InitialDelay {
                    deadline_ms: ctx.after(next_delay_ms),
                    delay_ms: next_delay_ms,
                    remaining_ms: remaining_ms.saturating_sub(delay_ms).max(0),
                });
            }
            _ => self.complete_join(ctx),
        }
    }

    fn expire_pending_sync(&mut self, ctx: &mut Ctx<'_>, generation_id: i32) {
        let syncing = matches!(
            self.state,
            ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable
        );
        if generation_id != self.generation_id || !syncing || self.pending_sync.is_empty() {
            return;
        }
        let missing: Vec<String> = self.pending_sync.iter().cloned().collect();
        for id in &missing {
            self.remove_and_answer(ctx, id);
        }
        self.prepare_rebalance(ctx, &format!("members {missing:?} did not sync in time"));
    }
}
