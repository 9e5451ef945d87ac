"""Raw request frames for the protocol-level tests (robustness, idempotence), on top of kwire's framing.

Only non-flexible versions are encoded (request header v1, response header v0):
Produce v3 and v8 (KIP-467 record errors) and CreateTopics v2. Valid record batches come from kafka-python's
builders; the tests then damage them byte by byte.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder

import kwire
from kwire import Reader, enc_string, recv_frame, request_frame

API_PRODUCE = 0
API_METADATA = 3
API_CREATE_TOPICS = 19

# Kafka error codes the tests expect.
NONE = 0
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
INVALID_TIMESTAMP = 32
UNSUPPORTED_VERSION = 35
INVALID_RECORD = 87

# Record batch v2 layout: the CRC32C at byte 17 covers everything from byte 21 on.
BATCH_CRC_OFFSET = 17
BATCH_CRC_COVERS_FROM = 21


# --- record batches ------------------------------------------------------------

def batch_v2(records: list[tuple[bytes | None, bytes | None]], timestamp_ms: int = 1_700_000_000_000) -> bytes:
    """A valid uncompressed magic-2 batch with base offset 0."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    for i, (key, value) in enumerate(records):
        assert b.append(i, timestamp=timestamp_ms + i, key=key, value=value, headers=[]) is not None
    return bytes(b.build())


def batch_v2_of(records: list[tuple[bytes | None, bytes | None, int]]) -> bytes:
    """A valid uncompressed magic-2 batch of (key, value, timestamp) records; as Kafka's
    producers do, the base timestamp is the first record's."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    for i, (key, value, timestamp_ms) in enumerate(records):
        assert b.append(i, timestamp=timestamp_ms, key=key, value=value, headers=[]) is not None
    return bytes(b.build())


def with_log_append_time_flag(batch: bytes) -> bytes:
    """The batch with attribute bit 3 (LogAppendTime) set and its CRC32C recomputed."""
    from kafka.record.util import calc_crc32c
    out = bytearray(batch)
    out[22] |= 0x08
    out[BATCH_CRC_OFFSET:BATCH_CRC_COVERS_FROM] = struct.pack(">I", calc_crc32c(bytes(out[BATCH_CRC_COVERS_FROM:])))
    return bytes(out)


def batch_v1(records: list[tuple[bytes | None, bytes | None]], timestamp_ms: int = 1_700_000_000_000) -> bytes:
    """A valid uncompressed magic-1 (legacy message set) batch."""
    b = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 30)
    for i, (key, value) in enumerate(records):
        assert b.append(i, timestamp=timestamp_ms + i, key=key, value=value) is not None
    return bytes(b.build())


def flip_byte(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0xFF
    return bytes(out)


# --- Produce v3 ----------------------------------------------------------------

def produce_v3_body(topics: dict[str, dict[int, bytes | None]], acks: int = -1, timeout_ms: int = 10_000) -> bytes:
    """topics: {name: {partition: record batch bytes}}."""
    body = enc_string(None) + struct.pack(">hii", acks, timeout_ms, len(topics))
    for name, parts in topics.items():
        body += enc_string(name) + struct.pack(">i", len(parts))
        for index, records in parts.items():
            body += struct.pack(">i", index)
            body += struct.pack(">i", -1) if records is None else struct.pack(">i", len(records)) + records
    return body


@dataclass
class ProducePartition:
    error_code: int
    base_offset: int
    log_append_time_ms: int


def _produce(sock: socket.socket, version: int, correlation_id: int, body: bytes, partition) -> dict:
    """Sends a non-flexible Produce and reads {(topic, partition): partition(reader)}; the whole
    response must parse."""
    r = kwire.roundtrip(sock, API_PRODUCE, version, correlation_id, body)
    out: dict = {}
    for _ in range(r.i32()):
        name = r.string()
        for _ in range(r.i32()):
            index = r.i32()
            out[(name, index)] = partition(r)
    r.i32()  # throttle_time_ms
    if not r.done():
        raise ValueError(f"{len(r.data) - r.pos} trailing bytes in Produce v{version} response")
    return out


def produce_v3(sock: socket.socket, topics: dict[str, dict[int, bytes | None]], correlation_id: int = 7,
               acks: int = -1) -> dict[tuple[str, int], ProducePartition]:
    """Sends Produce v3 and returns {(topic, partition): result}."""
    return _produce(sock, 3, correlation_id, produce_v3_body(topics, acks),
                    lambda r: ProducePartition(r.i16(), *struct.unpack(">qq", r.take(16))))


@dataclass
class ProducePartitionV8:
    error_code: int
    base_offset: int
    log_append_time_ms: int
    log_start_offset: int
    record_errors: list[tuple[int, str | None]]
    error_message: str | None


def produce_v8(sock: socket.socket, topics: dict[str, dict[int, bytes | None]], correlation_id: int = 9,
               acks: int = -1) -> dict[tuple[str, int], ProducePartitionV8]:
    """Sends Produce v8 (the v3 request layout; the response adds log_start_offset, record_errors and
    error_message) and returns {(topic, partition): result}."""
    def partition(r):
        error_code = r.i16()
        base_offset, log_append_time_ms, log_start_offset = struct.unpack(">qqq", r.take(24))
        record_errors = r.array(lambda rr: (rr.i32(), rr.string()))
        return ProducePartitionV8(error_code, base_offset, log_append_time_ms, log_start_offset,
                                  record_errors, r.string())
    return _produce(sock, 8, correlation_id, produce_v3_body(topics, acks), partition)


# --- CreateTopics v2 -----------------------------------------------------------

def create_topics_v2(sock: socket.socket, names: list[str], partitions: int = 1, correlation_id: int = 8,
                     timeout_ms: int = 10_000) -> dict[str, tuple[int, str | None]]:
    """Creates topics (no assignments, no configs); returns {name: (error_code, error_message)}."""
    body = struct.pack(">i", len(names))
    for name in names:
        body += enc_string(name) + struct.pack(">ihii", partitions, 1, 0, 0)  # assignments [], configs []
    body += struct.pack(">i?", timeout_ms, False)
    r = kwire.roundtrip(sock, API_CREATE_TOPICS, 2, correlation_id, body)
    r.i32()  # throttle_time_ms
    out = {}
    for _ in range(r.i32()):
        name = r.string()
        out[name] = (r.i16(), r.string())
    if not r.done():
        raise ValueError(f"{len(r.data) - r.pos} trailing bytes in CreateTopics v2 response")
    return out


# --- connection-level helpers ----------------------------------------------------

def frame(api_key: int, api_version: int, correlation_id: int, body: bytes) -> bytes:
    return request_frame(api_key, api_version, correlation_id, body)


def closed_by_peer(sock: socket.socket, timeout_s: float = 10.0) -> bool:
    """True if the peer closes (EOF or reset) before sending anything; raises if it sends data,
    returns False if it does neither within the timeout."""
    sock.settimeout(timeout_s)
    try:
        data = sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    if data:
        raise AssertionError(f"expected the broker to close the connection, it sent {data[:64]!r}")
    return True


def read_response(sock: socket.socket, correlation_id: int) -> Reader:
    r = Reader(recv_frame(sock))
    got = r.i32()
    assert got == correlation_id, f"correlation id {got}, expected {correlation_id}"
    return r


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) and VmPeak (peak virtual size) of a process, in KiB, from
    /proc/PID/status. The peaks also catch an allocation that was made and freed again, and
    VmPeak one that was reserved but never touched."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "VmPeak"):
                out[name] = int(rest.split()[0])
    assert len(out) == 3, f"/proc/{pid}/status lacks memory fields: {out}"
    return out
