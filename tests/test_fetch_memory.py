"""A fetch never makes the broker hold much more memory than it sends.

The request's max_bytes is capped by the broker's fetch.max.bytes, and each partition reads at most
its partition_max_bytes and what is left of the response's budget (KIP-74: only the first batch
may go over). Before that cap, four fetches asking for 2 GB each of a big partition made the
broker read the whole partition into memory once per request.
"""

from __future__ import annotations

import os

import pytest

import fetch_wire as fw
import kafka_wire as kw
from helpers import create_topic, produce_all, producer

FETCH_MAX_BYTES = 8 << 20
CONNECTIONS = 4
# Per fetch the broker holds the records it read and the encoded response frame (a copy), so
# twice what it sends; the rest is allocator slack, socket buffers and the like.
OVERHEAD_BOUND_KIB = 48 << 10
TWO_GB = 2**31 - 1


def reset_peak_rss(pid: int) -> None:
    """Makes VmHWM start again from the current RSS (proc(5): clear_refs "5")."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


@pytest.mark.timeout(300)
def test_concurrent_two_gigabyte_fetches_hold_at_most_fetch_max_bytes_each(broker_factory):
    broker = broker_factory({"fetch.max.bytes": str(FETCH_MAX_BYTES)})
    topic = "big"
    create_topic(broker, topic, 1)
    value = os.urandom(100 * 1024)
    count = 3000  # ~300 MB
    p = producer(broker, **{"linger.ms": 50, "batch.size": 1_000_000, "compression.type": "none",
                            "queue.buffering.max.kbytes": 64 * 1024})
    produce_all(p, topic, ({"value": value, "partition": 0} for _ in range(count)), timeout_s=240)

    pid = broker.proc.pid
    reset_peak_rss(pid)
    start = kw.memory_kib(pid)
    conns = [fw.Conn(broker, timeout_s=60) for _ in range(CONNECTIONS)]
    try:
        # Each from another place in the log, all sent before any answer is read.
        offsets = [0, 700, 1400, 2100]
        cids = [c.send_fetch(12, [(topic, 0, off)], max_bytes=TWO_GB, partition_max_bytes=TWO_GB,
                             max_wait_ms=0)
                for c, off in zip(conns, offsets)]
        answers = [c.receive_fetch(12, cid) for c, cid in zip(conns, cids)]
    finally:
        for c in conns:
            c.close()
    peak = kw.memory_kib(pid)["VmHWM"]

    for off, answer in zip(offsets, answers):
        assert answer.error_code == fw.NONE
        [part] = answer.parts
        assert (part.error_code, part.high_watermark) == (fw.NONE, count)
        batches = part.batches()
        # Whole batches, contiguous from the fetch offset's batch, within fetch.max.bytes...
        assert batches[0][0] <= off <= batches[0][1]
        assert all(a[1] + 1 == b[0] for a, b in zip(batches, batches[1:]))
        assert sum(size for _, _, size in batches) == len(part.records) <= FETCH_MAX_BYTES
        # ...and the budget is used: the next batch would not have fit.
        largest = max(size for _, _, size in batches)
        assert len(part.records) > FETCH_MAX_BYTES - largest

    bound_kib = start["VmRSS"] + 2 * CONNECTIONS * (FETCH_MAX_BYTES >> 10) + OVERHEAD_BOUND_KIB
    assert peak <= bound_kib, (
        f"peak RSS {peak} KiB during {CONNECTIONS} fetches of max_bytes=2 GB; bound {bound_kib} KiB "
        f"(RSS before {start['VmRSS']} KiB, fetch.max.bytes {FETCH_MAX_BYTES >> 10} KiB)")


def test_first_batch_is_returned_whole_even_over_fetch_max_bytes(broker_factory):
    """KIP-74: a batch bigger than fetch.max.bytes still comes back, alone, so consumers progress."""
    broker = broker_factory({"fetch.max.bytes": "1024", "message.max.bytes": "100000"})
    topic = "bigger-than-fetch-max"
    create_topic(broker, topic, 2)
    big = os.urandom(50_000)
    p = producer(broker, **{"linger.ms": 0})
    # One produce at a time, so each record is its own batch.
    for value, partition in ((big, 0), (b"small", 0), (b"other", 1)):
        produce_all(p, topic, [{"value": value, "partition": partition}])
    conn = fw.Conn(broker)
    try:
        got = conn.fetch(12, [(topic, 0, 0), (topic, 1, 0)], max_bytes=TWO_GB, partition_max_bytes=TWO_GB)
    finally:
        conn.close()
    parts = got.by_key()
    assert parts[(topic, 0)].values() == [(0, big)]
    # The budget is spent by the oversized batch: the other partition sends nothing this time.
    assert (parts[(topic, 1)].values(), parts[(topic, 1)].high_watermark) == ([], 1)
