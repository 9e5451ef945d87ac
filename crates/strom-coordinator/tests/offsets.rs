//! OffsetCommit / OffsetFetch / OffsetDelete and offset expiry.

mod common;

use common::*;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;
use strom_coordinator::*;
use strom_types::ErrorCode;

const MINUTE_MS: i64 = 60_000;
const RETENTION_MS: i64 = 10_080 * MINUTE_MS;

fn commit(
    group: &str,
    member: &str,
    generation: i32,
    parts: &[(&str, i32, i64, Option<&str>)],
) -> OffsetCommitRequest {
    let topics = parts
        .iter()
        .map(|(topic, partition, offset, metadata)| {
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(*partition)
                    .with_committed_offset(*offset)
                    .with_committed_leader_epoch(5)
                    .with_committed_metadata(metadata.map(s))])
        })
        .collect();
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(topics)
}

fn commit_codes(out: &Output, rid: u64) -> Vec<i16> {
    match out.reply_for(rid) {
        Some(Reply::OffsetCommit(r)) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// (topic, partition, offset, leader epoch, metadata) from a v8+ fetch of one group.
fn fetch_v8(
    shard: &mut GroupCoordinatorShard,
    now: i64,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> Vec<(String, i32, i64, i32, String)> {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s(t)))
                    .with_partition_indexes(ps.to_vec())
            })
            .collect()
    });
    let req = OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
        .with_group_id(gid(group))
        .with_topics(topics)]);
    let out = shard.offset_fetch(now, 77, 8, req);
    let Some(Reply::OffsetFetch(r)) = out.reply_for(77) else {
        panic!()
    };
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].error_code, 0);
    r.groups[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata.as_deref().unwrap_or("<null>").to_owned(),
                )
            })
        })
        .collect()
}

fn row(t: &str, p: i32, o: i64, e: i32, m: &str) -> (String, i32, i64, i32, String) {
    (t.to_owned(), p, o, e, m.to_owned())
}

#[test]
fn member_commit_and_fetch_with_metadata() {
    let mut shard = shard();
    let (a, _b) = stable_pair(&mut shard);
    let out = shard.offset_commit(
        10,
        1,
        8,
        commit(
            "g",
            &a,
            1,
            &[("t", 0, 100, Some("m0")), ("t", 1, 200, None)],
        ),
    );
    assert_eq!(commit_codes(&out, 1), vec![0, 0]);
    assert_eq!(out.records.len(), 2);
    let rows = fetch_v8(
        &mut shard,
        11,
        "g",
        Some(&[("t", &[0, 1, 2]), ("other", &[0])]),
    );
    assert_eq!(
        rows,
        vec![
            row("t", 0, 100, 5, "m0"),
            row("t", 1, 200, 5, ""),
            row("t", 2, -1, -1, ""),
            row("other", 0, -1, -1, "")
        ]
    );
    assert_eq!(
        fetch_v8(&mut shard, 11, "g", None),
        vec![row("t", 0, 100, 5, "m0"), row("t", 1, 200, 5, "")]
    );
    // Records carry the commit timestamp.
    let DecodedRecord::OffsetCommit { value: Some(v), .. } = out.records[0].decode().unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (v.offset, v.commit_timestamp_ms, v.expire_timestamp_ms),
        (100, 10, None)
    );
}

