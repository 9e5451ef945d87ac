"""Idempotent-producer sequences survive a broker crash: a batch retried after `kill -9` and a
restart is answered with its original offsets instead of being written twice (Kafka restores
producer state from its snapshots; strom rebuilds it from the batch headers of the log's tail)."""

from __future__ import annotations

import struct

from kafka.record.default_records import DefaultRecordBatchBuilder

import kafka_wire
import kwire
from helpers import create_topic, read_partition, unique, watermarks

API_INIT_PRODUCER_ID = 22
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


def init_producer_id(sock) -> tuple[int, int]:
    """InitProducerId v0 for an idempotent (non-transactional) producer."""
    r = kwire.roundtrip(sock, API_INIT_PRODUCER_ID, 0, 1, kwire.enc_string(None) + struct.pack(">i", 60_000))
    r.i32()  # throttle_time_ms
    assert r.i16() == 0
    producer_id, epoch = struct.unpack(">qh", r.take(10))
    return producer_id, epoch


def batch(producer_id: int, epoch: int, first_sequence: int, values: list[bytes]) -> bytes:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=producer_id,
                                  producer_epoch=epoch, base_sequence=first_sequence, batch_size=1 << 30)
    for i, value in enumerate(values):
        assert b.append(i, timestamp=None, key=None, value=value, headers=[]) is not None
    return bytes(b.build())


def produce(sock, topic: str, records: bytes) -> tuple[int, int]:
    """Produce v3 with acks=-1; returns (error code, base offset)."""
    result = kafka_wire.produce_v3(sock, {topic: {0: records}})[(topic, 0)]
    return result.error_code, result.base_offset


def test_batches_retried_after_kill_9_are_not_written_twice(broker):
    topic = unique("idem-restart")
    create_topic(broker, topic, 1)
    with kwire.connect(broker.host, broker.port) as sock:
        pid, epoch = init_producer_id(sock)
        b0 = batch(pid, epoch, 0, [b"a", b"b"])
        b1 = batch(pid, epoch, 2, [b"c", b"d"])
        assert produce(sock, topic, b0) == (0, 0)
        assert produce(sock, topic, b1) == (0, 2)

    broker.restart(kill=True)

    with kwire.connect(broker.host, broker.port) as sock:
        # Both retries are recognised, with their original offsets; nothing is appended.
        assert produce(sock, topic, b1) == (0, 2)
        assert produce(sock, topic, b0) == (0, 0)
        assert watermarks(broker, topic, 0) == (0, 4)
        # The sequence check continues where the producer left off.
        assert produce(sock, topic, batch(pid, epoch, 5, [b"skipped"]))[0] == OUT_OF_ORDER_SEQUENCE_NUMBER
        assert produce(sock, topic, batch(pid, epoch, 4, [b"e"])) == (0, 4)

    got = read_partition(broker, topic, 0, 0, 5)
    assert [(m.offset(), m.value()) for m in got] == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d"), (4, b"e")]
