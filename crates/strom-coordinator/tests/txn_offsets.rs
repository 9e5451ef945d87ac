//! TxnOffsetCommit: pending transactional offsets, commit and abort markers,
//! OffsetFetch `require_stable`, replay with log positions, KIP-447 checks.

mod common;

use common::consumer::Sim;
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
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use strom_coordinator::*;
use strom_types::ErrorCode;

const UNSTABLE: i16 = 88;

/// One entry of the shard's `__consumer_offsets` partition, at its index.
#[derive(Debug, Clone)]
enum Entry {
    Data {
        producer: Option<(i64, i16)>,
        record: CoordinatorRecord,
    },
    Control {
        producer_id: i64,
        commit: bool,
    },
}

/// A shard with its partition, written as a runtime would.
struct Harness {
    shard: GroupCoordinatorShard,
    log: Vec<Entry>,
    rid: u64,
}

impl Harness {
    fn new() -> Self {
        Self {
            shard: shard(),
            log: Vec::new(),
            rid: 100,
        }
    }

    /// Appends an output: plain records, then each transactional batch.
    fn write(&mut self, out: &Output) {
        for record in &out.records {
            self.log.push(Entry::Data {
                producer: None,
                record: record.clone(),
            });
        }
        for batch in &out.transactional_records {
            for record in &batch.records {
                self.log.push(Entry::Data {
                    producer: Some((batch.producer_id, batch.producer_epoch)),
                    record: record.clone(),
                });
            }
        }
    }

    fn next_rid(&mut self) -> u64 {
        self.rid += 1;
        self.rid
    }

    /// TxnOffsetCommit; returns the per-partition error codes.
    fn txn_commit(&mut self, version: i16, request: TxnOffsetCommitRequest) -> Vec<i16> {
        let rid = self.next_rid();
        let out = self.shard.txn_offset_commit(0, rid, version, request);
        self.write(&out);
        assert!(out.records.is_empty(), "{out:?}");
        txn_codes(&out, rid)
    }

    /// OffsetCommit v8 outside any transaction; returns the per-partition codes.
    fn plain_commit(&mut self, group: &str, parts: &[(&str, i32, i64)]) -> Vec<i16> {
        let topics = parts
            .iter()
            .map(|(t, p, o)| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(t)))
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(*p)
                        .with_committed_offset(*o)])
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(topics);
        let rid = self.next_rid();
        let out = self.shard.offset_commit(0, rid, 8, request);
        self.write(&out);
        assert!(out.transactional_records.is_empty());
        match out.reply_for(rid) {
            Some(Reply::OffsetCommit(r)) => r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    /// Writes the producer's marker and completes its transaction in the shard.
    fn marker(&mut self, producer_id: i64, commit: bool) {
        let offset = self.log.len() as i64;
        self.log.push(Entry::Control {
            producer_id,
            commit,
        });
        let out = self
            .shard
            .complete_transaction(0, producer_id, commit, offset);
        assert!(out.is_empty(), "{out:?}");
    }

    /// A fresh shard loaded from the log.
    fn replayed(&self) -> GroupCoordinatorShard {
        let mut fresh = shard();
        for (offset, entry) in self.log.iter().enumerate() {
            match entry {
                Entry::Data { producer, record } => {
                    fresh.replay_at(offset as i64, *producer, record).unwrap()
                }
                Entry::Control {
                    producer_id,
                    commit,
                } => fresh.replay_control(offset as i64, *producer_id, *commit),
            }
        }
        let _ = fresh.loaded(0);
        fresh
    }
}

fn txn_request(
    group: &str,
    producer_id: i64,
    parts: &[(&str, i32, i64, &str)],
) -> TxnOffsetCommitRequest {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset, metadata) in parts {
        let p = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(4)
            .with_committed_metadata(Some(s(metadata)));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s("tx")))
        .with_group_id(gid(group))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(3)
        .with_topics(topics)
}

fn txn_codes(out: &Output, rid: u64) -> Vec<i16> {
    match out.reply_for(rid) {
        Some(Reply::TxnOffsetCommit(r)) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
            .collect(),
        other => panic!("{other:?}"),
    }
}

type Row = (String, i32, i64, i16);

fn row(t: &str, p: i32, o: i64, code: i16) -> Row {
    (t.to_owned(), p, o, code)
}

