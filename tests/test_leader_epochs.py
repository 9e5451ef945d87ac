"""The high watermark and leader epochs: what the broker stamps, checkpoints and answers.

Batches are stamped with the partition's leader epoch whatever the client sent; the leader-
epoch cache and the high watermark checkpoint survive a clean stop and `kill -9`; the
OffsetForLeaderEpoch API (key 23) answers as Kafka does; ListOffsets carries each offset's
epoch.
"""

from __future__ import annotations

import struct

from confluent_kafka import TopicPartition
from confluent_kafka.admin import OffsetSpec

import kafka_wire
import kwire
from helpers import (admin, consumer, create_topic, produce_all, producer, read_partition, unique,
                     wait_until, watermarks)

NONE, UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_LEADER_EPOCH = 0, 3, 75
OFFSET_FOR_LEADER_EPOCH = 23


def offset_for_leader_epoch(broker, topic: str, asks: list[tuple[int, int, int]], version: int = 3):
    """asks: (partition, current_leader_epoch, leader_epoch). Returns {partition: (error, epoch,
    end_offset)} for `topic`, through v2/v3 (classic encoding) or v4 (flexible)."""
    with kwire.connect(broker.host, broker.port) as sock:
        if version >= 4:
            parts = [struct.pack(">iii", p, cur, ep) + b"\x00" for p, cur, ep in asks]
            body = (struct.pack(">i", -1)
                    + kwire.enc_compact_array([kwire.enc_compact_string(topic)
                                               + kwire.enc_compact_array(parts) + b"\x00"])
                    + b"\x00")
            r = kwire.flexible_roundtrip(sock, OFFSET_FOR_LEADER_EPOCH, version, 31, body)
        else:
            parts = b"".join(struct.pack(">iii", p, cur, ep) for p, cur, ep in asks)
            topic_bytes = kwire.enc_string(topic) + struct.pack(">i", len(asks)) + parts
            body = (struct.pack(">i", -1) if version >= 3 else b"") + struct.pack(">i", 1) + topic_bytes
            r = kwire.roundtrip(sock, OFFSET_FOR_LEADER_EPOCH, version, 31, body)
    assert r.i32() == 0  # throttle_time_ms
    flexible = version >= 4
    topics = r.uvarint() - 1 if flexible else r.i32()
    assert topics == 1
    assert (r.compact_string() if flexible else r.string()) == topic
    out = {}
    for _ in range(r.uvarint() - 1 if flexible else r.i32()):
        error, partition, epoch, end = r.i16(), r.i32(), r.i32(), r.i64()
        if flexible:
            r.skip_tags()
        out[partition] = (error, epoch, end)
    return out


def epochs_checkpoint(broker, topic: str, partition: int) -> str:
    return (broker.data_dir / f"{topic}-{partition}" / "leader-epoch-checkpoint").read_text()


def hw_checkpoint(broker) -> dict[tuple[str, int], int]:
    path = broker.data_dir / "replication-offset-checkpoint"
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    assert lines[0] == "0" and int(lines[1]) == len(lines) - 2, lines
    out = {}
    for line in lines[2:]:
        topic, partition, offset = line.split(" ")
        out[(topic, int(partition))] = int(offset)
    return out


def test_batches_are_stamped_with_the_leader_epoch_whatever_the_client_sent(broker):
    topic = unique("stamp")
    create_topic(broker, topic)
    # A raw batch whose partition leader epoch field says 7.
    batch = bytearray(kafka_wire.batch_v2([(b"k", b"raw")]))
    struct.pack_into(">i", batch, 12, 7)
    with kwire.connect(broker.host, broker.port) as sock:
        result = kafka_wire.produce_v8(sock, {topic: {0: bytes(batch)}})[(topic, 0)]
    assert (result.error_code, result.base_offset) == (0, 0)
    produce_all(producer(broker), topic, [{"key": b"k", "value": b"client"}])
    msgs = read_partition(broker, topic, 0, 0, 2)
    assert [(m.value(), m.leader_epoch()) for m in msgs] == [(b"raw", 0), (b"client", 0)]
    assert epochs_checkpoint(broker, topic, 0) == "0\n1\n0 0\n"


