//! Join/sync/heartbeat/leave flows of classic groups.

mod common;

use common::*;
use strom_coordinator::*;
use strom_types::ErrorCode;

#[test]
fn two_members_join_leader_gets_metadata_followers_do_not() {
    let mut shard = shard();
    let (a, out) = join_two_step(&mut shard, 0, 1, "g", "ca", &["t1"]);
    assert!(
        out.replies.is_empty(),
        "join is parked during the initial delay"
    );
    let (b, out) = join_two_step(&mut shard, 0, 2, "g", "cb", &["t2"]);
    assert!(out.replies.is_empty());
    assert_eq!(shard.next_deadline_ms(), Some(0));

    let out = settle(&mut shard, 0);
    let leader = join_of(&out, 1);
    let follower = join_of(&out, 2);
    assert_eq!(leader.error_code, 0);
    assert_eq!(leader.generation_id, 1);
    assert_eq!(leader.leader.to_string(), a);
    assert_eq!(leader.member_id.to_string(), a);
    assert_eq!(leader.protocol_name.as_deref(), Some("range"));
    assert_eq!(leader.protocol_type.as_deref(), Some("consumer"));
    let members: Vec<(String, bytes::Bytes)> = leader
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.metadata.clone()))
        .collect();
    assert_eq!(
        members,
        vec![
            (a.clone(), subscription(&["t1"])),
            (b.clone(), subscription(&["t2"]))
        ]
    );
    assert_eq!(follower.generation_id, 1);
    assert_eq!(follower.leader.to_string(), a);
    assert_eq!(follower.member_id.to_string(), b);
    assert!(follower.members.is_empty());
    assert!(
        out.records.is_empty(),
        "nothing is persisted before the leader syncs"
    );

    // The follower syncs first and waits; the leader's sync answers both.
    let out = shard.sync_group(1, 10, 3, sync_req("g", &b, 1, &[]));
    assert!(out.replies.is_empty());
    let out = shard.sync_group(
        2,
        11,
        3,
        sync_req("g", &a, 1, &[(&a, b"for-a"), (&b, b"for-b")]),
    );
    assert_eq!(out.records.len(), 1);
    assert_eq!(sync_of(&out, 11).assignment.as_ref(), b"for-a");
    assert_eq!(sync_of(&out, 10).assignment.as_ref(), b"for-b");
    assert_eq!(out.replies.len(), 2);

    let out = shard.heartbeat(3, 12, 4, heartbeat_req("g", &a, 1));
    assert_eq!(heartbeat_of(&out, 12), 0);
}

#[test]
fn three_members_and_missing_assignment_is_empty() {
    let mut shard = shard();
    let (a, _) = join_two_step(&mut shard, 0, 1, "g", "c", &["t"]);
    let (b, _) = join_two_step(&mut shard, 0, 2, "g", "c", &["t"]);
    let (c, _) = join_two_step(&mut shard, 0, 3, "g", "c", &["t"]);
    let out = settle(&mut shard, 0);
    assert_eq!(join_of(&out, 1).members.len(), 3);
    assert!(join_of(&out, 2).members.is_empty());
    assert!(join_of(&out, 3).members.is_empty());
    assert_eq!(join_of(&out, 3).leader.to_string(), a);
    let out = shard.sync_group(0, 4, 3, sync_req("g", &a, 1, &[(&b, b"B")]));
    assert_eq!(sync_of(&out, 4).assignment.as_ref(), b"");
    let out = shard.sync_group(0, 5, 3, sync_req("g", &b, 1, &[]));
    assert_eq!(sync_of(&out, 5).assignment.as_ref(), b"B");
    let out = shard.sync_group(0, 6, 3, sync_req("g", &c, 1, &[]));
    assert_eq!(sync_of(&out, 6).assignment.as_ref(), b"");
}

