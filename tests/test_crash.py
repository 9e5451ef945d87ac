"""kill -9 the broker under load, and garble the tail of its active segment, then check the log.

A process crash (not a power loss) leaves the page cache intact, so every record the broker
acknowledged with acks=all must be readable after a restart at exactly the offset it was
acknowledged with, offsets stay dense, and a torn or garbage tail is cut off, never served.

The producer runs in its own process (this file run as a script) and appends one line per
delivery report to a file as it goes, so the test sees what was acknowledged before each kill.
STROM_CRASH_ITERATIONS (or scripts/soak's STROM_SOAK_ITERATIONS) sets the number of kills (3),
STROM_CRASH_RECORDS (or STROM_SOAK_RECORDS) about how many records are acknowledged between kills
(4000), STROM_CRASH_RATE the producer's pace in records/s (5000), STROM_CRASH_SEED the kill timing.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

ITERATIONS = int(os.environ.get("STROM_CRASH_ITERATIONS", os.environ.get("STROM_SOAK_ITERATIONS", "3")))
PARTITIONS = 3
# About how many records are acknowledged between two kills, and the producer's pace (records/s).
RECORDS_PER_PHASE = int(os.environ.get("STROM_CRASH_RECORDS", os.environ.get("STROM_SOAK_RECORDS", "4000")))
RATE = os.environ.get("STROM_CRASH_RATE", "5000")
N_KEYS = 64


# --- the records: every value is derivable from its sequence number ------------------

def record_key(seq: int) -> bytes:
    return b"key-%02d" % (seq % N_KEYS)


def record_value(seq: int) -> bytes:
    # Variable length (33..633 bytes) so batches differ in size; the filler depends on seq.
    filler = (b"%07d|" % (seq * 7919 % 1000003)) * 80
    return b"seq=%08d;" % seq + filler[: 20 + seq % 601]


def seq_of(value: bytes) -> int:
    if not value.startswith(b"seq=") or value[12:13] != b";":
        raise ValueError(f"not a record this test produced: {value[:40]!r}")
    return int(value[4:12])


# --- the producer process --------------------------------------------------------------

def producer_main(bootstrap: str, topic: str, max_records: int, acked_path: str, rate: float, stop_path: str,
                  idempotent: bool) -> int:
    """Produces records seq = 0, 1, ... until stop_path exists (or max_records), then flushes.
    Writes "A partition offset seq" per acknowledged record, "F seq code text" per failed one,
    and finally "DONE produced remaining"."""
    from confluent_kafka import Producer

    out = open(acked_path, "w", buffering=1)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": idempotent,
                  "linger.ms": 5, "message.timeout.ms": 90_000, "retry.backoff.ms": 100,
                  "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
                  "socket.connection.setup.timeout.ms": 5000})

    def on_delivery(err, msg):
        if err is None:
            out.write(f"A {msg.partition()} {msg.offset()} {seq_of(msg.value())}\n")
        else:
            out.write(f"F {seq_of(msg.value())} {err.code()} {err.str()!r}\n")
        out.flush()

    started = time.monotonic()
    produced = 0
    for seq in range(max_records):
        if seq % 100 == 0 and os.path.exists(stop_path):
            break
        # Paced, and with a bounded backlog, so traffic is flowing whenever the test kills.
        while time.monotonic() - started < seq / rate or len(p) > 500:
            p.poll(0.005)
        while True:
            try:
                p.produce(topic, key=record_key(seq), value=record_value(seq), on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.05)
        produced += 1
        p.poll(0)
    remaining = p.flush(120)
    out.write(f"DONE {produced} {remaining}\n")
    out.close()
    return 0 if remaining == 0 else 3


if __name__ == "__main__":
    sys.exit(producer_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), sys.argv[6],
                           sys.argv[7] == "idempotent"))


# --- test side ------------------------------------------------------------------------

# Imported after the script entry point: the producer process needs none of these.
from confluent_kafka import OFFSET_BEGINNING, TopicPartition  # noqa: E402

from helpers import (consume_to_end, consumer, create_topic, produce_all, producer, wait_until,  # noqa: E402
                     watermarks)


class AckLog:
    """The producer's delivery-report file, read incrementally as it grows."""

    def __init__(self, path: Path):
        self.path = path
        self.pos = 0
        self.acked: dict[tuple[int, int], int] = {}  # (partition, offset) -> seq
        self.failed: list[str] = []  # "seq code text"
        self.produced: int | None = None  # set by the final DONE line

    def refresh(self) -> "AckLog":
        if not self.path.exists():
            return self
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a last line without newline is still being written
        self.pos += len(complete)
        for line in complete.decode().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "A":
                part, off, seq = map(int, rest.split())
                assert (part, off) not in self.acked, \
                    f"offset {part}@{off} acknowledged twice: seq {self.acked[(part, off)]} and seq {seq}"
                self.acked[(part, off)] = seq
            elif kind == "F":
                self.failed.append(rest)
            elif kind == "DONE":
                self.produced = int(rest.split()[0])
        return self

    def count(self) -> int:
        return len(self.refresh().acked)


