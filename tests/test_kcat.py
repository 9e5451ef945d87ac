"""kcat (librdkafka's command-line client) against the broker: metadata, produce, consume, offset queries."""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME

from helpers import create_topic, produce_all, producer, read_partition


def kcat(broker, *args: str, stdin: bytes | None = None, timeout: float = 60) -> str:
    exe = shutil.which("kcat")
    if exe is None:
        pytest.fail("kcat is not installed (scripts/test installs it with apt-get install kcat)")
    proc = subprocess.run([exe, "-b", broker.bootstrap, *args], input=stdin, capture_output=True, timeout=timeout)
    assert proc.returncode == 0, f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()}"
    return proc.stdout.decode()


FMT = r"%t|%p|%o|%k|%s|%T|%h\n"


def parse(out: str) -> list[tuple]:
    rows = []
    for line in out.splitlines():
        t, p, o, k, s, ts, h = line.split("|")
        rows.append((t, int(p), int(o), k, s, int(ts), h))
    return rows


def test_kcat_metadata_list(broker):
    create_topic(broker, "kc-meta", 3)
    create_topic(broker, "kc-other", 1)
    data = json.loads(kcat(broker, "-L", "-J"))
    assert [(b["id"], b["name"]) for b in data["brokers"]] == [(1, broker.bootstrap)]
    assert data["controllerid"] == 1
    topics = {t["topic"]: t for t in data["topics"] if not t["topic"].startswith("__")}
    assert set(topics) == {"kc-meta", "kc-other"}
    assert [(p["partition"], p["leader"], [r["id"] for r in p["replicas"]], [r["id"] for r in p["isrs"]])
            for p in sorted(topics["kc-meta"]["partitions"], key=lambda p: p["partition"])] == \
        [(0, 1, [1], [1]), (1, 1, [1], [1]), (2, 1, [1], [1])]
    text = kcat(broker, "-L", "-t", "kc-meta")
    assert f"broker 1 at {broker.bootstrap} (controller)" in text
    assert 'topic "kc-meta" with 3 partitions:' in text
    assert "partition 2, leader 1, replicas: 1, isrs: 1" in text


def test_kcat_produce_keyed_then_consume_with_format(broker):
    topic = "kc-keyed"
    create_topic(broker, topic, 4)
    lines = [f"key{i % 7}:value-{i}" for i in range(200)]
    kcat(broker, "-P", "-t", topic, "-K:", stdin=("\n".join(lines) + "\n").encode())
    out = kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", FMT)
    rows = parse(out)
    assert len(rows) == 200
    # kcat uses librdkafka's default partitioner: CRC32(key) % partitions.
    per_partition: dict[int, list] = {}
    for t, p, o, k, s, ts, h in rows:
        assert t == topic
        assert p == zlib.crc32(k.encode()) % 4, (k, p)
        per_partition.setdefault(p, []).append((o, k, s))
    for p, got in per_partition.items():
        # Offsets dense from 0, values in produce order.
        assert [o for o, _, _ in got] == list(range(len(got)))
        want = [(line.split(":")[0], line.split(":")[1]) for line in lines
                if zlib.crc32(line.split(":")[0].encode()) % 4 == p]
        assert [(k, s) for _, k, s in got] == want
    # The same records through confluent-kafka.
    for p, got in per_partition.items():
        msgs = read_partition(broker, topic, p, 0, len(got))
        assert [(m.offset(), m.key().decode(), m.value().decode()) for m in msgs] == got


def test_kcat_produce_to_partition_with_headers_and_compression(broker):
    topic = "kc-part"
    create_topic(broker, topic, 3)
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        kcat(broker, "-P", "-t", topic, "-p", "2", "-K:", "-z", codec, "-H", f"codec={codec}", "-H", "x=y",
             stdin=f"k-{codec}:v-{codec}\n".encode())
    rows = parse(kcat(broker, "-C", "-t", topic, "-p", "2", "-o", "beginning", "-e", "-q", "-f", FMT))
    assert [(p, o, k, s, h) for _, p, o, k, s, _, h in rows] == [
        (2, i, f"k-{c}", f"v-{c}", f"codec={c},x=y") for i, c in enumerate(("gzip", "snappy", "lz4", "zstd"))]
    msgs = read_partition(broker, topic, 2, 0, 4)
    assert [m.headers() for m in msgs] == [[("codec", c.encode()), ("x", b"y")]
                                            for c in ("gzip", "snappy", "lz4", "zstd")]


def test_kcat_consumes_what_confluent_produced(broker):
    topic = "kc-read"
    create_topic(broker, topic, 2)
    delivered = produce_all(producer(broker), topic, [
        {"key": b"a%d" % i, "value": b"b%d" % i, "partition": i % 2, "timestamp": 1_700_000_000_000 + i}
        for i in range(50)])
    rows = parse(kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", FMT))
    assert sorted((p, o, k, s, ts) for _, p, o, k, s, ts, _ in rows) == \
        sorted((d.partition, d.offset, d.key.decode(), d.value.decode(), d.timestamp[1]) for d in delivered)
    assert all(d.timestamp[0] == TIMESTAMP_CREATE_TIME for d in delivered)
    # A bounded read from an absolute offset: -o 10 -c 5 on partition 1.
    rows = parse(kcat(broker, "-C", "-t", topic, "-p", "1", "-o", "10", "-c", "5", "-q", "-f", FMT))
    assert [(o, k) for _, _, o, k, _, _, _ in rows] == [(o, "a%d" % (2 * o + 1)) for o in range(10, 15)]


def test_kcat_query_offset_by_timestamp(broker):
    topic = "kc-query"
    create_topic(broker, topic, 1)
    produce_all(producer(broker), topic, [{"value": b"q%d" % i, "partition": 0, "timestamp": 1_700_000_000_000 + 100 * i}
                                          for i in range(20)])
    out = kcat(broker, "-Q", "-t", f"{topic}:0:{1_700_000_000_000 + 550}")
    assert out.strip().splitlines() == [f"{topic} [0] offset 6"]
    # Consuming from a timestamp (-o s@ts) starts at that same offset.
    rows = parse(kcat(broker, "-C", "-t", topic, "-p", "0", "-o", f"s@{1_700_000_000_000 + 550}", "-e", "-q",
                      "-f", FMT))
    assert [(o, s) for _, _, o, _, s, _, _ in rows] == [(o, "q%d" % o) for o in range(6, 20)]


def test_kcat_compresses_against_the_listed_produce_versions(broker):
    """Older librdkafka (2.10 still; kcat here links 2.0.2) sends uncompressed batches unless
    ApiVersions lists Produce from v0; Kafka 4.x lists v0-2 for that reason (KAFKA-18659) while
    refusing them."""
    topic = "kc-gzip"
    create_topic(broker, topic, 1)
    kcat(broker, "-P", "-t", topic, "-p", "0", "-z", "gzip", stdin=b"x" * 5000 + b"\n")
    log = (broker.data_dir / f"{topic}-0" / ("%020d.log" % 0)).read_bytes()
    # The stored batch is the producer's: compression id in the low bits of the attributes.
    assert len(log) > 61 and log[22] & 0x07 == 1, f"batch stored with codec {log[22] & 0x07}, not gzip"
    rows = parse(kcat(broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", FMT))
    assert [(p, o, s) for _, p, o, _, s, _, _ in rows] == [(0, 0, "x" * 5000)]