def test_offset_for_leader_epoch_answers_as_kafka_does(broker):
    topic = unique("ofle")
    create_topic(broker, topic, partitions=2)
    produce_all(producer(broker), topic, [{"value": b"x%d" % i, "partition": 0} for i in range(5)])
    for version in (2, 3, 4):
        # Several partitions in one request, each answered on its own.
        assert offset_for_leader_epoch(broker, topic, [(0, -1, 0), (1, 0, 0), (9, -1, 0)], version) == {
            0: (NONE, 0, 5),                          # the latest epoch ends at the log end
            1: (NONE, 0, 0),                          # a leader's epoch starts when it leads
            9: (UNKNOWN_TOPIC_OR_PARTITION, -1, -1),  # no such partition
        }, version

        def single(cur, ep):
            return offset_for_leader_epoch(broker, topic, [(0, cur, ep)], version)[0]

        assert single(0, 0) == (NONE, 0, 5), version
        assert single(0, 3) == (NONE, -1, -1), version    # newer than any known epoch
        assert single(0, -1) == (NONE, -1, -1), version   # the undefined epoch
        assert single(1, 0) == (UNKNOWN_LEADER_EPOCH, -1, -1), version  # the client is ahead
    missing = offset_for_leader_epoch(broker, unique("nope"), [(0, -1, 0)])
    assert missing == {0: (UNKNOWN_TOPIC_OR_PARTITION, -1, -1)}


def test_list_offsets_carries_the_epoch_of_each_offset(broker):
    topic = unique("lo-epoch")
    create_topic(broker, topic)
    adm = admin(broker)
    tp = TopicPartition(topic, 0)

    def listed(spec):
        info = adm.list_offsets({tp: spec}, request_timeout=10)[tp].result()
        return info.offset, info.leader_epoch

    # An empty log: the leader's epoch starts at offset 0 when it becomes leader (Kafka's
    # maybeAssignEpochStartOffset), so both ends carry it.
    assert listed(OffsetSpec.latest()) == (0, 0)
    assert listed(OffsetSpec.earliest()) == (0, 0)
    produce_all(producer(broker), topic, [{"value": b"v%d" % i, "timestamp": 1_700_000_000_000 + i}
                                          for i in range(4)])
    assert listed(OffsetSpec.latest()) == (4, 0)
    assert listed(OffsetSpec.earliest()) == (0, 0)
    assert listed(OffsetSpec.for_timestamp(1_700_000_000_002)) == (2, 0)
    assert listed(OffsetSpec.max_timestamp()) == (3, 0)


def test_epochs_and_high_watermarks_survive_a_stop_and_kill_9(broker_factory):
    broker = broker_factory({"replica.high.watermark.checkpoint.interval.ms": "100"})
    topic = unique("hw")
    create_topic(broker, topic, partitions=3)
    counts = {0: 7, 1: 0, 2: 3}
    records = [{"value": b"p%d-%d" % (p, i), "partition": p} for p, n in counts.items() for i in range(n)]
    produce_all(producer(broker), topic, records)
    # The periodic checkpoint holds every hosted partition's high watermark.
    wait_until(lambda: all(hw_checkpoint(broker).get((topic, p)) == n for p, n in counts.items()),
               what="the high watermark checkpoint")
    broker.kill()
    broker.restart()
    for p, n in counts.items():
        assert watermarks(broker, topic, p) == (0, n)
        if n:
            assert [m.value() for m in read_partition(broker, topic, p, 0, n)] == \
                [b"p%d-%d" % (p, i) for i in range(n)]
            assert epochs_checkpoint(broker, topic, p) == "0\n1\n0 0\n"
            assert offset_for_leader_epoch(broker, topic, [(p, 0, 0)])[p] == (NONE, 0, n)
    # More records after the crash, then a clean stop: the stop writes the checkpoint.
    produce_all(producer(broker), topic, [{"value": b"late", "partition": 1}])
    broker.stop()
    assert hw_checkpoint(broker)[(topic, 1)] == 1
    assert hw_checkpoint(broker)[(topic, 0)] == 7
    broker.restart()
    assert watermarks(broker, topic, 1) == (0, 1)
    assert offset_for_leader_epoch(broker, topic, [(1, -1, 0)])[1] == (NONE, 0, 1)


def test_a_consumer_resumes_from_a_committed_offset_with_its_epoch(broker):
    """librdkafka commits the leader epoch with the offset and validates it with
    OffsetForLeaderEpoch when it resumes (KIP-320): the group resumes exactly there."""
    topic = unique("resume")
    create_topic(broker, topic)
    produce_all(producer(broker), topic, [{"value": b"m%d" % i} for i in range(6)])
    group = unique("g")
    c = consumer(broker, **{"group.id": group, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < 4:
        got += [m for m in c.consume(4 - len(got), timeout=1) if m.error() is None]
    c.commit(message=got[-1], asynchronous=False)
    committed = c.committed([TopicPartition(topic, 0)], timeout=10)[0]
    assert (committed.offset, committed.leader_epoch) == (4, 0)
    c.close()
    c = consumer(broker, **{"group.id": group, "enable.auto.commit": False})
    c.subscribe([topic])
    rest = []
    deadline_polls = 60
    while len(rest) < 2 and deadline_polls:
        deadline_polls -= 1
        rest += [m for m in c.consume(2 - len(rest), timeout=1) if m.error() is None]
    c.close()
    assert [m.value() for m in rest] == [b"m4", b"m5"]
