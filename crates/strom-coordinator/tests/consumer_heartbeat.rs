//! ConsumerGroupHeartbeat: joins, reconciliation, leaves, timeouts, fencing.

mod common;

use common::consumer::*;
use common::{client, gid, s};
use kafka_protocol::messages::*;
use strom_coordinator::*;
use strom_types::ErrorCode;

fn sim() -> Sim {
    Sim::new(GroupConfig::default())
}

#[test]
fn single_member_gets_everything_at_epoch_1() {
    let mut sim = sim();
    let r = sim.join("m1", &["t"]);
    assert_eq!(r.error_code, 0);
    assert_eq!(r.member_id.as_deref(), Some("m1"));
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, 5_000);
    assert_eq!(
        from_wire(r.assignment.as_ref().unwrap()),
        parts(&[(T, &[0, 1, 2, 3])])
    );
    // A plain heartbeat without changes carries no assignment.
    let r = sim.beat("m1");
    assert_eq!((r.error_code, r.member_epoch, r.assignment), (0, 1, None));
}

#[test]
fn second_member_waits_for_the_first_to_revoke() {
    let mut sim = sim();
    sim.join("m1", &["t"]);
    // m2 joins: epoch 2; m1 still owns everything, so m2 gets nothing yet.
    let r = sim.join("m2", &["t"]);
    assert_eq!(r.member_epoch, 2);
    assert_eq!(from_wire(r.assignment.as_ref().unwrap()), Parts::new());
    // m1 is told to give up 2 and 3 and stays at epoch 1.
    let r = sim.beat("m1");
    assert_eq!(r.member_epoch, 1);
    assert_eq!(
        from_wire(r.assignment.as_ref().unwrap()),
        parts(&[(T, &[0, 1])])
    );
    // m2 still waits: m1 has not confirmed.
    let r = sim.beat("m2");
    assert_eq!((r.member_epoch, r.assignment), (2, None));
    // m1 confirms (owns 0, 1 only) and moves to epoch 2.
    let r = sim.beat("m1");
    assert_eq!((r.member_epoch, r.assignment), (2, None));
    // Now m2 receives 2 and 3.
    let r = sim.beat("m2");
    assert_eq!(r.member_epoch, 2);
    assert_eq!(
        from_wire(r.assignment.as_ref().unwrap()),
        parts(&[(T, &[2, 3])])
    );
    assert_eq!(sim.settle(), 0);
    let g = sim.describe();
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!((g.group_epoch, g.assignment_epoch), (2, 2));
}

#[test]
fn leaving_member_partitions_move_to_the_others() {
    let mut sim = sim();
    sim.join("m1", &["t"]);
    sim.join("m2", &["t"]);
    sim.settle();
    let r = sim.leave("m2", -1);
    assert_eq!(
        (r.error_code, r.member_epoch, r.member_id.as_deref()),
        (0, -1, Some("m2"))
    );
    let r = sim.beat("m1");
    assert_eq!(r.member_epoch, 3);
    assert_eq!(
        from_wire(r.assignment.as_ref().unwrap()),
        parts(&[(T, &[0, 1, 2, 3])])
    );
    // The member is gone: its heartbeats are unknown.
    let out = sim.shard.consumer_group_heartbeat(
        0,
        77,
        1,
        &client("c"),
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(gid("g"))
            .with_member_id(s("m2"))
            .with_member_epoch(2),
    );
    assert_eq!(
        cg_heartbeat_of(&out, 77).error_code,
        ErrorCode::UnknownMemberId.code()
    );
}

#[test]
fn session_expiry_removes_a_member() {
    let mut sim = sim();
    sim.join("m1", &["t"]);
    sim.join("m2", &["t"]);
    sim.settle();
    sim.now = 40_000;
    sim.beat("m1");
    assert_eq!(sim.shard.next_deadline_ms(), Some(45_000));
    let out = sim.tick(45_000);
    // m2 (last heard at 0) is fenced: tombstones for it, then epoch 3.
    assert_eq!(out.records.len(), 4);
    assert!(out.records[..3].iter().all(|r| r.value.is_none()));
    sim.owned.remove("m2");
    sim.epochs.remove("m2");
    let r = sim.beat("m1");
    assert_eq!(r.member_epoch, 3);
    assert_eq!(
        from_wire(r.assignment.as_ref().unwrap()),
        parts(&[(T, &[0, 1, 2, 3])])
    );
    assert_eq!(sim.shard.next_deadline_ms(), Some(90_000));
}