#[test]
fn commit_validation() {
    let mut shard = shard();
    let (a, b) = stable_pair(&mut shard);
    let out = shard.offset_commit(1, 1, 8, commit("g", &a, 2, &[("t", 0, 1, None)]));
    assert_eq!(
        commit_codes(&out, 1),
        vec![ErrorCode::IllegalGeneration.code()]
    );
    let out = shard.offset_commit(1, 2, 8, commit("g", "ghost", 1, &[("t", 0, 1, None)]));
    assert_eq!(
        commit_codes(&out, 2),
        vec![ErrorCode::UnknownMemberId.code()]
    );
    // A simple commit to a group with members is refused.
    let out = shard.offset_commit(1, 3, 8, commit("g", "", -1, &[("t", 0, 1, None)]));
    assert_eq!(
        commit_codes(&out, 3),
        vec![ErrorCode::UnknownMemberId.code()]
    );
    // Unknown group with a generation: ILLEGAL_GENERATION before v9, GROUP_ID_NOT_FOUND from v9.
    let out = shard.offset_commit(1, 4, 8, commit("nope", "m", 3, &[("t", 0, 1, None)]));
    assert_eq!(
        commit_codes(&out, 4),
        vec![ErrorCode::IllegalGeneration.code()]
    );
    let out = shard.offset_commit(1, 5, 9, commit("nope", "m", 3, &[("t", 0, 1, None)]));
    assert_eq!(
        commit_codes(&out, 5),
        vec![ErrorCode::GroupIdNotFound.code()]
    );
    let out = shard.offset_commit(1, 6, 8, commit("", "", -1, &[("t", 0, 1, None)]));
    assert_eq!(
        commit_codes(&out, 6),
        vec![ErrorCode::InvalidGroupId.code()]
    );
    // During CompletingRebalance commits wait for the new assignment.
    let _ = shard.join_group(2, 7, 5, &client("ca"), join_req("g", &a, &range(&["t"])));
    let _ = shard.join_group(2, 8, 5, &client("cb"), join_req("g", &b, &range(&["t"])));
    let out = shard.offset_commit(3, 9, 8, commit("g", &a, 2, &[("t", 0, 1, None)]));
    assert_eq!(
        commit_codes(&out, 9),
        vec![ErrorCode::RebalanceInProgress.code()]
    );
    assert!(out.records.is_empty());
}

#[test]
fn too_large_metadata_is_refused_per_partition() {
    let mut shard = shard();
    let big = "x".repeat(4097);
    let ok = "y".repeat(4096);
    let req = commit(
        "simple",
        "",
        -1,
        &[("t", 0, 1, Some(&big)), ("t", 1, 2, Some(&ok))],
    );
    let out = shard.offset_commit(0, 1, 8, req);
    assert_eq!(
        commit_codes(&out, 1),
        vec![ErrorCode::OffsetMetadataTooLarge.code(), 0]
    );
    assert_eq!(out.records.len(), 1);
    assert_eq!(
        fetch_v8(&mut shard, 0, "simple", None),
        vec![row("t", 1, 2, 5, &ok)]
    );
}

#[test]
fn simple_commits_and_old_fetch_versions() {
    let mut shard = shard();
    let out = shard.offset_commit(0, 1, 2, commit("simple", "", -1, &[("t", 0, 9, Some("s"))]));
    assert_eq!(commit_codes(&out, 1), vec![0]);
    // v2 has no leader epoch.
    let req = OffsetFetchRequest::default()
        .with_group_id(gid("simple"))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0, 1])]));
    let out = shard.offset_fetch(0, 2, 3, req);
    let Some(Reply::OffsetFetch(r)) = out.reply_for(2) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    let got: Vec<(i32, i64, i32, Option<String>)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.committed_leader_epoch,
                p.metadata.as_deref().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 9, -1, Some("s".into())),
            (1, -1, -1, Some(String::new()))
        ]
    );
    // All topics (null) of an unknown group: nothing.
    let out = shard.offset_fetch(
        0,
        3,
        7,
        OffsetFetchRequest::default()
            .with_group_id(gid("nope"))
            .with_topics(None)
            .with_require_stable(true),
    );
    let Some(Reply::OffsetFetch(r)) = out.reply_for(3) else {
        panic!()
    };
    assert!(r.topics.is_empty());
    assert_eq!(r.error_code, 0);
}

