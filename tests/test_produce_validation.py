"""Kafka's validation of a produced batch, walked record by record (LogValidator): a batch whose
header and records disagree is refused with Kafka's code and message and nothing of it is appended;
a compressed batch that inflates past 64 x max.message.bytes is refused as too large while the
broker's memory stays small, whether or not the topic's codec differs from the producer's."""

from __future__ import annotations

import functools
import struct
import time
import zlib

import pytest
import zstandard
from confluent_kafka import TopicPartition
from kafka.record.util import calc_crc32c

import kafka_wire as kw
import kwire
from helpers import consume_to_end, consumer, create_topic, produce_all, producer, unique, watermarks

GZIP, ZSTD = 1, 4
# Default max.message.bytes (1048588) times the inflation factor.
INFLATION_LIMIT = 64 * 1_048_588
BOMB_INFLATED_BYTES = 1 << 30
# Peak RSS of the broker after the bombs: the 1 GiB they inflate to must never be held.
RSS_LIMIT_KIB = 300 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


# --- hand-built v2 batches ----------------------------------------------------------

def varint(n: int) -> bytes:
    return kwire.enc_uvarint(((n << 1) ^ (n >> 63)) & 0xFFFF_FFFF_FFFF_FFFF)


def field(data: bytes | None) -> bytes:
    return varint(-1) if data is None else varint(len(data)) + data


def record(offset_delta: int, key: bytes | None, value: bytes | None, timestamp_delta: int = 0) -> bytes:
    body = b"\x00" + varint(timestamp_delta) + varint(offset_delta) + field(key) + field(value) + varint(0)
    return varint(len(body)) + body


def compress(codec: int, section: bytes) -> bytes:
    if codec == GZIP:
        z = zlib.compressobj(6, zlib.DEFLATED, 31)
        return z.compress(section) + z.flush()
    if codec == ZSTD:
        return zstandard.ZstdCompressor(level=3).compress(section)
    assert codec == 0
    return section


def batch(records_bytes: bytes, count: int, last_offset_delta: int, codec: int = 0,
          base_ts: int | None = None, compressed: bytes | None = None) -> bytes:
    """A magic-2 batch at base offset 0 around any records section, with a correct CRC."""
    base_ts = now_ms() if base_ts is None else base_ts
    section = compress(codec, records_bytes) if compressed is None else compressed
    body = struct.pack(">hiqqqhii", codec, last_offset_delta, base_ts, base_ts, -1, -1, -1, count) + section
    crc = calc_crc32c(body)
    return struct.pack(">qiibI", 0, 4 + 1 + 4 + len(body), -1, 2, crc) + body


def good_records(n: int, prefix: bytes) -> list[tuple[bytes, bytes]]:
    return [(prefix + b"-k%d" % i, prefix + b"-v%d" % i) for i in range(n)]


def section_of(records: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(record(i, k, v) for i, (k, v) in enumerate(records))


# --- checks -------------------------------------------------------------------------

def produce_one(broker, topic: str, records: bytes) -> kw.ProducePartitionV8:
    with kwire.connect(broker.host, broker.port, timeout=60) as sock:
        sock.settimeout(60)
        return kw.produce_v8(sock, {topic: {0: records}})[(topic, 0)]


def topic_with_two_good_records(broker, config: dict | None = None) -> tuple[str, list]:
    topic = unique("validate")
    create_topic(broker, topic, 1, config=config)
    good = good_records(2, b"good")
    ok = produce_one(broker, topic, batch(section_of(good), 2, 1))
    assert (ok.error_code, ok.base_offset) == (kw.NONE, 0), ok
    return topic, good


def assert_refused(result: kw.ProducePartitionV8, code: int, message: str) -> None:
    assert (result.error_code, result.error_message, result.record_errors) == (code, message, []), result
    assert (result.base_offset, result.log_append_time_ms) == (-1, -1), result


def assert_log_holds_exactly(broker, topic: str, records: list) -> None:
    """ListOffsets latest is the record count and a consumer from offset 0 gets exactly them."""
    assert watermarks(broker, topic, 0) == (0, len(records))
    c = consumer(broker)
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, 0, 0)], {(topic, 0): len(records)}, timeout_s=30)
    finally:
        c.close()
    assert [(m.offset(), m.key(), m.value()) for m in msgs] == [(i, k, v) for i, (k, v) in enumerate(records)]


def assert_serves_other_clients(broker) -> None:
    assert broker.running(), broker.log_tail()
    topic = unique("after")
    create_topic(broker, topic, 1)
    delivered = produce_all(producer(broker), topic, [{"key": b"k", "value": b"still-serving"}], timeout_s=30)
    assert [(d.partition, d.offset) for d in delivered] == [(0, 0)]
    c = consumer(broker)
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, 0, 0)], {(topic, 0): 1}, timeout_s=30)
    finally:
        c.close()
    assert [(m.offset(), m.value()) for m in msgs] == [(0, b"still-serving")]


# --- header and records disagree --------------------------------------------------------