#[test]
fn member_that_does_not_revoke_is_fenced_at_the_rebalance_timeout() {
    let mut sim = sim();
    sim.join("m1", &["t"]);
    sim.join("m2", &["t"]);
    // m1 learns it must revoke, then stays silent about it (keeps reporting all four).
    sim.beat("m1");
    let stuck = parts(&[(T, &[0, 1, 2, 3])]);
    sim.owned.insert("m1".into(), stuck.clone());
    sim.now = 30_000;
    let r = sim.beat("m1");
    assert_eq!((r.member_epoch, r.assignment), (1, None));
    sim.owned.insert("m1".into(), parts(&[(T, &[0, 1])]));
    sim.now = 40_000;
    sim.beat("m2");
    // The rebalance timeout ran from when the revocation was asked (t=0).
    let out = sim.tick(60_000);
    assert_eq!(out.records.len(), 4, "{out:?}");
    sim.owned.remove("m1");
    sim.epochs.remove("m1");
    let r = sim.beat("m2");
    assert_eq!(r.member_epoch, 3);
    assert_eq!(
        from_wire(r.assignment.as_ref().unwrap()),
        parts(&[(T, &[0, 1, 2, 3])])
    );
}

#[test]
fn epochs_ahead_or_behind_are_fenced_but_the_previous_one_is_tolerated() {
    let mut sim = sim();
    sim.join("m1", &["t"]);
    sim.join("m2", &["t"]);
    sim.settle();
    let send = |sim: &mut Sim, epoch: i32, owned: &[i32]| {
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(gid("g"))
            .with_member_id(s("m1"))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(-1)
            .with_topic_partitions(Some(vec![
                consumer_group_heartbeat_request::TopicPartitions::default()
                    .with_topic_id(T)
                    .with_partitions(owned.to_vec()),
            ]));
        let out = sim
            .shard
            .consumer_group_heartbeat(0, 5, 1, &client("c"), request);
        let r = cg_heartbeat_of(&out, 5);
        (r.error_code, r.member_epoch)
    };
    let fenced = ErrorCode::FencedMemberEpoch.code();
    assert_eq!(send(&mut sim, 3, &[0, 1]), (fenced, 0));
    // Epoch 1 is m1's previous epoch and it owns a subset of its assignment: accepted.
    assert_eq!(send(&mut sim, 1, &[0, 1]), (0, 2));
    // ...but not while claiming partitions it no longer has.
    assert_eq!(send(&mut sim, 1, &[0, 1, 2]), (fenced, 0));
    assert_eq!(send(&mut sim, 0, &[]).0, ErrorCode::InvalidRequest.code());
}

#[test]
fn static_member_rejoins_with_its_assignment() {
    let mut sim = sim();
    let join_static = |sim: &mut Sim, member: &str| {
        let request = join_request("g", member, &["t"]).with_instance_id(Some(s("i1")));
        sim.send(member, request)
    };
    join_static(&mut sim, "a1");
    sim.join("m2", &["t"]);
    sim.settle();
    let a1 = sim.owned["a1"].clone();
    assert_eq!(a1, parts(&[(T, &[0, 1])]));
    // Another process with the same instance id while a1 is active.
    let r = join_static(&mut sim, "a2");
    assert_eq!(r.error_code, ErrorCode::UnreleasedInstanceId.code());
    // a1 leaves temporarily (-2) and keeps its partitions in the group.
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s("a1"))
        .with_member_epoch(-2)
        .with_instance_id(Some(s("i1")));
    let r = sim.send("a1", request);
    assert_eq!((r.error_code, r.member_epoch), (0, -2));
    assert_eq!(sim.settle(), 0);
    assert_eq!(sim.owned.get("m2"), Some(&parts(&[(T, &[2, 3])])));
    // The new incarnation gets the same partitions back without a rebalance.
    let r = join_static(&mut sim, "a2");
    assert_eq!((r.error_code, r.member_epoch), (0, 2));
    assert_eq!(from_wire(r.assignment.as_ref().unwrap()), a1);
    let g = sim.describe();
    assert_eq!(g.group_epoch, 2);
    let ids: Vec<&str> = g.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, vec!["a2", "m2"]);
    // The old incarnation is fenced by the new one.
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s("a1"))
        .with_member_epoch(2)
        .with_instance_id(Some(s("i1")));
    assert_eq!(
        sim.send("a1", request).error_code,
        ErrorCode::FencedInstanceId.code()
    );
}