#[test]
fn member_id_required_then_pending_member_expires() {
    let mut shard = shard();
    let out = shard.join_group(0, 1, 4, &client("c"), join_req("g", "", &range(&["t"])));
    let resp = join_of(&out, 1);
    assert_eq!(resp.error_code, ErrorCode::MemberIdRequired.code());
    assert_eq!(resp.generation_id, -1);
    let pending = resp.member_id.to_string();
    // v3 joins in one step.
    let out = shard.join_group(0, 2, 3, &client("old"), join_req("g2", "", &range(&["t"])));
    assert!(out.replies.is_empty());
    let out = settle(&mut shard, 0);
    assert_eq!(join_of(&out, 2).generation_id, 1);

    // The pending id is forgotten after the session timeout.
    let out = shard.tick(i64::from(SESSION_MS));
    assert!(out.replies.is_empty());
    let out = shard.join_group(
        SESSION_MS as i64,
        3,
        5,
        &client("c"),
        join_req("g", &pending, &range(&["t"])),
    );
    assert_eq!(
        join_of(&out, 3).error_code,
        ErrorCode::UnknownMemberId.code()
    );
}

#[test]
fn join_validation_errors() {
    let mut shard = shard();
    let bad_session = join_req("g", "", &range(&["t"])).with_session_timeout_ms(5_999);
    let out = shard.join_group(0, 1, 5, &client("c"), bad_session);
    assert_eq!(
        join_of(&out, 1).error_code,
        ErrorCode::InvalidSessionTimeout.code()
    );
    let too_long = join_req("g", "", &range(&["t"])).with_session_timeout_ms(1_800_001);
    let out = shard.join_group(0, 2, 5, &client("c"), too_long);
    assert_eq!(
        join_of(&out, 2).error_code,
        ErrorCode::InvalidSessionTimeout.code()
    );
    let out = shard.join_group(0, 3, 5, &client("c"), join_req("", "", &range(&["t"])));
    assert_eq!(
        join_of(&out, 3).error_code,
        ErrorCode::InvalidGroupId.code()
    );
    let out = shard.join_group(
        0,
        4,
        5,
        &client("c"),
        join_req("nope", "m-1", &range(&["t"])),
    );
    let resp = join_of(&out, 4);
    assert_eq!(resp.error_code, ErrorCode::UnknownMemberId.code());
    assert_eq!(resp.member_id.to_string(), "m-1");
    // No protocols at all is inconsistent.
    let out = shard.join_group(0, 5, 5, &client("c"), join_req("g", "", &[]));
    assert_eq!(
        join_of(&out, 5).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    // v6 responses carry a non-null protocol name.
    assert_eq!(join_of(&out, 5).protocol_name.as_deref(), Some(""));
}

#[test]
fn inconsistent_protocol_with_existing_members() {
    let mut shard = shard();
    let (_a, _b) = stable_pair(&mut shard);
    let out = shard.join_group(
        0,
        9,
        5,
        &client("c"),
        join_req("g", "", &[("roundrobin", subscription(&["t"]))]),
    );
    assert_eq!(
        join_of(&out, 9).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    let other_type = join_req("g", "", &range(&["t"])).with_protocol_type(s("connect"));
    let out = shard.join_group(0, 10, 5, &client("c"), other_type);
    assert_eq!(
        join_of(&out, 10).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
}

#[test]
fn protocol_selection_by_vote() {
    let mut shard = shard();
    let meta = subscription(&["t"]);
    // a prefers roundrobin, b and c prefer range; "sticky" is not supported by everyone.
    let joins = [
        (
            "ca",
            vec![
                ("sticky", meta.clone()),
                ("roundrobin", meta.clone()),
                ("range", meta.clone()),
            ],
        ),
        (
            "cb",
            vec![("range", meta.clone()), ("roundrobin", meta.clone())],
        ),
        (
            "cc",
            vec![("range", meta.clone()), ("roundrobin", meta.clone())],
        ),
    ];
    for (i, (cid, protocols)) in joins.iter().enumerate() {
        let rid = i as u64 + 1;
        let out = shard.join_group(0, rid, 3, &client(cid), join_req("g", "", protocols));
        assert!(out.replies.is_empty());
    }
    let out = settle(&mut shard, 0);
    assert_eq!(join_of(&out, 1).protocol_name.as_deref(), Some("range"));
    assert_eq!(join_of(&out, 1).members[0].metadata, meta);
}

#[test]
fn leave_triggers_rebalance_and_rest_rejoin_with_new_generation() {
    let mut shard = shard();
    let (a, b) = stable_pair(&mut shard);
    let leave = kafka_protocol::messages::LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(&a));
    let out = shard.leave_group(1, 20, 2, leave);
    match out.reply_for(20) {
        Some(Reply::LeaveGroup(r)) => assert_eq!(r.error_code, 0),
        other => panic!("{other:?}"),
    }
    let out = shard.heartbeat(2, 21, 4, heartbeat_req("g", &b, 1));
    assert_eq!(
        heartbeat_of(&out, 21),
        ErrorCode::RebalanceInProgress.code()
    );
    let out = shard.sync_group(2, 22, 3, sync_req("g", &b, 1, &[]));
    assert_eq!(
        sync_of(&out, 22).error_code,
        ErrorCode::RebalanceInProgress.code()
    );

    // b rejoins: it is the only member, so the join completes at once with b leading.
    let out = shard.join_group(3, 23, 5, &client("cb"), join_req("g", &b, &range(&["t"])));
    let resp = join_of(&out, 23);
    assert_eq!(resp.generation_id, 2);
    assert_eq!(resp.leader.to_string(), b);
    assert_eq!(resp.members.len(), 1);
    let out = shard.heartbeat(4, 24, 4, heartbeat_req("g", &b, 1));
    assert_eq!(heartbeat_of(&out, 24), ErrorCode::IllegalGeneration.code());
    let out = shard.heartbeat(4, 25, 4, heartbeat_req("g", &a, 2));
    assert_eq!(heartbeat_of(&out, 25), ErrorCode::UnknownMemberId.code());
}

#[test]
fn heartbeat_expiry_evicts_member_and_rebalances() {
    let mut shard = shard();
    let (a, b) = stable_pair(&mut shard);
    // a keeps heartbeating, b goes silent.
    let out = shard.heartbeat(6_000, 30, 4, heartbeat_req("g", &a, 1));
    assert_eq!(heartbeat_of(&out, 30), 0);
    assert_eq!(shard.next_deadline_ms(), Some(i64::from(SESSION_MS)));
    let out = shard.tick(i64::from(SESSION_MS) - 1);
    assert!(out.is_empty());
    let out = shard.tick(i64::from(SESSION_MS));
    assert!(out.replies.is_empty());
    let out = shard.heartbeat(10_001, 31, 4, heartbeat_req("g", &a, 1));
    assert_eq!(
        heartbeat_of(&out, 31),
        ErrorCode::RebalanceInProgress.code()
    );
    let out = shard.heartbeat(10_001, 32, 4, heartbeat_req("g", &b, 1));
    assert_eq!(heartbeat_of(&out, 32), ErrorCode::UnknownMemberId.code());
    let out = shard.join_group(
        10_002,
        33,
        5,
        &client("ca"),
        join_req("g", &a, &range(&["t"])),
    );
    assert_eq!(join_of(&out, 33).generation_id, 2);
    assert_eq!(join_of(&out, 33).members.len(), 1);
}

#[test]
fn rebalance_timeout_drops_members_that_do_not_rejoin() {
    let mut shard = shard();
    let (a, b) = stable_pair(&mut shard);
    // The leader rejoins, forcing a rebalance; b keeps heartbeating but never rejoins.
    let out = shard.join_group(100, 40, 5, &client("ca"), join_req("g", &a, &range(&["t"])));
    assert!(out.replies.is_empty());
    for (i, at) in [5_000i64, 14_000, 23_000].into_iter().enumerate() {
        let out = shard.heartbeat(at, 41 + i as u64, 4, heartbeat_req("g", &b, 1));
        assert_eq!(
            heartbeat_of(&out, 41 + i as u64),
            ErrorCode::RebalanceInProgress.code()
        );
        assert!(shard.tick(at).replies.is_empty());
    }
    let deadline = 100 + i64::from(REBALANCE_MS);
    assert_eq!(shard.next_deadline_ms(), Some(deadline));
    assert!(shard.tick(deadline - 1).replies.is_empty());
    let out = shard.tick(deadline);
    let resp = join_of(&out, 40);
    assert_eq!(resp.generation_id, 2);
    assert_eq!(resp.leader.to_string(), a);
    assert_eq!(resp.members.len(), 1);
    let out = shard.heartbeat(deadline, 45, 4, heartbeat_req("g", &b, 2));
    assert_eq!(heartbeat_of(&out, 45), ErrorCode::UnknownMemberId.code());
}

#[test]
fn sync_and_heartbeat_errors() {
    let mut shard = shard();
    let (a, b) = stable_pair(&mut shard);
    let out = shard.sync_group(1, 50, 3, sync_req("g", &a, 7, &[]));
    assert_eq!(
        sync_of(&out, 50).error_code,
        ErrorCode::IllegalGeneration.code()
    );
    let out = shard.sync_group(1, 51, 3, sync_req("g", "ghost", 1, &[]));
    assert_eq!(
        sync_of(&out, 51).error_code,
        ErrorCode::UnknownMemberId.code()
    );
    let out = shard.sync_group(1, 52, 3, sync_req("nope", "ghost", 1, &[]));
    assert_eq!(
        sync_of(&out, 52).error_code,
        ErrorCode::UnknownMemberId.code()
    );
    let v5 = sync_req("g", &b, 1, &[])
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("roundrobin")));
    let out = shard.sync_group(1, 53, 5, v5);
    assert_eq!(
        sync_of(&out, 53).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    let v5 = sync_req("g", &b, 1, &[])
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")));
    let out = shard.sync_group(1, 54, 5, v5);
    let resp = sync_of(&out, 54);
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.protocol_name.as_deref(), Some("range"));
    assert_eq!(resp.assignment.as_ref(), b"B");
    let out = shard.heartbeat(1, 55, 4, heartbeat_req("g", &a, 0));
    assert_eq!(heartbeat_of(&out, 55), ErrorCode::IllegalGeneration.code());
    let out = shard.heartbeat(1, 56, 4, heartbeat_req("nope", &a, 1));
    assert_eq!(heartbeat_of(&out, 56), ErrorCode::UnknownMemberId.code());
    let out = shard.heartbeat(1, 57, 4, heartbeat_req("", &a, 1));
    assert_eq!(heartbeat_of(&out, 57), ErrorCode::InvalidGroupId.code());
}

