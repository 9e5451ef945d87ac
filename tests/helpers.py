"""Client-side helpers shared by the integration tests (real clients only)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

DEADLINE_S = 30


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(cond, timeout_s: float = DEADLINE_S, interval_s: float = 0.05, what: str = "condition"):
    """Polls cond() until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")
        time.sleep(interval_s)


def metric(samples: dict, name: str, **labels) -> float | None:
    """One sample from Broker.metrics(), by name and exact label set."""
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


# --- confluent-kafka (librdkafka) -------------------------------------------

def admin(broker, **conf) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap, **conf})


def producer(broker, **conf) -> Producer:
    base = {"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5}
    base.update(conf)
    return Producer(base)


def consumer(broker, **conf) -> Consumer:
    # confluent-kafka insists on a group.id; the tests never join or commit:
    # they assign() partitions with explicit offsets.
    base = {"bootstrap.servers": broker.bootstrap, "group.id": unique("assign-only"),
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "error", "enable.partition.eof": False}
    base.update(conf)
    return Consumer(base)


def create_topic(broker, name: str, partitions: int = 1, config: dict | None = None,
                 adm: AdminClient | None = None) -> None:
    adm = adm or admin(broker)
    futs = adm.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                       config=config or {})], request_timeout=15)
    futs[name].result(timeout=30)
    wait_for_topic(broker, name, partitions, adm)


def wait_for_topic(broker, name: str, partitions: int, adm: AdminClient | None = None) -> None:
    adm = adm or admin(broker)

    def ready():
        md = adm.list_topics(topic=name, timeout=10)
        t = md.topics.get(name)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader == 1 for p in t.partitions.values()))
    wait_until(ready, what=f"topic {name} with {partitions} partitions in metadata")


@dataclass
class Delivered:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: tuple[int, int]
    headers: list | None


def produce_all(p: Producer, topic: str, records, timeout_s: float = 60) -> list[Delivered]:
    """Produces records (dicts of Producer.produce kwargs) and returns their delivery reports
    in produce order; raises on the first delivery error."""
    results: list = []
    errors: list = []

    def make_cb(i):
        def cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                results.append((i, Delivered(msg.topic(), msg.partition(), msg.offset(), msg.key(),
                                             msg.value(), msg.timestamp(), msg.headers())))
        return cb

    n = 0
    for i, rec in enumerate(records):
        while True:
            try:
                p.produce(topic, on_delivery=make_cb(i), **rec)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
        n += 1
    remaining = p.flush(timeout_s)
    if errors:
        raise KafkaException(errors[0][1])
    assert remaining == 0, f"{remaining} messages still in flight after {timeout_s}s"
    assert len(results) == n
    results.sort(key=lambda x: x[0])
    return [d for _, d in results]


def produce_errors(p: Producer, topic: str, records, timeout_s: float = 60) -> list:
    """Produces records and returns one KafkaError (or None) per record, in produce order."""
    out: dict[int, object] = {}

    def make_cb(i):
        return lambda err, msg: out.__setitem__(i, err)

    recs = list(records)
    for i, rec in enumerate(recs):
        p.produce(topic, on_delivery=make_cb(i), **rec)
    assert p.flush(timeout_s) == 0
    return [out[i] for i in range(len(recs))]


def consume_to_end(c: Consumer, assignments: list[TopicPartition], end_offsets: dict[int, int] | dict,
                   timeout_s: float = 60, window: bool = False):
    """assign() the partitions from their given offsets and poll until each has delivered the
    record at end_offset - 1. Returns messages in arrival order; fails on consumer errors,
    on duplicate (partition, offset) and on offsets past the end (unless window=True: the end is
    not the log end, and later records are dropped)."""
    c.assign(assignments)
    pending = {(tp.topic, tp.partition) for tp in assignments
               if end_offsets[(tp.topic, tp.partition)] > (tp.offset if tp.offset >= 0 else 0)}
    seen: set = set()
    out = []
    deadline = time.monotonic() + timeout_s
    while pending:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out consuming; still waiting for {sorted(pending)}; got {len(out)}")
        for msg in c.consume(num_messages=10000, timeout=0.5):
            if msg.error() is not None:
                raise KafkaException(msg.error())
            key = (msg.topic(), msg.partition())
            if window and msg.offset() >= end_offsets[key]:
                continue
            assert (key, msg.offset()) not in seen, f"duplicate delivery {key}@{msg.offset()}"
            seen.add((key, msg.offset()))
            assert msg.offset() < end_offsets[key], f"offset {msg.offset()} past end {end_offsets[key]} for {key}"
            out.append(msg)
            if msg.offset() == end_offsets[key] - 1:
                pending.discard(key)
    return out


def read_partition(broker, topic: str, partition: int, start: int, end: int, window: bool = False, **conf):
    """All messages of one partition in [start, end), via assign(); end is the high watermark
    unless window=True."""
    c = consumer(broker, **conf)
    try:
        return consume_to_end(c, [TopicPartition(topic, partition, start)], {(topic, partition): end},
                              window=window)
    finally:
        c.close()


def watermarks(broker, topic: str, partition: int) -> tuple[int, int]:
    c = consumer(broker)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def error_code(exc: BaseException) -> int:
    """The Kafka error code inside a confluent-kafka exception."""
    err = exc.args[0] if exc.args else None
    assert isinstance(err, KafkaError), f"expected a KafkaError, got {exc!r}"
    return err.code()


# --- kafka-python -------------------------------------------------------------

def kp_admin(broker, **conf):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="strom-tests", **conf)


def kp_producer(broker, **conf):
    """kafka-python 3 producer; idempotence off unless asked for (test_idempotence.py covers it)."""
    from kafka import KafkaProducer
    base = dict(bootstrap_servers=broker.bootstrap, acks="all", linger_ms=5, enable_idempotence=False)
    base.update(conf)
    return KafkaProducer(**base)


def kp_consumer(broker, **conf):
    from kafka import KafkaConsumer
    base = dict(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="none", consumer_timeout_ms=30000)
    base.update(conf)
    return KafkaConsumer(**base)


def kp_read(c, tps_to_end: dict, timeout_s: float = 60):
    """Poll an already-assigned kafka-python consumer until each TopicPartition reaches its end."""
    pending = {tp for tp, end in tps_to_end.items() if c.position(tp) < end}
    out = []
    deadline = time.monotonic() + timeout_s
    while pending:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out consuming with kafka-python; pending {pending}")
        for tp, records in c.poll(timeout_ms=500).items():
            for r in records:
                assert r.offset < tps_to_end[tp], f"offset {r.offset} past end {tps_to_end[tp]}"
                out.append(r)
                if r.offset == tps_to_end[tp] - 1:
                    pending.discard(tp)
    return out
