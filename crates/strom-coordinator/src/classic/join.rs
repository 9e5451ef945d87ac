//! JoinGroup for classic groups: new, pending, existing and static members.

use bytes::Bytes;
use strom_types::ErrorCode;

use super::group::{ClassicGroup, ClassicGroupState, ClassicMember, Parked, Protocol};
use super::responses::{join_error, join_ok, JoinOk};
use super::Ctx;
use crate::output::Reply;

/// JoinGroup v4+ hands out a member id first (MEMBER_ID_REQUIRED).
const REQUIRES_KNOWN_MEMBER_ID_VERSION: i16 = 4;
/// JoinGroup v9+ can tell a replaced static leader to skip the assignment.
const SKIP_ASSIGNMENT_VERSION: i16 = 9;

/// A JoinGroup request, normalized across versions.
#[derive(Debug, Clone)]
pub(crate) struct JoinArgs {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<Protocol>,
}

impl ClassicGroup {
    pub(crate) fn join(&mut self, ctx: &mut Ctx<'_>, parked: Parked, args: JoinArgs) {
        if !self.accept_joining_member(&args.member_id, ctx.config.max_size) {
            self.remove_and_answer(ctx, &args.member_id);
            self.reply_join_error(ctx, parked, "", ErrorCode::GroupMaxSizeReached);
        } else if args.member_id.is_empty() {
            self.join_new_member(ctx, parked, args);
        } else {
            self.join_existing_member(ctx, parked, args);
        }
    }

    fn reply_join_error(
        &self,
        ctx: &mut Ctx<'_>,
        parked: Parked,
        member_id: &str,
        error: ErrorCode,
    ) {
        ctx.out.reply(
            parked.request_id,
            Reply::JoinGroup(join_error(parked.api_version, member_id, error)),
        );
    }

