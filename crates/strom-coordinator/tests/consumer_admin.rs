//! Consumer groups through the admin and offset APIs, and replay of their records.

mod common;

use common::consumer::*;
use common::{client, gid, s};
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::*;
use strom_coordinator::*;
use strom_types::ErrorCode;

/// m1 and m2 on `t`, settled at epoch 2.
fn stable_sim() -> Sim {
    let mut sim = Sim::new(GroupConfig::default());
    sim.join("m1", &["t"]);
    sim.join("m2", &["t"]);
    sim.settle();
    sim
}

fn wire(topic: strom_types::TopicId, name: &str, ps: &[i32]) -> Assignment {
    let topics = if ps.is_empty() {
        Vec::new()
    } else {
        vec![TopicPartitions::default()
            .with_topic_id(topic)
            .with_topic_name(TopicName(s(name)))
            .with_partitions(ps.to_vec())]
    };
    Assignment::default().with_topic_partitions(topics)
}

fn member(id: &str, epoch: i32, assigned: &[i32], target: &[i32]) -> Member {
    Member::default()
        .with_member_id(s(id))
        .with_member_epoch(epoch)
        .with_client_id(s("c"))
        .with_client_host(s("/10.0.0.1"))
        .with_subscribed_topic_names(vec![TopicName(s("t"))])
        .with_assignment(wire(T, "t", assigned))
        .with_target_assignment(wire(T, "t", target))
        .with_member_type(1)
}

#[test]
fn consumer_group_describe_output() {
    let mut sim = stable_sim();
    sim.join("m3", &["t"]);
    sim.beat("m1");
    let expected = DescribedGroup::default()
        .with_group_id(gid("g"))
        .with_group_state(s("Reconciling"))
        .with_group_epoch(3)
        .with_assignment_epoch(3)
        .with_assignor_name(s("uniform"))
        .with_members(vec![
            // m1 revokes 1 (its highest beyond its share) and stays at epoch 2.
            member("m1", 2, &[0], &[0]),
            member("m2", 2, &[2, 3], &[2, 3]),
            member("m3", 3, &[], &[1]),
        ]);
    assert_eq!(sim.describe(), expected);
    let request =
        ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid("nope"), gid("")]);
    let out = sim.shard.consumer_group_describe(0, 1, 0, request);
    let Some(Reply::ConsumerGroupDescribe(r)) = out.reply_for(1) else {
        panic!("{out:?}")
    };
    let errors: Vec<(i16, String)> = r
        .groups
        .iter()
        .map(|g| {
            let message = g
                .error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            (g.error_code, message)
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (
                ErrorCode::GroupIdNotFound.code(),
                "Group nope not found.".into()
            ),
            (
                ErrorCode::InvalidGroupId.code(),
                "Group id can't be empty.".into()
            ),
        ]
    );
}

