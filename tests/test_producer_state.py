"""Producer state owned by each partition's log: snapshots written at segment roll and clean
shutdown make a restart replay only the batches after the newest usable one (the broker logs
how many), idle producers expire while the broker runs, DescribeProducers (key 61) lists the
producers a partition tracks, and a partition tracks at most
`strom.producer.ids.per.partition.max` producer ids."""

from __future__ import annotations

import re
import struct
import time

from kafka.record.default_records import DefaultRecordBatchBuilder

import kafka_wire
import kwire
from helpers import create_topic, unique, wait_until

API_INIT_PRODUCER_ID = 22
API_DESCRIBE_PRODUCERS = 61
UNKNOWN_TOPIC_OR_PARTITION = 3
POLICY_VIOLATION = 44
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def init_producer_id(sock) -> tuple[int, int]:
    r = kwire.roundtrip(sock, API_INIT_PRODUCER_ID, 0, 1, kwire.enc_string(None) + struct.pack(">i", 60_000))
    r.i32()
    assert r.i16() == 0
    return struct.unpack(">qh", r.take(10))


def batch(producer_id: int, epoch: int, first_sequence: int, values: list[bytes], timestamp_ms: int) -> bytes:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=producer_id,
                                  producer_epoch=epoch, base_sequence=first_sequence, batch_size=1 << 30)
    for i, value in enumerate(values):
        assert b.append(i, timestamp=timestamp_ms, key=None, value=value, headers=[]) is not None
    return bytes(b.build())


def produce(sock, topic: str, records: bytes):
    return kafka_wire.produce_v8(sock, {topic: {0: records}})[(topic, 0)]


def describe_producers(sock, topic: str, partitions: list[int]) -> dict[int, tuple[int, list[tuple]]]:
    """DescribeProducers v0 (flexible): {partition: (error code, [(producer id, epoch, last sequence,
    last timestamp, coordinator epoch, current txn start offset)])}."""
    body = kwire.enc_compact_array([
        kwire.enc_compact_string(topic)
        + kwire.enc_compact_array([struct.pack(">i", p) for p in partitions])
        + b"\x00"
    ]) + b"\x00"
    r = kwire.flexible_roundtrip(sock, API_DESCRIBE_PRODUCERS, 0, 3, body)
    r.i32()  # throttle_time_ms
    out = {}

    def producer_state(rr):
        state = (rr.i64(), rr.i32(), rr.i32(), rr.i64(), rr.i32(), rr.i64())
        rr.skip_tags()
        return state

    def partition(rr):
        index, error = rr.i32(), rr.i16()
        rr.compact_string()
        producers = rr.compact_array(producer_state)
        rr.skip_tags()
        out[index] = (error, producers)

    def topic_response(rr):
        assert rr.compact_string() == topic
        rr.compact_array(partition)
        rr.skip_tags()

    r.compact_array(topic_response)
    r.skip_tags()
    assert r.done()
    return out


def replayed_batches(broker, topic: str, since: int) -> int:
    """The replay count of the `loaded producer state` line of partition 0 logged after `since`."""
    line = broker.wait_for_log(rf"loaded producer state.*{re.escape(topic)}-0\b", since=since)
    return int(re.search(r"replayed_batches=(\d+)", line).group(1))


def recovery_point(broker, topic: str) -> int:
    path = broker.data_dir / f"{topic}-0" / "recovery-point-offset-checkpoint"
    return int(path.read_text().split()[1]) if path.exists() else 0


def test_restarts_replay_only_the_batches_after_the_newest_snapshot(broker):
    topic = unique("pstate-replay")
    create_topic(broker, topic, 1, config={"segment.bytes": "1048576"})
    now = int(time.time() * 1000)
    big = b"x" * 100_000
    with kwire.connect(broker.host, broker.port) as sock:
        pid, epoch = init_producer_id(sock)
        since = len(broker.log())
        # ~100 KB batches of one record each: the eleventh no longer fits the 1 MiB segment
        # and rolls it.
        for sequence in range(11):
            assert produce(sock, topic, batch(pid, epoch, sequence, [big], now)).error_code == 0
        sequence = 11
        line = broker.wait_for_log(rf"rolled new log segment.*{re.escape(topic)}-0", since=since)
        roll_base = int(re.search(r"base_offset=(\d+)", line).group(1))
        assert 0 < roll_base < sequence
        # The roll's snapshot becomes durable with the rolled segment's deferred fsync,
        # which moves the recovery point to the roll.
        wait_until(lambda: recovery_point(broker, topic) == roll_base, timeout_s=30, what="recovery point")
        for _ in range(3):
            assert produce(sock, topic, batch(pid, epoch, sequence, [b"tail"], now)).error_code == 0
            sequence += 1
    since = len(broker.log())
    broker.restart(kill=True)
    # Exactly the batches from the roll on (one record each): the roll's snapshot was used.
    assert replayed_batches(broker, topic, since) == sequence - roll_base
    # The clean stop writes a snapshot at the log end: nothing to replay.
    since = len(broker.log())
    broker.restart()
    assert replayed_batches(broker, topic, since) == 0
    with kwire.connect(broker.host, broker.port) as sock:
        # The state is complete: the last batch is a duplicate, a gap is refused.
        last = produce(sock, topic, batch(pid, epoch, sequence - 1, [b"tail"], now))
        assert (last.error_code, last.base_offset) == (0, sequence - 1)
        gap = produce(sock, topic, batch(pid, epoch, sequence + 1, [b"gap"], now))
        assert gap.error_code == OUT_OF_ORDER_SEQUENCE_NUMBER