#[test]
fn follower_rejoin_in_stable_with_same_metadata_gets_current_generation() {
    let mut shard = shard();
    let (a, b) = stable_pair(&mut shard);
    let out = shard.join_group(1, 60, 5, &client("cb"), join_req("g", &b, &range(&["t"])));
    let resp = join_of(&out, 60);
    assert_eq!(
        (resp.generation_id, resp.leader.to_string()),
        (1, a.clone())
    );
    assert!(resp.members.is_empty());
    // Changed metadata forces a rebalance; a must rejoin.
    let out = shard.join_group(
        1,
        61,
        5,
        &client("cb"),
        join_req("g", &b, &range(&["t", "u"])),
    );
    assert!(out.replies.is_empty());
    let out = shard.join_group(2, 62, 5, &client("ca"), join_req("g", &a, &range(&["t"])));
    assert_eq!(join_of(&out, 61).generation_id, 2);
    assert_eq!(join_of(&out, 62).generation_id, 2);
}

#[test]
fn group_max_size() {
    let mut shard = GroupCoordinatorShard::new(GroupConfig {
        initial_rebalance_delay_ms: 0,
        max_size: 1,
        ..GroupConfig::default()
    });
    let out = shard.join_group(0, 1, 3, &client("a"), join_req("g", "", &range(&["t"])));
    assert!(out.replies.is_empty());
    let out = shard.join_group(0, 2, 3, &client("b"), join_req("g", "", &range(&["t"])));
    let resp = join_of(&out, 2);
    assert_eq!(resp.error_code, ErrorCode::GroupMaxSizeReached.code());
    assert_eq!(resp.member_id.to_string(), "");
}