/// OffsetFetch v8 of one group: (topic, partition, offset, error) rows.
fn fetch(
    shard: &mut GroupCoordinatorShard,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
    require_stable: bool,
) -> Vec<Row> {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|(t, ps)| {
                OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s(t)))
                    .with_partition_indexes(ps.to_vec())
            })
            .collect()
    });
    let request = OffsetFetchRequest::default()
        .with_require_stable(require_stable)
        .with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(gid(group))
            .with_topics(topics)]);
    let out = shard.offset_fetch(0, 7, 8, request);
    let Some(Reply::OffsetFetch(r)) = out.reply_for(7) else {
        panic!()
    };
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
                    p.error_code,
                )
            })
        })
        .collect()
}

fn all(shard: &mut GroupCoordinatorShard, group: &str) -> Vec<Row> {
    fetch(shard, group, None, false)
}

#[test]
fn committed_transaction_makes_its_offsets_visible() {
    let mut h = Harness::new();
    assert_eq!(h.plain_commit("g", &[("t", 0, 5)]), vec![0]);
    let rid = h.next_rid();
    let out = h.shard.txn_offset_commit(
        0,
        rid,
        3,
        txn_request("g", 1000, &[("t", 0, 10, "m0"), ("t", 1, 20, "m1")]),
    );
    h.write(&out);
    assert_eq!(txn_codes(&out, rid), vec![0, 0]);
    // One transactional batch of the request's producer, in Kafka's record format.
    assert!(out.records.is_empty());
    assert_eq!(out.transactional_records.len(), 1);
    let batch = &out.transactional_records[0];
    assert_eq!((batch.producer_id, batch.producer_epoch), (1000, 3));
    let decoded: Vec<DecodedRecord> = batch.records.iter().map(|r| r.decode().unwrap()).collect();
    let value = |offset, metadata: &str| OffsetCommitValue {
        version: RECORD_VALUE_VERSION,
        offset,
        leader_epoch: 4,
        metadata: metadata.to_owned(),
        commit_timestamp_ms: 0,
        expire_timestamp_ms: None,
    };
    assert_eq!(
        decoded,
        vec![
            DecodedRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
                value: Some(value(10, "m0")),
            },
            DecodedRecord::OffsetCommit {
                group: "g".into(),
                topic: "t".into(),
                partition: 1,
                value: Some(value(20, "m1")),
            },
        ]
    );
    // Invisible until the commit marker.
    assert_eq!(all(&mut h.shard, "g"), vec![row("t", 0, 5, 0)]);
    assert_eq!(
        fetch(&mut h.shard, "g", Some(&[("t", &[0, 1])]), false),
        vec![row("t", 0, 5, 0), row("t", 1, -1, 0)]
    );
    h.marker(1000, true);
    assert_eq!(
        all(&mut h.shard, "g"),
        vec![row("t", 0, 10, 0), row("t", 1, 20, 0)]
    );
    // A second marker for the producer changes nothing.
    h.marker(1000, false);
    assert_eq!(
        all(&mut h.shard, "g"),
        vec![row("t", 0, 10, 0), row("t", 1, 20, 0)]
    );
    let mut replayed = h.replayed();
    assert_eq!(
        all(&mut replayed, "g"),
        vec![row("t", 0, 10, 0), row("t", 1, 20, 0)]
    );
}

#[test]
fn aborted_transaction_leaves_the_previous_offset() {
    let mut h = Harness::new();
    assert_eq!(h.plain_commit("g", &[("t", 0, 5)]), vec![0]);
    assert_eq!(
        h.txn_commit(3, txn_request("g", 7, &[("t", 0, 10, ""), ("u", 0, 3, "")])),
        vec![0, 0]
    );
    h.marker(7, false);
    assert_eq!(all(&mut h.shard, "g"), vec![row("t", 0, 5, 0)]);
    assert_eq!(
        fetch(&mut h.shard, "g", Some(&[("t", &[0]), ("u", &[0])]), true),
        vec![row("t", 0, 5, 0), row("u", 0, -1, 0)]
    );
    let mut replayed = h.replayed();
    assert_eq!(all(&mut replayed, "g"), vec![row("t", 0, 5, 0)]);
    // The producer's next transaction commits normally.
    assert_eq!(
        h.txn_commit(3, txn_request("g", 7, &[("t", 0, 11, "")])),
        vec![0]
    );
    h.marker(7, true);
    assert_eq!(all(&mut h.shard, "g"), vec![row("t", 0, 11, 0)]);
    assert_eq!(all(&mut h.replayed(), "g"), vec![row("t", 0, 11, 0)]);
}

