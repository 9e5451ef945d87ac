//! Records replayed into a fresh shard rebuild the same persisted state.

mod common;

use common::*;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use strom_coordinator::*;
use strom_types::ErrorCode;

fn commit(
    group: &str,
    member: &str,
    generation: i32,
    parts: &[(&str, i32, i64, Option<&str>)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset, metadata) in parts {
        let p = OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(3)
            .with_committed_metadata(metadata.map(s));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(topics)
}

fn fetch_all(shard: &mut GroupCoordinatorShard, group: &str) -> OffsetFetchResponse {
    let req = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(gid(group))
            .with_topics(None),
    ]);
    match shard.offset_fetch(0, 999, 9, req).reply_for(999) {
        Some(Reply::OffsetFetch(r)) => r.clone(),
        other => panic!("{other:?}"),
    }
}

fn describe(
    shard: &mut GroupCoordinatorShard,
    group: &str,
) -> describe_groups_response::DescribedGroup {
    let req = DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
    match shard.describe_groups(0, 998, 5, req).reply_for(998) {
        Some(Reply::DescribeGroups(r)) => r.groups[0].clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn replayed_records_rebuild_offsets_and_group_metadata() {
    let mut shard = shard();
    let mut log: Vec<CoordinatorRecord> = Vec::new();
    let (a, b) = stable_pair(&mut shard);
    let out = shard.offset_commit(
        5,
        1,
        8,
        commit("g", &a, 1, &[("t", 0, 42, Some("meta")), ("t", 1, 7, None)]),
    );
    log.extend(out.records);
    let out = shard.offset_commit(
        6,
        2,
        8,
        commit("simple", "", -1, &[("u", 3, 99, Some("x"))]),
    );
    log.extend(out.records);
    // A group that became empty, and a deleted one.
    let (e, _) = join_two_step(&mut shard, 0, 50, "emptied", "ce", &["t"]);
    log.extend(settle(&mut shard, 0).records);
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("emptied"))
        .with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(s(&e))
        ]);
    log.extend(shard.leave_group(7, 3, 3, leave).records);
    log.extend(
        shard
            .offset_commit(8, 4, 8, commit("gone", "", -1, &[("t", 0, 1, None)]))
            .records,
    );
    let del = DeleteGroupsRequest::default().with_groups_names(vec![gid("gone")]);
    log.extend(shard.delete_groups(9, 5, 2, del).records);

    // The stable group's record came from stable_pair (not captured): rebuild it by
    // replaying everything the shard ever emitted for it.
    let mut fresh = common::shard();
    let mut full = shard_records_of_stable_pair(&a, &b);
    full.extend(log);
    for record in &full {
        fresh.replay(record).unwrap();
    }
    let _ = fresh.loaded(100);

    assert_eq!(fetch_all(&mut fresh, "g"), fetch_all(&mut shard, "g"));
    assert_eq!(
        fetch_all(&mut fresh, "simple"),
        fetch_all(&mut shard, "simple")
    );
    let fetched = fetch_all(&mut fresh, "g");
    let t = &fetched.groups[0].topics[0];
    assert_eq!(t.name.0.as_str(), "t");
    let got: Vec<(i32, i64, i32, String)> = t
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.committed_leader_epoch,
                p.metadata.as_deref().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(0, 42, 3, "meta".to_owned()), (1, 7, 3, String::new())]
    );

    let (old, new) = (describe(&mut shard, "g"), describe(&mut fresh, "g"));
    assert_eq!(new.group_state.as_str(), "Stable");
    assert_eq!(new.protocol_data.as_str(), "range");
    assert_eq!(old, new);
    let assignments: Vec<(String, Vec<u8>)> = new
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_assignment.to_vec()))
        .collect();
    assert_eq!(
        assignments,
        vec![(a.clone(), b"A".to_vec()), (b.clone(), b"B".to_vec())]
    );
    assert_eq!(
        describe(&mut fresh, "emptied").group_state.as_str(),
        "Empty"
    );
    assert_eq!(describe(&mut fresh, "gone").group_state.as_str(), "Dead");
    assert_eq!(describe(&mut fresh, "simple").group_state.as_str(), "Empty");

    // Loaded members keep their generation and leadership: a heartbeat works...
    let out = fresh.heartbeat(101, 10, 4, heartbeat_req("g", &a, 1));
    assert_eq!(heartbeat_of(&out, 10), 0);
    let out = fresh.sync_group(101, 11, 3, sync_req("g", &b, 1, &[]));
    assert_eq!(sync_of(&out, 11).assignment.as_ref(), b"B");
    // ...and b, silent since the load, expires a session timeout after it.
    let _ = fresh.heartbeat(100 + 9_000, 12, 4, heartbeat_req("g", &a, 1));
    let _ = fresh.tick(101 + i64::from(SESSION_MS));
    let out = fresh.heartbeat(
        101 + i64::from(SESSION_MS),
        13,
        4,
        heartbeat_req("g", &a, 1),
    );
    assert_eq!(
        heartbeat_of(&out, 13),
        ErrorCode::RebalanceInProgress.code()
    );
}

/// The records `stable_pair` produces, captured on a twin shard (ids are deterministic).
fn shard_records_of_stable_pair(a: &str, b: &str) -> Vec<CoordinatorRecord> {
    let mut twin = common::shard();
    let (ta, _) = join_two_step(&mut twin, 0, 1, "g", "ca", &["t"]);
    let (tb, _) = join_two_step(&mut twin, 0, 2, "g", "cb", &["t"]);
    assert_eq!((ta.as_str(), tb.as_str()), (a, b));
    let mut records = settle(&mut twin, 0).records;
    records.extend(
        twin.sync_group(0, 3, 3, sync_req("g", a, 1, &[(a, b"A"), (b, b"B")]))
            .records,
    );
    records
}
