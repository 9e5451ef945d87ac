"""A deliberately tiny Kafka wire client for probes no real client will send.

Used for the readiness check (ApiVersions, Metadata) and for malformed-input
tests. Only the non-flexible request versions are encoded here: ApiVersions
v0 and Metadata v4 (request header v1, response header v0).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

API_KEY_METADATA = 3
API_KEY_API_VERSIONS = 18


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"short response: need {n} bytes at {self.pos}, have {len(self.data)}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i8(self) -> int:
        return struct.unpack(">b", self.take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self.take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self.take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self.take(8))[0]

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        return self.take(n).decode()

    def array(self, item):
        n = self.i32()
        if n < 0:
            return None
        return [item(self) for _ in range(n)]

    def done(self) -> bool:
        return self.pos == len(self.data)

    # --- flexible versions (KIP-482): unsigned varints, compact strings, tagged fields ---
    def uvarint(self) -> int:
        value, shift = 0, 0
        while True:
            b = self.take(1)[0]
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_string(self) -> str | None:
        n = self.uvarint() - 1
        return None if n < 0 else self.take(n).decode()

    def compact_array(self, item):
        n = self.uvarint() - 1
        return None if n < 0 else [item(self) for _ in range(n)]

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.take(self.uvarint())


def enc_string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def enc_uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def enc_compact_string(s: str | None) -> bytes:
    if s is None:
        return enc_uvarint(0)
    b = s.encode()
    return enc_uvarint(len(b) + 1) + b


def enc_compact_array(items: list[bytes] | None) -> bytes:
    if items is None:
        return enc_uvarint(0)
    return enc_uvarint(len(items) + 1) + b"".join(items)


def flexible_roundtrip(sock: socket.socket, api_key: int, api_version: int, correlation_id: int,
                       body: bytes) -> Reader:
    """A flexible-version request (header v2) and its response after header v1: `body` must end
    with its own tagged fields."""
    payload = struct.pack(">hhi", api_key, api_version, correlation_id) + enc_string("strom-tests") + b"\x00" + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    r = Reader(recv_frame(sock))
    got = r.i32()
    if got != correlation_id:
        raise ValueError(f"correlation id {got}, expected {correlation_id}")
    r.skip_tags()
    return r


def request_frame(api_key: int, api_version: int, correlation_id: int, body: bytes,
                  client_id: str | None = "strom-tests") -> bytes:
    """A size-prefixed request with header v1 (api key, version, correlation id, client id)."""
    payload = struct.pack(">hhi", api_key, api_version, correlation_id) + enc_string(client_id) + body
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> bytes:
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    return recv_exact(sock, size)


def connect(host: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def roundtrip(sock: socket.socket, api_key: int, api_version: int, correlation_id: int, body: bytes) -> Reader:
    sock.sendall(request_frame(api_key, api_version, correlation_id, body))
    r = Reader(recv_frame(sock))
    got = r.i32()
    if got != correlation_id:
        raise ValueError(f"correlation id {got}, expected {correlation_id}")
    return r


@dataclass
class ApiVersionsResponse:
    error_code: int
    versions: dict[int, tuple[int, int]] = field(default_factory=dict)


def parse_api_versions_v0(r: Reader) -> ApiVersionsResponse:
    error_code = r.i16()
    entries = r.array(lambda rr: (rr.i16(), rr.i16(), rr.i16())) or []
    return ApiVersionsResponse(error_code, {k: (lo, hi) for k, lo, hi in entries})


def api_versions(sock: socket.socket, correlation_id: int = 1, version: int = 0) -> ApiVersionsResponse:
    """ApiVersions; for any version the broker does not support it must answer in v0 format."""
    r = roundtrip(sock, API_KEY_API_VERSIONS, version, correlation_id, b"")
    return parse_api_versions_v0(r)


@dataclass
class MetadataPartition:
    error_code: int
    partition: int
    leader: int
    replicas: list[int]
    isr: list[int]


@dataclass
class MetadataTopic:
    error_code: int
    name: str
    is_internal: bool
    partitions: list[MetadataPartition]


@dataclass
class MetadataResponse:
    brokers: list[tuple[int, str, int, str | None]]
    cluster_id: str | None
    controller_id: int
    topics: list[MetadataTopic]


def metadata_v4(sock: socket.socket, topics: list[str] | None, allow_auto_create: bool,
                correlation_id: int = 2) -> MetadataResponse:
    """Metadata v4: topics None means all topics; [] means none."""
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics)) + b"".join(enc_string(t) for t in topics)
    body += struct.pack(">?", allow_auto_create)
    r = roundtrip(sock, API_KEY_METADATA, 4, correlation_id, body)
    r.i32()  # throttle_time_ms
    brokers = r.array(lambda rr: (rr.i32(), rr.string(), rr.i32(), rr.string()))
    cluster_id = r.string()
    controller_id = r.i32()

    def partition(rr: Reader) -> MetadataPartition:
        return MetadataPartition(rr.i16(), rr.i32(), rr.i32(),
                                 rr.array(lambda x: x.i32()), rr.array(lambda x: x.i32()))

    def topic(rr: Reader) -> MetadataTopic:
        return MetadataTopic(rr.i16(), rr.string(), rr.i8() != 0, rr.array(partition))

    topics_out = r.array(topic)
    if not r.done():
        raise ValueError(f"{len(r.data) - r.pos} trailing bytes in Metadata v4 response")
    return MetadataResponse(brokers, cluster_id, controller_id, topics_out)
