"""KIP-467: a produce batch refused for some of its records names each of them (record_errors,
Produce v8+), as Kafka's LogValidator does, and nothing of the batch is appended."""

from __future__ import annotations

import re
import time

from confluent_kafka import KafkaError

import kafka_wire as kw
import kwire
from helpers import create_topic, producer, watermarks

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def no_key_message(topic: str) -> str:
    return f"Compacted topic cannot accept message without key in topic partition {topic}-0"


def record_errors_summary(errors: list[tuple[int, str]]) -> str:
    """Kafka's message for a batch refused with INVALID_RECORD (LogValidator.processRecordErrors)."""
    shown = ", ".join(f"RecordError(batchIndex={i}, message='{m}')" for i, m in errors[:3])
    return (f"One or more records have been rejected due to {len(errors)} record errors in total, "
            f"and only showing the first three errors at most: [{shown}]")


TIMESTAMP_MESSAGE = re.compile(r"Timestamp (-?\d+) of message with offset (\d+) is out of range\. "
                               r"The timestamp should be within \[(-?\d+), (-?\d+)\]")


def produce_one(broker, topic: str, batch: bytes) -> kw.ProducePartitionV8:
    with kwire.connect(broker.host, broker.port, timeout=15) as sock:
        return kw.produce_v8(sock, {topic: {0: batch}})[(topic, 0)]


def assert_refused_and_nothing_appended(broker, topic: str, result: kw.ProducePartitionV8) -> None:
    assert (result.base_offset, result.log_append_time_ms, result.log_start_offset) == (-1, -1, 0), result
    assert watermarks(broker, topic, 0) == (0, 0)
    # The log is untouched: the next valid batch lands at offset 0.
    ok = produce_one(broker, topic, kw.batch_v2_of([(b"k", b"fine", now_ms())]))
    assert (ok.error_code, ok.base_offset, ok.record_errors, ok.error_message) == (kw.NONE, 0, [], None), ok


def test_librdkafka_fails_exactly_the_keyless_records_of_a_batch(broker):
    """librdkafka's 0011_produce_batch record_fail case: one batch of 100 on a compacted topic,
    every tenth keyless. Kafka refuses the batch but names the 10 keyless records, so librdkafka
    fails those with INVALID_RECORD and the other 90 with _INVALID_DIFFERENT_RECORD."""
    topic = "compacted-batch"
    create_topic(broker, topic, 1, config={"cleanup.policy": "compact"})
    p = producer(broker, **{"linger.ms": 1000, "batch.num.messages": 100, "batch.size": 1_000_000})
    reports: dict[int, KafkaError | None] = {}
    for i in range(100):
        key = None if i % 10 == 0 else b"key-%d" % i
        p.produce(topic, value=b"value-%d" % i, key=key, partition=0,
                  on_delivery=lambda err, msg, i=i: reports.__setitem__(i, err))
    assert p.flush(30) == 0
    codes = [reports[i].code() if reports[i] is not None else None for i in range(100)]
    want = [KafkaError.INVALID_RECORD if i % 10 == 0 else KafkaError._INVALID_DIFFERENT_RECORD for i in range(100)]
    assert codes == want
    assert watermarks(broker, topic, 0) == (0, 0)


def test_keyless_records_on_a_compacted_topic_are_listed_by_index(broker):
    topic = "compacted-raw"
    create_topic(broker, topic, 1, config={"cleanup.policy": "compact"})
    now = now_ms()
    keys = [b"a", None, b"c", None, None, b"f", None, None]
    result = produce_one(broker, topic, kw.batch_v2_of([(k, b"v%d" % i, now) for i, k in enumerate(keys)]))
    expected = [(i, no_key_message(topic)) for i, k in enumerate(keys) if k is None]
    assert [i for i, _ in expected] == [1, 3, 4, 6, 7]
    assert result.error_code == kw.INVALID_RECORD
    assert result.record_errors == expected
    # Five errors in total, the first three spelled out.
    assert result.error_message == record_errors_summary(expected)
    assert_refused_and_nothing_appended(broker, topic, result)


