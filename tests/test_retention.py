"""Time- and size-based retention, run by the broker's periodic check (log.retention.check.interval.ms)."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from helpers import admin, create_topic, produce_all, producer, read_partition, wait_until, watermarks

CHECK = {"log.retention.check.interval.ms": "500"}


def old_records(n: int, age_ms: int, size: int = 1000):
    ts = int(time.time() * 1000) - age_ms
    return [{"key": b"k%d" % i, "value": b"%06d" % i + b"." * (size - 6), "partition": 0, "timestamp": ts + i}
            for i in range(n)]


def test_time_retention_deletes_expired_records(broker_factory):
    b = broker_factory(CHECK)
    create_topic(b, "expiring", 1, config={"retention.ms": "3600000", "segment.bytes": "1048576"})
    create_topic(b, "kept", 1, config={"segment.bytes": "1048576"})
    # ~3 MB, one day old: every segment is past retention.ms (one hour).
    produce_all(producer(b), "expiring", old_records(3000, 24 * 3600 * 1000))
    produce_all(producer(b), "kept", old_records(3000, 24 * 3600 * 1000))
    # Kafka deletes every breached segment, rolling the active one first: the log ends up empty at offset 3000.
    wait_until(lambda: watermarks(b, "expiring", 0) == (3000, 3000), timeout_s=30,
               what="expiring log start to reach its end (3000)")
    assert watermarks(b, "kept", 0) == (0, 3000)
    # New records are appended after the deleted ones and are readable from the beginning.
    d = produce_all(producer(b), "expiring", [{"value": b"fresh", "partition": 0}])
    assert d[0].offset == 3000
    msgs = read_partition(b, "expiring", 0, OFFSET_BEGINNING, 3001)
    assert [(m.offset(), m.value()) for m in msgs] == [(3000, b"fresh")]


def test_lowering_retention_ms_expires_records_of_that_topic_only(broker_factory):
    b = broker_factory(CHECK)
    for name in ("lowered", "control"):
        create_topic(b, name, 1, config={"segment.bytes": "1048576"})
        produce_all(producer(b), name, old_records(2000, 10 * 60 * 1000))  # ten minutes old
    adm = admin(b)
    res = ConfigResource(ResourceType.TOPIC, "lowered", incremental_configs=[
        ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)])
    adm.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)
    wait_until(lambda: watermarks(b, "lowered", 0) == (2000, 2000), timeout_s=30, what="log emptied after lowering")
    # The same retention checks ran over the control topic (default 7 days): nothing of it is gone.
    assert watermarks(b, "control", 0) == (0, 2000)


def test_size_retention_keeps_the_newest_segments(broker_factory):
    b = broker_factory(CHECK)
    create_topic(b, "sized", 1, config={"retention.bytes": "2097152", "segment.bytes": "1048576"})
    produce_all(producer(b, **{"linger.ms": 5}), "sized", old_records(6000, 0))  # ~6 MB of fresh records
    # Whole segments go, oldest first, until at most retention.bytes remain (plus the active segment's slack).
    start = wait_until(lambda: (lambda lo: lo if lo > 0 else None)(watermarks(b, "sized", 0)[0]), timeout_s=30,
                       what="size retention to advance the log start")
    lo, hi = watermarks(b, "sized", 0)
    assert hi == 6000
    # Between 2 and 3 segments of ~1 KB records remain: roughly 2,000-3,100 records.
    assert 6000 - 3100 <= lo <= 6000 - 1900, (start, lo)
    msgs = read_partition(b, "sized", 0, OFFSET_BEGINNING, 6000)
    assert msgs[0].offset() == lo and len(msgs) == 6000 - lo
    assert [int(m.value()[:6]) for m in msgs] == list(range(lo, 6000))
