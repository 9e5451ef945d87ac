//! SyncGroup, Heartbeat and LeaveGroup for classic groups.

use std::collections::BTreeMap;

use bytes::Bytes;
use strom_types::ErrorCode;

use super::group::{ClassicGroup, ClassicGroupState, Parked};
use super::responses::{sync_error, sync_ok};
use super::Ctx;
use crate::output::Reply;

/// A SyncGroup request, normalized across versions.
#[derive(Debug, Clone)]
pub(crate) struct SyncArgs {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// One member named in a LeaveGroup request.
#[derive(Debug, Clone)]
pub(crate) struct Leaving {
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// A v5 SyncGroup names the protocol it expects; it must match when both are known.
fn inconsistent(requested: Option<&str>, current: Option<&str>) -> bool {
    matches!((requested, current), (Some(r), Some(c)) if r != c)
}

impl ClassicGroup {
    fn validate_sync(&self, args: &SyncArgs) -> Result<(), ErrorCode> {
        if self.is_state(ClassicGroupState::Dead) {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        self.validate_member(&args.member_id, args.instance_id.as_deref())?;
        if args.generation_id != self.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        if inconsistent(args.protocol_type.as_deref(), self.protocol_type.as_deref())
            || inconsistent(args.protocol_name.as_deref(), self.protocol_name.as_deref())
        {
            return Err(ErrorCode::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn synced(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_timer = None;
        }
    }

    pub(crate) fn sync(&mut self, ctx: &mut Ctx<'_>, parked: Parked, args: SyncArgs) {
        let reply = |ctx: &mut Ctx<'_>, response| {
            ctx.out.reply(parked.request_id, Reply::SyncGroup(response))
        };
        if let Err(error) = self.validate_sync(&args) {
            return reply(ctx, sync_error(error));
        }
        match self.state {
            ClassicGroupState::PreparingRebalance => {
                reply(ctx, sync_error(ErrorCode::RebalanceInProgress))
            }
            ClassicGroupState::CompletingRebalance => {
                self.park_sync(ctx, &args.member_id, parked);
                self.synced(&args.member_id);
                if self.is_leader(&args.member_id) {
                    self.complete_sync(ctx, &args.assignments);
                }
            }
            ClassicGroupState::Stable => {
                self.synced(&args.member_id);
                let assignment = self
                    .member(&args.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                let response = sync_ok(
                    self.protocol_type.as_deref(),
                    self.protocol_name.as_deref(),
                    assignment,
                );
                reply(ctx, response);
            }
            ClassicGroupState::Empty | ClassicGroupState::Dead => {
                reply(ctx, sync_error(ErrorCode::UnknownMemberId))
            }
        }
    }

    /// The leader's assignment: persist it (members it omits get an empty one), become
    /// Stable, and answer every member waiting in SyncGroup.
    fn complete_sync(&mut self, ctx: &mut Ctx<'_>, assignments: &[(String, Bytes)]) {
        let mut by_member: BTreeMap<String, Bytes> = BTreeMap::new();
        for (member_id, assignment) in assignments {
            if self.has_member(member_id) {
                by_member.insert(member_id.clone(), assignment.clone());
            }
        }
        self.persist(ctx, Some(&by_member));
        let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        for id in ids {
            let assignment = self
                .member(&id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default();
            let response = sync_ok(
                self.protocol_type.as_deref(),
                self.protocol_name.as_deref(),
                assignment,
            );
            if self.answer_sync(ctx, &id, response) {
                // Its session may have lapsed while it waited; give it a fresh one.
                self.reschedule_heartbeat(ctx, &id);
            }
        }
    }

    pub(crate) fn heartbeat(
        &mut self,
        ctx: &mut Ctx<'_>,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), ErrorCode> {
        if self.is_state(ClassicGroupState::Dead) {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        self.validate_member(member_id, instance_id)?;
        if generation_id != self.generation_id {
            return Err(ErrorCode::IllegalGeneration);
        }
        match self.state {
            ClassicGroupState::Empty | ClassicGroupState::Dead => Err(ErrorCode::UnknownMemberId),
            ClassicGroupState::PreparingRebalance => {
                self.reschedule_heartbeat(ctx, member_id);
                Err(ErrorCode::RebalanceInProgress)
            }
            ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable => {
                self.reschedule_heartbeat(ctx, member_id);
                Ok(())
            }
        }
    }

    /// Removes the named members; returns one outcome per entry.
    pub(crate) fn leave(
        &mut self,
        ctx: &mut Ctx<'_>,
        leaving: &[Leaving],
    ) -> Vec<Result<(), ErrorCode>> {
        let mut results = Vec::with_capacity(leaving.len());
        let mut any_left = false;
        for member in leaving {
            let result = if member.member_id.is_empty() {
                // Admin removal of a static member by instance id.
                match member
                    .instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i).cloned())
                {
                    Some(member_id) => {
                        self.remove_and_answer(ctx, &member_id);
                        Ok(())
                    }
                    None => Err(ErrorCode::UnknownMemberId),
                }
            } else if self.is_pending_member(&member.member_id) {
                self.remove(&member.member_id);
                Ok(())
            } else {
                self.validate_member(&member.member_id, member.instance_id.as_deref())
                    .map(|()| self.remove_and_answer(ctx, &member.member_id))
            };
            any_left |= result.is_ok();
            results.push(result);
        }
        if any_left {
            match self.state {
                ClassicGroupState::Stable | ClassicGroupState::CompletingRebalance => self
                    .maybe_prepare_rebalance_or_complete_join(ctx, || {
                        "members left through LeaveGroup".to_owned()
                    }),
                ClassicGroupState::PreparingRebalance => self.maybe_complete_join_phase(ctx),
                _ => {}
            }
        }
        results
    }
}
