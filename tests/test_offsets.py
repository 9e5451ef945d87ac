"""ListOffsets (earliest, latest, by timestamp, max timestamp) and DeleteRecords."""

from __future__ import annotations

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from helpers import (admin, consumer, create_topic, error_code, kp_admin, kp_consumer, produce_all, producer,
                     read_partition, watermarks)

BASE_TS = 1_650_000_000_000


def list_offset(adm, topic: str, partition: int, spec) -> tuple[int, int]:
    tp = TopicPartition(topic, partition)
    info = adm.list_offsets({tp: spec}, request_timeout=15)[tp].result(timeout=30)
    return info.offset, info.timestamp


def fill(broker, topic: str, stamps: list[int]):
    return produce_all(producer(broker, **{"linger.ms": 20}), topic,
                       [{"value": b"r%d" % i, "timestamp": ts, "partition": 0} for i, ts in enumerate(stamps)])


def test_list_offsets_earliest_latest_and_by_timestamp(broker):
    topic = "lo"
    create_topic(broker, topic, 2)
    stamps = [BASE_TS + 10 * i for i in range(100)]  # strictly increasing
    fill(broker, topic, stamps)
    adm = admin(broker)
    assert list_offset(adm, topic, 0, OffsetSpec.earliest())[0] == 0
    assert list_offset(adm, topic, 0, OffsetSpec.latest())[0] == 100
    assert list_offset(adm, topic, 1, OffsetSpec.earliest())[0] == 0
    assert list_offset(adm, topic, 1, OffsetSpec.latest())[0] == 0
    # First offset whose timestamp is >= the target, with that record's timestamp.
    cases = {BASE_TS - 1: (0, BASE_TS), BASE_TS: (0, BASE_TS), BASE_TS + 1: (1, BASE_TS + 10),
             BASE_TS + 255: (26, BASE_TS + 260), BASE_TS + 990: (99, BASE_TS + 990)}
    for target, want in cases.items():
        assert list_offset(adm, topic, 0, OffsetSpec.for_timestamp(target)) == want, target
    # Nothing at or after the target: offset -1.
    assert list_offset(adm, topic, 0, OffsetSpec.for_timestamp(BASE_TS + 991))[0] == -1
    assert list_offset(adm, topic, 1, OffsetSpec.for_timestamp(BASE_TS))[0] == -1

    # The consumer API (offsets_for_times) agrees.
    c = consumer(broker)
    try:
        got = c.offsets_for_times([TopicPartition(topic, 0, t) for t in (BASE_TS + 255,)], timeout=10)
        assert [(tp.partition, tp.offset) for tp in got] == [(0, 26)]
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 100)
    finally:
        c.close()

    # kafka-python: beginning/end offsets and offsets_for_times.
    from kafka import TopicPartition as KTP
    kc = kp_consumer(broker)
    try:
        tp0, tp1 = KTP(topic, 0), KTP(topic, 1)
        assert kc.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert kc.end_offsets([tp0, tp1]) == {tp0: 100, tp1: 0}
        oft = kc.offsets_for_times({tp0: BASE_TS + 255, tp1: BASE_TS})
        assert (oft[tp0].offset, oft[tp0].timestamp) == (26, BASE_TS + 260)
        assert oft[tp1] is None
    finally:
        kc.close()


def test_list_offsets_max_timestamp_and_unordered_timestamps(broker):
    topic = "maxts"
    create_topic(broker, topic, 1)
    stamps = [BASE_TS + 10 * i for i in range(100)]
    stamps[50] = BASE_TS + 100_000  # the maximum, in the middle of the log
    stamps[70] = BASE_TS + 100_000 - 1
    fill(broker, topic, stamps)
    adm = admin(broker)
    assert list_offset(adm, topic, 0, OffsetSpec.max_timestamp()) == (50, BASE_TS + 100_000)
    # Earliest offset with timestamp >= target, in log order: record 50 precedes 60..99.
    assert list_offset(adm, topic, 0, OffsetSpec.for_timestamp(BASE_TS + 600)) == (50, BASE_TS + 100_000)
    assert list_offset(adm, topic, 0, OffsetSpec.for_timestamp(BASE_TS + 100)) == (10, BASE_TS + 100)
    # kafka-python's list_partition_offsets exposes the same specs.
    from kafka import TopicPartition as KTP
    from kafka.admin import OffsetSpec as KOffsetSpec
    ka = kp_admin(broker)
    try:
        out = ka.list_partition_offsets({KTP(topic, 0): KOffsetSpec.MAX_TIMESTAMP})
        assert (out[KTP(topic, 0)].offset, out[KTP(topic, 0)].timestamp) == (50, BASE_TS + 100_000)
    finally:
        ka.close()


