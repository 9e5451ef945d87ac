"""Hostile and malformed requests on raw sockets.

Every case checks that the broker either answered exactly as Kafka's protocol says or closed
the connection (with a WARN `closing connection` line in its log), that it did not allocate
what a lying length asked for, that the process is still alive, and that a real client on a
fresh connection still produces and consumes correctly afterwards.
"""

from __future__ import annotations

import resource
import socket
import struct
import time

import pytest
from confluent_kafka import TopicPartition

import kafka_wire as kw
import kwire
from helpers import consume_to_end, consumer, create_topic, produce_all, producer, unique

pytestmark = pytest.mark.timeout(60)

# A lying length must not be allocated: peak RSS may grow by buffers, not by the claimed size.
RSS_GROWTH_LIMIT_KIB = 32 * 1024


def assert_no_big_allocation(broker, before: dict[str, int]) -> None:
    after = kw.memory_kib(broker.proc.pid)
    assert after["VmHWM"] - before["VmHWM"] < RSS_GROWTH_LIMIT_KIB, f"peak RSS grew: {before} -> {after}"


# --- shared checks -----------------------------------------------------------------

def assert_serves_real_clients(broker) -> None:
    """The process is alive and confluent-kafka can create, produce and consume on new connections."""
    assert broker.running(), f"broker exited with {broker.proc.returncode}:\n{broker.log_tail()}"
    topic = unique("after-probe")
    create_topic(broker, topic, 1)
    records = [{"key": b"k%d" % i, "value": b"still-serving-%d" % i} for i in range(3)]
    delivered = produce_all(producer(broker), topic, records, timeout_s=30)
    assert [(d.partition, d.offset) for d in delivered] == [(0, 0), (0, 1), (0, 2)]
    c = consumer(broker)
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, 0, 0)], {(topic, 0): 3}, timeout_s=30)
    finally:
        c.close()
    assert [(m.offset(), m.key(), m.value()) for m in msgs] == \
        [(i, b"k%d" % i, b"still-serving-%d" % i) for i in range(3)]
    assert broker.running()


def assert_closed_with_log(broker, payload: bytes, mark: int) -> None:
    """Sends payload on a new connection; the broker must close it and log why."""
    with kwire.connect(broker.host, broker.port, timeout=10) as sock:
        sock.sendall(payload)
        assert kw.closed_by_peer(sock, timeout_s=10), f"broker kept the connection open 10s after {payload[:48].hex()}"
    line = wait_for_closing_line(broker, mark)
    assert "WARN" in line, f"closing connection logged below WARN: {line!r}"


