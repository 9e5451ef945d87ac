//! `strom group ...` and strom-client's group admin against a real broker:
//! groups with simple commits, and live groups driven through JoinGroup
//! and SyncGroup with the client's `GroupMember`.

mod common;

use std::collections::BTreeMap;
use std::process::Output;

use bytes::Bytes;
use common::{succeeded, Broker};
use strom_client::{
    Admin, Client, ConnectionConfig, GroupMember, GroupMemberConfig, NewTopic, Producer,
    ProducerConfig, ProducerRecord, TopicPartitions,
};

/// 2023-11-14T22:13:20.000Z; record i of a partition is stamped BASE + i s.
const BASE_TS: i64 = 1_700_000_000_000;

/// Offsets commit at once and an empty group's first member needs no wait.
const SETTINGS: &[&str] = &[
    "offsets.topic.num.partitions=3",
    "group.initial.rebalance.delay.ms=0",
];

fn client(broker: &Broker, client_id: &str) -> Client {
    let config = ConnectionConfig {
        client_id: client_id.to_owned(),
        ..ConnectionConfig::default()
    };
    Client::new(&broker.addr(), config).unwrap()
}

/// Table rows as whitespace-split cells.
fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// The rows after the header line that starts with `header`.
fn table(text: &str, header: &str) -> Vec<Vec<String>> {
    let all = rows(text);
    let start = all
        .iter()
        .position(|r| r.first().map(String::as_str) == Some(header))
        .unwrap_or_else(|| panic!("no {header} table in:\n{text}"));
    all[start + 1..]
        .iter()
        .take_while(|r| !r.is_empty())
        .cloned()
        .collect()
}

