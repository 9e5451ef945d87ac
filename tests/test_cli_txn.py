"""`strom txn list|describe` and `strom producers describe` against the real broker.

confluent-kafka's transactional producer leaves one transaction open (records in partitions 0
and 2) and commits another (partition 1); the CLI's tables must name exactly those
transactional ids, states, partitions, producer ids and epochs, and the producer ids, epochs,
sequences, timestamps and open-transaction offsets must match the record batches in the log
(read with a raw Fetch, which shows each batch's producer fields).
"""

from __future__ import annotations

import datetime
import subprocess
import time

from conftest import strom_bin
from kafka.record import MemoryRecords

import fetch_wire
from helpers import admin, create_topic, produce_all, producer, unique

PARTITIONS = 3
TIMEOUT_S = 30


def strom(broker, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(strom_bin()), *args, "--brokers", broker.bootstrap]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}"
    return proc


def table(stdout: str) -> list[dict[str, str]]:
    """The CLI's table as dicts by header (no cell holds whitespace)."""
    lines = stdout.splitlines()
    headers = lines[0].split()
    rows = [line.split() for line in lines[1:]]
    assert all(len(r) == len(headers) for r in rows), stdout
    return [dict(zip(headers, r)) for r in rows]


def utc(ms: int) -> str:
    """Milliseconds since the epoch the way the CLI prints them."""
    t = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def data_batches(broker, topic: str, partition: int) -> list:
    """The partition's batches from offset 0 (control batches too), from a raw Fetch v12."""
    conn = fetch_wire.Conn(broker)
    try:
        (part,) = conn.fetch(12, [(topic, partition, 0)]).parts
    finally:
        conn.close()
    assert part.error_code == 0
    batches, records = [], MemoryRecords(part.records)
    while records.has_next():
        batch = records.next_batch()
        if batch is None:
            break
        batches.append(batch)
    return batches


def open_and_committed(broker):
    """One transaction left open over partitions 0 and 2, one committed on partition 1.
    Returns the topic, the ids, the open producer (kept alive) and the ms window in which the
    open transaction began."""
    topic = unique("txn-cli")
    create_topic(broker, topic, partitions=PARTITIONS)
    open_id, done_id = unique("txn-open"), unique("txn-done")

    p_open = producer(broker, **{"transactional.id": open_id, "transaction.timeout.ms": 60_000})
    p_open.init_transactions(TIMEOUT_S)
    began_ms = int(time.time() * 1000)
    p_open.begin_transaction()
    produce_all(p_open, topic, [{"value": b"open-%d" % i, "partition": p} for i, p in
                                enumerate([0, 0, 2, 2, 2])])
    produced_ms = int(time.time() * 1000)

    p_done = producer(broker, **{"transactional.id": done_id, "transaction.timeout.ms": 45_000})
    p_done.init_transactions(TIMEOUT_S)
    p_done.begin_transaction()
    produce_all(p_done, topic, [{"value": b"done-%d" % i, "partition": 1} for i in range(4)])
    p_done.commit_transaction(TIMEOUT_S)
    p_done.flush(TIMEOUT_S)
    return topic, open_id, done_id, p_open, (began_ms, produced_ms)