fn list(
    shard: &mut GroupCoordinatorShard,
    states: &[&str],
    types: &[&str],
) -> Vec<(String, String, String, String)> {
    let request = ListGroupsRequest::default()
        .with_states_filter(states.iter().map(|v| s(v)).collect())
        .with_types_filter(types.iter().map(|v| s(v)).collect());
    let Some(Reply::ListGroups(r)) = shard.list_groups(0, 1, 5, request).reply_for(1).cloned()
    else {
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

fn row(id: &str, pt: &str, state: &str, ty: &str) -> (String, String, String, String) {
    (id.into(), pt.into(), state.into(), ty.into())
}

#[test]
fn list_describe_and_delete_groups_of_both_types() {
    let mut sim = stable_sim();
    let listed = list(&mut sim.shard, &[], &[]);
    assert_eq!(listed, vec![row("g", "consumer", "Stable", "consumer")]);
    sim.group = "solo".into();
    sim.join("x", &["u"]);
    let (_, _) = common::join_two_step(&mut sim.shard, 0, 50, "cl", "c1", &["t"]);
    common::settle(&mut sim.shard, 0);
    let listed = list(&mut sim.shard, &[], &[]);
    assert_eq!(
        listed,
        vec![
            row("cl", "consumer", "PreparingRebalance", "classic"),
            row("g", "consumer", "Stable", "consumer"),
            row("solo", "consumer", "Stable", "consumer"),
        ]
    );
    assert_eq!(
        list(&mut sim.shard, &[], &["Classic"]),
        vec![listed[0].clone()]
    );
    assert_eq!(
        list(&mut sim.shard, &[], &["consumer"]),
        listed[1..].to_vec()
    );
    assert_eq!(
        list(&mut sim.shard, &["stable"], &["consumer", "classic"]),
        listed[1..].to_vec()
    );
    // DescribeGroups describes classic groups only.
    let describe = |shard: &mut GroupCoordinatorShard, version: i16| {
        let request = DescribeGroupsRequest::default().with_groups(vec![gid("g")]);
        let Some(Reply::DescribeGroups(r)) = shard
            .describe_groups(0, 2, version, request)
            .reply_for(2)
            .cloned()
        else {
            panic!()
        };
        let g = &r.groups[0];
        (
            g.error_code,
            g.group_state.to_string(),
            g.error_message.as_ref().map(|m| m.to_string()),
        )
    };
    assert_eq!(
        describe(&mut sim.shard, 6),
        (
            ErrorCode::GroupIdNotFound.code(),
            "Dead".into(),
            Some("Group g is not a classic group.".into())
        )
    );
    assert_eq!(describe(&mut sim.shard, 5), (0, "Dead".into(), None));
    // DeleteGroups: only once empty; then every record of the group is tombstoned.
    let delete = |shard: &mut GroupCoordinatorShard| {
        let request = DeleteGroupsRequest::default().with_groups_names(vec![gid("g")]);
        let out = shard.delete_groups(0, 3, 2, request);
        let Some(Reply::DeleteGroups(r)) = out.reply_for(3).cloned() else {
            panic!()
        };
        (r.results[0].error_code, out.records)
    };
    assert_eq!(delete(&mut sim.shard).0, ErrorCode::NonEmptyGroup.code());
    sim.group = "g".into();
    sim.leave("m1", -1);
    sim.leave("m2", -1);
    assert_eq!(
        list(&mut sim.shard, &["empty"], &[]),
        vec![row("g", "consumer", "Empty", "consumer")]
    );
    let (code, records) = delete(&mut sim.shard);
    assert_eq!(code, 0);
    let keys: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8(r.key.clone()).unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            r#"{"type":"consumer_group_target_assignment_epoch","group":"g"}"#,
            r#"{"type":"consumer_group","group":"g"}"#,
        ]
    );
    assert!(records.iter().all(|r| r.value.is_none()));
    assert_eq!(
        list(&mut sim.shard, &[], &["consumer"]),
        vec![row("solo", "consumer", "Stable", "consumer")]
    );
}

fn commit(member: &str, epoch: i32) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(epoch)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(42)])])
}

fn commit_code(
    shard: &mut GroupCoordinatorShard,
    version: i16,
    request: OffsetCommitRequest,
) -> i16 {
    let out = shard.offset_commit(0, 4, version, request);
    let Some(Reply::OffsetCommit(r)) = out.reply_for(4) else {
        panic!()
    };
    r.topics[0].partitions[0].error_code
}

fn fetch_code(
    shard: &mut GroupCoordinatorShard,
    member: Option<&str>,
    epoch: i32,
) -> (i16, Vec<i64>) {
    let request = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(gid("g"))
            .with_member_id(member.map(s))
            .with_member_epoch(epoch)
            .with_topics(None),
    ]);
    let out = shard.offset_fetch(0, 5, 9, request);
    let Some(Reply::OffsetFetch(r)) = out.reply_for(5) else {
        panic!()
    };
    let g = &r.groups[0];
    let offsets = g
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
        .collect();
    (g.error_code, offsets)
}

