"""`strom perf produce|consume|e2e` against the real broker: exact record counts in the JSON
report, the records really in the topic (read back with confluent-kafka), and ordered
latency percentiles."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import strom_bin
from confluent_kafka import TopicPartition

from helpers import consumer, read_partition, unique, wait_until, watermarks

PERCENTILES = ["p50", "p95", "p99", "p999", "max"]


def perf(broker, *args: str, timeout: float = 90) -> dict:
    cmd = [str(strom_bin()), "perf", *args, "--brokers", broker.bootstrap, "--json"]
    proc = subprocess.run(cmd, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()}"
    return json.loads(proc.stdout)


def assert_latency(latency: dict, count: int) -> None:
    assert latency["count"] == count
    values = [latency[k] for k in PERCENTILES]
    assert all(isinstance(v, float) and v > 0 for v in values), latency
    assert values == sorted(values), f"percentiles out of order: {latency}"


def topic_contents(broker, topic: str, partitions: int) -> list[bytes]:
    values = []
    for p in range(partitions):
        low, high = watermarks(broker, topic, p)
        assert low == 0
        values += [m.value() for m in read_partition(broker, topic, p, 0, high)]
    return values


@pytest.mark.parametrize("acks,compression", [("1", "none"), ("all", "lz4"), ("0", "zstd")])
def test_perf_produce_writes_exactly_the_records_it_reports(broker, acks, compression):
    topic = unique("perf-produce")
    out = perf(broker, "produce", topic, "-n", "5003", "--record-size", "120", "--partitions", "3",
               "--producers", "2", "--acks", acks, "--compression", compression,
               "--batch-size", "4096")
    assert (out["mode"], out["records"], out["bytes"]) == ("produce", 5003, 5003 * 120)
    assert (out["acks"], out["compression"], out["producers"]) == ({"1": 1, "all": -1, "0": 0}[acks],
                                                                  compression, 2)
    assert out["records_per_s"] > 0 and out["mb_per_s"] > 0
    if acks == "0":
        assert out["latency_ms"] is None  # nothing is acknowledged, nothing to time
        # Unacknowledged batches may still be being appended when the tool exits.
        wait_until(lambda: sum(watermarks(broker, topic, p)[1] for p in range(3)) == 5003,
                   what="every acks=0 record appended")
    else:
        assert_latency(out["latency_ms"], 5003)
    values = topic_contents(broker, topic, 3)
    assert len(values) == 5003
    assert {len(v) for v in values} == {120}
    # The value is an 8-byte creation stamp followed by capital letters.
    assert all(v[8:].isalpha() and v[8:].isupper() for v in values)


def test_perf_produce_rate_limited_to_an_existing_topic(broker):
    topic = unique("perf-rate")
    perf(broker, "produce", topic, "-n", "10", "--record-size", "8", "--partitions", "2")
    out = perf(broker, "produce", topic, "-n", "300", "--record-size", "64", "--rate", "1000",
               "--linger-ms", "1", "--partitions", "5")
    assert (out["records"], out["bytes"], out["rate"]) == (300, 300 * 64, 1000)
    assert_latency(out["latency_ms"], 300)
    # The topic existed with 2 partitions; --partitions does not change it.
    sizes = sorted(len(v) for v in topic_contents(broker, topic, 2))
    assert sizes == [8] * 10 + [64] * 300


def test_perf_consume_reads_from_the_start(broker):
    topic = unique("perf-consume")
    perf(broker, "produce", topic, "-n", "4000", "--record-size", "1024", "--partitions", "2")
    everything = perf(broker, "consume", topic)
    assert (everything["mode"], everything["records"], everything["bytes"]) == ("consume", 4000, 4000 * 1024)
    assert everything["records_per_s"] > 0
    part = perf(broker, "consume", topic, "-n", "1500")
    assert (part["records"], part["bytes"]) == (1500, 1500 * 1024)


def test_perf_consume_as_a_group_continues_from_committed_offsets(broker):
    topic, group = unique("perf-group"), unique("perf-group")
    perf(broker, "produce", topic, "-n", "3000", "--record-size", "100", "--partitions", "3")
    first = perf(broker, "consume", topic, "--group", group, "-n", "1000")
    assert (first["records"], first["group"]) == (1000, group)
    # Without -n, the rest: what lies past the committed offsets.
    rest = perf(broker, "consume", topic, "--group", group)
    assert (rest["records"], rest["bytes"]) == (2000, 2000 * 100)
    c = consumer(broker, **{"group.id": group})
    committed = c.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
    c.close()
    assert [tp.offset for tp in committed] == [watermarks(broker, topic, p)[1] for p in range(3)]
    assert sum(tp.offset for tp in committed) == 3000


def test_perf_consume_fails_when_records_are_missing(broker):
    topic = unique("perf-short")
    perf(broker, "produce", topic, "-n", "10")
    cmd = [str(strom_bin()), "perf", "consume", topic, "-n", "11", "--timeout-ms", "500",
           "--brokers", broker.bootstrap]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert f"read 10 of 11 records of {topic}; nothing arrived for 500 ms" in proc.stderr.decode()


def test_perf_e2e_consumes_exactly_what_it_produced(broker):
    topic = unique("perf-e2e")
    # Records already in the topic are not part of the run.
    perf(broker, "produce", topic, "-n", "50", "--partitions", "3")
    out = perf(broker, "e2e", topic, "-n", "3000", "--record-size", "200", "--rate", "5000",
               "--producers", "3", "--acks", "1")
    assert (out["mode"], out["records"], out["bytes"]) == ("e2e", 3000, 3000 * 200)
    assert (out["produce"]["records"], out["produce"]["bytes"]) == (3000, 3000 * 200)
    assert_latency(out["latency_ms"], 3000)
    assert_latency(out["produce"]["latency_ms"], 3000)
    sizes = sorted(len(v) for v in topic_contents(broker, topic, 3))
    assert sizes == [100] * 50 + [200] * 3000


def test_perf_e2e_refuses_values_too_small_for_the_stamp(broker):
    cmd = [str(strom_bin()), "perf", "e2e", unique("perf-small"), "--record-size", "7",
           "--brokers", broker.bootstrap]
    proc = subprocess.run(cmd, capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert "--record-size must be at least 8 for e2e" in proc.stderr.decode()
