//! Test helpers: building requests and picking replies out of outputs.
#![allow(dead_code)]

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use strom_coordinator::*;

pub mod consumer;

pub const SESSION_MS: i32 = 10_000;
pub const REBALANCE_MS: i32 = 30_000;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

pub fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

/// Consumer-protocol subscription bytes (version prefix + v0 body).
pub fn subscription(topics: &[&str]) -> Bytes {
    let sub =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    sub.encode(&mut buf, 0).unwrap();
    buf.freeze()
}

pub fn client(id: &str) -> ClientInfo {
    ClientInfo {
        client_id: id.to_owned(),
        client_host: "/10.0.0.1".to_owned(),
    }
}

/// A shard with no initial rebalance delay unless a test asks for one.
pub fn shard() -> GroupCoordinatorShard {
    GroupCoordinatorShard::new(GroupConfig {
        initial_rebalance_delay_ms: 0,
        ..GroupConfig::default()
    })
}

pub fn join_req(group: &str, member_id: &str, protocols: &[(&str, Bytes)]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(REBALANCE_MS)
        .with_protocol_type(s("consumer"))
        .with_protocols(
            protocols
                .iter()
                .map(|(name, meta)| {
                    JoinGroupRequestProtocol::default()
                        .with_name(s(name))
                        .with_metadata(meta.clone())
                })
                .collect(),
        )
}

pub fn range(topics: &[&str]) -> Vec<(&'static str, Bytes)> {
    vec![("range", subscription(topics))]
}

pub fn sync_req(
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_generation_id(generation)
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        )
}

pub fn heartbeat_req(group: &str, member_id: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member_id))
        .with_generation_id(generation)
}

pub fn join_of(out: &Output, request_id: u64) -> JoinGroupResponse {
    match out.reply_for(request_id) {
        Some(Reply::JoinGroup(r)) => r.clone(),
        other => panic!("no JoinGroup reply for {request_id}: {other:?}"),
    }
}

pub fn sync_of(out: &Output, request_id: u64) -> SyncGroupResponse {
    match out.reply_for(request_id) {
        Some(Reply::SyncGroup(r)) => r.clone(),
        other => panic!("no SyncGroup reply for {request_id}: {other:?}"),
    }
}

pub fn heartbeat_of(out: &Output, request_id: u64) -> i16 {
    match out.reply_for(request_id) {
        Some(Reply::Heartbeat(r)) => r.error_code,
        other => panic!("no Heartbeat reply for {request_id}: {other:?}"),
    }
}

pub fn code(e: strom_types::ErrorCode) -> i16 {
    e.code()
}

/// Joins a dynamic member with the v4+ two-step join; returns its member id.
/// The second JoinGroup (request id `rid`) is left parked or answered in the returned output.
pub fn join_two_step(
    shard: &mut GroupCoordinatorShard,
    now: i64,
    rid: u64,
    group: &str,
    cid: &str,
    topics: &[&str],
) -> (String, Output) {
    let first = shard.join_group(
        now,
        rid * 1000,
        5,
        &client(cid),
        join_req(group, "", &range(topics)),
    );
    let resp = join_of(&first, rid * 1000);
    assert_eq!(
        resp.error_code,
        code(strom_types::ErrorCode::MemberIdRequired)
    );
    let member_id = resp.member_id.to_string();
    assert!(member_id.starts_with(&format!("{cid}-")), "{member_id}");
    let out = shard.join_group(
        now,
        rid,
        5,
        &client(cid),
        join_req(group, &member_id, &range(topics)),
    );
    (member_id, out)
}

/// Two dynamic members in a Stable group `g` at generation 1; returns (leader, follower).
pub fn stable_pair(shard: &mut GroupCoordinatorShard) -> (String, String) {
    let (a, _) = join_two_step(shard, 0, 1, "g", "ca", &["t"]);
    let (b, _) = join_two_step(shard, 0, 2, "g", "cb", &["t"]);
    let out = settle(shard, 0);
    assert_eq!(join_of(&out, 1).generation_id, 1);
    assert_eq!(join_of(&out, 1).leader.to_string(), a);
    let out = shard.sync_group(0, 3, 3, sync_req("g", &a, 1, &[(&a, b"A"), (&b, b"B")]));
    assert_eq!(sync_of(&out, 3).assignment.as_ref(), b"A");
    let out = shard.sync_group(0, 4, 3, sync_req("g", &b, 1, &[]));
    assert_eq!(sync_of(&out, 4).assignment.as_ref(), b"B");
    (a, b)
}

/// Ticks until nothing is due at `now` (as a runtime would), merging the outputs.
pub fn settle(shard: &mut GroupCoordinatorShard, now: i64) -> Output {
    let mut all = Output::default();
    for _ in 0..16 {
        let out = shard.tick(now);
        all.records.extend(out.records);
        all.replies.extend(out.replies);
        if shard.next_deadline_ms().is_none_or(|d| d > now) {
            break;
        }
    }
    all
}