#[test]
fn v8_fetch_for_several_groups() {
    let mut shard = shard();
    let _ = shard.offset_commit(0, 1, 8, commit("g1", "", -1, &[("a", 0, 1, None)]));
    let _ = shard.offset_commit(0, 2, 8, commit("g2", "", -1, &[("b", 1, 2, Some("two"))]));
    let req = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("g1"))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("g2"))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(s("b")))
                .with_partition_indexes(vec![1])])),
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("g3"))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(gid(""))
            .with_topics(None),
    ]);
    let out = shard.offset_fetch(0, 3, 9, req);
    let Some(Reply::OffsetFetch(r)) = out.reply_for(3) else {
        panic!()
    };
    type GroupSummary = (String, i16, Vec<(String, i32, i64)>);
    let summary: Vec<GroupSummary> = r
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.0.to_string(),
                g.error_code,
                g.topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
                    })
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("g1".into(), 0, vec![("a".into(), 0, 1)]),
            ("g2".into(), 0, vec![("b".into(), 1, 2)]),
            ("g3".into(), 0, vec![]),
            ("".into(), ErrorCode::InvalidGroupId.code(), vec![]),
        ]
    );
}

#[test]
fn offsets_expire_only_after_group_is_empty_for_retention() {
    let mut shard = shard();
    let (a, b) = stable_pair(&mut shard);
    let _ = shard.offset_commit(0, 1, 8, commit("g", &a, 1, &[("t", 0, 5, None)]));
    // Long after retention, a live group keeps its offsets (members keep heartbeating).
    let mut now = 0;
    while now < RETENTION_MS + 700_000 {
        now += 5_000;
        let _ = shard.heartbeat(now, 2, 4, heartbeat_req("g", &a, 1));
        let _ = shard.heartbeat(now, 3, 4, heartbeat_req("g", &b, 1));
        if shard.next_deadline_ms().is_some_and(|d| d <= now) {
            assert!(shard.tick(now).records.is_empty());
        }
    }
    assert_eq!(
        fetch_v8(&mut shard, now, "g", None),
        vec![row("t", 0, 5, 5, "")]
    );
    // Both leave: the group is empty from `emptied_at`.
    let mut out = Output::default();
    for m in [&a, &b] {
        let leave = LeaveGroupRequest::default()
            .with_group_id(gid("g"))
            .with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(s(m))
            ]);
        out = shard.leave_group(now, 4, 3, leave);
    }
    let emptied_at = now;
    assert_eq!(out.records.len(), 1, "the Empty group metadata");
    let DecodedRecord::ClassicGroup { value: Some(v), .. } = out.records[0].decode().unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (v.generation, v.members.len(), v.current_state_timestamp_ms),
        (2, 0, emptied_at)
    );
    // Expiry runs every check interval; before retention has passed nothing goes.
    let mut expired_at = None;
    while expired_at.is_none() {
        now = shard.next_deadline_ms().unwrap();
        let out = shard.tick(now);
        if !out.records.is_empty() {
            let keys: Vec<RecordKey> = out
                .records
                .iter()
                .map(|r| serde_json::from_slice(&r.key).unwrap())
                .collect();
            assert_eq!(
                keys,
                vec![
                    RecordKey::OffsetCommit {
                        group: "g".into(),
                        topic: "t".into(),
                        partition: 0
                    },
                    RecordKey::ClassicGroup { group: "g".into() },
                ]
            );
            assert!(out.records.iter().all(|r| r.value.is_none()));
            expired_at = Some(now);
        }
    }
    let expired_at = expired_at.unwrap();
    assert!(expired_at >= emptied_at + RETENTION_MS);
    assert!(expired_at < emptied_at + RETENTION_MS + 600_000);
    assert!(fetch_v8(&mut shard, now, "g", None).is_empty());
}

#[test]
fn explicit_retention_of_old_commit_versions() {
    let mut shard = shard();
    let req = commit("simple", "", -1, &[("t", 0, 1, None)]).with_retention_time_ms(1_000);
    let out = shard.offset_commit(0, 1, 2, req);
    let DecodedRecord::OffsetCommit { value: Some(v), .. } = out.records[0].decode().unwrap()
    else {
        panic!()
    };
    assert_eq!(v.expire_timestamp_ms, Some(1_000));
    // The first expiry pass (after the check interval) removes it and the simple group.
    let out = shard.tick(600_000);
    assert_eq!(out.records.len(), 2);
    assert!(fetch_v8(&mut shard, 600_000, "simple", None).is_empty());
}

