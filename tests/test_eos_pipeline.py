"""Exactly-once consume-transform-produce (KIP-98, KIP-447): tests/eos_worker.py moves 10,000 records
from a 3-partition input topic to a 3-partition output topic, one transaction per polled batch with
send_offsets_to_transaction, while the worker process or the broker is killed with kill -9 and
restarted. Afterwards a read_committed consumer sees every input record exactly once in the output,
in input order per partition, and the group's committed offsets are the input's end offsets.

The worker is confluent-kafka (librdkafka), kafka-python or aiokafka (each with its own transactional
producer and read_committed consumer). STROM_EOS_KILLS sets the kills per test (3) and
STROM_EOS_RECORDS the input size (10,000); scripts/soak's STROM_SOAK_ITERATIONS raises the kills."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import create_topic, produce_all, producer, unique, wait_until
from txn_helpers import READ_COMMITTED, READ_UNCOMMITTED, committed_offsets, high_watermarks, last_stable_offsets, read_all

KILLS = int(os.environ.get("STROM_EOS_KILLS", os.environ.get("STROM_SOAK_ITERATIONS", "3")))
RECORDS = int(os.environ.get("STROM_EOS_RECORDS", "10000"))
PARTITIONS = 3
BATCH = 500
WORKER = Path(__file__).with_name("eos_worker.py")
WORKER_START_S = 60  # a worker is initialised and has committed within this (one zombie abort, one join)
WORKER_FINISH_S = 60 + RECORDS // 100

pytestmark = pytest.mark.timeout(150 + 40 * KILLS)


def input_value(i: int) -> bytes:
    return b"in-%05d-" % i + b"x" * (i % 97)


def fill_input(broker, topic: str) -> dict[int, list[tuple[bytes, bytes]]]:
    """RECORDS records spread round-robin over the input partitions: {partition: [(key, value)]}."""
    recs = [{"key": b"k%05d" % i, "value": input_value(i), "partition": i % PARTITIONS} for i in range(RECORDS)]
    produce_all(producer(broker, **{"enable.idempotence": True, "linger.ms": 20}), topic, recs)
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in range(PARTITIONS)}
    for r in recs:
        by_partition[r["partition"]].append((r["key"], r["value"]))
    return by_partition


class Worker:
    """One run of eos_worker.py and its progress file."""

    def __init__(self, tmp: Path, run: int, client: str, broker, inp: str, out: str, group: str, txn: str,
                 ends: dict[int, int], hold: Path):
        self.progress = tmp / f"progress.{run}.txt"
        self.log_path = tmp / f"worker.{run}.log"
        argv = [sys.executable, str(WORKER), client, broker.bootstrap, inp, out, group, txn,
                ",".join(str(ends[p]) for p in range(PARTITIONS)), str(self.progress), str(hold), str(BATCH)]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=WORKER.parent, stdout=log, stderr=log)

    def lines(self) -> list[list[str]]:
        if not self.progress.exists():
            return []
        text = self.progress.read_text()
        return [line.split() for line in text[: text.rfind("\n") + 1].splitlines()]

    def committed(self) -> int:
        return sum(int(line[1]) for line in self.lines() if line[0] == "C")

    def count(self, kind: str) -> int:
        return sum(1 for line in self.lines() if line[0] == kind)

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
        return True

    def tail(self) -> str:
        log = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
        prog = "\n".join(" ".join(line) for line in self.lines()[-10:])
        return f"--- progress ---\n{prog}\n--- output ---\n{log}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def finish(self) -> None:
        try:
            code = self.proc.wait(timeout=WORKER_FINISH_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker did not finish within {WORKER_FINISH_S}s:\n{self.tail()}")
        assert code == 0, f"worker exited with {code}:\n{self.tail()}"
        assert self.lines()[-1] == ["DONE"], self.tail()


def check_output(broker, inp: str, out: str, group: str, expected: dict[int, list[tuple[bytes, bytes]]],
                 ends: dict[int, int]) -> dict[int, int]:
    """Exactly once, in order, offsets committed to the end; returns the output's data record count
    per partition as read_uncommitted consumers see it (committed plus aborted)."""
    got = read_all(broker, out, PARTITIONS, READ_COMMITTED)
    for p in range(PARTITIONS):
        want = [(k, b"%d:%d:" % (p, off) + v) for off, (k, v) in enumerate(expected[p])]
        have = [(r.key, r.value) for r in got[p]]
        if have != want:
            dupes = len(have) - len(set(have))
            missing = len(set(want) - set(have))
            raise AssertionError(f"output partition {p}: {len(have)} committed records, want {len(want)}: "
                                 f"{dupes} duplicates, {missing} missing, in order: {have == sorted(have)}")
    assert committed_offsets(broker, group, inp, PARTITIONS) == ends
    # Nothing is left open: every partition is stable up to its high watermark.
    hws = high_watermarks(broker, out, PARTITIONS)
    assert last_stable_offsets(broker, out, PARTITIONS) == hws
    everything = read_all(broker, out, PARTITIONS, READ_UNCOMMITTED)
    return {p: len(everything[p]) for p in range(PARTITIONS)}


def setup_pipeline(broker):
    inp, out, group, txn = unique("eos-in"), unique("eos-out"), unique("eos-group"), unique("eos-txn")
    create_topic(broker, inp, PARTITIONS)
    create_topic(broker, out, PARTITIONS)
    expected = fill_input(broker, inp)
    ends = {p: len(expected[p]) for p in range(PARTITIONS)}
    return inp, out, group, txn, expected, ends


@pytest.mark.soak
@pytest.mark.parametrize("client", ["confluent", "kafka-python", "aiokafka"])
def test_pipeline_exactly_once_across_client_kill_9(broker, tmp_path, client):
    """Each kill lands while a transaction's records are in the log and uncommitted (the worker holds
    there); the next worker's InitProducerId fences it and aborts that transaction."""
    inp, out, group, txn, expected, ends = setup_pipeline(broker)
    hold = tmp_path / "hold"
    rng = random.Random(12)
    killed_open = 0  # records of transactions left open by killed workers
    committed_before = 0
    for run in range(KILLS):
        # A run commits less than threshold + BATCH before it holds: all runs together stay below RECORDS.
        hold.write_text(str(rng.randrange(0, max(1, RECORDS // (KILLS + 1) - BATCH))))
        w = Worker(tmp_path, run, client, broker, inp, out, group, txn, ends, hold)
        try:
            wait_until(lambda: w.alive() and w.count("F") > 0 and w.lines()[-1][0] == "F"
                       and w.committed() >= int(hold.read_text()), timeout_s=WORKER_START_S, interval_s=0.02,
                       what=f"worker run {run} to hold an open transaction")
            held = int(w.lines()[-1][1])
            w.kill()
        finally:
            w.kill()
        hold.unlink()
        assert w.count("A") == 0, w.tail()
        killed_open += held
        committed_before += w.committed()
        assert committed_before < RECORDS, "the worker finished before the last kill; lower the hold threshold"

    w = Worker(tmp_path, KILLS, client, broker, inp, out, group, txn, ends, hold)
    try:
        w.finish()
    finally:
        w.kill()
    assert w.count("A") == 0, w.tail()
    # Nothing was committed twice: the workers' commits add up to the input exactly.
    assert committed_before + w.committed() == RECORDS
    data = check_output(broker, inp, out, group, expected, ends)
    # The only uncommitted records are those of the killed workers' open transactions.
    assert sum(data.values()) == RECORDS + killed_open


@pytest.mark.soak
def test_pipeline_exactly_once_across_broker_kill_9(broker, tmp_path):
    inp, out, group, txn, expected, ends = setup_pipeline(broker)
    hold = tmp_path / "hold"  # never created: the worker never holds
    rng = random.Random(21)
    w = Worker(tmp_path, 0, "confluent", broker, inp, out, group, txn, ends, hold)
    try:
        for kill in range(KILLS):
            threshold = (kill + 1) * RECORDS // (KILLS + 2) + rng.randrange(0, BATCH)
            wait_until(lambda: w.alive() and w.committed() >= threshold, timeout_s=WORKER_START_S,
                       interval_s=0.01, what=f"{threshold} records committed before broker kill {kill}")
            broker.kill()
            time.sleep(rng.uniform(0, 0.5))  # the clients see the broker gone and retry
            broker.start()
        w.finish()
    finally:
        w.kill()
    assert w.committed() == RECORDS, w.tail()
    data = check_output(broker, inp, out, group, expected, ends)
    assert sum(data.values()) >= RECORDS
    print(f"broker kills: {KILLS}, aborted transactions: {w.count('A')}, "
          f"uncommitted records in the output: {sum(data.values()) - RECORDS}")