fn cells(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// Runs the CLI without stalling the runtime's other tasks (heartbeats).
fn strom(broker: &Broker, args: &[&str]) -> Output {
    tokio::task::block_in_place(|| broker.strom(args))
}

fn ok(broker: &Broker, args: &[&str]) -> String {
    succeeded(args, strom(broker, args))
}

fn fails(broker: &Broker, args: &[&str]) -> String {
    common::failed(args, strom(broker, args))
}

async fn create_topic(admin: &mut Admin, name: &str, partitions: i32) {
    admin
        .create_topic(NewTopic {
            partitions,
            ..NewTopic::new(name)
        })
        .await
        .unwrap();
}

/// `counts[p]` records into partition p, stamped BASE_TS + i seconds.
async fn produce(broker: &Broker, topic: &str, counts: &[i64]) {
    let mut producer =
        Producer::new(client(broker, "producer"), ProducerConfig::default()).unwrap();
    for (p, &n) in counts.iter().enumerate() {
        let records = (0..n)
            .map(|i| ProducerRecord {
                partition: Some(p as i32),
                value: Some(Bytes::from(format!("{p}-{i}"))),
                timestamp: Some(BASE_TS + i * 1_000),
                ..Default::default()
            })
            .collect();
        producer.send(topic, records).await.unwrap();
    }
}

async fn committed(admin: &mut Admin, group: &str) -> Vec<(String, i32, i64)> {
    admin
        .list_group_offsets(group)
        .await
        .unwrap()
        .into_iter()
        .map(|((t, p), c)| (t, p, c.offset))
        .collect()
}

fn offsets(entries: &[(&str, i32, i64)]) -> BTreeMap<(String, i32), i64> {
    entries
        .iter()
        .map(|(t, p, o)| ((t.to_string(), *p), *o))
        .collect()
}

fn expected(entries: &[(&str, i32, i64)]) -> Vec<(String, i32, i64)> {
    entries
        .iter()
        .map(|(t, p, o)| (t.to_string(), *p, *o))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_group_offsets_list_describe_reset_and_delete() {
    let broker = tokio::task::block_in_place(|| Broker::start_with(SETTINGS));
    let mut admin = Admin::new(client(&broker, "admin"));
    create_topic(&mut admin, "orders", 2).await;
    produce(&broker, "orders", &[10, 4]).await;

    let results = admin
        .commit_group_offsets("g1", &offsets(&[("orders", 0, 3), ("orders", 1, 4)]))
        .await
        .unwrap();
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    assert_eq!(
        committed(&mut admin, "g1").await,
        expected(&[("orders", 0, 3), ("orders", 1, 4)])
    );

    let list = ok(&broker, &["group", "list"]);
    assert_eq!(
        rows(&list),
        vec![
            cells(&["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"]),
            cells(&["g1", "Empty", "classic", "-"]),
        ]
    );
    let list = ok(&broker, &["group", "list", "--state", "stable"]);
    assert_eq!(list, "GROUP  STATE  TYPE  PROTOCOL-TYPE\n");
    let list = ok(&broker, &["group", "list", "--state", "Stable,EMPTY"]);
    assert_eq!(rows(&list)[1], cells(&["g1", "Empty", "classic", "-"]));
    let err = fails(&broker, &["group", "list", "--state", "busy"]);
    assert!(err.contains("unknown group state 'busy'"), "{err}");

    let describe = ok(&broker, &["group", "describe", "g1"]);
    let head = rows(&describe);
    assert_eq!(head[0], cells(&["GROUP", "g1"]));
    assert_eq!(head[1], cells(&["STATE", "Empty"]));
    assert_eq!(head[2], cells(&["PROTOCOL-TYPE", "-"]));
    assert_eq!(head[5], cells(&["MEMBERS", "0"]));
    assert!(
        describe.contains("\nConsumer group 'g1' has no active members.\n"),
        "{describe}"
    );
    assert_eq!(
        table(&describe, "TOPIC"),
        vec![
            cells(&["orders", "0", "3", "10", "7", "-", "-", "-"]),
            cells(&["orders", "1", "4", "4", "0", "-", "-", "-"]),
        ]
    );

    // Without --execute nothing changes.
    let out = strom(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--topic",
            "orders",
            "--to-earliest",
        ],
    );
    let plan = succeeded(&[], out.clone());
    assert_eq!(
        rows(&plan),
        vec![
            cells(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]),
            cells(&["g1", "orders", "0", "0"]),
            cells(&["g1", "orders", "1", "0"]),
        ]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("dry run"));
    let plan = ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--topic",
            "orders",
            "--to-latest",
            "--dry-run",
        ],
    );
    assert_eq!(
        table(&plan, "GROUP")[0],
        cells(&["g1", "orders", "0", "10"])
    );
    assert_eq!(
        committed(&mut admin, "g1").await,
        expected(&[("orders", 0, 3), ("orders", 1, 4)])
    );

    // An explicit offset for one partition.
    let plan = ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--topic",
            "orders:0",
            "--to-offset",
            "8",
            "--execute",
        ],
    );
    assert_eq!(
        table(&plan, "GROUP"),
        vec![cells(&["g1", "orders", "0", "8"])]
    );
    assert_eq!(
        committed(&mut admin, "g1").await,
        expected(&[("orders", 0, 8), ("orders", 1, 4)])
    );

    // Shifts clamp into [log start, log end], with a warning each.
    let out = strom(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--topic",
            "orders",
            "--shift-by",
            "-100",
            "--execute",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let plan = succeeded(&[], out);
    assert_eq!(
        table(&plan, "GROUP"),
        vec![
            cells(&["g1", "orders", "0", "0"]),
            cells(&["g1", "orders", "1", "0"])
        ]
    );
    assert!(
        stderr.contains(
            "warning: New offset (-92) is lower than earliest offset for topic partition \
             orders-0. Value will be set to 0"
        ),
        "{stderr}"
    );
    ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--topic",
            "orders",
            "--shift-by",
            "5",
            "--execute",
        ],
    );
    assert_eq!(
        committed(&mut admin, "g1").await,
        expected(&[("orders", 0, 5), ("orders", 1, 4)])
    );

    // By time: partition 0 has a record at BASE+4s; partition 1 none that
    // late, so it goes to its log end.
    let ts = (BASE_TS + 3_500).to_string();
    let plan = ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--all-topics",
            "--to-timestamp",
            &ts,
            "--execute",
        ],
    );
    assert_eq!(
        table(&plan, "GROUP"),
        vec![
            cells(&["g1", "orders", "0", "4"]),
            cells(&["g1", "orders", "1", "4"])
        ]
    );
    // Records stamped in 2023 are older than an hour ago: the log ends.
    let plan = ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--all-topics",
            "--by-duration",
            "PT1H",
        ],
    );
    assert_eq!(
        table(&plan, "GROUP"),
        vec![
            cells(&["g1", "orders", "0", "10"]),
            cells(&["g1", "orders", "1", "4"])
        ]
    );
    // BASE+1s in +01:00: offset 1 in both partitions.
    ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--topic",
            "orders",
            "--to-datetime",
            "2023-11-14T23:13:21.000+01:00",
            "--execute",
        ],
    );
    assert_eq!(
        committed(&mut admin, "g1").await,
        expected(&[("orders", 0, 1), ("orders", 1, 1)])
    );

    // Shifting needs a commit to start from; an unknown group has none.
    let err = fails(
        &broker,
        &[
            "group",
            "reset-offsets",
            "fresh",
            "--topic",
            "orders",
            "--shift-by",
            "1",
        ],
    );
    assert!(
        err.contains(
            "cannot shift offset for partition orders-0 since there is no current committed offset"
        ),
        "{err}"
    );
    // Other resets of an unknown group create its offsets.
    ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "fresh",
            "--topic",
            "orders:1",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(
        committed(&mut admin, "fresh").await,
        expected(&[("orders", 1, 0)])
    );
    let err = fails(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--topic",
            "orders:7",
            "--to-earliest",
        ],
    );
    assert!(err.contains("topic orders has no partition 7"), "{err}");
    let err = fails(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g1",
            "--topic",
            "nope",
            "--to-earliest",
        ],
    );
    assert!(err.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{err}");

    // OffsetDelete on a group without members.
    let out = ok(
        &broker,
        &["group", "delete-offsets", "fresh", "--topic", "orders"],
    );
    assert_eq!(
        table(&out, "TOPIC"),
        vec![
            cells(&["orders", "0", "Successful"]),
            cells(&["orders", "1", "Successful"])
        ]
    );
    assert_eq!(committed(&mut admin, "fresh").await, vec![]);

    assert_eq!(
        ok(&broker, &["group", "delete", "g1"]),
        "Deleted group g1.\n"
    );
    let list = rows(&ok(&broker, &["group", "list"]));
    assert!(!list.iter().any(|r| r[0] == "g1"), "{list:?}");
    let err = fails(&broker, &["group", "describe", "g1"]);
    assert_eq!(err, "error: consumer group 'g1' does not exist\n");
    let err = fails(&broker, &["group", "delete", "g1"]);
    assert!(err.contains("group g1: GROUP_ID_NOT_FOUND"), "{err}");
}