def test_txn_and_producers_commands_show_open_and_committed_transactions(broker):
    topic, open_id, done_id, p_open, (began_ms, produced_ms) = open_and_committed(broker)
    (node_id,) = [str(b) for b in admin(broker).list_topics(timeout=10).brokers]

    # The log: transactional batches carry each producer's id and epoch; the committed
    # transaction ends with a control batch on partition 1, the open one has none yet.
    p0, p1, p2 = (data_batches(broker, topic, p) for p in range(PARTITIONS))
    assert [b.is_transactional for b in p0 + p1 + p2] == [True] * len(p0 + p1 + p2)
    assert [b.is_control_batch for b in p0 + p2] == [False] * len(p0 + p2)
    assert [b.is_control_batch for b in p1] == [False] * (len(p1) - 1) + [True]
    open_pid, open_epoch = p0[0].producer_id, p0[0].producer_epoch
    done_pid, done_epoch = p1[0].producer_id, p1[0].producer_epoch
    assert {(b.producer_id, b.producer_epoch) for b in p0 + p2} == {(open_pid, open_epoch)}
    assert {(b.producer_id, b.producer_epoch) for b in p1} == {(done_pid, done_epoch)}
    assert open_pid >= 0 and done_pid >= 0 and open_pid != done_pid

    # txn list: both ids, with their states and producer ids, sorted by id.
    listed = table(strom(broker, "txn", "list").stdout)
    assert [(r["TRANSACTIONAL-ID"], r["STATE"], r["PRODUCER-ID"]) for r in listed] == sorted([
        (open_id, "Ongoing", str(open_pid)),
        (done_id, "CompleteCommit", str(done_pid)),
    ])
    assert [r["COORDINATOR"] for r in listed] == [node_id, node_id]
    ongoing = table(strom(broker, "txn", "list", "--state", "ongoing").stdout)
    assert [r["TRANSACTIONAL-ID"] for r in ongoing] == [open_id]
    by_pid = table(strom(broker, "txn", "list", "--producer-id", str(done_pid)).stdout)
    assert [r["TRANSACTIONAL-ID"] for r in by_pid] == [done_id]

    # txn describe: the open transaction's partitions, epoch, timeout, start and age; the
    # committed one has no partitions left and no age.
    described = {r["TRANSACTIONAL-ID"]: r
                 for r in table(strom(broker, "txn", "describe", open_id, done_id).stdout)}
    assert list(described) == [open_id, done_id]
    o, d = described[open_id], described[done_id]
    assert (o["STATE"], o["PRODUCER-ID"], o["EPOCH"], o["TIMEOUT-MS"], o["PARTITIONS"]) == (
        "Ongoing", str(open_pid), str(open_epoch), "60000", f"{topic}(0,2)")
    assert (d["STATE"], d["PRODUCER-ID"], d["EPOCH"], d["TIMEOUT-MS"], d["PARTITIONS"], d["AGE"]) == (
        "CompleteCommit", str(done_pid), str(done_epoch), "45000", "-", "-")
    # The coordinator stamps the start when the first partition joins the transaction.
    assert o["STARTED"] in {utc(ms) for ms in range(began_ms, produced_ms + 1)}, (o, began_ms, produced_ms)
    assert o["AGE"] != "-"
    assert (o["COORDINATOR"], d["COORDINATOR"]) == (node_id, node_id)

    # producers describe: per partition, the producer as the leader tracks it.
    # The last timestamp is the last batch's, a commit marker's included (as in Kafka).
    def expected(partition: int, batches: list, coordinator_epoch: str, txn_start: str) -> dict:
        data = [b for b in batches if not b.is_control_batch]
        return {"PARTITION": str(partition), "PRODUCER-ID": str(data[-1].producer_id),
                "EPOCH": str(data[-1].producer_epoch), "LAST-SEQUENCE": str(data[-1].last_sequence),
                "LAST-TIMESTAMP": utc(batches[-1].max_timestamp),
                "COORDINATOR-EPOCH": coordinator_epoch, "TXN-START-OFFSET": txn_start}

    producers = table(strom(broker, "producers", "describe", topic).stdout)
    assert [r["PARTITION"] for r in producers] == ["0", "1", "2"]
    done_row = producers[1]
    # A marker records the coordinator's epoch (a number the broker chooses, not -1).
    assert done_row["COORDINATOR-EPOCH"].isdigit(), done_row
    assert producers == [
        expected(0, p0, "-", str(p0[0].base_offset)),
        expected(1, p1, done_row["COORDINATOR-EPOCH"], "-"),
        expected(2, p2, "-", str(p2[0].base_offset)),
    ]
    assert [r["LAST-SEQUENCE"] for r in producers] == ["1", "3", "2"]
    assert table(strom(broker, "producers", "describe", topic, "--partition", "2").stdout) == [producers[2]]
    p_open.abort_transaction(TIMEOUT_S)


def test_unknown_transactional_id_is_an_error(broker):
    _, open_id, _, _, _ = open_and_committed(broker)
    missing = unique("txn-missing")
    proc = strom(broker, "txn", "describe", missing, ok=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (f"error: transactional id '{missing}' does not exist "
                           "(TRANSACTIONAL_ID_NOT_FOUND)\n")
    # With a known id too: its row is printed, the unknown one reported, the exit non-zero.
    proc = strom(broker, "txn", "describe", open_id, missing, ok=False)
    assert proc.returncode == 1
    assert [r["TRANSACTIONAL-ID"] for r in table(proc.stdout)] == [open_id]
    assert proc.stderr == (f"error: transactional id '{missing}' does not exist "
                           "(TRANSACTIONAL_ID_NOT_FOUND)\n"
                           "error: 1 of 2 transactional ids failed\n")
    proc = strom(broker, "producers", "describe", unique("no-such-topic"), ok=False)
    assert proc.returncode == 1
    assert "UNKNOWN_TOPIC_OR_PARTITION" in proc.stderr