#[test]
fn partition_increase_bumps_the_epoch_and_assigns_new_partitions() {
    let mut sim = sim();
    sim.join("m1", &["t"]);
    sim.join("m2", &["t"]);
    sim.settle();
    let mut topics = cluster();
    topics.insert("t".into(), (T, 6));
    let out = sim.shard.set_topic_metadata(10, &topics);
    let out = sim.keep(out);
    assert_eq!(out.records.len(), 1);
    assert_eq!(sim.describe().group_state.as_str(), "Assigning");
    sim.settle();
    assert_eq!(sim.owned["m1"], parts(&[(T, &[0, 1, 4])]));
    assert_eq!(sim.owned["m2"], parts(&[(T, &[2, 3, 5])]));
    assert_eq!(sim.epochs.values().copied().collect::<Vec<_>>(), vec![3, 3]);
    // Unchanged metadata changes nothing.
    assert!(sim.shard.set_topic_metadata(20, &topics).is_empty());
}

#[test]
fn range_assignor_on_request() {
    let mut sim = sim();
    for m in ["b", "a", "c"] {
        let request = join_request("g", m, &["t", "u"]).with_server_assignor(Some(s("range")));
        sim.send(m, request);
    }
    sim.settle();
    assert_eq!(sim.owned["a"], parts(&[(T, &[0, 1]), (U, &[0])]));
    assert_eq!(sim.owned["b"], parts(&[(T, &[2]), (U, &[1])]));
    assert_eq!(sim.owned["c"], parts(&[(T, &[3]), (U, &[2])]));
    assert_eq!(sim.describe().assignor_name.as_str(), "range");
}