#[test]
fn require_stable_answers_unstable_offset_commit_per_partition() {
    let mut h = Harness::new();
    assert_eq!(h.plain_commit("g", &[("t", 0, 5), ("t", 1, 6)]), vec![0, 0]);
    assert_eq!(
        h.txn_commit(
            3,
            txn_request("g", 9, &[("t", 1, 60, ""), ("t", 2, 70, "")])
        ),
        vec![0, 0]
    );
    // Named partitions: pending ones are unstable, whether committed before or not.
    assert_eq!(
        fetch(&mut h.shard, "g", Some(&[("t", &[0, 1, 2, 3])]), true),
        vec![
            row("t", 0, 5, 0),
            row("t", 1, -1, UNSTABLE),
            row("t", 2, -1, UNSTABLE),
            row("t", 3, -1, 0),
        ]
    );
    // All partitions: the committed ones are listed, pending ones unstable.
    assert_eq!(
        fetch(&mut h.shard, "g", None, true),
        vec![row("t", 0, 5, 0), row("t", 1, -1, UNSTABLE)]
    );
    // Without require_stable the committed offsets answer.
    assert_eq!(
        fetch(&mut h.shard, "g", None, false),
        vec![row("t", 0, 5, 0), row("t", 1, 6, 0)]
    );
    // v7 (one group): the same per partition, no top-level error.
    let request = OffsetFetchRequest::default()
        .with_group_id(gid("g"))
        .with_require_stable(true)
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0, 1])]));
    let out = h.shard.offset_fetch(0, 8, 7, request);
    let Some(Reply::OffsetFetch(r)) = out.reply_for(8) else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    let rows: Vec<(i32, i64, i32, i16, Option<String>)> = r.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.committed_leader_epoch,
                p.error_code,
                p.metadata.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, 5, -1, 0, Some(String::new())),
            (1, -1, -1, UNSTABLE, Some(String::new())),
        ]
    );
    // Other groups are not affected.
    assert_eq!(h.plain_commit("h", &[("t", 1, 1)]), vec![0]);
    assert_eq!(
        fetch(&mut h.shard, "h", None, true),
        vec![row("t", 1, 1, 0)]
    );
    // Once the transaction ends, the group is stable again.
    h.marker(9, true);
    assert_eq!(
        fetch(&mut h.shard, "g", None, true),
        vec![row("t", 0, 5, 0), row("t", 1, 60, 0), row("t", 2, 70, 0)]
    );
}

#[test]
fn a_plain_commit_written_after_the_transactional_one_wins() {
    let mut h = Harness::new();
    // Transactional first, plain later: the plain commit stays.
    assert_eq!(
        h.txn_commit(3, txn_request("g", 1, &[("t", 0, 10, "")])),
        vec![0]
    );
    assert_eq!(h.plain_commit("g", &[("t", 0, 20)]), vec![0]);
    // Plain first, transactional later: the transaction's offset replaces it.
    assert_eq!(h.plain_commit("g", &[("t", 1, 30)]), vec![0]);
    assert_eq!(
        h.txn_commit(3, txn_request("g", 1, &[("t", 1, 40, "")])),
        vec![0]
    );
    assert_eq!(
        all(&mut h.shard, "g"),
        vec![row("t", 0, 20, 0), row("t", 1, 30, 0)]
    );
    h.marker(1, true);
    let expected = vec![row("t", 0, 20, 0), row("t", 1, 40, 0)];
    assert_eq!(all(&mut h.shard, "g"), expected);
    assert_eq!(all(&mut h.replayed(), "g"), expected);
    // Live order continues after a reload: the replayed shard orders its own new
    // records after every replayed one.
    let mut h2 = Harness {
        shard: h.replayed(),
        log: h.log.clone(),
        rid: 500,
    };
    assert_eq!(
        h2.txn_commit(3, txn_request("g", 2, &[("t", 0, 50, "")])),
        vec![0]
    );
    h2.marker(2, true);
    assert_eq!(
        all(&mut h2.shard, "g"),
        vec![row("t", 0, 50, 0), row("t", 1, 40, 0)]
    );
    assert_eq!(
        all(&mut h2.replayed(), "g"),
        vec![row("t", 0, 50, 0), row("t", 1, 40, 0)]
    );
}