#[test]
fn offsets_follow_member_epochs() {
    let mut sim = stable_sim();
    let shard = &mut sim.shard;
    assert_eq!(commit_code(shard, 9, commit("m1", 2)), 0);
    assert_eq!(
        commit_code(shard, 9, commit("m1", 1)),
        ErrorCode::StaleMemberEpoch.code()
    );
    assert_eq!(
        commit_code(shard, 9, commit("zz", 2)),
        ErrorCode::UnknownMemberId.code()
    );
    assert_eq!(
        commit_code(shard, 8, commit("m1", 2)),
        ErrorCode::UnsupportedVersion.code()
    );
    // Simple commits are refused while the group has members.
    assert_eq!(
        commit_code(shard, 9, commit("", -1)),
        ErrorCode::UnknownMemberId.code()
    );
    assert_eq!(fetch_code(shard, Some("m1"), 2), (0, vec![42]));
    assert_eq!(fetch_code(shard, None, -1), (0, vec![42]));
    assert_eq!(
        fetch_code(shard, Some("m1"), 1),
        (ErrorCode::StaleMemberEpoch.code(), vec![])
    );
    assert_eq!(
        fetch_code(shard, Some("zz"), 1),
        (ErrorCode::UnknownMemberId.code(), vec![])
    );
    // OffsetDelete refuses subscribed topics.
    let request = OffsetDeleteRequest::default()
        .with_group_id(gid("g"))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![
                OffsetDeleteRequestPartition::default().with_partition_index(0)
            ])]);
    let out = shard.offset_delete(0, 6, 0, request.clone());
    let Some(Reply::OffsetDelete(r)) = out.reply_for(6) else {
        panic!()
    };
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        ErrorCode::GroupSubscribedToTopic.code()
    );
    sim.leave("m1", -1);
    sim.leave("m2", -1);
    let out = sim.shard.offset_delete(0, 7, 0, request);
    let Some(Reply::OffsetDelete(r)) = out.reply_for(7) else {
        panic!()
    };
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (0, 0));
    assert_eq!(out.records.len(), 1);
}

#[test]
fn empty_groups_change_type() {
    let mut sim = Sim::new(GroupConfig::default());
    // A simple commit creates an empty classic group; a consumer join takes it over.
    assert_eq!(commit_code(&mut sim.shard, 9, commit("", -1)), 0);
    let r = sim.join("m1", &["t"]);
    assert_eq!((r.error_code, r.member_epoch), (0, 1));
    assert_eq!(fetch_code(&mut sim.shard, None, -1), (0, vec![42]));
    // Once empty again, a classic JoinGroup takes it back.
    sim.leave("m1", -1);
    let out = sim.shard.join_group(
        0,
        8,
        5,
        &client("c"),
        common::join_req("g", "", &common::range(&["t"])),
    );
    assert_eq!(
        common::join_of(&out, 8).error_code,
        ErrorCode::MemberIdRequired.code()
    );
    assert!(out.records.iter().all(|r| r.value.is_none()));
    assert_eq!(out.records.len(), 2);
    assert_eq!(fetch_code(&mut sim.shard, None, -1), (0, vec![42]));
}

/// The describe output and offsets of `g`, for comparing shards.
fn snapshot(shard: &mut GroupCoordinatorShard) -> (DescribedGroup, (i16, Vec<i64>)) {
    let request = ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid("g")]);
    let Some(Reply::ConsumerGroupDescribe(r)) = shard
        .consumer_group_describe(0, 1, 1, request)
        .reply_for(1)
        .cloned()
    else {
        panic!()
    };
    (r.groups[0].clone(), fetch_code(shard, None, -1))
}