def invalid_cases():
    three = section_of(good_records(3, b"bad"))
    truncated = record(0, b"key", b"value")[:-3]
    body_len = len(record(0, b"key", b"value")) - 1
    return [
        # The header claims i32::MAX records (offset range consistent) over a few bytes.
        pytest.param(lambda c: batch(record(0, b"k", b"v"), 2**31 - 1, 2**31 - 2, c),
                     "Incorrect declared batch size, premature EOF reached", id="claims-2^31-1"),
        pytest.param(lambda c: batch(three, 4, 3, c),
                     "Incorrect declared batch size, premature EOF reached", id="claims-one-too-many"),
        pytest.param(lambda c: batch(three, 2, 1, c),
                     "Incorrect declared batch size, records still remaining in file", id="claims-too-few"),
        pytest.param(lambda c: batch(three, 3, 5, c),
                     "Inconsistent batch offset range [0, 5] and count of records 3 in topic partition {tp}",
                     id="last-offset-delta-beyond-count"),
        pytest.param(lambda c: batch(three, 3, 1, c),
                     "Inconsistent batch offset range [0, 1] and count of records 3 in topic partition {tp}",
                     id="last-offset-delta-short-of-count"),
        pytest.param(lambda c: batch(record(0, b"a", b"v") + record(2, b"b", b"v") + record(1, b"c", b"v"), 3, 2, c),
                     "Record 1 of the batch has offset delta 2, but record offsets must run from the batch's "
                     "base offset without gaps", id="offset-deltas-out-of-order"),
        pytest.param(lambda c: batch(three + b"\xde\xad\xbe\xef", 3, 2, c),
                     "Incorrect declared batch size, records still remaining in file", id="trailing-garbage"),
        pytest.param(lambda c: batch(truncated, 1, 0, c),
                     {0: f"Invalid record size: expected {body_len} bytes in record payload, but instead the "
                         f"buffer has only {len(truncated) - 1} remaining bytes.",
                      GZIP: f"Invalid record size: expected {body_len} bytes in record payload, but the record "
                            "payload reached EOF.",
                      ZSTD: f"Invalid record size: expected {body_len} bytes in record payload, but the record "
                            "payload reached EOF."}, id="truncated-record"),
    ]


@pytest.mark.parametrize("codec", [0, GZIP, ZSTD], ids=["none", "gzip", "zstd"])
@pytest.mark.parametrize("build, message", invalid_cases())
def test_a_batch_whose_records_disagree_with_it_is_invalid_and_not_appended(broker, codec, build, message):
    topic, good = topic_with_two_good_records(broker)
    if isinstance(message, dict):
        message = message[codec]
    result = produce_one(broker, topic, build(codec))
    assert_refused(result, kw.INVALID_RECORD, message.format(tp=f"{topic}-0"))
    assert_log_holds_exactly(broker, topic, good)


def test_a_wrong_header_max_timestamp_is_corrected_as_kafka_does(broker):
    """Kafka rewrites a CreateTime batch's max timestamp from its records, so the time index and
    ListOffsets by time see the real one."""
    topic = unique("maxts")
    create_topic(broker, topic, 1)
    base = now_ms() - 10_000
    section = record(0, b"a", b"v", 0) + record(1, b"b", b"v", 5_000) + record(2, b"c", b"v", 1_000)
    ok = produce_one(broker, topic, batch(section, 3, 2, base_ts=base))  # header max = base
    assert (ok.error_code, ok.base_offset) == (kw.NONE, 0), ok
    c = consumer(broker)
    try:
        found = c.offsets_for_times([TopicPartition(topic, 0, base + 4_000)], timeout=10)
    finally:
        c.close()
    assert [(tp.partition, tp.offset) for tp in found] == [(0, 1)]


# --- decompression bombs ------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def bomb(codec: int) -> bytes:
    """One record whose value is 1 GiB of zeros, compressed to about 1 MB (gzip) or 32 KB (zstd),
    built without ever holding the gigabyte."""
    body_len = 1 + 1 + 1 + len(field(b"k")) + len(varint(BOMB_INFLATED_BYTES)) + BOMB_INFLATED_BYTES + 1
    head = varint(body_len) + b"\x00" + varint(0) + varint(0) + field(b"k") + varint(BOMB_INFLATED_BYTES)
    z = zlib.compressobj(9, zlib.DEFLATED, 31) if codec == GZIP else zstandard.ZstdCompressor(level=3).compressobj()
    out = [z.compress(head)]
    chunk = bytes(1 << 20)
    for _ in range(BOMB_INFLATED_BYTES // len(chunk)):
        out.append(z.compress(chunk))
    out.append(z.compress(varint(0)))
    out.append(z.flush())
    b = batch(b"", 1, 0, codec, compressed=b"".join(out))
    assert len(b) <= 1_048_588, len(b)
    return b


@pytest.mark.timeout(300)
@pytest.mark.parametrize("topic_codec", ["lz4", "producer", "uncompressed"])
@pytest.mark.parametrize("codec", [GZIP, ZSTD], ids=["gzip", "zstd"])
def test_a_decompression_bomb_is_refused_as_too_large_in_bounded_memory(broker, codec, topic_codec):
    topic, good = topic_with_two_good_records(broker, {"compression.type": topic_codec})
    result = produce_one(broker, topic, bomb(codec))
    name = {GZIP: "gzip", ZSTD: "zstd"}[codec]
    if topic_codec == "uncompressed":
        # Stored uncompressed, the records pass max.message.bytes before the inflation bound.
        message = (f"The record batch compressed with none in append to partition {topic}-0 exceeds the "
                   "maximum configured size of 1048588.")
    else:
        message = (f"The {name} records of the batch inflate past {INFLATION_LIMIT} bytes "
                   "(64 times max.message.bytes)")
    assert_refused(result, kw.MESSAGE_TOO_LARGE, message)
    memory = kw.memory_kib(broker.proc.pid)
    assert memory["VmHWM"] < RSS_LIMIT_KIB, memory
    assert_log_holds_exactly(broker, topic, good)
    assert_serves_other_clients(broker)