#[test]
fn replay_of_a_log_with_transactions_gives_the_same_state() {
    let mut h = Harness::new();
    assert_eq!(h.plain_commit("g", &[("t", 0, 1), ("t", 1, 1)]), vec![0, 0]);
    // Producer 1 commits, 2 aborts, 3 stays open; their records interleave.
    assert_eq!(
        h.txn_commit(3, txn_request("g", 1, &[("t", 0, 10, "a")])),
        vec![0]
    );
    assert_eq!(
        h.txn_commit(3, txn_request("g", 2, &[("t", 1, 20, "b")])),
        vec![0]
    );
    assert_eq!(
        h.txn_commit(3, txn_request("g", 3, &[("t", 2, 30, "c")])),
        vec![0]
    );
    assert_eq!(
        h.txn_commit(3, txn_request("other", 3, &[("t", 0, 31, "c")])),
        vec![0]
    );
    assert_eq!(
        h.txn_commit(3, txn_request("g", 1, &[("t", 3, 11, "a")])),
        vec![0]
    );
    h.marker(1, true);
    h.marker(2, false);
    let views = |shard: &mut GroupCoordinatorShard| {
        (
            all(shard, "g"),
            fetch(shard, "g", Some(&[("t", &[0, 1, 2, 3])]), true),
            fetch(shard, "other", Some(&[("t", &[0])]), true),
        )
    };
    let live = views(&mut h.shard);
    assert_eq!(
        live,
        (
            vec![row("t", 0, 10, 0), row("t", 1, 1, 0), row("t", 3, 11, 0)],
            vec![
                row("t", 0, 10, 0),
                row("t", 1, 1, 0),
                row("t", 2, -1, UNSTABLE),
                row("t", 3, 11, 0),
            ],
            vec![row("t", 0, -1, UNSTABLE)],
        )
    );
    let mut replayed = h.replayed();
    assert_eq!(views(&mut replayed), live);
    // The open transaction completes after the reload as it would have live.
    h.marker(3, true);
    let Some(Entry::Control {
        producer_id,
        commit,
    }) = h.log.last().cloned()
    else {
        panic!()
    };
    let _ = replayed.complete_transaction(0, producer_id, commit, h.log.len() as i64 - 1);
    let live = views(&mut h.shard);
    assert_eq!(live.0[2], row("t", 2, 30, 0));
    assert_eq!(live.2, vec![row("t", 0, 31, 0)]);
    assert_eq!(views(&mut replayed), live);
    assert_eq!(views(&mut h.replayed()), live);
}