def read_upto(broker, topic: str, ends: dict[int, int]) -> dict[int, list]:
    """Records [0, ends[p]) of each partition while producers may still be appending past them:
    {partition: [(offset, key, value)]}; fails on gaps, duplicates or consumer errors."""
    c = consumer(broker, **{"fetch.max.bytes": 8 * 1024 * 1024})
    out: dict[int, list] = {p: [] for p in ends}
    try:
        c.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 60
        while pending:
            assert time.monotonic() < deadline, f"timed out reading partitions {sorted(pending)} up to {ends}"
            for m in c.consume(num_messages=10000, timeout=0.5):
                assert m.error() is None, m.error()
                p, off = m.partition(), m.offset()
                if off >= ends[p]:
                    continue
                assert off == len(out[p]), f"partition {p}: got offset {off} after {len(out[p])} records"
                out[p].append((off, m.key(), m.value()))
                if off == ends[p] - 1:
                    pending.discard(p)
    finally:
        c.close()
    return out


def read_everything(broker, topic: str, partitions: int) -> dict[int, list]:
    """All records of every partition from offset 0: {partition: [(offset, key, value)]}."""
    ends = {(topic, p): watermarks(broker, topic, p) for p in range(partitions)}
    for (_, p), (lo, _) in ends.items():
        assert lo == 0, f"partition {p} log start offset is {lo}, expected 0"
    c = consumer(broker, **{"fetch.max.bytes": 8 * 1024 * 1024})
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)],
                              {k: hi for k, (_, hi) in ends.items()}, timeout_s=60)
    finally:
        c.close()
    out: dict[int, list] = defaultdict(list)
    for m in msgs:
        out[m.partition()].append((m.offset(), m.key(), m.value()))
    for p in range(partitions):
        out[p].sort()
        offsets = [o for o, _, _ in out[p]]
        assert offsets == list(range(ends[(topic, p)][1])), \
            f"partition {p}: offsets are not exactly 0..{ends[(topic, p)][1] - 1}"
    return out