#[test]
fn request_validation() {
    let mut shard = GroupCoordinatorShard::new(GroupConfig::default());
    let send = |shard: &mut GroupCoordinatorShard,
                version: i16,
                request: ConsumerGroupHeartbeatRequest| {
        let out = shard.consumer_group_heartbeat(0, 1, version, &client("c"), request);
        let r = cg_heartbeat_of(&out, 1);
        (
            r.error_code,
            r.error_message.map(|m| m.to_string()).unwrap_or_default(),
        )
    };
    // No topic metadata yet: retriable.
    let code = send(&mut shard, 1, join_request("g", "m", &["t"])).0;
    assert_eq!(code, ErrorCode::CoordinatorLoadInProgress.code());
    shard.set_topic_metadata(0, &cluster());
    let invalid = ErrorCode::InvalidRequest.code();
    let cases: Vec<(i16, ConsumerGroupHeartbeatRequest, i16, &str)> = vec![
        (
            1,
            join_request("", "m", &["t"]),
            invalid,
            "GroupId can't be empty.",
        ),
        (
            1,
            join_request("g", "", &["t"]),
            invalid,
            "MemberId can't be empty.",
        ),
        (
            1,
            join_request("g", "m", &[]),
            invalid,
            "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_rebalance_timeout_ms(-1),
            invalid,
            "RebalanceTimeoutMs must be provided in first request.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_topic_partitions(None),
            invalid,
            "TopicPartitions must be empty when (re-)joining.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_member_epoch(-3),
            invalid,
            "MemberEpoch is invalid.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_member_epoch(-2),
            invalid,
            "InstanceId can't be null.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_instance_id(Some(s(""))),
            invalid,
            "InstanceId can't be empty.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_subscribed_topic_regex(Some(s("t(["))),
            ErrorCode::InvalidRegularExpression.code(),
            "SubscribedTopicRegex `t([` is not a valid regular expression.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_server_assignor(Some(s("sticky"))),
            ErrorCode::UnsupportedAssignor.code(),
            "ServerAssignor sticky is not supported. Supported assignors: uniform, range.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_member_epoch(3),
            ErrorCode::GroupIdNotFound.code(),
            "Consumer group g not found.",
        ),
        (
            1,
            join_request("g", "m", &["t"]).with_member_epoch(-1),
            ErrorCode::GroupIdNotFound.code(),
            "Group g not found.",
        ),
    ];
    for (version, request, code, message) in cases {
        assert_eq!(
            send(&mut shard, version, request),
            (code, message.to_owned())
        );
    }
    // v0: the coordinator names the member.
    let out = shard.consumer_group_heartbeat(0, 2, 0, &client("c"), join_request("g", "", &["t"]));
    let r = cg_heartbeat_of(&out, 2);
    assert_eq!((r.error_code, r.member_epoch), (0, 1));
    assert_eq!(r.member_id.unwrap().len(), 36);
}

#[test]
fn group_max_size_and_classic_conflicts() {
    let mut sim = Sim::new(GroupConfig {
        consumer_max_size: 1,
        ..GroupConfig::default()
    });
    sim.join("m1", &["t"]);
    let r = sim.join("m2", &["t"]);
    assert_eq!(r.error_code, ErrorCode::GroupMaxSizeReached.code());
    // A classic group with members keeps its id.
    let (_, _) = common::join_two_step(&mut sim.shard, 0, 1, "classic", "c1", &["t"]);
    sim.group = "classic".into();
    let r = sim.join("m1", &["t"]);
    assert_eq!(r.error_code, ErrorCode::GroupIdNotFound.code());
}

#[test]
fn churn_never_double_assigns_and_converges() {
    let mut sim = sim();
    // A fixed pseudo-random schedule of joins, leaves and heartbeats in odd orders.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % n as u64).unwrap()
    };
    let names = ["a", "b", "c", "d", "e"];
    let subscriptions: [&[&str]; 3] = [&["t"], &["t", "u"], &["u"]];
    for step in 0..400 {
        let member = names[next(names.len())];
        let active = sim.epochs.contains_key(member);
        match next(10) {
            0 if !active => {
                sim.join(member, subscriptions[next(3)]);
            }
            1 if active => {
                sim.leave(member, -1);
            }
            _ if active => {
                let r = sim.beat(member);
                assert_eq!(r.error_code, 0, "step {step}");
            }
            _ => {}
        }
    }
    assert!(sim.log.len() > 200, "{}", sim.log.len());
    sim.settle();
    let g = sim.describe();
    assert_eq!(g.group_state.as_str(), "Stable");
    assert!(g.members.len() >= 2, "{g:?}");
    // Everything subscribed is owned by exactly one member once settled.
    let mut owned: Vec<(strom_types::TopicId, i32)> = sim
        .owned
        .values()
        .flat_map(|p| {
            p.iter()
                .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
        })
        .collect();
    owned.sort();
    let subscribed: std::collections::BTreeSet<&str> = g
        .members
        .iter()
        .flat_map(|m| m.subscribed_topic_names.iter().map(|t| t.0.as_str()))
        .collect();
    let mut expected = Vec::new();
    for (name, (id, count)) in cluster() {
        if subscribed.contains(name.as_str()) {
            expected.extend((0..count).map(|p| (id, p)));
        }
    }
    expected.sort();
    assert_eq!(owned, expected);
}

#[test]
fn departed_static_member_expires_with_its_session() {
    let mut sim = sim();
    let request = join_request("g", "a1", &["t"]).with_instance_id(Some(s("i1")));
    sim.send("a1", request);
    sim.join("m2", &["t"]);
    sim.settle();
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s("a1"))
        .with_member_epoch(-2)
        .with_instance_id(Some(s("i1")));
    sim.send("a1", request);
    sim.now = 30_000;
    sim.beat("m2");
    // a1's partitions stay reserved until its session (from its last heartbeat) ends.
    assert_eq!(sim.describe().group_state.as_str(), "Reconciling");
    let out = sim.tick(45_000);
    assert_eq!(out.records.len(), 4);
    let r = sim.beat("m2");
    assert_eq!(r.member_epoch, 3);
    assert_eq!(
        from_wire(r.assignment.as_ref().unwrap()),
        parts(&[(T, &[0, 1, 2, 3])])
    );
}