#[test]
fn replay_rebuilds_groups_mid_reconciliation() {
    let mut sim = stable_sim();
    sim.join("m3", &["t", "u"]);
    sim.beat("m1");
    let out = sim.shard.offset_commit(0, 1, 9, commit("m2", 2));
    sim.keep(out);
    let before = snapshot(&mut sim.shard);
    assert_eq!(before.0.group_state.as_str(), "Reconciling");

    let mut fresh = GroupCoordinatorShard::new(GroupConfig::default());
    for record in &sim.log {
        fresh.replay(record).unwrap();
    }
    assert!(fresh.loaded(100_000).is_empty());
    fresh.set_topic_metadata(100_000, &cluster());
    assert_eq!(snapshot(&mut fresh), before);
    // Loaded members get a fresh session.
    assert_eq!(fresh.next_deadline_ms(), Some(145_000));

    // The replayed shard carries on where the old one stopped.
    sim.shard = fresh;
    sim.now = 100_000;
    assert!(sim.settle() > 0);
    let g = sim.describe();
    assert_eq!((g.group_state.as_str(), g.group_epoch), ("Stable", 3));
    assert_eq!(sim.owned["m3"], parts(&[(U, &[0, 1, 2])]));

    // Nothing is lost by compaction either: replaying only each key's last record.
    let mut latest: Vec<&CoordinatorRecord> = Vec::new();
    for record in &sim.log {
        latest.retain(|r| r.key != record.key);
        latest.push(record);
    }
    let mut compacted = GroupCoordinatorShard::new(GroupConfig::default());
    for record in latest {
        compacted.replay(record).unwrap();
    }
    compacted.set_topic_metadata(0, &cluster());
    assert_eq!(snapshot(&mut compacted), snapshot(&mut sim.shard));
}

#[test]
fn record_encoding_is_exact() {
    let mut sim = Sim::new(GroupConfig::default());
    sim.join("m1", &["t"]);
    let text: Vec<(String, String)> = sim
        .log
        .iter()
        .map(|r| {
            (
                String::from_utf8(r.key.clone()).unwrap(),
                String::from_utf8(r.value.clone().unwrap_or_default()).unwrap(),
            )
        })
        .collect();
    let t = "00000000-0000-0000-0000-000000000007";
    assert_eq!(
        text,
        vec![
            (
                r#"{"type":"consumer_group_member","group":"g","member":"m1"}"#.to_owned(),
                r#"{"version":1,"instance_id":null,"rack_id":null,"client_id":"c","client_host":"/10.0.0.1","subscribed_topic_names":["t"],"subscribed_topic_regex":null,"server_assignor":null,"rebalance_timeout_ms":60000}"#.to_owned(),
            ),
            (
                r#"{"type":"consumer_group","group":"g"}"#.to_owned(),
                format!(r#"{{"version":1,"epoch":1,"subscription_metadata":[{{"topic":"t","topic_id":"{t}","partitions":4}}]}}"#),
            ),
            (
                r#"{"type":"consumer_group_target_assignment","group":"g","member":"m1"}"#.to_owned(),
                format!(r#"{{"version":1,"partitions":[{{"topic_id":"{t}","partitions":[0,1,2,3]}}]}}"#),
            ),
            (
                r#"{"type":"consumer_group_target_assignment_epoch","group":"g"}"#.to_owned(),
                r#"{"version":1,"assignment_epoch":1}"#.to_owned(),
            ),
            (
                r#"{"type":"consumer_group_current_assignment","group":"g","member":"m1"}"#.to_owned(),
                format!(r#"{{"version":1,"member_epoch":1,"previous_member_epoch":0,"state":"stable","assigned":[{{"topic_id":"{t}","partitions":[0,1,2,3]}}],"pending_revocation":[]}}"#),
            ),
        ]
    );
    // A value from a future version is refused.
    let mut future = sim.log[1].clone();
    future.value = Some(br#"{"version":2,"epoch":1,"subscription_metadata":[]}"#.to_vec());
    assert!(matches!(
        future.decode(),
        Err(RecordError::Version { version: 2, .. })
    ));
}