def test_list_offsets_empty_partition_max_timestamp(broker):
    create_topic(broker, "empty", 1)
    adm = admin(broker)
    assert list_offset(adm, "empty", 0, OffsetSpec.earliest())[0] == 0
    assert list_offset(adm, "empty", 0, OffsetSpec.latest())[0] == 0
    assert list_offset(adm, "empty", 0, OffsetSpec.max_timestamp())[0] == -1


def test_delete_records_moves_low_watermark(broker):
    topic = "dr"
    create_topic(broker, topic, 2)
    fill(broker, topic, [BASE_TS + i for i in range(100)])
    adm = admin(broker)
    tp = TopicPartition(topic, 0, 40)
    res = adm.delete_records([tp], request_timeout=15)
    assert [v.result(timeout=30).low_watermark for v in res.values()] == [40]
    assert list_offset(adm, topic, 0, OffsetSpec.earliest())[0] == 40
    assert list_offset(adm, topic, 0, OffsetSpec.latest())[0] == 100
    assert watermarks(broker, topic, 0) == (40, 100)
    # Consuming from the beginning starts at the new log start.
    msgs = read_partition(broker, topic, 0, OFFSET_BEGINNING, 100)
    assert [(m.offset(), m.value()) for m in msgs] == [(i, b"r%d" % i) for i in range(40, 100)]
    # A fetch below the log start is out of range; earliest reset lands on the log start.
    msgs = read_partition(broker, topic, 0, 5, 100, **{"auto.offset.reset": "earliest"})
    assert msgs[0].offset() == 40 and len(msgs) == 60
    # Timestamp lookups skip deleted records.
    assert list_offset(adm, topic, 0, OffsetSpec.for_timestamp(BASE_TS))[0] == 40
    # Deleting below the current log start changes nothing; -1 means up to the high watermark.
    res = adm.delete_records([TopicPartition(topic, 0, 10)], request_timeout=15)
    assert [v.result(timeout=30).low_watermark for v in res.values()] == [40]
    res = adm.delete_records([TopicPartition(topic, 0, -1)], request_timeout=15)
    assert [v.result(timeout=30).low_watermark for v in res.values()] == [100]
    assert watermarks(broker, topic, 0) == (100, 100)
    # New records continue at the high watermark.
    d = produce_all(producer(broker), topic, [{"value": b"after", "partition": 0}])
    assert d[0].offset == 100
    assert [(m.offset(), m.value()) for m in read_partition(broker, topic, 0, OFFSET_BEGINNING, 101)] == \
        [(100, b"after")]


def test_delete_records_errors(broker):
    topic = "dr-err"
    create_topic(broker, topic, 1)
    fill(broker, topic, [BASE_TS + i for i in range(10)])
    adm = admin(broker)
    res = adm.delete_records([TopicPartition(topic, 0, 11)], request_timeout=15)
    with pytest.raises(KafkaException) as exc:
        list(res.values())[0].result(timeout=30)
    assert error_code(exc.value) == KafkaError.OFFSET_OUT_OF_RANGE
    assert watermarks(broker, topic, 0) == (0, 10)


def test_delete_records_kafka_python(broker):
    topic = "kp-dr"
    create_topic(broker, topic, 1)
    fill(broker, topic, [BASE_TS + i for i in range(30)])
    from kafka import TopicPartition as KTP
    ka = kp_admin(broker)
    try:
        out = ka.delete_records({KTP(topic, 0): 12})
    finally:
        ka.close()
    assert out[KTP(topic, 0)]["low_watermark"] == 12
    assert watermarks(broker, topic, 0) == (12, 30)