#[test]
fn classic_join_cannot_enter_an_active_consumer_group() {
    let mut sim = sim();
    sim.join("m1", &["t"]);
    let out = sim.shard.join_group(
        0,
        3,
        5,
        &client("c"),
        common::join_req("g", "", &common::range(&["t"])),
    );
    assert_eq!(
        common::join_of(&out, 3).error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    assert!(out.records.is_empty());
}

#[test]
fn regex_subscriptions_follow_the_topics_that_match() {
    let mut sim = sim();
    let by_regex = join_request("g", "m1", &[]).with_subscribed_topic_regex(Some(s("t|u")));
    sim.send("m1", by_regex);
    let named = join_request("g", "m2", &["t"]).with_subscribed_topic_regex(Some(s("")));
    sim.send("m2", named);
    sim.settle();
    // As in Kafka, a new regex counts only once resolved, after the heartbeat that
    // brought it: until the timer runs, m2's named `t` is all there is.
    assert_eq!(sim.shard.next_deadline_ms(), Some(0));
    assert_eq!(sim.owned["m1"], Parts::new());
    assert_eq!(sim.owned["m2"], parts(&[(T, &[0, 1, 2, 3])]));
    let out = sim.tick(0);
    assert!(!out.records.is_empty(), "resolution bumps the epoch");
    sim.settle();
    // m1 matches both topics; m2 only names `t`, so all of `u` is m1's; m2 keeps
    // `t` (sticky, and 4 against 3 is balanced).
    assert_eq!(sim.owned["m1"], parts(&[(U, &[0, 1, 2])]));
    assert_eq!(sim.owned["m2"], parts(&[(T, &[0, 1, 2, 3])]));
    // A new topic the regex matches only in part (full-name match) changes nothing.
    let mut topics = cluster();
    topics.insert("tu".into(), (strom_types::TopicId::from_u128(0x11), 2));
    let out = sim.shard.set_topic_metadata(10, &topics);
    assert!(sim.keep(out).records.is_empty());
    sim.settle();
    assert_eq!(sim.owned["m1"], parts(&[(U, &[0, 1, 2])]));
}

/// `member` joins with only `regex`, which is resolved at the next tick.
fn join_by_regex_and_settle(sim: &mut Sim, member: &str, regex: &str) {
    sim.send(
        member,
        join_request("g", member, &[]).with_subscribed_topic_regex(Some(s(regex))),
    );
    sim.tick(0);
    sim.settle();
}

/// A heartbeat at the member's epoch, reporting what it owns, with a new subscription.
fn resubscribe(
    sim: &Sim,
    member: &str,
    names: &[&str],
    regex: &str,
) -> ConsumerGroupHeartbeatRequest {
    let owned: Vec<_> = sim.owned[member]
        .iter()
        .map(|(t, ps)| {
            consumer_group_heartbeat_request::TopicPartitions::default()
                .with_topic_id(*t)
                .with_partitions(ps.iter().copied().collect())
        })
        .collect();
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(member))
        .with_member_epoch(sim.epochs[member])
        .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
        .with_subscribed_topic_names(Some(names.iter().map(|t| TopicName(s(t))).collect()))
        .with_subscribed_topic_regex(Some(s(regex)))
        .with_topic_partitions(Some(owned))
}

#[test]
fn a_new_subscription_replaces_the_old_one() {
    let mut sim = sim();
    join_by_regex_and_settle(&mut sim, "m1", "t");
    assert_eq!(sim.owned["m1"], parts(&[(T, &[0, 1, 2, 3])]));

    // Regex `t` -> regex `u`: `t` goes at once (nobody subscribes to it any more),
    // `u` comes once the new regex is resolved.
    let r = sim.send("m1", resubscribe(&sim, "m1", &[], "u"));
    assert_eq!(from_wire(r.assignment.as_ref().unwrap()), Parts::new());
    sim.settle();
    assert_eq!(sim.owned["m1"], Parts::new());
    sim.tick(0);
    sim.settle();
    assert_eq!(sim.owned["m1"], parts(&[(U, &[0, 1, 2])]));

    // Regex -> names: the empty regex clears it, the names replace it at once.
    sim.send("m1", resubscribe(&sim, "m1", &["t"], ""));
    sim.settle();
    assert_eq!(sim.owned["m1"], parts(&[(T, &[0, 1, 2, 3])]));
    assert_eq!(sim.shard.next_deadline_ms(), Some(45_000));

    // Names -> regex and a name: the name at once, the regex's topics after it resolves.
    sim.send("m1", resubscribe(&sim, "m1", &["u"], "t|u"));
    sim.settle();
    assert_eq!(sim.owned["m1"], parts(&[(U, &[0, 1, 2])]));
    sim.tick(0);
    sim.settle();
    assert_eq!(
        sim.owned["m1"],
        parts(&[(T, &[0, 1, 2, 3]), (U, &[0, 1, 2])])
    );
    let d = sim.describe();
    assert_eq!(d.members[0].subscribed_topic_names, vec![TopicName(s("u"))]);
    assert_eq!(d.members[0].subscribed_topic_regex.as_deref(), Some("t|u"));
}

#[test]
fn a_regex_another_member_uses_is_resolved_already() {
    let mut sim = sim();
    join_by_regex_and_settle(&mut sim, "m1", "t");
    // m2 brings the same regex: no resolution to wait for, the epoch moves at once.
    let r = sim.send(
        "m2",
        join_request("g", "m2", &[]).with_subscribed_topic_regex(Some(s("t"))),
    );
    assert_eq!(r.member_epoch, 3);
    assert_eq!(sim.shard.next_deadline_ms(), Some(45_000));
    sim.settle();
    assert_eq!(
        (sim.owned["m1"].clone(), sim.owned["m2"].clone()),
        (parts(&[(T, &[0, 1])]), parts(&[(T, &[2, 3])]))
    );
}
