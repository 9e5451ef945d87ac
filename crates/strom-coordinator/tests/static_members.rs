//! group.instance.id: restarts without rebalance, fencing, removal by instance id.

mod common;

use common::*;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use strom_coordinator::*;
use strom_types::ErrorCode;

fn static_join(group: &str, member_id: &str, instance: &str, topics: &[&str]) -> JoinGroupRequest {
    join_req(group, member_id, &range(topics)).with_group_instance_id(Some(s(instance)))
}

/// Two static members "i1" (leader) and "i2", Stable at generation 1.
fn stable_static(shard: &mut GroupCoordinatorShard) -> (String, String) {
    assert!(shard
        .join_group(0, 1, 5, &client("c1"), static_join("g", "", "i1", &["t"]))
        .replies
        .is_empty());
    assert!(shard
        .join_group(0, 2, 5, &client("c2"), static_join("g", "", "i2", &["t"]))
        .replies
        .is_empty());
    let out = settle(shard, 0);
    let (m1, m2) = (
        join_of(&out, 1).member_id.to_string(),
        join_of(&out, 2).member_id.to_string(),
    );
    assert!(m1.starts_with("i1-") && m2.starts_with("i2-"), "{m1} {m2}");
    assert_eq!(join_of(&out, 1).leader.to_string(), m1);
    let out = shard.sync_group(
        0,
        3,
        3,
        sync_req("g", &m1, 1, &[(&m1, b"A1"), (&m2, b"A2")]).with_group_instance_id(Some(s("i1"))),
    );
    assert_eq!(sync_of(&out, 3).assignment.as_ref(), b"A1");
    (m1, m2)
}

#[test]
fn static_follower_restart_keeps_assignment_without_rebalance() {
    let mut shard = shard();
    let (m1, m2) = stable_static(&mut shard);
    // i2 restarts and joins with an unknown member id (v5: no member id round trip for static members).
    let out = shard.join_group(
        1_000,
        10,
        5,
        &client("c2"),
        static_join("g", "", "i2", &["t"]),
    );
    assert_eq!(out.records.len(), 1, "the new member id is persisted");
    let resp = join_of(&out, 10);
    let new_m2 = resp.member_id.to_string();
    assert_ne!(new_m2, m2);
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.generation_id, 1, "no rebalance");
    assert_eq!(resp.leader.to_string(), m1);
    assert!(resp.members.is_empty());
    let out = shard.sync_group(
        1_000,
        11,
        3,
        sync_req("g", &new_m2, 1, &[]).with_group_instance_id(Some(s("i2"))),
    );
    assert_eq!(sync_of(&out, 11).assignment.as_ref(), b"A2");
    // The leader sees no rebalance either.
    let out = shard.heartbeat(
        1_000,
        12,
        4,
        heartbeat_req("g", &m1, 1).with_group_instance_id(Some(s("i1"))),
    );
    assert_eq!(heartbeat_of(&out, 12), 0);
    // The old incarnation is fenced.
    let out = shard.heartbeat(
        1_000,
        13,
        4,
        heartbeat_req("g", &m2, 1).with_group_instance_id(Some(s("i2"))),
    );
    assert_eq!(heartbeat_of(&out, 13), ErrorCode::FencedInstanceId.code());
    let out = shard.sync_group(
        1_000,
        14,
        3,
        sync_req("g", &m2, 1, &[]).with_group_instance_id(Some(s("i2"))),
    );
    assert_eq!(
        sync_of(&out, 14).error_code,
        ErrorCode::FencedInstanceId.code()
    );
    let out = shard.join_group(
        1_000,
        15,
        5,
        &client("c2"),
        static_join("g", &m2, "i2", &["t"]),
    );
    assert_eq!(
        join_of(&out, 15).error_code,
        ErrorCode::FencedInstanceId.code()
    );
    // An unknown instance id is an unknown member.
    let out = shard.heartbeat(
        1_000,
        16,
        4,
        heartbeat_req("g", &m2, 1).with_group_instance_id(Some(s("i9"))),
    );
    assert_eq!(heartbeat_of(&out, 16), ErrorCode::UnknownMemberId.code());
}

#[test]
fn static_leader_restart_old_client_acts_as_follower_new_client_skips_assignment() {
    let mut shard = shard();
    let (m1, m2) = stable_static(&mut shard);
    // v5 client: told the previous leader id, so it just syncs for its kept assignment.
    let out = shard.join_group(1, 20, 5, &client("c1"), static_join("g", "", "i1", &["t"]));
    let resp = join_of(&out, 20);
    let new_m1 = resp.member_id.to_string();
    assert_eq!(
        (resp.generation_id, resp.leader.to_string()),
        (1, m1.clone())
    );
    assert!(!resp.skip_assignment);
    let out = shard.sync_group(
        1,
        21,
        3,
        sync_req("g", &new_m1, 1, &[]).with_group_instance_id(Some(s("i1"))),
    );
    assert_eq!(sync_of(&out, 21).assignment.as_ref(), b"A1");
    // v9 client: told it leads, with the member list, and to skip assigning.
    let out = shard.join_group(2, 22, 9, &client("c1"), static_join("g", "", "i1", &["t"]));
    let resp = join_of(&out, 22);
    let newest = resp.member_id.to_string();
    assert_eq!(resp.leader.to_string(), newest);
    assert!(resp.skip_assignment);
    let ids: Vec<String> = resp
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    assert_eq!(ids, vec![m2.clone(), newest.clone()]);
    assert_eq!(resp.members[1].group_instance_id.as_deref(), Some("i1"));
}

