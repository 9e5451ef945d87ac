"""Fetch responses send record bytes from the log files with sendfile (zero copy).

The frame is encoded by kafka-protocol with placeholders for the records and the file regions
are sent in their place; `strom_fetch_bytes_sent_zero_copy_total` counts the bytes that went
from files to sockets that way. Consumers must read exactly what was produced, across many
segment files, and a fetch that retention races (the segments being sent are removed from
the log meanwhile) still delivers intact records: a file region keeps its file open.
"""

from __future__ import annotations

import os
import random
import time

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

import fetch_wire as fw
from helpers import admin, consumer, create_topic, kp_consumer, metric, produce_all, producer, wait_until

ZERO_COPY_METRIC = "strom_fetch_bytes_sent_zero_copy_total"
VALUE_BYTES = 10_000
PATTERN = random.Random(11).randbytes(VALUE_BYTES + 4096)


def value_of(partition: int, offset: int) -> bytes:
    """A value unique to its place: a header, then the pattern from an offset-dependent point."""
    head = b"%d:%09d:" % (partition, offset)
    start = (offset * 7919) % 4096
    return head + PATTERN[start:start + VALUE_BYTES - len(head)]


def zero_copy_bytes(broker) -> float:
    return metric(broker.metrics(), ZERO_COPY_METRIC) or 0.0


def fill(broker, topic: str, partitions: int, per_partition: int) -> None:
    p = producer(broker, **{"linger.ms": 20, "batch.size": 1_000_000, "compression.type": "none",
                            "queue.buffering.max.kbytes": 128 * 1024})
    records = ({"value": value_of(part, i), "partition": part}
               for i in range(per_partition) for part in range(partitions))
    delivered = produce_all(p, topic, records, timeout_s=300)
    assert len(delivered) == partitions * per_partition


def consume_confluent(broker, topic: str, partitions: int, per_partition: int) -> int:
    """Reads every partition from the start, checking each record in place; returns value bytes."""
    c = consumer(broker, **{"fetch.max.bytes": 50 << 20, "max.partition.fetch.bytes": 8 << 20})
    next_offset = {p: 0 for p in range(partitions)}
    total = 0
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + 240
        while any(o < per_partition for o in next_offset.values()):
            assert time.monotonic() < deadline, f"timed out at {next_offset}"
            for msg in c.consume(num_messages=5000, timeout=0.5):
                if msg.error() is not None:
                    raise KafkaException(msg.error())
                part, offset = msg.partition(), msg.offset()
                assert offset == next_offset[part], f"partition {part}: got {offset}, expected {next_offset[part]}"
                assert msg.value() == value_of(part, offset), f"partition {part} offset {offset}: wrong bytes"
                next_offset[part] += 1
                total += len(msg.value())
    finally:
        c.close()
    assert next_offset == {p: per_partition for p in range(partitions)}
    return total