def test_out_of_range_timestamps_are_listed_by_index(broker):
    topic = "bounded-times"
    create_topic(broker, topic, 1, config={"message.timestamp.before.max.ms": str(DAY_MS),
                                           "message.timestamp.after.max.ms": str(HOUR_MS)})
    t0 = now_ms()
    # The first and largest timestamps are within bounds; records 1 and 3 are not (each record is checked).
    stamps = [t0, t0 - 2 * DAY_MS, t0 + 1000, t0 - DAY_MS - 60_000, t0 - 1]
    result = produce_one(broker, topic, kw.batch_v2_of([(b"k%d" % i, b"v", ts) for i, ts in enumerate(stamps)]))
    t1 = now_ms()
    assert result.error_code == kw.INVALID_TIMESTAMP
    assert result.error_message == "One or more records have been rejected due to invalid timestamp"
    assert [i for i, _ in result.record_errors] == [1, 3]
    for index, message in result.record_errors:
        m = TIMESTAMP_MESSAGE.fullmatch(message)
        assert m, message
        ts, offset, lo, hi = map(int, m.groups())
        assert (ts, offset) == (stamps[index], index)
        # The window is [now - before.max.ms, now + after.max.ms] at the broker's now.
        assert t0 - DAY_MS <= lo <= t1 - DAY_MS and hi - lo == DAY_MS + HOUR_MS, message
    assert_refused_and_nothing_appended(broker, topic, result)


def test_future_timestamps_under_the_default_window_are_listed(broker):
    """message.timestamp.after.max.ms defaults to one hour (Kafka 4.x); before.max.ms is unbounded."""
    topic = "default-window"
    create_topic(broker, topic, 1)
    t0 = now_ms()
    stamps = [t0, t0 + 3 * HOUR_MS, t0 + 2 * HOUR_MS]
    result = produce_one(broker, topic, kw.batch_v2_of([(None, b"v", ts) for ts in stamps]))
    assert result.error_code == kw.INVALID_TIMESTAMP
    assert result.error_message == "One or more records have been rejected due to invalid timestamp"
    assert [i for i, _ in result.record_errors] == [1, 2]
    for index, message in result.record_errors:
        ts, offset, lo, hi = map(int, TIMESTAMP_MESSAGE.fullmatch(message).groups())
        assert (ts, offset) == (stamps[index], index)
        # Kafka prints now - Long.MAX_VALUE as a Java long.
        assert lo < -9_000_000_000_000_000_000 and t0 + HOUR_MS <= hi <= now_ms() + HOUR_MS, message
    assert_refused_and_nothing_appended(broker, topic, result)


def test_key_and_timestamp_errors_together_answer_invalid_timestamp(broker):
    """One error per record, the missing key first; any timestamp error makes the code INVALID_TIMESTAMP."""
    topic = "compacted-bounded"
    create_topic(broker, topic, 1, config={"cleanup.policy": "compact",
                                           "message.timestamp.before.max.ms": str(DAY_MS)})
    t0 = now_ms()
    records = [(None, b"old-and-keyless", t0 - 2 * DAY_MS), (b"k", b"old", t0 - 2 * DAY_MS),
               (b"k", b"fine", t0), (None, b"keyless", t0)]
    result = produce_one(broker, topic, kw.batch_v2_of(records))
    assert result.error_code == kw.INVALID_TIMESTAMP
    assert result.error_message == "One or more records have been rejected due to invalid timestamp"
    assert [i for i, _ in result.record_errors] == [0, 1, 3]
    assert result.record_errors[0] == (0, no_key_message(topic))
    assert result.record_errors[2] == (3, no_key_message(topic))
    assert TIMESTAMP_MESSAGE.fullmatch(result.record_errors[1][1]).group(1, 2) == (str(t0 - 2 * DAY_MS), "1")
    assert_refused_and_nothing_appended(broker, topic, result)


def test_a_producer_may_not_stamp_log_append_time(broker):
    topic = "append-time"
    create_topic(broker, topic, 1, config={"message.timestamp.type": "LogAppendTime"})
    batch = kw.with_log_append_time_flag(kw.batch_v2_of([(b"key", b"value", 5), (None, b"vv", 6)]))
    result = produce_one(broker, topic, batch)
    assert result.error_code == kw.INVALID_TIMESTAMP
    assert result.error_message == "One or more records have been rejected due to invalid timestamp"
    # A LogAppendTime batch gives each record its max timestamp (6).
    assert result.record_errors == [
        (0, "Invalid timestamp type in message DefaultRecord(offset=0, timestamp=6, key=3 bytes, value=5 bytes). "
            "Producer should not set timestamp type to LogAppendTime."),
        (1, "Invalid timestamp type in message DefaultRecord(offset=1, timestamp=6, key=0 bytes, value=2 bytes). "
            "Producer should not set timestamp type to LogAppendTime."),
    ]
    assert_refused_and_nothing_appended(broker, topic, result)


def test_whole_batch_errors_carry_no_record_errors(broker):
    topic = "corrupt"
    create_topic(broker, topic, 1, config={"cleanup.policy": "compact"})
    batch = kw.batch_v2_of([(None, b"keyless", now_ms())])
    batch = kw.flip_byte(batch, len(batch) - 1)
    result = produce_one(broker, topic, batch)
    assert (result.error_code, result.record_errors) == (kw.CORRUPT_MESSAGE, [])
    assert watermarks(broker, topic, 0) == (0, 0)