#[test]
fn static_restart_with_other_protocol_rebalances() {
    let mut shard = shard();
    let (_m1, _m2) = stable_static(&mut shard);
    let meta = subscription(&["t"]);
    // i2 now prefers roundrobin but still supports range: the selected protocol stays range.
    let req = join_req(
        "g",
        "",
        &[("roundrobin", meta.clone()), ("range", meta.clone())],
    )
    .with_group_instance_id(Some(s("i2")));
    let out = shard.join_group(1, 30, 5, &client("c2"), req);
    assert_eq!(join_of(&out, 30).generation_id, 1);
    // A protocol vote that changes the outcome triggers a rebalance instead.
    let mut shard = common::shard();
    let (m1, _m2) = stable_static(&mut shard);
    let out = shard.join_group(
        1,
        31,
        5,
        &client("c1"),
        join_req(
            "g",
            &m1,
            &[("range", meta.clone()), ("roundrobin", meta.clone())],
        )
        .with_group_instance_id(Some(s("i1"))),
    );
    assert!(out.replies.is_empty(), "leader rejoin starts a rebalance");
}

#[test]
fn static_member_removed_by_instance_id_and_after_session_timeout() {
    let mut shard = shard();
    let (m1, m2) = stable_static(&mut shard);
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            leave_group_request::MemberIdentity::default()
                .with_member_id(s(""))
                .with_group_instance_id(Some(s("i2"))),
            leave_group_request::MemberIdentity::default()
                .with_member_id(s(""))
                .with_group_instance_id(Some(s("nobody"))),
            leave_group_request::MemberIdentity::default()
                .with_member_id(s(&m2))
                .with_group_instance_id(Some(s("i1"))),
        ]);
    let out = shard.leave_group(5, 40, 4, leave);
    let Some(Reply::LeaveGroup(resp)) = out.reply_for(40) else {
        panic!()
    };
    assert_eq!(resp.error_code, 0);
    let codes: Vec<(String, Option<String>, i16)> = resp
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_deref().map(str::to_owned),
                m.error_code,
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (String::new(), Some("i2".into()), 0),
            (
                String::new(),
                Some("nobody".into()),
                ErrorCode::UnknownMemberId.code()
            ),
            (
                m2.clone(),
                Some("i1".into()),
                ErrorCode::FencedInstanceId.code()
            ),
        ]
    );
    let out = shard.heartbeat(6, 41, 4, heartbeat_req("g", &m1, 1));
    assert_eq!(
        heartbeat_of(&out, 41),
        ErrorCode::RebalanceInProgress.code()
    );
}

#[test]
fn replaced_static_member_parked_join_is_fenced() {
    let mut shard = common::shard();
    let (m1, _m2) = stable_static(&mut shard);
    assert!(shard
        .join_group(1, 52, 5, &client("c1"), static_join("g", &m1, "i1", &["t"]))
        .replies
        .is_empty());
    // A second incarnation of i1 replaces the parked one, which is fenced.
    let out = shard.join_group(2, 53, 5, &client("c1"), static_join("g", "", "i1", &["t"]));
    let fenced = join_of(&out, 52);
    assert_eq!(fenced.error_code, ErrorCode::FencedInstanceId.code());
    assert_eq!(fenced.member_id.to_string(), m1);
    assert!(
        out.reply_for(53).is_none(),
        "the new incarnation waits for i2"
    );
}

fn delete_code(shard: &mut GroupCoordinatorShard, now: i64, rid: u64) -> i16 {
    let req = DeleteGroupsRequest::default().with_groups_names(vec![gid("g")]);
    let out = shard.delete_groups(now, rid, 2, req);
    let Some(Reply::DeleteGroups(r)) = out.reply_for(rid) else {
        panic!("{out:?}")
    };
    r.results[0].error_code
}

/// librdkafka 0081: static members commit on close and send no LeaveGroup; they stay
/// members until the session (counted from that commit) is over, then the group is
/// empty and can be deleted.
#[test]
fn closed_static_members_stay_until_their_session_ends() {
    let mut shard = shard();
    let (m1, m2) = stable_static(&mut shard);
    let hb = shard.heartbeat(1_000, 10, 4, heartbeat_req("g", &m2, 1));
    assert_eq!(heartbeat_of(&hb, 10), 0);
    // m1's commit on close counts as liveness, as in Kafka.
    let partition = OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(7);
    let commit = OffsetCommitRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(&m1))
        .with_generation_id_or_member_epoch(1)
        .with_group_instance_id(Some(s("i1")))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![partition])]);
    let out = shard.offset_commit(2_000, 11, 8, commit);
    assert!(!out.records.is_empty());
    let session = i64::from(SESSION_MS);
    assert_eq!(shard.next_deadline_ms(), Some(1_000 + session));
    assert_eq!(
        delete_code(&mut shard, 1_000 + session - 1, 12),
        code(ErrorCode::NonEmptyGroup)
    );
    // m2's session ends (the group starts rebalancing): m1 is still there.
    shard.tick(1_000 + session);
    assert_eq!(
        delete_code(&mut shard, 1_000 + session, 13),
        code(ErrorCode::NonEmptyGroup)
    );
    assert_eq!(shard.next_deadline_ms(), Some(2_000 + session));
    shard.tick(2_000 + session);
    assert_eq!(delete_code(&mut shard, 2_000 + session, 14), 0);
}
