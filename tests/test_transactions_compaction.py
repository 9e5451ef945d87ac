"""Transactions meet log cleaning: compaction of a topic holding committed and aborted transactions,
and time retention deleting segments of a transaction that is still open.

Kafka's cleaner removes the records of aborted transactions outright (read_uncommitted consumers no
longer see them either), keeps the latest committed record per key, and keeps a commit or abort
marker while any record of its transaction remains and then for delete.retention.ms longer (the
default, one day, here). Retention is bounded by the high watermark only: it deletes segments of an
open transaction, and the last stable offset is then the new log start offset."""

from __future__ import annotations

import re
import time

import pytest
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from helpers import admin, create_topic, produce_all, producer, unique, wait_until
from txn_helpers import (READ_COMMITTED, READ_UNCOMMITTED, TXN_CALL_TIMEOUT_S, Rec, high_watermarks, init,
                         last_stable_offsets, log_entries, log_start_offsets, produce_in_txn, read_all, txn_producer)


def watermarks(broker, topic: str, partition: int) -> tuple[int, int]:
    """(log start offset, high watermark), whatever transactions are open."""
    return (log_start_offsets(broker, topic, [partition])[partition],
            high_watermarks(broker, topic, [partition])[partition])

pytestmark = pytest.mark.timeout(180)

PADDING = b"." * 1000


def padded(tag: str, key: bytes) -> bytes:
    return b"%s-%s-" % (tag.encode(), key) + PADDING


def test_compaction_drops_aborted_records_and_keeps_markers(broker_factory):
    broker = broker_factory({"log.cleaner.backoff.ms": "200"})
    topic = unique("txn-compacted")
    create_topic(broker, topic, 1, config={"cleanup.policy": "compact", "segment.bytes": "1048576",
                                           "min.cleanable.dirty.ratio": "0.01"})
    p = init(txn_producer(broker, unique("compact")))
    keys = [b"k%02d" % i for i in range(40)]

    def txn(records, commit: bool) -> None:
        p.begin_transaction()
        produce_in_txn(p, topic, records, partition=0)
        if commit:
            p.commit_transaction(TXN_CALL_TIMEOUT_S)
        else:
            p.abort_transaction(TXN_CALL_TIMEOUT_S)

    a = [(k, padded("A", k)) for k in keys]  # committed: offsets 0..39, marker 40
    b = [(k, padded("B", k)) for k in keys] + [(b"b-only-%02d" % i, padded("B", b"only")) for i in range(20)]
    c = [(k, padded("C", k)) for k in keys[:20]]  # committed: offsets 102..121, marker 122
    fill = [(b"f%04d" % i, padded("F", b"fill")) for i in range(1500)]  # 123..1622, marker 1623
    txn(a, True)
    txn(b, False)  # aborted: offsets 41..100, marker 101
    txn(c, True)
    txn(fill, True)  # ~1.5 MB of distinct keys: A, B and C end up in rolled, cleanable segments
    end = 1624
    assert watermarks(broker, topic, 0) == (0, end)

    survivors = ([Rec(102 + i, k, v) for i, (k, v) in enumerate(c)]
                 + [Rec(20 + i, k, v) for i, (k, v) in enumerate(a[20:])])
    survivors.sort(key=lambda r: r.offset)
    survivors += [Rec(123 + i, k, v) for i, (k, v) in enumerate(fill)]

    def cleaned():
        return read_all(broker, topic, 1, READ_UNCOMMITTED)[0] == survivors
    wait_until(cleaned, timeout_s=120, interval_s=0.5,
               what="aborted records and superseded committed versions removed by compaction")
    assert [line for line in broker.log().splitlines() if topic in line and re.search(r"\bcompacted\b", line)]

    def check() -> None:
        assert read_all(broker, topic, 1, READ_UNCOMMITTED)[0] == survivors
        assert read_all(broker, topic, 1, READ_COMMITTED)[0] == survivors
        assert watermarks(broker, topic, 0) == (0, end)
        assert last_stable_offsets(broker, topic, 1) == {0: end}
        entries = log_entries(broker, topic, 0, end)
        assert [(e.offset, e.kind) for e in entries if e.kind != "data"] == \
            [(40, "commit"), (101, "abort"), (122, "commit"), (1623, "commit")]
        assert [e.offset for e in entries if e.kind == "data"] == [r.offset for r in survivors]

    check()
    broker.restart(kill=True)
    check()
    # The cleaned log takes new transactions: an aborted one stays invisible, a committed one shows.
    txn([(keys[0], b"late-abort")], False)
    txn([(keys[1], b"late-commit")], True)
    got = read_all(broker, topic, 1, READ_COMMITTED)[0]
    assert got == survivors + [Rec(end + 2, keys[1], b"late-commit")]