    fn accept_joining_member(&self, member_id: &str, max_size: i32) -> bool {
        let max_size = usize::try_from(max_size).unwrap_or(0);
        match self.state {
            ClassicGroupState::Empty | ClassicGroupState::Dead => true,
            // Counting awaiting members lets the last rejoiners be turned away if the group shrank its limit.
            ClassicGroupState::PreparingRebalance => {
                self.member(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || self.num_awaiting_join() < max_size
            }
            ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable => {
                self.has_member(member_id) || self.members.len() < max_size
            }
        }
    }

    fn join_new_member(&mut self, ctx: &mut Ctx<'_>, parked: Parked, args: JoinArgs) {
        if self.is_state(ClassicGroupState::Dead) {
            return self.reply_join_error(ctx, parked, "", ErrorCode::CoordinatorNotAvailable);
        }
        if !self.supports_protocols(&args.protocol_type, &args.protocols) {
            return self.reply_join_error(ctx, parked, "", ErrorCode::InconsistentGroupProtocol);
        }
        let prefix = args
            .instance_id
            .as_deref()
            .unwrap_or(&args.client_id)
            .to_owned();
        let mut new_member_id = ctx.ids.next(&prefix);
        for _ in 0..8 {
            if !self.has_member(&new_member_id) && !self.is_pending_member(&new_member_id) {
                break;
            }
            new_member_id = ctx.ids.next(&prefix);
        }
        match args.instance_id.clone() {
            Some(instance_id) => match self.static_members.get(&instance_id).cloned() {
                Some(old_member_id) => self.replace_static_member_then_rebalance_or_complete_join(
                    ctx,
                    parked,
                    args,
                    &old_member_id,
                    new_member_id,
                ),
                None => self.add_member_then_rebalance(ctx, parked, args, new_member_id),
            },
            None if parked.api_version >= REQUIRES_KNOWN_MEMBER_ID_VERSION => {
                // The member must come back with this id; it expires like a session if it does not.
                self.pending_join
                    .insert(new_member_id.clone(), ctx.after(args.session_timeout_ms));
                self.reply_join_error(ctx, parked, &new_member_id, ErrorCode::MemberIdRequired);
            }
            None => self.add_member_then_rebalance(ctx, parked, args, new_member_id),
        }
    }

    fn join_existing_member(&mut self, ctx: &mut Ctx<'_>, parked: Parked, args: JoinArgs) {
        let member_id = args.member_id.clone();
        if self.is_state(ClassicGroupState::Dead) {
            return self.reply_join_error(
                ctx,
                parked,
                &member_id,
                ErrorCode::CoordinatorNotAvailable,
            );
        }
        if !self.supports_protocols(&args.protocol_type, &args.protocols) {
            return self.reply_join_error(
                ctx,
                parked,
                &member_id,
                ErrorCode::InconsistentGroupProtocol,
            );
        }
        if self.is_pending_member(&member_id) {
            if args.instance_id.is_some() {
                // Pending ids are only handed to dynamic members.
                return self.reply_join_error(
                    ctx,
                    parked,
                    &member_id,
                    ErrorCode::UnknownServerError,
                );
            }
            return self.add_member_then_rebalance(ctx, parked, args, member_id);
        }
        if let Err(error) = self.validate_member(&member_id, args.instance_id.as_deref()) {
            let response =
                join_error(parked.api_version, &member_id, error).with_protocol_name(None);
            let response = if parked.api_version < 7 {
                response.with_protocol_name(Some(Default::default()))
            } else {
                response
            };
            return ctx.out.reply(parked.request_id, Reply::JoinGroup(response));
        }
        let matches = self
            .member(&member_id)
            .is_some_and(|m| m.matches(&args.protocols));
        match self.state {
            ClassicGroupState::PreparingRebalance => {
                self.update_member_then_rebalance(ctx, parked, args)
            }
            ClassicGroupState::CompletingRebalance if matches => {
                // Probably a lost JoinGroup response: repeat it.
                let members = if self.is_leader(&member_id) {
                    self.leader_member_list()
                } else {
                    Vec::new()
                };
                self.reply_current_generation(ctx, parked, &member_id, members);
            }
            // The leader rejoining asks for a new assignment (e.g. topic metadata changed).
            ClassicGroupState::Stable if matches && !self.is_leader(&member_id) => {
                self.reply_current_generation(ctx, parked, &member_id, Vec::new());
            }
            ClassicGroupState::CompletingRebalance | ClassicGroupState::Stable => {
                self.update_member_then_rebalance(ctx, parked, args)
            }
            ClassicGroupState::Empty | ClassicGroupState::Dead => {
                self.reply_join_error(ctx, parked, &member_id, ErrorCode::UnknownMemberId)
            }
        }
    }

    fn reply_current_generation(
        &self,
        ctx: &mut Ctx<'_>,
        parked: Parked,
        member_id: &str,
        members: Vec<kafka_protocol::messages::join_group_response::JoinGroupResponseMember>,
    ) {
        let response = join_ok(
            parked.api_version,
            JoinOk {
                member_id,
                generation_id: self.generation_id,
                protocol_type: self.protocol_type.as_deref(),
                protocol_name: self.protocol_name.as_deref(),
                leader: self.leader_id.as_deref(),
                members,
                skip_assignment: false,
            },
        );
        ctx.out.reply(parked.request_id, Reply::JoinGroup(response));
    }

    fn update_member(&mut self, ctx: &mut Ctx<'_>, parked: Parked, args: JoinArgs) {
        if let Some(member) = self.member_mut(&args.member_id) {
            member.protocols = args.protocols;
            member.rebalance_timeout_ms = args.rebalance_timeout_ms;
            member.session_timeout_ms = args.session_timeout_ms;
        }
        self.park_join(ctx, &args.member_id, parked);
    }

    fn update_member_then_rebalance(&mut self, ctx: &mut Ctx<'_>, parked: Parked, args: JoinArgs) {
        let member_id = args.member_id.clone();
        self.update_member(ctx, parked, args);
        self.maybe_prepare_rebalance_or_complete_join(ctx, || {
            format!("member {member_id} rejoined")
        });
    }

    fn add_member_then_rebalance(
        &mut self,
        ctx: &mut Ctx<'_>,
        parked: Parked,
        args: JoinArgs,
        member_id: String,
    ) {
        if self.is_state(ClassicGroupState::PreparingRebalance)
            && self.previous_state == ClassicGroupState::Empty
        {
            self.new_member_added = true;
        }
        let member_id_for_log = member_id.clone();
        // A parked new member cannot heartbeat; bound how long it may wait.
        let deadline_ms = ctx.after(ctx.config.new_member_join_timeout_ms);
        self.add(ClassicMember {
            member_id,
            instance_id: args.instance_id,
            client_id: args.client_id,
            client_host: args.client_host,
            rebalance_timeout_ms: args.rebalance_timeout_ms,
            session_timeout_ms: args.session_timeout_ms,
            protocol_type: args.protocol_type,
            protocols: args.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(parked),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline_ms: Some(deadline_ms),
        });
        self.maybe_prepare_rebalance_or_complete_join(ctx, || {
            format!("new member {member_id_for_log} joined")
        });
    }

    /// A known static member rejoined with a new member id: fence the old id, keep the
    /// assignment, and rebalance only if the group's protocol would change.
    fn replace_static_member_then_rebalance_or_complete_join(
        &mut self,
        ctx: &mut Ctx<'_>,
        parked: Parked,
        args: JoinArgs,
        old_member_id: &str,
        new_member_id: String,
    ) {
        let previous_leader = self.leader_id.clone();
        let Some(instance_id) = args.instance_id.clone() else {
            return;
        };
        self.replace_static_member(ctx, &instance_id, old_member_id, &new_member_id);
        self.reschedule_heartbeat(ctx, &new_member_id);
        self.update_member(
            ctx,
            parked,
            JoinArgs {
                member_id: new_member_id.clone(),
                ..args
            },
        );
        match self.state {
            ClassicGroupState::Stable => {
                if self.select_protocol() != self.protocol_name {
                    return self.maybe_prepare_rebalance_or_complete_join(ctx, || {
                        format!("static member {instance_id} rejoined with other protocols")
                    });
                }
                self.persist(ctx, None);
                let is_leader = self.is_leader(&new_member_id);
                let skip = parked.api_version >= SKIP_ASSIGNMENT_VERSION;
                // Old clients are told the previous leader id, so a replaced leader
                // acts as a follower and just fetches its kept assignment.
                let (members, leader) = if skip && is_leader {
                    (self.leader_member_list(), self.leader_id.clone())
                } else if skip {
                    (Vec::new(), self.leader_id.clone())
                } else {
                    (Vec::new(), previous_leader)
                };
                let (generation_id, protocol_type, protocol_name) = (
                    self.generation_id,
                    self.protocol_type.clone(),
                    self.protocol_name.clone(),
                );
                self.answer_join(ctx, &new_member_id, |v| {
                    join_ok(
                        v,
                        JoinOk {
                            member_id: &new_member_id,
                            generation_id,
                            protocol_type: protocol_type.as_deref(),
                            protocol_name: protocol_name.as_deref(),
                            leader: leader.as_deref(),
                            members,
                            skip_assignment: skip && is_leader,
                        },
                    )
                });
            }
            // The leader may already hold an assignment for the old id: start over.
            ClassicGroupState::CompletingRebalance => {
                self.prepare_rebalance(ctx, &format!("static member {instance_id} replaced"))
            }
            _ => self.maybe_complete_join_phase(ctx),
        }
    }

    fn replace_static_member(
        &mut self,
        ctx: &mut Ctx<'_>,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: &str,
    ) {
        self.answer_join(ctx, old_member_id, |v| {
            join_error(v, old_member_id, ErrorCode::FencedInstanceId).with_protocol_name(if v < 7 {
                Some(Default::default())
            } else {
                None
            })
        });
        self.answer_sync(
            ctx,
            old_member_id,
            super::responses::sync_error(ErrorCode::FencedInstanceId),
        );
        let was_leader = self.is_leader(old_member_id);
        let Some(index) = self
            .members
            .iter()
            .position(|m| m.member_id == old_member_id)
        else {
            return;
        };
        let mut member = self.members.remove(index);
        member.member_id = new_member_id.to_owned();
        member.awaiting_join = None;
        member.awaiting_sync = None;
        member.is_new = false;
        self.members.push(member);
        if was_leader {
            self.leader_id = Some(new_member_id.to_owned());
        }
        self.pending_sync.remove(old_member_id);
        self.static_members
            .insert(instance_id.to_owned(), new_member_id.to_owned());
    }
}