def test_describe_producers_lists_ids_epochs_and_sequences(broker):
    topic = unique("pstate-describe")
    create_topic(broker, topic, 2)
    now = int(time.time() * 1000)
    with kwire.connect(broker.host, broker.port) as sock:
        first, first_epoch = init_producer_id(sock)
        second, second_epoch = init_producer_id(sock)
        assert produce(sock, topic, batch(first, first_epoch, 0, [b"a", b"b", b"c"], now)).error_code == 0
        assert produce(sock, topic, batch(first, first_epoch, 3, [b"d", b"e"], now + 1)).error_code == 0
        assert produce(sock, topic, batch(second, second_epoch, 0, [b"f"], now + 2)).error_code == 0
        got = describe_producers(sock, topic, [0, 1, 7])
    assert got[0] == (0, sorted([(first, first_epoch, 4, now + 1, -1, -1), (second, second_epoch, 0, now + 2, -1, -1)]))
    assert got[1] == (0, [])
    assert got[7] == (UNKNOWN_TOPIC_OR_PARTITION, [])


def test_idle_producers_expire_and_a_later_batch_starts_a_new_producer(broker_factory):
    broker = broker_factory({"producer.id.expiration.ms": "2000", "producer.id.expiration.check.interval.ms": "200"})
    topic = unique("pstate-expiry")
    create_topic(broker, topic, 1)
    with kwire.connect(broker.host, broker.port) as sock:
        pid, epoch = init_producer_id(sock)
        assert produce(sock, topic, batch(pid, epoch, 0, [b"a", b"b"], int(time.time() * 1000))).error_code == 0
        # While known, a gap in its sequences is refused.
        assert produce(sock, topic, batch(pid, epoch, 5, [b"gap"], int(time.time() * 1000))).error_code \
            == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert [p[0] for p in describe_producers(sock, topic, [0])[0][1]] == [pid]
        wait_until(lambda: describe_producers(sock, topic, [0])[0] == (0, []), timeout_s=30, what="expiry")
        # Forgotten: its next batch is taken as a new producer's, whatever its sequence.
        later = produce(sock, topic, batch(pid, epoch, 5, [b"later"], int(time.time() * 1000)))
        assert (later.error_code, later.base_offset) == (0, 2)
        assert describe_producers(sock, topic, [0])[0][1][0][:3] == (pid, epoch, 5)
    assert "expired idle producers" in broker.log()


def test_a_partition_tracks_a_bounded_number_of_producer_ids(broker_factory):
    broker = broker_factory({"strom.producer.ids.per.partition.max": "2"})
    topic = unique("pstate-bound")
    create_topic(broker, topic, 1)
    now = int(time.time() * 1000)
    with kwire.connect(broker.host, broker.port) as sock:
        ids = [init_producer_id(sock) for _ in range(3)]
        for pid, epoch in ids[:2]:
            assert produce(sock, topic, batch(pid, epoch, 0, [b"v"], now)).error_code == 0
        refused = produce(sock, topic, batch(ids[2][0], ids[2][1], 0, [b"v"], now))
        assert refused.error_code == POLICY_VIOLATION
        assert "strom.producer.ids.per.partition.max" in refused.error_message
        assert f"producer {ids[2][0]}" in refused.error_message
        # Known producers go on.
        assert produce(sock, topic, batch(ids[0][0], ids[0][1], 1, [b"w"], now)).error_code == 0
        assert sorted(p[0] for p in describe_producers(sock, topic, [0])[0][1]) == sorted(p for p, _ in ids[:2])