@pytest.mark.soak
@pytest.mark.timeout(120 + ITERATIONS * 60)
@pytest.mark.parametrize("mode", ["plain", "idempotent"])
def test_kill_9_mid_stream_keeps_every_acknowledged_record(broker, tmp_path, mode):
    """plain: retries may store a record twice; idempotent: each record exactly once, in order."""
    topic = "crash-midstream"
    # Small segments, so that kills also land around segment rolls.
    create_topic(broker, topic, PARTITIONS, config={"segment.bytes": str(1024 * 1024)})
    max_records = 20 * RECORDS_PER_PHASE * (ITERATIONS + 1)  # a bound the test never gets near
    acked_path, stop_path = tmp_path / "acked.txt", tmp_path / "stop"
    acks = AckLog(acked_path)
    rng = random.Random(int(os.environ.get("STROM_CRASH_SEED", "7")))
    prod_log = tmp_path / "producer.log"
    with open(prod_log, "wb") as log:
        prod = subprocess.Popen([sys.executable, __file__, broker.bootstrap, topic, str(max_records), str(acked_path),
                                 RATE, str(stop_path), mode], cwd=Path(__file__).parent, stdout=log, stderr=log)
    try:
        for it in range(ITERATIONS + 1):
            # Kill (or, the last time round, stop producing) after a random share of a phase's
            # records more were acknowledged.
            threshold = acks.count() + rng.randrange(RECORDS_PER_PHASE // 4, RECORDS_PER_PHASE)
            wait_until(lambda: prod.poll() is not None or acks.count() >= threshold,
                       timeout_s=60, interval_s=0.01, what=f"{threshold} acknowledged records")
            assert prod.poll() is None, f"producer exited {prod.returncode}: {prod_log.read_text()[-2000:]}"
            if it == ITERATIONS:
                break
            acked_before = dict(acks.refresh().acked)
            broker.kill()
            time.sleep(rng.uniform(0, 0.3))  # the producer sees failures and queues retries
            broker.start()
            # Everything acknowledged before this kill is there right after the restart.
            stored = read_upto(broker, topic, {p: watermarks(broker, topic, p)[1] for p in range(PARTITIONS)})
            lost = [(p, o, s) for (p, o), s in acked_before.items()
                    if o >= len(stored[p]) or stored[p][o][1:] != (record_key(s), record_value(s))]
            assert not lost, f"kill {it}: {len(lost)} acknowledged records lost or changed, e.g. {sorted(lost)[:5]}"
        stop_path.touch()
        try:
            prod.wait(timeout=150)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"producer did not finish; acked {acks.count()}")
        assert prod.returncode == 0, f"producer exited {prod.returncode}: {prod_log.read_text()[-2000:]}"
    finally:
        if prod.poll() is None:
            prod.kill()
            prod.wait()

    acks.refresh()
    acked, failed, total = acks.acked, acks.failed, acks.produced
    assert total is not None and total < max_records
    assert failed == [], f"{len(failed)} records failed delivery, e.g. {failed[:5]}"
    assert sorted(acked.values()) == list(range(total)), "some records were never acknowledged"

    # One more kill with nothing in flight, then the full check.
    broker.restart(kill=True)
    stored = read_everything(broker, topic, PARTITIONS)
    key_partition: dict[bytes, int] = {}
    for part in range(PARTITIONS):
        for off, key, value in stored[part]:
            seq = seq_of(value)  # nothing foreign or torn
            assert (key, value) == (record_key(seq), record_value(seq)), f"{part}@{off}: corrupt record"
            assert key_partition.setdefault(key, part) == part, f"key {key!r} in partitions {key_partition[key]}, {part}"
    for (part, off), seq in acked.items():
        assert off < len(stored[part]), f"acknowledged {part}@{off} (seq {seq}) is past the end {len(stored[part])}"
        assert stored[part][off][2] == record_value(seq), \
            f"{part}@{off} acknowledged seq {seq} but holds seq {seq_of(stored[part][off][2])}"
    # Every record was acknowledged once; extra copies can only be retries of those (plain producer).
    stored_count = sum(len(v) for v in stored.values())
    if mode == "idempotent":
        assert stored_count == total, f"{stored_count - total} duplicates despite enable.idempotence"
        for part in range(PARTITIONS):
            seqs = [seq_of(v) for _, _, v in stored[part]]
            assert seqs == sorted(seqs), f"partition {part}: records out of produce order"
    assert stored_count >= total
    print(f"{mode}: {ITERATIONS} kills, {total} records acknowledged, {stored_count - total} extra copies, "
          f"end offsets {[len(stored[p]) for p in range(PARTITIONS)]}")


# --- garbage over the tail of the active segment --------------------------------------

SEGMENT_BYTES = 1024 * 1024
BATCHES, PER_BATCH, VALUE_BYTES = 40, 5, 12_000


