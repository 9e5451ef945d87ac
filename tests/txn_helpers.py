"""Helpers shared by the transaction tests (test_transactions*.py, test_eos_pipeline.py).

Everything is read with real clients (confluent-kafka consumers in either isolation level, its
AdminClient for ListOffsets) except `log_entries`, which fetches the raw batches of a partition so
a test can see the commit and abort markers that every client hides."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, IsolationLevel, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec
from kafka.record import MemoryRecords

import fetch_wire
from helpers import admin, consumer, unique

# Every wait on the broker has a deadline: a missing or stuck transaction feature fails a test
# after this long instead of hanging the run.
TXN_CALL_TIMEOUT_S = 30
READ_TIMEOUT_S = 60

READ_COMMITTED = "read_committed"
READ_UNCOMMITTED = "read_uncommitted"


def txn_producer(broker, transactional_id: str, **conf) -> Producer:
    """A confluent-kafka transactional producer whose waits are all bounded.

    `metadata.recovery.strategy=none`: when the only broker is killed, librdkafka 2.16's
    re-bootstrap decommissions its handle but keeps it as the group coordinator, so a later
    send_offsets_to_transaction waits on the dead handle forever (a client bug a one-broker
    Kafka meets the same way)."""
    base = {"bootstrap.servers": broker.bootstrap, "transactional.id": transactional_id,
            "linger.ms": 5, "transaction.timeout.ms": 60_000, "message.timeout.ms": 55_000,
            "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500,
            "metadata.recovery.strategy": "none"}
    base.update(conf)
    return Producer(base)


def init(p: Producer) -> Producer:
    p.init_transactions(TXN_CALL_TIMEOUT_S)
    return p


def produce_in_txn(p: Producer, topic: str, records, partition: int | None = None) -> None:
    """Produces records, (key, value) to `partition` or (key, value, partition[, timestamp]), inside the open
    transaction and flushes them, so they are in the log (not yet committed) when this returns;
    raises on the first delivery error."""
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    for rec in records:
        key, value = rec[0], rec[1]
        part = rec[2] if len(rec) > 2 else partition
        kw = {} if part is None else {"partition": part}
        if len(rec) > 3:
            kw["timestamp"] = rec[3]
        while True:
            try:
                p.produce(topic, key=key, value=value, on_delivery=on_delivery, **kw)
                break
            except BufferError:
                p.poll(0.05)
    remaining = p.flush(TXN_CALL_TIMEOUT_S)
    if errors:
        raise KafkaException(errors[0])
    assert remaining == 0, f"{remaining} transactional records not delivered within {TXN_CALL_TIMEOUT_S}s"


def kafka_error(exc: KafkaException) -> KafkaError:
    err = exc.args[0] if exc.args else None
    assert isinstance(err, KafkaError), f"expected a KafkaError, got {exc!r}"
    return err


@dataclass(frozen=True)
class Rec:
    offset: int
    key: bytes | None
    value: bytes | None


def read_all(broker, topic: str, partitions, isolation: str, timeout_s: float = READ_TIMEOUT_S,
             start: int = OFFSET_BEGINNING) -> dict[int, list[Rec]]:
    """Everything a consumer in `isolation` gets from each partition until it reports the end of the
    partition (the high watermark, or the last stable offset for read_committed):
    {partition: [Rec]} in offset order; fails on consumer errors, duplicates and offsets going back."""
    parts = list(range(partitions)) if isinstance(partitions, int) else list(partitions)
    c = consumer(broker, **{"isolation.level": isolation, "enable.partition.eof": True,
                            "auto.offset.reset": "earliest"})
    out: dict[int, list[Rec]] = {p: [] for p in parts}
    try:
        c.assign([TopicPartition(topic, p, start) for p in parts])
        pending = set(parts)
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"{isolation} read of {topic} did not reach the end of partitions "
                                     f"{sorted(pending)} within {timeout_s}s; got "
                                     f"{ {p: len(v) for p, v in out.items()} }")
            for m in c.consume(num_messages=10_000, timeout=0.5):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(m.partition())
                        continue
                    raise KafkaException(err)
                recs = out[m.partition()]
                assert not recs or m.offset() > recs[-1].offset, \
                    f"{topic}-{m.partition()}: offset {m.offset()} after {recs[-1].offset}"
                recs.append(Rec(m.offset(), m.key(), m.value()))
                # A record after the end was reported means the end moved: read on to the new one.
                pending.add(m.partition())
    finally:
        c.close()
    return out


def list_offsets(broker, topic: str, partitions, isolation: str, spec: OffsetSpec | None = None) -> dict[int, int]:
    """ListOffsets (latest unless `spec`) in the given isolation level: the high watermark for
    read_uncommitted, the last stable offset for read_committed."""
    parts = list(range(partitions)) if isinstance(partitions, int) else list(partitions)
    level = IsolationLevel.READ_COMMITTED if isolation == READ_COMMITTED else IsolationLevel.READ_UNCOMMITTED
    # The client must outlive its futures: a collected AdminClient never completes them.
    client = admin(broker)
    futs = client.list_offsets({TopicPartition(topic, p): spec or OffsetSpec.latest() for p in parts},
                               isolation_level=level, request_timeout=TXN_CALL_TIMEOUT_S)
    return {tp.partition: f.result(timeout=TXN_CALL_TIMEOUT_S).offset for tp, f in futs.items()}


def log_start_offsets(broker, topic: str, partitions) -> dict[int, int]:
    return list_offsets(broker, topic, partitions, READ_UNCOMMITTED, OffsetSpec.earliest())


def last_stable_offsets(broker, topic: str, partitions) -> dict[int, int]:
    return list_offsets(broker, topic, partitions, READ_COMMITTED)


def high_watermarks(broker, topic: str, partitions) -> dict[int, int]:
    return list_offsets(broker, topic, partitions, READ_UNCOMMITTED)


def committed_offsets(broker, group: str, topic: str, partitions) -> dict[int, int]:
    """The group's committed offsets as a read_uncommitted OffsetFetch returns them (pending
    transactional offsets are not visible; -1001 when nothing is committed)."""
    parts = list(range(partitions)) if isinstance(partitions, int) else list(partitions)
    # read_uncommitted: librdkafka's read_committed OffsetFetch sets require_stable and waits out
    # pending transactional offsets.
    c = consumer(broker, **{"group.id": group, "isolation.level": "read_uncommitted"})
    try:
        got = c.committed([TopicPartition(topic, p) for p in parts], timeout=TXN_CALL_TIMEOUT_S)
    finally:
        c.close()
    for tp in got:
        assert tp.error is None, f"committed offset of {tp.topic}-{tp.partition}: {tp.error}"
    return {tp.partition: tp.offset for tp in got}


@dataclass(frozen=True)
class Entry:
    """One entry of a partition as stored: a data record, or a control marker ("commit"/"abort")."""
    offset: int
    kind: str  # "data", "commit" or "abort"
    producer_id: int
    transactional: bool
    key: bytes | None = None
    value: bytes | None = None


def log_entries(broker, topic: str, partition: int, end: int, start: int = 0) -> list[Entry]:
    """Every record of one partition from `start` (the log start offset) up to `end` (the high
    watermark), markers included, by raw Fetch v12 requests (read_uncommitted), batch by batch."""
    conn = fetch_wire.Conn(broker)
    out: list[Entry] = []
    try:
        offset = start
        deadline = time.monotonic() + READ_TIMEOUT_S
        while offset < end:
            assert time.monotonic() < deadline, f"raw read of {topic}-{partition} stuck at {offset} (end {end})"
            part = conn.fetch(12, [(topic, partition, offset)], partition_max_bytes=8 << 20).parts[0]
            assert part.error_code == 0, f"Fetch {topic}-{partition}@{offset}: error {part.error_code}"
            mr = MemoryRecords(part.records)
            progressed = False
            while mr.has_next():
                batch = mr.next_batch()
                if batch is None:
                    break
                for r in batch:
                    if r.offset < offset or r.offset >= end:
                        continue
                    if batch.is_control_batch:
                        kind = {0: "abort", 1: "commit"}[r.type]
                        out.append(Entry(r.offset, kind, batch.producer_id, batch.is_transactional))
                    else:
                        out.append(Entry(r.offset, "data", batch.producer_id, batch.is_transactional,
                                         r.key, r.value))
                # A cleaned batch may end in removed records: continue after the batch, not its last record.
                offset = max(offset, batch.last_offset + 1)
                progressed = True
            assert progressed, f"raw Fetch of {topic}-{partition}@{offset} returned no batch before {end}"
    finally:
        conn.close()
    return out


def txn_id(prefix: str) -> str:
    return unique(prefix)
