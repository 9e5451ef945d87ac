"""Transactions (KIP-98) with confluent-kafka's transactional producer against the real broker:
what read_committed and read_uncommitted consumers see after commits and aborts, where the commit
and abort markers sit, the last stable offset while a transaction is open, fencing by a second
producer with the same transactional.id, the coordinator aborting a transaction left open past its
timeout, and a transaction over 20 partitions and __consumer_offsets across broker kills."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from helpers import create_topic, produce_all, producer, unique, wait_until
from txn_helpers import (READ_COMMITTED, READ_UNCOMMITTED, TXN_CALL_TIMEOUT_S, Entry, Rec, committed_offsets,
                         high_watermarks, init, kafka_error, last_stable_offsets, log_entries, produce_in_txn,
                         read_all, txn_producer)

pytestmark = pytest.mark.timeout(120)


def recs(tag: str, n: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    return [(b"%s-k%03d" % (tag.encode(), i), b"%s-v%03d" % (tag.encode(), i)) for i in range(start, start + n)]


def as_recs(first_offset: int, records) -> list[Rec]:
    return [Rec(first_offset + i, k, v) for i, (k, v) in enumerate(records)]


def markers(entries: list[Entry]) -> list[tuple[int, str]]:
    return [(e.offset, e.kind) for e in entries if e.kind != "data"]


def test_commit_abort_commit_read_committed_and_uncommitted(broker):
    topic = unique("txn-basic")
    create_topic(broker, topic, 1)
    p = init(txn_producer(broker, unique("basic")))
    first, aborted, last = recs("c1", 100), recs("ab", 100), recs("c2", 100)

    p.begin_transaction()
    produce_in_txn(p, topic, first, partition=0)
    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    p.begin_transaction()
    produce_in_txn(p, topic, aborted, partition=0)
    p.abort_transaction(TXN_CALL_TIMEOUT_S)
    p.begin_transaction()
    produce_in_txn(p, topic, last, partition=0)
    p.commit_transaction(TXN_CALL_TIMEOUT_S)

    # 300 data records and 3 markers: [0, 100) c1, 100 commit, [101, 201) aborted, 201 abort,
    # [202, 302) c2, 302 commit.
    assert high_watermarks(broker, topic, 1) == {0: 303}
    assert last_stable_offsets(broker, topic, 1) == {0: 303}
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == as_recs(0, first) + as_recs(202, last)
    assert read_all(broker, topic, 1, READ_UNCOMMITTED)[0] == \
        as_recs(0, first) + as_recs(101, aborted) + as_recs(202, last)

    entries = log_entries(broker, topic, 0, 303)
    assert markers(entries) == [(100, "commit"), (201, "abort"), (302, "commit")]
    assert len({e.producer_id for e in entries}) == 1 and entries[0].producer_id >= 0
    assert all(e.transactional for e in entries)

    # kafka-python's read_committed consumer filters the aborted transaction the same way.
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition as KpTopicPartition
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                       enable_auto_commit=False, auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    try:
        tp = KpTopicPartition(topic, 0)
        kc.assign([tp])
        got = []
        for r in kc:
            got.append(Rec(r.offset, r.key, r.value))
            if len(got) == 200:
                break
        assert got == as_recs(0, first) + as_recs(202, last)
        assert kc.position(tp) in (302, 303)  # past the last data record, at most past the marker
    finally:
        kc.close()
    p.flush(5)


def test_open_transaction_holds_back_read_committed_consumers(broker):
    """The last stable offset stays at the open transaction's first offset; records written after
    it (non-transactional ones included) reach read_committed consumers only once it is decided."""
    topic = unique("txn-lso")
    create_topic(broker, topic, 1)
    p = init(txn_producer(broker, unique("lso")))
    p.begin_transaction()
    in_txn = recs("open", 10)
    produce_in_txn(p, topic, in_txn, partition=0)
    plain = recs("plain", 5)
    assert [d.offset for d in produce_all(producer(broker), topic,
                                          [{"key": k, "value": v, "partition": 0} for k, v in plain])] \
        == list(range(10, 15))

    assert high_watermarks(broker, topic, 1) == {0: 15}
    assert last_stable_offsets(broker, topic, 1) == {0: 0}
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == []
    assert read_all(broker, topic, 1, READ_UNCOMMITTED)[0] == as_recs(0, in_txn + plain)

    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    assert high_watermarks(broker, topic, 1) == {0: 16}
    assert last_stable_offsets(broker, topic, 1) == {0: 16}
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == as_recs(0, in_txn + plain)
    assert markers(log_entries(broker, topic, 0, 16)) == [(15, "commit")]


def test_second_producer_with_the_same_transactional_id_fences_the_first(broker):
    topic = unique("txn-fence")
    create_topic(broker, topic, 1)
    tid = unique("fenced")
    zombie = init(txn_producer(broker, tid))
    zombie.begin_transaction()
    zombie_recs = recs("zombie", 10)
    produce_in_txn(zombie, topic, zombie_recs, partition=0)

    # InitProducerId of the newcomer aborts the zombie's open transaction and bumps the epoch.
    newcomer = init(txn_producer(broker, tid))
    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, key=b"late", value=b"late", partition=0)
        zombie.commit_transaction(TXN_CALL_TIMEOUT_S)
    err = kafka_error(raised.value)
    assert (err.code(), err.fatal()) == (KafkaError._FENCED, True), err
    # The zombie cannot start another transaction either (librdkafka answers _CONFLICT: the
    # failed commit_transaction call still holds its API slot after the fatal error).
    with pytest.raises(KafkaException):
        zombie.begin_transaction()

    newcomer.begin_transaction()
    new_recs = recs("new", 10)
    produce_in_txn(newcomer, topic, new_recs, partition=0)
    newcomer.commit_transaction(TXN_CALL_TIMEOUT_S)

    # [0, 10) zombie, 10 abort (written by the coordinator), [11, 21) newcomer, 21 commit.
    assert high_watermarks(broker, topic, 1) == {0: 22}
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == as_recs(11, new_recs)
    assert read_all(broker, topic, 1, READ_UNCOMMITTED)[0] == as_recs(0, zombie_recs) + as_recs(11, new_recs)
    entries = log_entries(broker, topic, 0, 22)
    assert markers(entries) == [(10, "abort"), (21, "commit")]
    # Same producer id, one transactional.id: the epoch bump is what fences.
    assert len({e.producer_id for e in entries}) == 1


def test_transaction_left_open_past_its_timeout_is_aborted_by_the_coordinator(broker_factory):
    broker = broker_factory({"transaction.abort.timed.out.transaction.cleanup.interval.ms": "500"})
    topic = unique("txn-timeout")
    create_topic(broker, topic, 1)
    # Long enough that a loaded machine writes both batches and asks for the last stable offset
    # before the coordinator may abort (3 s was once too short under CI load).
    p = init(txn_producer(broker, unique("timeout"), **{"transaction.timeout.ms": 10000,
                                                         "message.timeout.ms": 10000}))
    p.begin_transaction()
    abandoned = recs("abandoned", 20)
    produce_in_txn(p, topic, abandoned, partition=0)
    plain = recs("plain", 5)
    produce_all(producer(broker), topic, [{"key": k, "value": v, "partition": 0} for k, v in plain])
    assert last_stable_offsets(broker, topic, 1) == {0: 0}

    # The coordinator aborts the transaction: one abort marker after the plain records, and the
    # last stable offset moves past everything.
    wait_until(lambda: last_stable_offsets(broker, topic, 1) == {0: 26}, timeout_s=30,
               what="the timed-out transaction to be aborted (last stable offset 26)")
    assert high_watermarks(broker, topic, 1) == {0: 26}
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == as_recs(20, plain)
    assert read_all(broker, topic, 1, READ_UNCOMMITTED)[0] == as_recs(0, abandoned + plain)
    entries = log_entries(broker, topic, 0, 26)
    assert markers(entries) == [(25, "abort")]
    assert entries[25].producer_id == entries[0].producer_id

    # The abort bumped the producer's epoch: its late commit is fenced, nothing becomes visible.
    with pytest.raises(KafkaException) as raised:
        p.commit_transaction(TXN_CALL_TIMEOUT_S)
    err = kafka_error(raised.value)
    assert (err.code(), err.fatal()) == (KafkaError._FENCED, True), err
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == as_recs(20, plain)
    assert high_watermarks(broker, topic, 1) == {0: 26}


WIDE = 20


def test_transaction_over_20_partitions_and_consumer_offsets_across_broker_kills(broker):
    """Transactions writing 10 records to each of 20 partitions plus an offset commit; the broker is
    killed while one is open and then committed, and while another is open and then aborted."""
    topic, source, group = unique("txn-wide"), unique("txn-source"), unique("txn-group")
    create_topic(broker, topic, WIDE)
    create_topic(broker, source, 1)
    p = init(txn_producer(broker, unique("wide")))
    # A group member that never joins: its metadata (generation -1) is what a simple group commits with.
    member = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False})
    group_metadata = member.consumer_group_metadata()
    member.close()

    def txn_records(tag: str, part: int) -> list[tuple[bytes, bytes]]:
        return recs(f"{tag}-p{part:02d}", 10)

    def write(tag: str, source_offset: int) -> None:
        p.begin_transaction()
        produce_in_txn(p, topic, [(k, v, part) for part in range(WIDE) for k, v in txn_records(tag, part)])
        p.send_offsets_to_transaction([TopicPartition(source, 0, source_offset)], group_metadata,
                                      TXN_CALL_TIMEOUT_S)

    def committed_view() -> dict[int, list[Rec]]:
        return read_all(broker, topic, WIDE, READ_COMMITTED)

    write("t1", 111)
    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    after_t1 = {part: as_recs(0, txn_records("t1", part)) for part in range(WIDE)}
    assert committed_view() == after_t1
    assert committed_offsets(broker, group, source, 1) == {0: 111}
    assert last_stable_offsets(broker, topic, WIDE) == {part: 11 for part in range(WIDE)}

    # t2: open across a kill -9; the restarted broker knows it is open, then it commits.
    write("t2", 222)
    assert last_stable_offsets(broker, topic, WIDE) == {part: 11 for part in range(WIDE)}
    assert committed_offsets(broker, group, source, 1) == {0: 111}
    broker.restart(kill=True)
    assert high_watermarks(broker, topic, WIDE) == {part: 21 for part in range(WIDE)}
    assert last_stable_offsets(broker, topic, WIDE) == {part: 11 for part in range(WIDE)}
    assert committed_view() == after_t1
    assert committed_offsets(broker, group, source, 1) == {0: 111}
    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    after_t2 = {part: after_t1[part] + as_recs(11, txn_records("t2", part)) for part in range(WIDE)}
    assert last_stable_offsets(broker, topic, WIDE) == {part: 22 for part in range(WIDE)}
    assert committed_view() == after_t2
    assert committed_offsets(broker, group, source, 1) == {0: 222}

    # t3: open across a kill -9, then aborted.
    write("t3", 333)
    broker.restart(kill=True)
    assert last_stable_offsets(broker, topic, WIDE) == {part: 22 for part in range(WIDE)}
    p.abort_transaction(TXN_CALL_TIMEOUT_S)
    assert last_stable_offsets(broker, topic, WIDE) == {part: 33 for part in range(WIDE)}
    assert high_watermarks(broker, topic, WIDE) == {part: 33 for part in range(WIDE)}
    assert committed_view() == after_t2
    assert committed_offsets(broker, group, source, 1) == {0: 222}
    uncommitted = read_all(broker, topic, WIDE, READ_UNCOMMITTED)
    assert uncommitted == {part: after_t2[part] + as_recs(22, txn_records("t3", part)) for part in range(WIDE)}

    # t4 commits after the restarts; then a clean restart and a kill -9 replay markers and the
    # transactional offset commits to the same state.
    write("t4", 444)
    p.commit_transaction(TXN_CALL_TIMEOUT_S)
    after_t4 = {part: after_t2[part] + as_recs(33, txn_records("t4", part)) for part in range(WIDE)}
    for kill in (False, True):
        broker.restart(kill=kill)
        assert committed_view() == after_t4
        assert committed_offsets(broker, group, source, 1) == {0: 444}
        assert last_stable_offsets(broker, topic, WIDE) == {part: 44 for part in range(WIDE)}
    for part in (0, WIDE - 1):
        assert markers(log_entries(broker, topic, part, 44)) == \
            [(10, "commit"), (21, "commit"), (32, "abort"), (43, "commit")]
    p.flush(5)


JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.skipif(not (JS / "node_modules" / "kafkajs").is_dir(),
                    reason="kafkajs not installed: run `npm ci --prefix tests/js`")
def test_kafkajs_transactions_commit_abort_and_offsets(broker):
    """kafkajs 2.2.4's transactional producer (tests/js/txn_producer.js): commit, abort, commit, each
    with sendOffsets; only the committed records and offsets become visible."""
    topic, source, group = unique("txn-js"), unique("txn-js-source"), unique("txn-js-group")
    create_topic(broker, topic, 1)
    create_topic(broker, source, 1)
    steps = [{"tag": "c1", "records": 50, "offset": 111, "end": "commit"},
             {"tag": "ab", "records": 50, "offset": 222, "end": "abort"},
             {"tag": "c2", "records": 50, "offset": 333, "end": "commit"},
             {"tag": "ab2", "records": 5, "offset": 444, "end": "abort"}]
    spec = {"brokers": [broker.bootstrap], "transactionalId": unique("js"), "topic": topic, "group": group,
            "source": source, "steps": steps, "timeoutMs": 90_000}
    run = subprocess.run([NODE, str(JS / "txn_producer.js"), json.dumps(spec)], cwd=JS, capture_output=True,
                         text=True, timeout=100)
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert run.returncode == 0, f"kafkajs exited {run.returncode}: {events}\n{run.stderr[-2000:]}"
    assert [e["ev"] for e in events] == ["commit", "abort", "commit", "abort", "done"]

    def js_recs(tag, n):
        return [(b"%s-k%03d" % (tag.encode(), i), b"%s-v%03d" % (tag.encode(), i)) for i in range(n)]
    # [0, 50) c1, 50 commit, [51, 101) ab, 101 abort, [102, 152) c2, 152 commit, [153, 158) ab2, 158 abort.
    assert high_watermarks(broker, topic, 1) == {0: 159}
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == as_recs(0, js_recs("c1", 50)) + \
        as_recs(102, js_recs("c2", 50))
    assert read_all(broker, topic, 1, READ_UNCOMMITTED)[0] == as_recs(0, js_recs("c1", 50)) + \
        as_recs(51, js_recs("ab", 50)) + as_recs(102, js_recs("c2", 50)) + as_recs(153, js_recs("ab2", 5))
    assert markers(log_entries(broker, topic, 0, 159)) == [(50, "commit"), (101, "abort"), (152, "commit"),
                                                           (158, "abort")]
    assert committed_offsets(broker, group, source, 1) == {0: 333}