def consume_kafka_python(broker, topic: str, partitions: int, per_partition: int) -> int:
    from kafka import TopicPartition as KTP
    c = kp_consumer(broker, fetch_max_bytes=50 << 20, max_partition_fetch_bytes=8 << 20, check_crcs=False)
    next_offset = {p: 0 for p in range(partitions)}
    total = 0
    try:
        tps = [KTP(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        deadline = time.monotonic() + 400
        while any(o < per_partition for o in next_offset.values()):
            assert time.monotonic() < deadline, f"timed out at {next_offset}"
            for tp, records in c.poll(timeout_ms=500, max_records=5000).items():
                for r in records:
                    assert r.offset == next_offset[tp.partition], (tp, r.offset, next_offset[tp.partition])
                    assert r.value == value_of(tp.partition, r.offset), f"{tp} offset {r.offset}: wrong bytes"
                    next_offset[tp.partition] += 1
                    total += len(r.value)
    finally:
        c.close()
    assert next_offset == {p: per_partition for p in range(partitions)}
    return total


@pytest.mark.timeout(900)
def test_hundreds_of_megabytes_across_segment_rolls_read_exactly_by_two_clients(broker_factory):
    broker = broker_factory({})
    topic = "zero-copy"
    partitions, per_partition = 2, 15_000  # 300 MB of values
    create_topic(broker, topic, partitions, {"segment.bytes": str(8 << 20)})
    fill(broker, topic, partitions, per_partition)
    segments = [f for f in os.listdir(broker.data_dir / f"{topic}-0") if f.endswith(".log")]
    assert len(segments) >= 15, segments

    before = zero_copy_bytes(broker)
    read = consume_confluent(broker, topic, partitions, per_partition)
    assert read == partitions * per_partition * VALUE_BYTES
    after_confluent = zero_copy_bytes(broker)
    # Every consumed record byte went out of a file region (batch framing adds more).
    assert after_confluent - before >= read

    read = consume_kafka_python(broker, topic, partitions, per_partition)
    assert read == partitions * per_partition * VALUE_BYTES
    assert zero_copy_bytes(broker) - after_confluent >= read


def test_copying_fallback_reads_the_same_records(broker_factory):
    broker = broker_factory({"strom.fetch.zero.copy": "false"})
    topic = "copied"
    create_topic(broker, topic, 2, {"segment.bytes": str(1 << 20)})
    fill(broker, topic, 2, 600)
    assert consume_confluent(broker, topic, 2, 600) == 2 * 600 * VALUE_BYTES
    assert consume_kafka_python(broker, topic, 2, 600) == 2 * 600 * VALUE_BYTES
    assert zero_copy_bytes(broker) == 0


@pytest.mark.timeout(300)
def test_a_fetch_racing_retention_still_sends_intact_records(broker_factory):
    broker = broker_factory({"log.retention.check.interval.ms": "200"})
    topic = "raced"
    create_topic(broker, topic, 1, {"segment.bytes": str(1 << 20), "file.delete.delay.ms": "0"})
    count = 3000  # ~30 MB, far more than the socket buffers hold
    fill_big(broker, topic, count)
    part_dir = broker.data_dir / f"{topic}-0"
    first_segment = "00000000000000000000.log"
    assert first_segment in os.listdir(part_dir)

    conn = fw.Conn(broker, timeout_s=120)
    try:
        # A small receive buffer, and nothing read yet: the broker's send stalls part way.
        conn.sock.setsockopt(fw.socket.SOL_SOCKET, fw.socket.SO_RCVBUF, 64 * 1024)
        cid = conn.send_fetch(12, [(topic, 0, 0)], max_bytes=64 << 20, partition_max_bytes=64 << 20)
        wait_until(lambda: zero_copy_bytes(broker) > 0, what="the first file region to be sent")
        # Retention removes every segment but the active one, those being sent included.
        adm = admin(broker)
        resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET)])
        for f in adm.incremental_alter_configs([resource]).values():
            f.result(timeout=30)
        wait_until(lambda: first_segment not in os.listdir(part_dir), timeout_s=60,
                   what="retention to remove the first segment")
        # Its file is kept (renamed) while the fetch still sends from it.
        assert any(f.endswith(".log.deleted") for f in os.listdir(part_dir))
        answer = conn.receive_fetch(12, cid)
    finally:
        conn.close()
    [part] = answer.parts
    assert part.error_code == fw.NONE
    values = part.values()
    assert len(values) == count
    assert values == [(i, big_value(i)) for i in range(count)]
    # Once sent, the files go.
    wait_until(lambda: not any(f.endswith(".deleted") for f in os.listdir(part_dir)), timeout_s=60,
               what="the removed segments' files to be deleted")


def big_value(offset: int) -> bytes:
    return b"%09d" % offset + PATTERN[offset % 4096:][:VALUE_BYTES - 9]


def fill_big(broker, topic: str, count: int) -> None:
    p = producer(broker, **{"linger.ms": 20, "batch.size": 200_000, "compression.type": "none"})
    produce_all(p, topic, ({"value": big_value(i), "partition": 0} for i in range(count)), timeout_s=120)