fn delete_offsets(
    shard: &mut GroupCoordinatorShard,
    group: &str,
    topics: &[(&str, &[i32])],
) -> (i16, Vec<(String, i32, i16)>, usize) {
    let req = OffsetDeleteRequest::default()
        .with_group_id(gid(group))
        .with_topics(
            topics
                .iter()
                .map(|(t, ps)| {
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    OffsetDeleteRequestPartition::default().with_partition_index(*p)
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let out = shard.offset_delete(0, 90, 0, req);
    let Some(Reply::OffsetDelete(r)) = out.reply_for(90) else {
        panic!()
    };
    let parts = r
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index, p.error_code))
        })
        .collect();
    (r.error_code, parts, out.records.len())
}

#[test]
fn offset_delete_rules() {
    let mut shard = shard();
    let (a, _b) = stable_pair(&mut shard);
    let _ = shard.offset_commit(
        0,
        1,
        8,
        commit("g", &a, 1, &[("t", 0, 5, None), ("old", 0, 6, None)]),
    );
    // The active consumer group subscribes to "t" but not to "old".
    let (error, parts, records) = delete_offsets(&mut shard, "g", &[("t", &[0]), ("old", &[0, 1])]);
    assert_eq!(error, 0);
    assert_eq!(
        parts,
        vec![
            ("t".into(), 0, ErrorCode::GroupSubscribedToTopic.code()),
            ("old".into(), 0, 0),
            ("old".into(), 1, 0)
        ]
    );
    assert_eq!(records, 1, "only the committed partition gets a tombstone");
    assert_eq!(
        fetch_v8(&mut shard, 0, "g", None),
        vec![row("t", 0, 5, 5, "")]
    );
    assert_eq!(
        delete_offsets(&mut shard, "nope", &[("t", &[0])]).0,
        ErrorCode::GroupIdNotFound.code()
    );

    // A non-consumer protocol group with members cannot delete offsets.
    let connect = join_req("c", "", &range(&["t"])).with_protocol_type(s("connect"));
    let _ = shard.join_group(0, 2, 3, &client("w"), connect);
    let _ = settle(&mut shard, 0);
    assert_eq!(
        delete_offsets(&mut shard, "c", &[("t", &[0])]).0,
        ErrorCode::NonEmptyGroup.code()
    );
}

#[test]
fn a_deleted_topic_takes_every_groups_offsets_with_it() {
    let mut shard = shard();
    let mut log = Vec::new();
    log.extend(
        shard
            .offset_commit(
                0,
                1,
                8,
                commit("g1", "", -1, &[("gone", 0, 5, None), ("kept", 0, 6, None)]),
            )
            .records,
    );
    log.extend(
        shard
            .offset_commit(0, 2, 8, commit("g2", "", -1, &[("gone", 3, 7, None)]))
            .records,
    );
    let out = shard.topics_deleted(10, &["gone".to_string()]);
    log.extend(out.records.clone());
    assert_eq!(
        out.records,
        vec![
            CoordinatorRecord::offset_commit("g1", "gone", 0, None),
            CoordinatorRecord::offset_commit("g2", "gone", 3, None),
        ]
    );
    assert_eq!(
        fetch_v8(&mut shard, 10, "g1", None),
        vec![row("kept", 0, 6, 5, "")]
    );
    assert_eq!(fetch_v8(&mut shard, 10, "g2", None), vec![]);
    // Replaying the log gives the same offsets, and a second deletion finds nothing.
    let mut replayed = GroupCoordinatorShard::new(GroupConfig::default());
    for record in &log {
        replayed.replay(record).unwrap();
    }
    assert_eq!(
        fetch_v8(&mut replayed, 10, "g1", None),
        vec![row("kept", 0, 6, 5, "")]
    );
    assert_eq!(fetch_v8(&mut replayed, 10, "g2", None), vec![]);
    assert_eq!(
        shard.topics_deleted(11, &["gone".to_string()]).records,
        vec![]
    );
}