def tail_value(i: int) -> bytes:
    return (b"tail-%05d:" % i) * (VALUE_BYTES // 11)


def segment_batches(path: Path) -> list[tuple[int, int, int, int]]:
    """(file position, base offset, total size, record count) of each batch in a .log file, up to
    the first header that does not fit in the file."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        if length <= 0 or pos + 12 + length > len(data):
            break
        (last_offset_delta,) = struct.unpack_from(">i", data, pos + 23)
        out.append((pos, base, 12 + length, last_offset_delta + 1))
        pos += 12 + length
    return out


def damage_overwrite_last_batch(path: Path, batches, rng) -> None:
    pos, _, size, _ = batches[-1]
    with open(path, "r+b") as f:
        f.seek(pos + size // 2)
        f.write(rng.randbytes(size - size // 2))


def damage_truncate_mid_batch(path: Path, batches, rng) -> None:
    pos, _, size, _ = batches[-1]
    os.truncate(path, pos + size // 3)


def damage_append_garbage(path: Path, batches, rng) -> None:
    with open(path, "ab") as f:
        f.write(rng.randbytes(3000))


def damage_append_lying_header(path: Path, batches, rng) -> None:
    _, base, _, count = batches[-1]
    with open(path, "ab") as f:
        f.write(struct.pack(">qi", base + count, 0x7FFFFFF0) + rng.randbytes(100))


def damage_append_zeros(path: Path, batches, rng) -> None:
    with open(path, "ab") as f:
        f.write(b"\0" * 8192)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("damage, loses_last_batch", [
    (damage_overwrite_last_batch, True),
    (damage_truncate_mid_batch, True),
    (damage_append_garbage, False),
    (damage_append_lying_header, False),
    (damage_append_zeros, False),
], ids=lambda x: x.__name__.removeprefix("damage_") if callable(x) else None)
def test_garbage_over_active_segment_tail(broker_factory, damage, loses_last_batch):
    broker = broker_factory()
    topic = "tail"
    create_topic(broker, topic, 1, config={"segment.bytes": str(SEGMENT_BYTES)})
    p = producer(broker, **{"linger.ms": 1000})
    offsets = []
    for b in range(BATCHES):  # one flush per group of records: a batch or a few per group
        recs = [{"key": b"k%d" % (b * PER_BATCH + i), "value": tail_value(b * PER_BATCH + i)} for i in range(PER_BATCH)]
        offsets += [d.offset for d in produce_all(p, topic, recs, timeout_s=30)]
    del p  # no client left retrying against the dead broker
    total = BATCHES * PER_BATCH
    assert offsets == list(range(total))
    broker.kill()

    part_dir = broker.data_dir / f"{topic}-0"
    segments = sorted(part_dir.glob("*.log"))
    assert len(segments) >= 2, f"expected a rolled log with segment.bytes={SEGMENT_BYTES}: {segments}"
    active = segments[-1]
    batches = segment_batches(active)
    assert batches, f"no batch in {active}"
    assert active.name == "%020d.log" % batches[0][1]
    for (_, base, _, count), (_, next_base, _, _) in zip(batches, batches[1:]):
        assert next_base == base + count, f"batches in {active.name} are not contiguous: {batches}"
    assert batches[-1][1] + batches[-1][3] == total, f"active segment does not end at offset {total}: {batches}"
    assert batches[-1][0] + batches[-1][2] == active.stat().st_size, "bytes after the last batch before damage"
    damage(active, batches, random.Random(11))

    broker.start()
    expected_end = batches[-1][1] if loses_last_batch else total
    assert watermarks(broker, topic, 0) == (0, expected_end)
    stored = read_everything(broker, topic, 1)[0]
    assert stored == [(i, b"k%d" % i, tail_value(i)) for i in range(expected_end)]

    # New produces continue right after the last complete batch, and survive a clean restart.
    new = [{"key": b"new%d" % i, "value": b"after-recovery-%d" % i} for i in range(3)]
    got = produce_all(producer(broker), topic, new, timeout_s=30)
    assert [d.offset for d in got] == [expected_end, expected_end + 1, expected_end + 2]
    broker.restart()
    stored = read_everything(broker, topic, 1)[0]
    assert stored[:expected_end] == [(i, b"k%d" % i, tail_value(i)) for i in range(expected_end)]
    assert stored[expected_end:] == [(expected_end + i, b"new%d" % i, b"after-recovery-%d" % i) for i in range(3)]


@pytest.mark.timeout(90)
def test_kill_9_after_a_clean_restart_recovers_the_tail(broker_factory):
    """A clean stop leaves one marker for the log dir; the restart removes it before any
    append, so a kill -9 after new appends is recovered and garbage over the tail is cut off."""
    broker = broker_factory()
    topic = "after-clean"
    create_topic(broker, topic, 1)
    first = [{"key": b"k%d" % i, "value": b"before-%d" % i} for i in range(5)]
    assert [d.offset for d in produce_all(producer(broker), topic, first, timeout_s=30)] == list(range(5))
    assert broker.stop() == 0
    marker = broker.data_dir / ".kafka_cleanshutdown"
    assert marker.is_file()
    assert sorted(d.name for d in broker.data_dir.iterdir() if (d / ".kafka_cleanshutdown").exists()) == []

    since = len(broker.log())
    broker.start()
    assert not marker.exists()
    assert "clean_shutdown=true" in broker.log()[since:]
    p = producer(broker, **{"linger.ms": 0})
    second = [{"key": b"k%d" % i, "value": b"after-%d" % i} for i in range(5, 8)]
    for rec in second:  # one batch each, so damaging the last batch loses exactly one record
        assert [d.offset for d in produce_all(p, topic, [rec], timeout_s=30)] == [int(rec["key"][1:])]
    del p
    broker.kill()
    assert not marker.exists()

    active = sorted((broker.data_dir / f"{topic}-0").glob("*.log"))[-1]
    batches = segment_batches(active)
    assert batches[-1][1:4:2] == (7, 1)
    damage_overwrite_last_batch(active, batches, random.Random(5))
    since = len(broker.log())
    broker.start()
    assert "clean_shutdown=false" in broker.log()[since:]
    assert watermarks(broker, topic, 0) == (0, 7)
    stored = read_everything(broker, topic, 1)[0]
    assert stored == ([(i, b"k%d" % i, b"before-%d" % i) for i in range(5)]
                      + [(i, b"k%d" % i, b"after-%d" % i) for i in range(5, 7)])