fn tps(topic: &str, partitions: &[i32]) -> TopicPartitions {
    TopicPartitions {
        topic: topic.to_owned(),
        partitions: partitions.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_group_is_described_and_protected_until_it_is_empty() {
    let broker = tokio::task::block_in_place(|| Broker::start_with(SETTINGS));
    let mut admin = Admin::new(client(&broker, "admin"));
    create_topic(&mut admin, "events", 3).await;
    produce(&broker, "events", &[5, 6, 7]).await;

    let topics = ["events".to_owned()];
    let mut first = GroupMember::new(
        client(&broker, "member-1"),
        "g2",
        &topics,
        GroupMemberConfig::default(),
    );
    first.join().await.unwrap();
    assert!(first.is_leader());
    assert_eq!(first.assignment(), [tps("events", &[0, 1, 2])]);
    let results = first
        .commit(&offsets(&[("events", 0, 2), ("events", 1, 6)]))
        .await
        .unwrap();
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");

    // A second member: the first learns of the rebalance by heartbeat and
    // rejoins; the range assignor splits the partitions 2 + 1.
    let mut second = GroupMember::new(
        client(&broker, "member-2"),
        "g2",
        &topics,
        GroupMemberConfig::default(),
    );
    let joining = tokio::spawn(async move {
        second.join().await.unwrap();
        second
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match first.heartbeat().await {
            Ok(()) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no rebalance announced:\n{}",
                    broker.log()
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            Err(e) if e.code() == Some(27) => break, // REBALANCE_IN_PROGRESS
            Err(e) => panic!("heartbeat: {e}"),
        }
    }
    first.join().await.unwrap();
    let mut second = joining.await.unwrap();
    assert_eq!(first.generation(), second.generation());
    let (low, high) = if first.member_id() < second.member_id() {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert_eq!(low.assignment(), [tps("events", &[0, 1])]);
    assert_eq!(high.assignment(), [tps("events", &[2])]);
    let (low_id, high_id) = (low.member_id().to_owned(), high.member_id().to_owned());
    let low_client = if low_id == first.member_id() {
        "member-1"
    } else {
        "member-2"
    };
    let high_client = if low_client == "member-1" {
        "member-2"
    } else {
        "member-1"
    };

    let list = ok(&broker, &["group", "list", "--state", "Stable"]);
    assert_eq!(
        rows(&list),
        vec![
            cells(&["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"]),
            cells(&["g2", "Stable", "classic", "consumer"]),
        ]
    );

    let describe = ok(&broker, &["group", "describe", "g2"]);
    let head = rows(&describe);
    assert_eq!(head[1], cells(&["STATE", "Stable"]));
    assert_eq!(head[2], cells(&["PROTOCOL-TYPE", "consumer"]));
    assert_eq!(head[3], cells(&["PROTOCOL", "range"]));
    assert_eq!(head[5], cells(&["MEMBERS", "2"]));
    let mut members = table(&describe, "CONSUMER-ID");
    members.sort();
    let mut want = vec![
        cells(&[&low_id, "-", low_client, "/127.0.0.1", "2", "events(0,1)"]),
        cells(&[&high_id, "-", high_client, "/127.0.0.1", "1", "events(2)"]),
    ];
    want.sort();
    assert_eq!(members, want);
    assert_eq!(
        table(&describe, "TOPIC"),
        vec![
            cells(&[
                "events",
                "0",
                "2",
                "5",
                "3",
                &low_id,
                "/127.0.0.1",
                low_client
            ]),
            cells(&[
                "events",
                "1",
                "6",
                "6",
                "0",
                &low_id,
                "/127.0.0.1",
                low_client
            ]),
            cells(&[
                "events",
                "2",
                "-",
                "7",
                "-",
                &high_id,
                "/127.0.0.1",
                high_client
            ]),
        ]
    );

    // Kafka's rules while members are active.
    let err = fails(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g2",
            "--topic",
            "events",
            "--to-earliest",
            "--execute",
        ],
    );
    assert_eq!(
        err,
        "error: assignments can only be reset if the group 'g2' is inactive, but the current \
         state is Stable\n"
    );
    let err = fails(&broker, &["group", "delete", "g2"]);
    assert!(err.contains("group g2: NON_EMPTY_GROUP"), "{err}");
    let out = strom(
        &broker,
        &["group", "delete-offsets", "g2", "--topic", "events:0"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "TOPIC   PARTITION  STATUS\n\
         events  0          Error: group g2 events-0: GROUP_SUBSCRIBED_TO_TOPIC\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: 1 of 1 partitions failed\n"
    );
    assert_eq!(
        committed(&mut admin, "g2").await,
        expected(&[("events", 0, 2), ("events", 1, 6)])
    );

    // Once both have left, the group is Empty: resettable and deletable.
    second.leave().await.unwrap();
    first.leave().await.unwrap();
    let describe = ok(&broker, &["group", "describe", "g2"]);
    assert_eq!(rows(&describe)[1], cells(&["STATE", "Empty"]));
    assert_eq!(
        table(&describe, "TOPIC"),
        vec![
            cells(&["events", "0", "2", "5", "3", "-", "-", "-"]),
            cells(&["events", "1", "6", "6", "0", "-", "-", "-"]),
        ]
    );
    ok(
        &broker,
        &[
            "group",
            "reset-offsets",
            "g2",
            "--topic",
            "events",
            "--to-latest",
            "--execute",
        ],
    );
    assert_eq!(
        committed(&mut admin, "g2").await,
        expected(&[("events", 0, 5), ("events", 1, 6), ("events", 2, 7)])
    );
    // Several groups: each is reported, and one failure fails the command.
    let out = strom(&broker, &["group", "delete", "g2", "missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Deleted group g2.\n");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: group missing: GROUP_ID_NOT_FOUND\nerror: 1 of 2 groups failed\n"
    );
    assert_eq!(
        ok(&broker, &["group", "list"]),
        "GROUP  STATE  TYPE  PROTOCOL-TYPE\n"
    );
}