#[test]
fn txn_offset_commit_validation_of_classic_groups() {
    let mut h = Harness::new();
    let (a, _b) = stable_pair(&mut h.shard);
    let member = |req: TxnOffsetCommitRequest, m: &str, generation: i32| {
        req.with_member_id(s(m)).with_generation_id(generation)
    };
    let req = || txn_request("g", 5, &[("t", 0, 10, ""), ("t", 1, 11, "")]);
    // KIP-447 (v3+): member id and generation are checked.
    assert_eq!(h.txn_commit(3, member(req(), &a, 1)), vec![0, 0]);
    let illegal = ErrorCode::IllegalGeneration.code();
    assert_eq!(
        h.txn_commit(3, member(req(), &a, 2)),
        vec![illegal, illegal]
    );
    let unknown = ErrorCode::UnknownMemberId.code();
    assert_eq!(
        h.txn_commit(3, member(req(), "nobody", 1)),
        vec![unknown, unknown]
    );
    assert_eq!(
        h.txn_commit(
            3,
            member(req(), &a, 1).with_group_instance_id(Some(s("not-static")))
        ),
        vec![unknown, unknown]
    );
    // Without member and generation (v0-2 sends none) a live group accepts them.
    assert_eq!(h.txn_commit(2, req()), vec![0, 0]);
    // An unknown group is a simple group only with generation -1.
    assert_eq!(
        h.txn_commit(
            3,
            txn_request("new", 5, &[("t", 0, 1, "")]).with_generation_id(1)
        ),
        vec![illegal]
    );
    assert_eq!(
        h.txn_commit(3, txn_request("new", 5, &[("t", 0, 1, "")])),
        vec![0]
    );
    assert_eq!(
        h.txn_commit(3, txn_request("", 5, &[("t", 0, 1, "")])),
        vec![ErrorCode::InvalidGroupId.code()]
    );
    // Too long metadata fails its partition only.
    let long = "x".repeat(4097);
    assert_eq!(
        h.txn_commit(
            3,
            txn_request("g", 5, &[("t", 0, 12, &long), ("t", 1, 13, "ok")])
        ),
        vec![ErrorCode::OffsetMetadataTooLarge.code(), 0]
    );
    // Failed requests wrote nothing: the batches are those of the accepted ones.
    let written: Vec<(String, i32, i64)> = h
        .log
        .iter()
        .filter_map(|e| match e {
            Entry::Data {
                producer: Some((5, 3)),
                record,
            } => match record.decode().unwrap() {
                DecodedRecord::OffsetCommit {
                    group,
                    partition,
                    value: Some(v),
                    ..
                } => Some((group, partition, v.offset)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        written,
        vec![
            ("g".into(), 0, 10),
            ("g".into(), 1, 11),
            ("g".into(), 0, 10),
            ("g".into(), 1, 11),
            ("new".into(), 0, 1),
            ("g".into(), 1, 13),
        ]
    );
    h.marker(5, true);
    assert_eq!(
        all(&mut h.shard, "g"),
        vec![row("t", 0, 10, 0), row("t", 1, 13, 0)]
    );
    assert_eq!(all(&mut h.shard, "new"), vec![row("t", 0, 1, 0)]);
}

#[test]
fn txn_offset_commit_validation_of_consumer_groups() {
    let mut sim = Sim::new(GroupConfig::default());
    let epoch = sim.join("m1", &["t"]).member_epoch;
    assert!(epoch > 0);
    let req = |m: &str, generation: i32| {
        txn_request("g", 5, &[("t", 0, 10, "")])
            .with_member_id(s(m))
            .with_generation_id(generation)
    };
    let mut codes = |version: i16, request| {
        let out = sim.shard.txn_offset_commit(0, 1, version, request);
        txn_codes(&out, 1)
    };
    // The member epoch is the generation; TxnOffsetCommit v3 suffices (no v9 rule).
    assert_eq!(codes(3, req("m1", epoch)), vec![0]);
    assert_eq!(
        codes(3, req("m1", epoch + 1)),
        vec![ErrorCode::IllegalGeneration.code()]
    );
    assert_eq!(
        codes(3, req("m9", epoch)),
        vec![ErrorCode::UnknownMemberId.code()]
    );
    // Without a member, only an empty consumer group accepts transactional offsets.
    assert_eq!(
        codes(2, req("", -1)),
        vec![ErrorCode::UnknownMemberId.code()]
    );
    let _ = sim.leave("m1", -1);
    let mut codes = |version: i16, request| {
        let out = sim.shard.txn_offset_commit(0, 2, version, request);
        txn_codes(&out, 2)
    };
    assert_eq!(codes(2, req("", -1)), vec![0]);
}

fn delete_offsets(h: &mut Harness, group: &str, topic: &str, ps: &[i32]) -> Output {
    let request = OffsetDeleteRequest::default()
        .with_group_id(gid(group))
        .with_topics(vec![OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(
                ps.iter()
                    .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                    .collect(),
            )]);
    let out = h.shard.offset_delete(0, 3, 0, request);
    h.write(&out);
    out
}

fn keys(out: &Output) -> Vec<(RecordKey, bool)> {
    out.records
        .iter()
        .map(|r| (serde_json::from_slice(&r.key).unwrap(), r.value.is_some()))
        .collect()
}

fn offset_key(group: &str, topic: &str, partition: i32) -> RecordKey {
    RecordKey::OffsetCommit {
        group: group.into(),
        topic: topic.into(),
        partition,
    }
}

#[test]
fn deleting_offsets_or_the_group_drops_pending_ones() {
    let mut h = Harness::new();
    assert_eq!(h.plain_commit("g", &[("t", 0, 5)]), vec![0]);
    assert_eq!(
        h.txn_commit(
            3,
            txn_request("g", 1, &[("t", 0, 10, ""), ("t", 1, 11, "")])
        ),
        vec![0, 0]
    );
    // OffsetDelete writes a tombstone for a partition with only a pending offset too.
    let out = delete_offsets(&mut h, "g", "t", &[1, 2]);
    assert_eq!(keys(&out), vec![(offset_key("g", "t", 1), false)]);
    assert_eq!(
        fetch(&mut h.shard, "g", Some(&[("t", &[0, 1])]), true),
        vec![row("t", 0, -1, UNSTABLE), row("t", 1, -1, 0)]
    );
    // DeleteGroups: one tombstone per partition, committed or pending, then the group.
    assert_eq!(
        h.txn_commit(
            3,
            txn_request("g", 2, &[("t", 0, 20, ""), ("u", 0, 21, "")])
        ),
        vec![0, 0]
    );
    let out = h.shard.delete_groups(
        0,
        4,
        2,
        DeleteGroupsRequest::default().with_groups_names(vec![gid("g")]),
    );
    h.write(&out);
    assert_eq!(
        keys(&out),
        vec![
            (offset_key("g", "t", 0), false),
            (offset_key("g", "u", 0), false),
            (RecordKey::ClassicGroup { group: "g".into() }, false),
        ]
    );
    // Committing the transactions afterwards brings nothing back.
    h.marker(1, true);
    h.marker(2, true);
    assert_eq!(all(&mut h.shard, "g"), vec![]);
    assert_eq!(all(&mut h.replayed(), "g"), vec![]);
}

#[test]
fn a_deleted_topic_takes_pending_offsets_with_it() {
    let mut h = Harness::new();
    assert_eq!(h.plain_commit("g", &[("t", 0, 5)]), vec![0]);
    assert_eq!(
        h.txn_commit(
            3,
            txn_request("g", 1, &[("t", 0, 10, ""), ("t", 1, 11, "")])
        ),
        vec![0, 0]
    );
    assert_eq!(
        h.txn_commit(3, txn_request("h", 2, &[("t", 1, 12, "")])),
        vec![0]
    );
    let out = h.shard.topics_deleted(0, &["t".to_owned()]);
    h.write(&out);
    assert_eq!(
        keys(&out),
        vec![
            (offset_key("g", "t", 0), false),
            (offset_key("g", "t", 1), false),
            (offset_key("h", "t", 1), false),
        ]
    );
    h.marker(1, true);
    h.marker(2, true);
    assert_eq!(all(&mut h.shard, "g"), vec![]);
    assert_eq!(all(&mut h.shard, "h"), vec![]);
}

#[test]
fn offsets_do_not_expire_while_a_transaction_holds_them() {
    let mut h = Harness::new();
    assert_eq!(h.plain_commit("g", &[("t", 0, 5), ("t", 1, 6)]), vec![0, 0]);
    assert_eq!(
        h.txn_commit(3, txn_request("g", 1, &[("t", 0, 10, "")])),
        vec![0]
    );
    let retention = h.shard.config().offsets_retention_ms();
    // Past retention: t-1 expires, t-0 and the group stay for the open transaction.
    let mut now = 0;
    let mut expired = Vec::new();
    while now <= retention + 600_000 {
        now = h.shard.next_deadline_ms().unwrap();
        let out = h.shard.tick(now);
        h.write(&out);
        expired.extend(keys(&out));
    }
    assert_eq!(expired, vec![(offset_key("g", "t", 1), false)]);
    assert_eq!(
        fetch(&mut h.shard, "g", Some(&[("t", &[0])]), true),
        vec![row("t", 0, -1, UNSTABLE)]
    );
    // After the abort the old offset expires, and the group with it.
    h.marker(1, false);
    let now = h.shard.next_deadline_ms().unwrap();
    let out = h.shard.tick(now);
    assert_eq!(
        keys(&out),
        vec![
            (offset_key("g", "t", 0), false),
            (RecordKey::ClassicGroup { group: "g".into() }, false),
        ]
    );
}

#[test]
fn an_open_transaction_keeps_its_simple_group() {
    let mut h = Harness::new();
    // The group exists only through the pending offset.
    assert_eq!(
        h.txn_commit(3, txn_request("s", 1, &[("t", 0, 10, "")])),
        vec![0]
    );
    let retention = h.shard.config().offsets_retention_ms();
    let mut now = 0;
    while now <= retention + 600_000 {
        now = h.shard.next_deadline_ms().unwrap();
        let out = h.shard.tick(now);
        assert!(out.records.is_empty(), "{out:?}");
    }
    h.marker(1, true);
    assert_eq!(all(&mut h.shard, "s"), vec![row("t", 0, 10, 0)]);
    assert_eq!(all(&mut h.replayed(), "s"), vec![row("t", 0, 10, 0)]);
}