def old_records(n: int, age_ms: int) -> list[tuple[bytes, bytes, int]]:
    ts = int(time.time() * 1000) - age_ms
    return [(b"old-%04d" % i, b"%04d" % i + PADDING, ts + i) for i in range(n)]


@pytest.mark.parametrize("outcome", ["commit", "abort"])
def test_retention_deletes_segments_of_an_open_transaction(broker_factory, outcome):
    broker = broker_factory({"log.retention.check.interval.ms": "300"})
    topic = unique("txn-retention")
    # No retention while writing, so the segment layout can be read before anything is deleted.
    create_topic(broker, topic, 1, config={"segment.bytes": "1048576", "retention.ms": "-1"})
    p = init(txn_producer(broker, unique("retained")))
    p.begin_transaction()
    old = old_records(3000, 24 * 3600 * 1000)  # ~3 MB, a day old
    fresh = [(b"fresh-%02d" % i, b"fresh-%02d" % i) for i in range(10)]
    produce_in_txn(p, topic, [(k, v, 0, ts) for k, v, ts in old])  # offsets 0..2999
    produce_in_txn(p, topic, fresh, partition=0)  # offsets 3000..3009, still in the open transaction
    plain = [(b"plain-%d" % i, b"plain-%d" % i) for i in range(3)]
    assert [d.offset for d in produce_all(producer(broker), topic,
                                          [{"key": k, "value": v, "partition": 0} for k, v in plain])] \
        == [3010, 3011, 3012]
    assert last_stable_offsets(broker, topic, 1) == {0: 0}

    # Every segment before the one holding offset 3000 (the first fresh record) is past retention.
    bases = sorted(int(f.stem) for f in (broker.data_dir / f"{topic}-0").glob("*.log"))
    new_start = max(b for b in bases if b <= 3000)
    assert new_start > 0, f"expected rolled segments of old records: {bases}"
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    client = admin(broker)  # kept alive until its future resolves
    client.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)
    wait_until(lambda: watermarks(broker, topic, 0)[0] == new_start, timeout_s=30,
               what=f"retention to move the log start to {new_start}")
    assert watermarks(broker, topic, 0) == (new_start, 3013)
    # The transaction's first offset is gone: the last stable offset is the log start offset.
    assert last_stable_offsets(broker, topic, 1) == {0: new_start}
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == []

    surviving = [Rec(o, k, v) for o, (k, v, _) in enumerate(old) if o >= new_start]
    surviving += [Rec(3000 + i, k, v) for i, (k, v) in enumerate(fresh)]
    tail = [Rec(3010 + i, k, v) for i, (k, v) in enumerate(plain)]
    if outcome == "commit":
        p.commit_transaction(TXN_CALL_TIMEOUT_S)
    else:
        p.abort_transaction(TXN_CALL_TIMEOUT_S)
    # The marker is at 3013; then one more committed record after it.
    after = produce_all(producer(broker), topic, [{"key": b"after", "value": b"after", "partition": 0}])
    assert after[0].offset == 3014
    tail.append(Rec(3014, b"after", b"after"))
    assert last_stable_offsets(broker, topic, 1) == {0: 3015}
    visible = (surviving if outcome == "commit" else []) + tail
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == visible
    assert read_all(broker, topic, 1, READ_UNCOMMITTED)[0] == surviving + tail
    broker.restart(kill=True)
    assert watermarks(broker, topic, 0) == (new_start, 3015)
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == visible
    entries = log_entries(broker, topic, 0, 3015, start=new_start)
    assert [(e.offset, e.kind) for e in entries if e.kind != "data"] == [(3013, outcome)]
