"""Logs that span many segments (segment.bytes at Kafka's 1 MiB minimum): reads, seeks and timestamp
lookups across segment boundaries, before and after a restart."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import NewTopic, OffsetSpec

from helpers import admin, consumer, create_topic, error_code, produce_all, producer, read_partition, watermarks

N = 6000
BASE_TS = 1_680_000_000_000


def value(i: int) -> bytes:
    return b"%06d:" % i + bytes([i % 251]) * 1000


def fill(broker, topic: str):
    # ~6 MB of 1 KB records in small batches: five or six segment rolls.
    produce_all(producer(broker, **{"linger.ms": 1, "batch.size": 16384}), topic,
                [{"key": b"%d" % i, "value": value(i), "timestamp": BASE_TS + i, "partition": 0} for i in range(N)])


def check(broker, topic: str):
    assert watermarks(broker, topic, 0) == (0, N)
    msgs = read_partition(broker, topic, 0, 0, N)
    assert [(m.offset(), m.key(), m.value(), m.timestamp()) for m in msgs] == \
        [(i, b"%d" % i, value(i), (TIMESTAMP_CREATE_TIME, BASE_TS + i)) for i in range(N)]
    # Reads starting anywhere: every 131st offset, so some land on and next to segment rolls (~1,000 records
    # each, wherever the batches put them).
    c = consumer(broker)
    try:
        for start in list(range(1, N, 131)) + [N - 1]:
            c.assign([TopicPartition(topic, 0, start)])
            msg = None
            deadline = time.monotonic() + 10
            while msg is None and time.monotonic() < deadline:
                msg = c.poll(0.2)
            assert msg is not None and msg.error() is None, (start, msg and msg.error())
            assert (msg.offset(), msg.value()) == (start, value(start))
            c.unassign()
    finally:
        c.close()
    adm = admin(broker)
    for target in (0, 999, 1000, 1001, 4321, N - 1):
        tp = TopicPartition(topic, 0)
        info = adm.list_offsets({tp: OffsetSpec.for_timestamp(BASE_TS + target)}, request_timeout=15)[tp] \
            .result(timeout=30)
        assert (info.offset, info.timestamp) == (target, BASE_TS + target)
    tp = TopicPartition(topic, 0)
    info = adm.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=15)[tp].result(timeout=30)
    assert (info.offset, info.timestamp) == (N - 1, BASE_TS + N - 1)


def test_reads_and_lookups_across_segments_survive_restart(broker):
    create_topic(broker, "segmented", 1, config={"segment.bytes": "1048576"})
    fill(broker, "segmented")
    check(broker, "segmented")
    assert broker.stop() == 0
    broker.start()
    check(broker, "segmented")


def test_segment_bytes_below_kafka_minimum_is_rejected(broker):
    """Kafka 4.x: segment.bytes must be at least 1 MiB (KIP-1030)."""
    adm = admin(broker)
    fut = adm.create_topics([NewTopic("tiny-segments", 1, 1, config={"segment.bytes": "1048575"})],
                            request_timeout=15)["tiny-segments"]
    with pytest.raises(KafkaException) as exc:
        fut.result(timeout=30)
    assert error_code(exc.value) == KafkaError.INVALID_CONFIG
