//! ListGroups, DescribeGroups, DeleteGroups; initial delay, sync expiry, unload.

mod common;

use common::*;
use kafka_protocol::messages::*;
use strom_coordinator::*;
use strom_types::ErrorCode;

fn list(
    shard: &mut GroupCoordinatorShard,
    version: i16,
    states: &[&str],
    types: &[&str],
) -> Vec<(String, String, String, String)> {
    let req = ListGroupsRequest::default()
        .with_states_filter(states.iter().map(|x| s(x)).collect())
        .with_types_filter(types.iter().map(|x| s(x)).collect());
    let out = shard.list_groups(0, 1, version, req);
    let Some(Reply::ListGroups(r)) = out.reply_for(1) else {
        panic!()
    };
    r.groups
        .iter()
        .map(|g| {
            (
                g.group_id.0.to_string(),
                g.protocol_type.to_string(),
                g.group_state.to_string(),
                g.group_type.to_string(),
            )
        })
        .collect()
}

fn row(id: &str, pt: &str, state: &str) -> (String, String, String, String) {
    (id.into(), pt.into(), state.into(), "classic".into())
}

/// "g" Stable, "p" PreparingRebalance (initial delay running), "simple" Empty.
fn three_groups() -> GroupCoordinatorShard {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    let _ = join_two_step(&mut shard, 0, 1, "g", "ca", &["t"]);
    let _ = settle(&mut shard, 3_000);
    let _ = shard.join_group(
        3_000,
        5,
        3,
        &client("cp"),
        join_req("p", "", &range(&["t"])),
    );
    let req = OffsetCommitRequest::default()
        .with_group_id(gid("simple"))
        .with_generation_id_or_member_epoch(-1);
    let _ = shard.offset_commit(3_000, 6, 8, req);
    shard
}

#[test]
fn list_groups_with_filters() {
    let mut shard = three_groups();
    let all = vec![
        row("g", "consumer", "CompletingRebalance"),
        row("p", "consumer", "PreparingRebalance"),
        row("simple", "", "Empty"),
    ];
    assert_eq!(list(&mut shard, 5, &[], &[]), all);
    assert_eq!(
        list(&mut shard, 4, &["preparingrebalance", " EMPTY "], &[]),
        vec![all[1].clone(), all[2].clone()]
    );
    // Before v4 the filter does not exist.
    assert_eq!(list(&mut shard, 3, &["Empty"], &[]).len(), 3);
    assert_eq!(list(&mut shard, 5, &[], &["Classic"]).len(), 3);
    assert!(list(&mut shard, 5, &[], &["consumer"]).is_empty());
    assert_eq!(
        list(&mut shard, 4, &[], &["consumer"]).len(),
        3,
        "types filter is v5+"
    );
}

#[test]
fn describe_groups_output() {
    let mut shard = shard();
    let (a, b) = stable_pair(&mut shard);
    let req = DescribeGroupsRequest::default().with_groups(vec![gid("g"), gid("nope"), gid("")]);
    let out = shard.describe_groups(0, 1, 5, req.clone());
    let Some(Reply::DescribeGroups(r)) = out.reply_for(1) else {
        panic!()
    };
    let g = &r.groups[0];
    assert_eq!(
        (
            g.error_code,
            g.group_state.as_str(),
            g.protocol_type.as_str(),
            g.protocol_data.as_str()
        ),
        (0, "Stable", "consumer", "range")
    );
    let members: Vec<(String, String, String, bytes::Bytes, Vec<u8>)> = g
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.client_id.to_string(),
                m.client_host.to_string(),
                m.member_metadata.clone(),
                m.member_assignment.to_vec(),
            )
        })
        .collect();
    assert_eq!(
        members,
        vec![
            (
                a.clone(),
                "ca".into(),
                "/10.0.0.1".into(),
                subscription(&["t"]),
                b"A".to_vec()
            ),
            (
                b.clone(),
                "cb".into(),
                "/10.0.0.1".into(),
                subscription(&["t"]),
                b"B".to_vec()
            ),
        ]
    );
    let dead = &r.groups[1];
    assert_eq!(
        (
            dead.error_code,
            dead.group_state.as_str(),
            dead.members.len()
        ),
        (0, "Dead", 0)
    );
    assert_eq!(r.groups[2].error_code, ErrorCode::InvalidGroupId.code());
    // v6 reports the unknown group as not found.
    let out = shard.describe_groups(0, 2, 6, req);
    let Some(Reply::DescribeGroups(r)) = out.reply_for(2) else {
        panic!()
    };
    assert_eq!(r.groups[1].error_code, ErrorCode::GroupIdNotFound.code());
    // Mid-rebalance: members are listed without metadata.
    let _ = shard.join_group(1, 3, 5, &client("ca"), join_req("g", &a, &range(&["t"])));
    let out = shard.describe_groups(
        1,
        4,
        5,
        DescribeGroupsRequest::default().with_groups(vec![gid("g")]),
    );
    let Some(Reply::DescribeGroups(r)) = out.reply_for(4) else {
        panic!()
    };
    assert_eq!(r.groups[0].group_state.as_str(), "PreparingRebalance");
    assert_eq!(r.groups[0].protocol_data.as_str(), "");
    assert!(r.groups[0]
        .members
        .iter()
        .all(|m| m.member_metadata.is_empty()));
}