def wait_for_closing_line(broker, mark: int, timeout_s: float = 10) -> str:
    """The `closing connection` line logged after character offset `mark`; fails at once, with
    the log, if the broker died instead."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert broker.running(), \
            f"broker died (exit {broker.proc.returncode}) on bad input:\n{broker.log()[mark:][:3000]}"
        for line in broker.log()[mark:].splitlines():
            if "closing connection" in line:
                return line
        assert time.monotonic() < deadline, f"no closing connection line within {timeout_s}s:\n{broker.log_tail()}"
        time.sleep(0.05)


def closing_probe(broker, payload: bytes) -> None:
    before = kw.memory_kib(broker.proc.pid)
    mark = len(broker.log())
    assert_closed_with_log(broker, payload, mark)
    assert_no_big_allocation(broker, before)
    assert_serves_real_clients(broker)


# --- framing -----------------------------------------------------------------------

def test_truncated_frame_then_client_disconnects(broker):
    before = kw.memory_kib(broker.proc.pid)
    for _ in range(10):
        with kwire.connect(broker.host, broker.port) as sock:
            sock.sendall(struct.pack(">i", 100) + kwire.request_frame(18, 0, 1, b"")[4:14])
    # A partial frame followed by silence is not an error yet: the broker waits for the rest.
    with kwire.connect(broker.host, broker.port) as sock:
        sock.sendall(struct.pack(">i", 100) + b"\0" * 10)
        assert not kw.closed_by_peer(sock, timeout_s=0.5)
    assert_no_big_allocation(broker, before)
    assert_serves_real_clients(broker)


def test_frame_sent_one_byte_at_a_time_is_answered(broker):
    frame = kwire.request_frame(18, 0, 77, b"")
    with kwire.connect(broker.host, broker.port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(frame)):
            sock.sendall(frame[i:i + 1])
            time.sleep(0.01)
        r = kw.read_response(sock, 77)
        assert kwire.parse_api_versions_v0(r).error_code == kw.NONE


@pytest.mark.parametrize("size", [
    pytest.param(0x7FFFFFFF, id="2GiB"),
    pytest.param(104857601, id="socket.request.max.bytes+1"),
    pytest.param(-1, id="minus-1"),
    pytest.param(-0x80000000, id="int32-min"),
])
def test_lying_frame_size_closes_without_allocating(broker, size):
    # Several connections at once, each followed by some body bytes, so an allocation of the
    # claimed size (or a read loop waiting for it) would show.
    before = kw.memory_kib(broker.proc.pid)
    mark = len(broker.log())
    socks = [kwire.connect(broker.host, broker.port, timeout=10) for _ in range(4)]
    try:
        for s in socks:
            s.sendall(struct.pack(">i", size) + b"\x00\x12\x00\x00" + b"\xab" * 4096)
        for s in socks:
            assert kw.closed_by_peer(s, timeout_s=10), f"connection with frame size {size} not closed"
    finally:
        for s in socks:
            s.close()
    line = wait_for_closing_line(broker, mark)
    assert "WARN" in line, line
    assert_no_big_allocation(broker, before)
    assert_serves_real_clients(broker)


@pytest.mark.parametrize("payload", [
    # The "api key" is 0xdead (negative), the rest noise.
    pytest.param(struct.pack(">i", 32) + bytes.fromhex("deadbeef") * 8, id="all-garbage"),
    # A valid Produce v3 header followed by bytes that are no Produce body.
    pytest.param(kwire.request_frame(0, 3, 5, bytes.fromhex("deadbeef") * 8), id="produce-header-garbage-body"),
    # A valid Metadata v4 header with a body cut short inside the topic name.
    pytest.param(kwire.request_frame(3, 4, 5, struct.pack(">ih", 1, 200) + b"abc"), id="metadata-string-past-end"),
])
def test_garbage_body_closes_connection(broker, payload):
    closing_probe(broker, payload)


def test_unknown_api_key_closes_connection(broker):
    closing_probe(broker, kwire.request_frame(999, 0, 11, b""))


def test_unsupported_produce_versions_close_connection(broker):
    with kwire.connect(broker.host, broker.port) as sock:
        versions = kwire.api_versions(sock).versions
    lo, hi = versions[kw.API_PRODUCE]
    # Kafka 4.x lists Produce from v0 for older librdkafka (KAFKA-18659) but serves v3 and up only.
    assert lo == 0, f"Kafka 4.x lists Produce from v0, broker says v{lo}"
    body = kw.produce_v3_body({"t": {0: kw.batch_v2([(b"k", b"v")])}})
    for version in (0, 2, hi + 1):
        closing_probe(broker, kwire.request_frame(kw.API_PRODUCE, version, 12, body))


def test_api_versions_v99_answers_unsupported_version_in_v0_format(broker):
    with kwire.connect(broker.host, broker.port) as sock:
        sock.sendall(kwire.request_frame(18, 0, 20, b""))
        r = kw.read_response(sock, 20)
        good = kwire.parse_api_versions_v0(r)
        assert r.done() and good.error_code == kw.NONE

        sock.sendall(kwire.request_frame(18, 99, 21, b""))
        r = kw.read_response(sock, 21)
        bad = kwire.parse_api_versions_v0(r)
        assert r.done(), f"{len(r.data) - r.pos} bytes after the v0 body: not v0 format"
        assert bad.error_code == kw.UNSUPPORTED_VERSION
        assert bad.versions == good.versions
        assert bad.versions[18] == (0, 4)
        assert bad.versions[kw.API_PRODUCE][0] == 0
        # The connection is still usable.
        assert kwire.api_versions(sock, correlation_id=22).error_code == kw.NONE
    assert_serves_real_clients(broker)


def flexible_frame(api_key: int, api_version: int, correlation_id: int, body: bytes) -> bytes:
    """Request header v2: client id, then an empty tagged-field section."""
    payload = struct.pack(">hhi", api_key, api_version, correlation_id) + kwire.enc_string("strom-tests") + b"\x00" + body
    return struct.pack(">i", len(payload)) + payload


# Requests whose first array claims 2^31-1 elements and then holds a few bytes.
HUGE_ARRAYS = {
    "metadata-v4": (3, 4, kwire.request_frame(3, 4, 30, struct.pack(">i", 0x7FFFFFFF) + kwire.enc_string("a") + b"\x01")),
    # Compact array: the length is N+1 as an unsigned varint.
    "metadata-v12": (3, 12, flexible_frame(3, 12, 30, kwire.enc_uvarint(0x7FFFFFFF) + b"\x00" * 16 + b"\x02a")),
    "produce-v3": (0, 3, kwire.request_frame(0, 3, 30, kwire.enc_string(None) + struct.pack(">hii", -1, 1000, 0x7FFFFFFF)
                                            + kwire.enc_string("t") + struct.pack(">i", 1))),
    "create-topics-v2": (19, 2, kwire.request_frame(19, 2, 30, struct.pack(">i", 0x7FFFFFFF) + kwire.enc_string("t"))),
}


@pytest.mark.parametrize("case", sorted(HUGE_ARRAYS))
def test_array_claiming_2_pow_31_entries(broker, case):
    api_key, version, frame = HUGE_ARRAYS[case]
    with kwire.connect(broker.host, broker.port) as sock:
        assert versions_include(kwire.api_versions(sock).versions, api_key, version)
    closing_probe(broker, frame)


def limit_address_space(broker, headroom_gib: int = 4) -> None:
    """Caps the broker's address space (as `ulimit -v` would) at `headroom_gib` above the most
    it has used so far: a count read off the wire must not even be reserved."""
    pid = broker.proc.pid
    limit = (kw.memory_kib(pid)["VmPeak"] + headroom_gib * 1024 * 1024) * 1024
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))


@pytest.mark.parametrize("case", sorted(HUGE_ARRAYS))
def test_array_claiming_2_pow_31_entries_under_address_space_limit(broker, case):
    _, _, frame = HUGE_ARRAYS[case]
    limit_address_space(broker)
    closing_probe(broker, frame)


def test_stalled_large_frames_hold_address_space_in_proportion_to_their_bytes(broker):
    """Sixteen peers each announce a frame just under socket.request.max.bytes (100 MiB), send
    256 KiB of it and stall, with the broker's address space capped 1 GiB above its peak. A
    buffer of the declared size would be 1.6 GiB of address space (an abort under the cap);
    buffers that grow with the bytes received stay small, and other clients are served."""
    limit_address_space(broker, headroom_gib=1)
    before = kw.memory_kib(broker.proc.pid)
    declared = 100 * 1024 * 1024 - 4
    sent = 256 * 1024
    socks = [kwire.connect(broker.host, broker.port, timeout=10) for _ in range(16)]
    try:
        for s in socks:
            s.sendall(struct.pack(">i", declared) + b"\x00\x12\x00\x00" + b"\xab" * (sent - 4))
        # Each frame's bytes have been read (the broker's buffers hold them) before measuring.
        time.sleep(1.0)
        assert broker.running(), f"broker exited with {broker.proc.returncode}:\n{broker.log_tail()}"
        after = kw.memory_kib(broker.proc.pid)
        assert after["VmPeak"] - before["VmPeak"] < 256 * 1024, f"address space grew: {before} -> {after}"
        assert_serves_real_clients(broker)
        # The stalled peers are still connected: nothing was refused for being large.
        for s in socks:
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)
    finally:
        for s in socks:
            s.close()


# Kafka 4.4's caps: more than 1,000,000 array elements or 10,000 tagged fields are refused, even
# when the frame holds enough bytes for them.
MAX_ARRAY_ELEMENTS = 1_000_000
MAX_TAGGED_FIELDS = 10_000


def tagged_fields(count: int) -> bytes:
    """A tagged-field section of `count` empty fields with distinct tags."""
    return kwire.enc_uvarint(count) + b"".join(kwire.enc_uvarint(tag) + b"\x00" for tag in range(count))


def header_v2_frame(api_key: int, api_version: int, correlation_id: int, header_tags: bytes, body: bytes) -> bytes:
    payload = struct.pack(">hhi", api_key, api_version, correlation_id) + kwire.enc_string("strom-tests") \
        + header_tags + body
    return struct.pack(">i", len(payload)) + payload


# Each frame holds a byte for every element claimed, so only the cap refuses them.
OVER_CAP_ARRAYS = {
    "metadata-v4": kwire.request_frame(
        3, 4, 31, struct.pack(">i", MAX_ARRAY_ELEMENTS + 1) + b"\x00" * (MAX_ARRAY_ELEMENTS + 1) + b"\x01"),
    "metadata-v12": flexible_frame(
        3, 12, 31, kwire.enc_uvarint(MAX_ARRAY_ELEMENTS + 2) + b"\x00" * (MAX_ARRAY_ELEMENTS + 1) + b"\x01\x00\x00"),
}


@pytest.mark.parametrize("limited", [False, True], ids=["", "address-space-limit"])
@pytest.mark.parametrize("case", sorted(OVER_CAP_ARRAYS))
def test_array_over_1_000_000_elements_closes_connection(broker, case, limited):
    if limited:
        limit_address_space(broker, headroom_gib=1)
    mark = len(broker.log())
    closing_probe(broker, OVER_CAP_ARRAYS[case])
    assert f"Array of {MAX_ARRAY_ELEMENTS + 1} elements is over the limit of {MAX_ARRAY_ELEMENTS}" \
        in broker.log()[mark:], broker.log()[mark:][-2000:]


OVER_CAP_TAGS = {
    # In the request header, decoded before anything else: ApiVersions v3 (header v2).
    "header": header_v2_frame(18, 3, 32, tagged_fields(MAX_TAGGED_FIELDS + 1),
                              kwire.enc_uvarint(len("t") + 1) + b"t" + kwire.enc_uvarint(2) + b"1" + b"\x00"),
    # Twenty million claimed, as in Kafka's CVE, with a few bytes after the count.
    "header-20-million": header_v2_frame(18, 3, 33, kwire.enc_uvarint(20_000_000) + b"\x01\x00" * 8, b""),
    # At the end of a Metadata v12 body.
    "metadata-v12-body": flexible_frame(3, 12, 34, b"\x01" + b"\x00\x00" + tagged_fields(MAX_TAGGED_FIELDS + 1)),
}


@pytest.mark.parametrize("case", sorted(OVER_CAP_TAGS))
def test_more_than_10_000_tagged_fields_close_connection(broker, case):
    mark = len(broker.log())
    closing_probe(broker, OVER_CAP_TAGS[case])
    claimed = 20_000_000 if case == "header-20-million" else MAX_TAGGED_FIELDS + 1
    assert f"{claimed} tagged fields are over the limit of {MAX_TAGGED_FIELDS}" in broker.log()[mark:], \
        broker.log()[mark:][-2000:]


def test_tagged_fields_at_the_cap_are_accepted(broker):
    """10,000 unknown tagged fields in the header are allowed (and ignored), as in Kafka."""
    frame = header_v2_frame(18, 3, 35, tagged_fields(MAX_TAGGED_FIELDS),
                            kwire.enc_uvarint(len("t") + 1) + b"t" + kwire.enc_uvarint(2) + b"1" + b"\x00")
    with kwire.connect(broker.host, broker.port, timeout=10) as sock:
        sock.sendall(frame)
        r = kw.read_response(sock, 35)
    assert r.i16() == kw.NONE


def versions_include(versions: dict, key: int, version: int) -> bool:
    lo, hi = versions[key]
    return lo <= version <= hi


# --- produce validation --------------------------------------------------------------

def produce_one(broker, topic: str, partition: int, batch: bytes, correlation_id: int = 40) -> kw.ProducePartition:
    with kwire.connect(broker.host, broker.port, timeout=15) as sock:
        res = kw.produce_v3(sock, {topic: {partition: batch}}, correlation_id)
    assert set(res) == {(topic, partition)}, res
    return res[(topic, partition)]


def assert_log_holds_exactly(broker, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    c = consumer(broker)
    try:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        assert (lo, hi) == (0, len(records))
        msgs = consume_to_end(c, [TopicPartition(topic, 0, 0)], {(topic, 0): len(records)}, timeout_s=30)
    finally:
        c.close()
    assert [(m.offset(), m.key(), m.value()) for m in msgs] == [(i, k, v) for i, (k, v) in enumerate(records)]


@pytest.mark.parametrize("where", ["last-record-byte", "crc-field", "attributes"])
def test_corrupt_crc_gets_corrupt_message(broker, where):
    topic = unique("crc")
    create_topic(broker, topic, 1)
    good = kw.batch_v2([(b"key-%d" % i, b"value-%d" % i) for i in range(5)])
    pos = {"last-record-byte": len(good) - 1, "crc-field": kw.BATCH_CRC_OFFSET,
           "attributes": kw.BATCH_CRC_COVERS_FROM}[where]
    res = produce_one(broker, topic, 0, kw.flip_byte(good, pos))
    assert res.error_code == kw.CORRUPT_MESSAGE, res
    # Nothing of the corrupt batch was appended: the valid one lands at offset 0.
    res = produce_one(broker, topic, 0, good, correlation_id=41)
    assert (res.error_code, res.base_offset) == (kw.NONE, 0), res
    assert_log_holds_exactly(broker, topic, [(b"key-%d" % i, b"value-%d" % i) for i in range(5)])
    assert_serves_real_clients(broker)


def lie_about_length(batch: bytes, length: int) -> bytes:
    return batch[:8] + struct.pack(">i", length) + batch[12:]


@pytest.mark.parametrize("records", [
    # Kafka's ProduceRequest.validateRecords: no complete batch, or more than one, is INVALID_RECORD.
    pytest.param(lie_about_length(kw.batch_v2([(b"k", b"v")]), 1_000_000_000), id="length-claims-1GB"),
    pytest.param(kw.batch_v2([(b"k", b"v")])[:-5], id="batch-cut-short"),
    pytest.param(b"", id="empty-records"),
    pytest.param(kw.batch_v2([(b"k", b"v")]) + kw.batch_v2([(b"k2", b"v2")]), id="two-batches"),
])
def test_records_without_exactly_one_whole_batch_get_invalid_record(broker, records):
    topic = unique("records")
    create_topic(broker, topic, 1)
    before = kw.memory_kib(broker.proc.pid)
    res = produce_one(broker, topic, 0, records)
    assert res.error_code == kw.INVALID_RECORD, res
    assert_no_big_allocation(broker, before)
    res = produce_one(broker, topic, 0, kw.batch_v2([(b"next", b"batch")]), correlation_id=41)
    assert (res.error_code, res.base_offset) == (kw.NONE, 0), res
    assert_log_holds_exactly(broker, topic, [(b"next", b"batch")])
    assert_serves_real_clients(broker)


def test_magic_1_batch_is_rejected_with_invalid_record(broker):
    topic = unique("magic1")
    create_topic(broker, topic, 1)
    res = produce_one(broker, topic, 0, kw.batch_v1([(b"old", b"format")]))
    # Kafka: Produce v3+ only carries magic 2 batches; anything else is INVALID_RECORD.
    assert res.error_code == kw.INVALID_RECORD, res
    res = produce_one(broker, topic, 0, kw.batch_v2([(b"new", b"format")]), correlation_id=41)
    assert (res.error_code, res.base_offset) == (kw.NONE, 0), res
    assert_log_holds_exactly(broker, topic, [(b"new", b"format")])
    assert_serves_real_clients(broker)


def test_batch_over_max_message_bytes_gets_message_too_large(broker):
    topic = unique("toolarge")
    create_topic(broker, topic, 1, config={"max.message.bytes": "2000"})
    big = kw.batch_v2([(b"big", b"x" * 3000)])
    assert len(big) > 2000
    res = produce_one(broker, topic, 0, big)
    assert res.error_code == kw.MESSAGE_TOO_LARGE, res
    small = kw.batch_v2([(b"small", b"y" * 1000)])
    assert len(small) < 2000
    res = produce_one(broker, topic, 0, small, correlation_id=41)
    assert (res.error_code, res.base_offset) == (kw.NONE, 0), res
    assert_log_holds_exactly(broker, topic, [(b"small", b"y" * 1000)])
    assert_serves_real_clients(broker)


def test_produce_to_unknown_partition_or_topic(broker):
    topic = unique("parts")
    create_topic(broker, topic, 2)
    batch = kw.batch_v2([(b"k", b"v")])
    with kwire.connect(broker.host, broker.port, timeout=15) as sock:
        res = kw.produce_v3(sock, {topic: {2: batch, 99: batch, -1: batch}, unique("no-such-topic"): {0: batch}})
    assert len(res) == 4
    assert {k: v.error_code for k, v in res.items()} == {k: kw.UNKNOWN_TOPIC_OR_PARTITION for k in res}
    # The existing partitions are untouched.
    c = consumer(broker)
    try:
        for p in (0, 1):
            assert c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False) == (0, 0)
    finally:
        c.close()
    assert_serves_real_clients(broker)


# --- admin validation -----------------------------------------------------------------

BAD_TOPIC_NAMES = ["", ".", "..", "bad/name", "has space", "star*", "x" * 250, "ünïcode"]


def test_create_topics_with_invalid_names(broker):
    with kwire.connect(broker.host, broker.port, timeout=15) as sock:
        assert versions_include(kwire.api_versions(sock).versions, kw.API_CREATE_TOPICS, 2)
        res = kw.create_topics_v2(sock, BAD_TOPIC_NAMES)
        assert set(res) == set(BAD_TOPIC_NAMES)
        assert {n: code for n, (code, _) in res.items()} == {n: kw.INVALID_TOPIC_EXCEPTION for n in BAD_TOPIC_NAMES}
        md = kwire.metadata_v4(sock, None, False)
    assert not {t.name for t in md.topics} & set(BAD_TOPIC_NAMES)
    assert_serves_real_clients(broker)
