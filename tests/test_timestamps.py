"""Record timestamps: CreateTime kept exactly, LogAppendTime set by the broker, timestamp bounds."""

from __future__ import annotations

import time

from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, KafkaError
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from helpers import (admin, create_topic, kp_consumer, kp_producer, kp_read, produce_all, produce_errors, producer,
                     read_partition)

BASE_TS = 1_600_000_000_000  # 2020-09-13, well inside message.timestamp.before.max.ms (Long.MAX)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_create_time_timestamps_come_back_exactly(broker):
    topic = "create-time"
    create_topic(broker, topic, 1)
    # Out of order on purpose: the broker must keep each record's own timestamp.
    stamps = [BASE_TS + ((i * 7919) % 1000) * 1000 + i for i in range(500)]
    delivered = produce_all(producer(broker), topic,
                            [{"value": b"t%d" % i, "timestamp": ts, "partition": 0} for i, ts in enumerate(stamps)])
    assert [d.timestamp for d in delivered] == [(TIMESTAMP_CREATE_TIME, ts) for ts in stamps]
    msgs = read_partition(broker, topic, 0, 0, 500)
    assert [(m.value(), m.timestamp()) for m in msgs] == \
        [(b"t%d" % i, (TIMESTAMP_CREATE_TIME, ts)) for i, ts in enumerate(stamps)]
    # kafka-python: timestamp_type 0 is CreateTime.
    from kafka import TopicPartition as KTP
    kc = kp_consumer(broker)
    try:
        kc.assign([KTP(topic, 0)])
        kc.seek(KTP(topic, 0), 0)
        recs = kp_read(kc, {KTP(topic, 0): 500})
    finally:
        kc.close()
    assert [(r.timestamp, r.timestamp_type) for r in recs] == [(ts, 0) for ts in stamps]


def test_kafka_python_create_time(broker):
    topic = "kp-create-time"
    create_topic(broker, topic, 1)
    kp = kp_producer(broker)
    mds = [kp.send(topic, value=b"x%d" % i, timestamp_ms=BASE_TS + i, partition=0).get(timeout=30)
           for i in range(20)]
    kp.close()
    assert [(md.offset, md.timestamp) for md in mds] == [(i, BASE_TS + i) for i in range(20)]
    msgs = read_partition(broker, topic, 0, 0, 20)
    assert [m.timestamp() for m in msgs] == [(TIMESTAMP_CREATE_TIME, BASE_TS + i) for i in range(20)]


def test_log_append_time_replaces_producer_timestamps(broker):
    topic = "append-time"
    create_topic(broker, topic, 1, config={"message.timestamp.type": "LogAppendTime"})
    before = now_ms()
    delivered = produce_all(producer(broker, **{"linger.ms": 20}), topic,
                            [{"value": b"a%d" % i, "timestamp": BASE_TS + i, "partition": 0} for i in range(200)])
    after = now_ms()
    msgs = read_partition(broker, topic, 0, 0, 200)
    assert [m.value() for m in msgs] == [b"a%d" % i for i in range(200)]
    for m in msgs:
        ts_type, ts = m.timestamp()
        assert ts_type == TIMESTAMP_LOG_APPEND_TIME, m.timestamp()
        assert before - 5 <= ts <= after + 5, (before, ts, after)
    # The produce response carries the append time: delivery reports agree with what is read back.
    assert [d.timestamp for d in delivered] == [m.timestamp() for m in msgs]
    # kafka-python sees timestamp_type 1 (LogAppendTime) and the same values.
    from kafka import TopicPartition as KTP
    kc = kp_consumer(broker)
    try:
        kc.assign([KTP(topic, 0)])
        kc.seek(KTP(topic, 0), 0)
        recs = kp_read(kc, {KTP(topic, 0): 200})
    finally:
        kc.close()
    assert [(r.timestamp_type, r.timestamp) for r in recs] == [(1, m.timestamp()[1]) for m in msgs]


def test_switching_to_log_append_time_affects_only_new_records(broker):
    topic = "switch-ts"
    create_topic(broker, topic, 1)
    p = producer(broker)
    produce_all(p, topic, [{"value": b"old", "timestamp": BASE_TS, "partition": 0}])
    adm = admin(broker)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET)])
    adm.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)
    before = now_ms()
    produce_all(p, topic, [{"value": b"new", "timestamp": BASE_TS, "partition": 0}])
    after = now_ms()
    old, new = read_partition(broker, topic, 0, 0, 2)
    assert old.timestamp() == (TIMESTAMP_CREATE_TIME, BASE_TS)
    assert new.timestamp()[0] == TIMESTAMP_LOG_APPEND_TIME
    assert before - 5 <= new.timestamp()[1] <= after + 5


def test_timestamp_too_far_in_the_future_is_rejected(broker):
    """Kafka 4.x: message.timestamp.after.max.ms defaults to one hour."""
    create_topic(broker, "future", 1)
    create_topic(broker, "future-ok", 1, config={"message.timestamp.after.max.ms": "9223372036854775807"})
    p = producer(broker, **{"linger.ms": 0})
    two_hours = now_ms() + 2 * 3600 * 1000
    errs = produce_errors(p, "future", [{"value": b"late", "timestamp": two_hours, "partition": 0}])
    assert errs[0] is not None and errs[0].code() == KafkaError.INVALID_TIMESTAMP, errs
    assert produce_errors(p, "future", [{"value": b"soon", "timestamp": now_ms() + 60_000, "partition": 0}]) == [None]
    assert produce_errors(p, "future-ok", [{"value": b"late", "timestamp": two_hours, "partition": 0}]) == [None]
    assert [m.value() for m in read_partition(broker, "future", 0, 0, 1)] == [b"soon"]
    assert [m.timestamp() for m in read_partition(broker, "future-ok", 0, 0, 1)] == \
        [(TIMESTAMP_CREATE_TIME, two_hours)]


def test_timestamp_too_far_in_the_past_is_rejected_when_bounded(broker):
    create_topic(broker, "past", 1, config={"message.timestamp.before.max.ms": "86400000"})
    p = producer(broker, **{"linger.ms": 0})
    errs = produce_errors(p, "past", [{"value": b"old", "timestamp": BASE_TS, "partition": 0}])
    assert errs[0] is not None and errs[0].code() == KafkaError.INVALID_TIMESTAMP, errs
    assert produce_errors(p, "past", [{"value": b"recent", "timestamp": now_ms() - 1000, "partition": 0}]) == [None]
