"""queued.max.request.bytes: requests read and not yet answered hold at most that many bytes.

A connection reserves its request's frame size from the broker-wide budget as soon as it has
read the 4-byte size, before reading the body, and gives it back once its response is written.
While the budget is spent it does not read its socket. A request larger than the whole budget
reserves the whole budget (so it runs alone and never waits forever); the gauge
`strom_queued_request_bytes` shows what is held.
"""

from __future__ import annotations

import os
import socket
import struct
import threading

import pytest
from confluent_kafka import TopicPartition

import kafka_wire as kw
from helpers import consume_to_end, consumer, create_topic, metric, producer, wait_until

LIMIT = 2 << 20
VALUE_BYTES = 1536 * 1024  # one 1.5 MiB record per produce request
CLIENTS = 10
QUEUED_METRIC = "strom_queued_request_bytes"
# What the broker may add to its peak RSS while the 10 requests are handled: the budget's
# worth of request bytes, the copies a produce makes of one request, and allocator slack.
# Measured: about 3.5 MiB with the budget, 13 MiB without it (queued.max.request.bytes=-1).
PEAK_GROWTH_BOUND_KIB = 8 << 10


def reset_peak_rss(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def queued(broker) -> float:
    return metric(broker.metrics(), QUEUED_METRIC)


def big_producer(broker):
    p = producer(broker, **{"linger.ms": 0, "message.max.bytes": 4_000_000, "batch.size": 4_000_000,
                            "compression.type": "none"})
    p.list_topics(timeout=10)  # connected and warmed up before the test starts
    return p


def produce_one(p, topic: str, value: bytes, out: list, index: int) -> None:
    def done(err, msg):
        out[index] = err if err is not None else msg.offset()
    p.produce(topic, value=value, partition=0, on_delivery=done)
    assert p.flush(120) == 0


@pytest.mark.timeout(300)
def test_ten_concurrent_large_produces_all_succeed_within_the_budget(broker_factory, monkeypatch):
    # A fixed mmap threshold makes glibc give large buffers back when freed, so the broker's
    # RSS follows the request bytes it holds rather than what the allocator keeps for reuse.
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=131072")
    broker = broker_factory({"queued.max.request.bytes": str(LIMIT), "message.max.bytes": "4000000"})
    topic = "queued"
    create_topic(broker, topic, 1)
    values = [os.urandom(VALUE_BYTES) for _ in range(CLIENTS)]
    producers = [big_producer(broker) for _ in range(CLIENTS)]
    results: list = [None] * CLIENTS

    pid = broker.proc.pid
    reset_peak_rss(pid)
    start = kw.memory_kib(pid)["VmRSS"]
    barrier = threading.Barrier(CLIENTS)

    def run(i: int) -> None:
        barrier.wait()
        produce_one(producers[i], topic, values[i], results, i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=200)
    peak = kw.memory_kib(pid)["VmHWM"]

    assert sorted(results) == list(range(CLIENTS)), results
    assert peak - start <= PEAK_GROWTH_BOUND_KIB, (
        f"peak RSS grew by {peak - start} KiB for {CLIENTS} requests of {VALUE_BYTES >> 10} KiB with "
        f"queued.max.request.bytes={LIMIT >> 10} KiB")
    wait_until(lambda: queued(broker) == 0, what="every reservation to be given back")
    c = consumer(broker, **{"fetch.max.bytes": 50 << 20, "max.partition.fetch.bytes": 4 << 20})
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, 0, 0)], {(topic, 0): CLIENTS})
    finally:
        c.close()
    by_offset = {m.offset(): m.value() for m in msgs}
    assert {by_offset[results[i]] for i in range(CLIENTS)} == set(values)
    assert all(by_offset[results[i]] == values[i] for i in range(CLIENTS))


@pytest.mark.timeout(120)
def test_a_stalled_oversize_frame_holds_the_budget_not_its_size(broker_factory):
    broker = broker_factory({"queued.max.request.bytes": str(LIMIT)})
    topic = "stalled"
    create_topic(broker, topic, 1)
    p = big_producer(broker)
    pid = broker.proc.pid
    reset_peak_rss(pid)
    start = kw.memory_kib(pid)["VmRSS"]

    announced = 50 << 20
    staller = socket.create_connection((broker.host, broker.port))
    try:
        staller.sendall(struct.pack(">i", announced) + b"\x00\x03\x00\x0c" + b"\x00" * 16)
        # The whole budget is held, never more than it, and no memory of the announced size.
        wait_until(lambda: queued(broker) == LIMIT, what="the staller's reservation")
        assert kw.memory_kib(pid)["VmHWM"] - start < (announced >> 10) // 4

        # Another client's request waits for the budget meanwhile...
        result: list = [None]
        p.produce(topic, value=b"after the staller", partition=0,
                  on_delivery=lambda err, msg: result.__setitem__(0, err or msg.offset()))
        p.poll(2.0)
        assert result == [None]
        assert queued(broker) == LIMIT
    finally:
        staller.close()
    # ...and goes through once the staller's connection is gone.
    assert p.flush(30) == 0
    assert result == [0]
    wait_until(lambda: queued(broker) == 0, what="the budget to be free again")