#[test]
fn delete_groups_only_when_empty() {
    let mut shard = three_groups();
    let req = DeleteGroupsRequest::default().with_groups_names(vec![
        gid("g"),
        gid("simple"),
        gid("nope"),
        gid(""),
    ]);
    let out = shard.delete_groups(0, 1, 2, req);
    let Some(Reply::DeleteGroups(r)) = out.reply_for(1) else {
        panic!()
    };
    let codes: Vec<(String, i16)> = r
        .results
        .iter()
        .map(|x| (x.group_id.0.to_string(), x.error_code))
        .collect();
    assert_eq!(
        codes,
        vec![
            ("g".into(), ErrorCode::NonEmptyGroup.code()),
            ("simple".into(), 0),
            ("nope".into(), ErrorCode::GroupIdNotFound.code()),
            ("".into(), ErrorCode::InvalidGroupId.code()),
        ]
    );
    assert_eq!(
        out.records,
        vec![CoordinatorRecord {
            key: br#"{"type":"classic_group","group":"simple"}"#.to_vec(),
            value: None
        }]
    );
    assert_eq!(list(&mut shard, 5, &[], &[]).len(), 2);
}

#[test]
fn initial_rebalance_delay_waits_and_extends_for_new_members() {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    // rebalance timeout 30000, delay 3000.
    let _ = shard.join_group(0, 1, 3, &client("a"), join_req("g", "", &range(&["t"])));
    assert_eq!(shard.next_deadline_ms(), Some(3_000));
    let _ = shard.join_group(2_000, 2, 3, &client("b"), join_req("g", "", &range(&["t"])));
    // A member arrived during the delay: it is extended by another delay.
    assert!(shard.tick(3_000).replies.is_empty());
    assert_eq!(shard.next_deadline_ms(), Some(6_000));
    assert!(shard.tick(5_999).replies.is_empty());
    let out = shard.tick(6_000);
    assert_eq!(join_of(&out, 1).generation_id, 1);
    assert_eq!(join_of(&out, 2).generation_id, 1);
    assert_eq!(join_of(&out, 1).members.len(), 2);
}

#[test]
fn members_that_never_sync_are_removed_at_the_rebalance_timeout() {
    let mut shard = shard();
    let (a, _) = join_two_step(&mut shard, 0, 1, "g", "ca", &["t"]);
    let (b, _) = join_two_step(&mut shard, 0, 2, "g", "cb", &["t"]);
    let _ = settle(&mut shard, 0);
    let out = shard.sync_group(1, 3, 3, sync_req("g", &a, 1, &[(&a, b"A"), (&b, b"B")]));
    assert_eq!(sync_of(&out, 3).assignment.as_ref(), b"A");
    // b keeps heartbeating but never syncs.
    for at in [5_000, 14_000, 23_000] {
        let _ = shard.heartbeat(at, 4, 4, heartbeat_req("g", &b, 1));
        let _ = shard.heartbeat(at, 5, 4, heartbeat_req("g", &a, 1));
        let _ = shard.tick(at);
    }
    let _ = shard.tick(i64::from(REBALANCE_MS));
    let out = shard.heartbeat(i64::from(REBALANCE_MS), 6, 4, heartbeat_req("g", &b, 1));
    assert_eq!(heartbeat_of(&out, 6), ErrorCode::UnknownMemberId.code());
    let out = shard.heartbeat(i64::from(REBALANCE_MS), 7, 4, heartbeat_req("g", &a, 1));
    assert_eq!(heartbeat_of(&out, 7), ErrorCode::RebalanceInProgress.code());
}

#[test]
fn unload_answers_parked_requests() {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    let _ = shard.join_group(0, 1, 3, &client("a"), join_req("g", "", &range(&["t"])));
    let out = shard.unload();
    assert_eq!(
        join_of(&out, 1).error_code,
        ErrorCode::NotCoordinator.code()
    );
    assert_eq!(out.replies.len(), 1);
}
