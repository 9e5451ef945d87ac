//! `strom cluster elect-leaders` and `strom cluster reassign` against a real broker.

mod common;

use common::Broker;

#[test]
fn elect_leaders_reports_each_partition_as_kafka_answers() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "orders", "-p", "2"]);

    assert_eq!(
        broker.ok(&[
            "cluster",
            "elect-leaders",
            "--topic",
            "orders",
            "--partition",
            "1"
        ]),
        "TOPIC   PARTITION  RESULT\n\
         orders  1          ELECTION_NOT_NEEDED\n"
    );
    assert_eq!(
        broker.ok(&[
            "cluster",
            "elect-leaders",
            "--type",
            "unclean",
            "--topic",
            "orders"
        ]),
        "TOPIC   PARTITION  RESULT\n\
         orders  0          ELECTION_NOT_NEEDED\n\
         orders  1          ELECTION_NOT_NEEDED\n"
    );
    // Every partition: those that need nothing are left out of the answer.
    assert_eq!(
        broker.ok(&["cluster", "elect-leaders"]),
        "No partition needed an election.\n"
    );

    let args = [
        "cluster",
        "elect-leaders",
        "--topic",
        "missing",
        "--partition",
        "0",
    ];
    let out = broker.strom(&args);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "TOPIC    PARTITION  RESULT\n\
         missing  0          UNKNOWN_TOPIC_OR_PARTITION\n"
    );
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: 1 of 1 elections failed\n"
    );
}

#[test]
fn reassign_moves_lists_and_cancels_with_kafkas_errors() {
    let broker = Broker::start();
    broker.ok(&["topic", "create", "orders", "-p", "1"]);

    // To its own broker: nothing to copy, the move is done at once.
    assert_eq!(
        broker.ok(&[
            "cluster",
            "reassign",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--replicas",
            "1"
        ]),
        "Reassignment of orders-0 to replicas 1 started.\n"
    );
    assert_eq!(
        broker.ok(&["cluster", "reassign", "--list"]),
        "No partition reassignment is in progress.\n"
    );
    assert_eq!(
        broker.fails(&[
            "cluster",
            "reassign",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--replicas",
            "1,2"
        ]),
        "error: orders-0: INVALID_REPLICA_ASSIGNMENT: The manual partition assignment \
         includes broker 2, but no such broker is registered.\n"
    );
    assert_eq!(
        broker.fails(&[
            "cluster",
            "reassign",
            "--topic",
            "orders",
            "--partition",
            "0",
            "--cancel"
        ]),
        "error: orders-0: NO_REASSIGNMENT_IN_PROGRESS: No partition reassignment is in progress.\n"
    );
    assert_eq!(
        broker.fails(&[
            "cluster",
            "reassign",
            "--topic",
            "orders",
            "--partition",
            "3",
            "--replicas",
            "1"
        ]),
        "error: orders-3: UNKNOWN_TOPIC_OR_PARTITION: Unable to find partition orders:3.\n"
    );
    // Nothing moved: the partition is where it was.
    let describe = broker.ok(&["topic", "describe", "orders"]);
    let partition_row: Vec<&str> = describe
        .lines()
        .find(|l| l.starts_with("0 "))
        .unwrap()
        .split_whitespace()
        .collect();
    // PARTITION LEADER EPOCH REPLICAS ISR ...
    assert_eq!(
        (partition_row[1], partition_row[3], partition_row[4]),
        ("1", "1", "1")
    );
    // A cancel needs the partition; clap refuses the command (usage error, status 2).
    let out = broker.strom(&["cluster", "reassign", "--topic", "orders", "--cancel"]);
    assert_eq!(out.status.code(), Some(2));
}
