"""kafka-python `KafkaConsumer(group_id=...)` groups, alone and mixed with librdkafka members.

Each KafkaConsumer is polled on its own thread, as an application would (polling two alternately
from one thread let one member's heartbeats lapse in kafka-python 3.0.12: it sent none after its
second join and was expired after its session timeout).
Each poll waits up to 1 s: kafka-python 3.0.12 can drop its own in-flight join when poll() keeps timing out
while JoinGroup/SyncGroup are outstanding. Under load, with 50 ms polls, a member received its SyncGroup
assignment but never applied it or heartbeated again (8 of 30 runs of a two-member join on this machine);
with 1 s polls, none of 60 did. The broker's view of such a run was right: it kept the member until its session
expired and then rebalanced.
Both clients offer the `range` protocol, so one group can hold members of each; member ids are
`<client id>-<uuid>` and range orders members by id, so client ids fix the assignment."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from helpers import create_topic, produce_all, producer, unique
from test_groups_support import (FAST_CONSUMER, GROUP_BROKER_CONFIGS, GroupWorker, requires_classic_groups,
                                 stop_all, wait_committed, wait_consumed)

pytestmark = [requires_classic_groups(), pytest.mark.timeout(120)]

N_PART = 4
POLL_TIMEOUT_MS = 1000  # see the module docstring


def kp_group_consumer(broker, group, topic, client_id):
    from kafka import KafkaConsumer
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group, client_id=client_id,
                      enable_auto_commit=False, auto_offset_reset="earliest",
                      session_timeout_ms=6000, heartbeat_interval_ms=300, fetch_max_wait_ms=100,
                      partition_assignment_strategy=[RangePartitionAssignor])
    c.subscribe([topic])
    return c


def owned(c) -> set[int]:
    return {tp.partition for tp in c.assignment()}


class Poller:
    """Polls one kafka-python consumer in its own thread (it only rejoins inside poll) and keeps what
    it delivers; commit() and close() run on that thread too, as KafkaConsumer is not thread-safe."""

    def __init__(self, consumer):
        self.c = consumer
        self.records = []
        self.owned: set[int] = set()
        self._calls: list = []
        self._lock = threading.Lock()
        self._stop = False
        self.error = None
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        try:
            while not self._stop:
                for recs in self.c.poll(timeout_ms=POLL_TIMEOUT_MS).values():
                    with self._lock:
                        self.records += recs
                self.owned = owned(self.c)
                while self._calls:
                    fn, done = self._calls.pop(0)
                    try:
                        done.append(("ok", fn(self.c)))
                    except Exception as e:  # handed back to the caller
                        done.append(("err", e))
        except Exception as e:
            self.error = e

    def call(self, fn, timeout_s=30):
        done: list = []
        self._calls.append((fn, done))
        deadline = time.monotonic() + timeout_s
        while not done:
            assert self.error is None and time.monotonic() < deadline, f"kafka-python call failed: {self.error!r}"
            time.sleep(0.01)
        kind, value = done[0]
        if kind == "err":
            raise value
        return value

    def keys(self):
        with self._lock:
            return [(r.partition, r.offset) for r in self.records]

    def close(self):
        if self._t.is_alive():
            self._stop = True
            self._t.join(30)
            self.c.close()


def wait_for(cond, what, timeout_s=45, pollers=()):
    deadline = time.monotonic() + timeout_s
    while not cond():
        errors = [p.error for p in pollers if p.error is not None]
        assert not errors, errors
        if time.monotonic() > deadline:
            raise AssertionError(f"kafka-python: timed out waiting for {what}; owned {[p.owned for p in pollers]}; "
                                 f"records {[len(p.records) for p in pollers]}")
        time.sleep(0.05)


def produce_round(broker, topic, tag, per_part):
    recs = [{"partition": i % N_PART, "value": f"{tag}-{i}".encode()} for i in range(per_part * N_PART)]
    return {(d.partition, d.offset): d.value.decode() for d in produce_all(producer(broker), topic, recs)}


def committed_via_librdkafka(broker, group, topic) -> dict[int, int]:
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset
                for tp in c.committed([TopicPartition(topic, p) for p in range(N_PART)], timeout=15)}
    finally:
        c.close()


def test_kafka_python_two_members_share_and_commit(broker_factory):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("kpg"), unique("g-kp")
    create_topic(broker, topic, N_PART)
    ps = [Poller(kp_group_consumer(broker, group, topic, f"kp{i}")) for i in range(2)]
    try:
        wait_for(lambda: [p.owned for p in ps] == [{0, 1}, {2, 3}], "range 2/2", pollers=ps)
        r1 = produce_round(broker, topic, "r1", 10)
        wait_for(lambda: sum(len(p.records) for p in ps) >= len(r1), "all records", pollers=ps)
        for p, want_parts in zip(ps, ({0, 1}, {2, 3})):
            keys = p.keys()
            assert len(keys) == len(set(keys))
            assert {(r.partition, r.offset): r.value.decode() for r in p.records} == \
                {k: v for k, v in r1.items() if k[0] in want_parts}
        for p in ps:
            p.call(lambda c: c.commit())
        assert committed_via_librdkafka(broker, group, topic) == {p: 10 for p in range(N_PART)}

        # kp1 leaves; kp0 takes all four and reads only what comes after kp1's commits.
        ps[1].close()
        wait_for(lambda: ps[0].owned == set(range(N_PART)), "kp0 owning all", pollers=ps[:1])
        mark = len(ps[0].records)
        r2 = produce_round(broker, topic, "r2", 3)
        wait_for(lambda: len(ps[0].records) - mark >= len(r2), "r2", pollers=ps[:1])
        ps[0].call(lambda c: c.commit())
        assert sorted(ps[0].keys()[mark:]) == sorted(r2), "r2 once, nothing of r1 again"
        assert committed_via_librdkafka(broker, group, topic) == {p: 13 for p in range(N_PART)}
    finally:
        for p in ps:
            p.close()


def test_mixed_kafka_python_and_librdkafka_group(broker_factory):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("mix"), unique("g-mix")
    create_topic(broker, topic, N_PART)
    kp = Poller(kp_group_consumer(broker, group, topic, "a-kp"))
    w = GroupWorker(broker.bootstrap, group, [topic], "b-rdk", {**FAST_CONSUMER, "partition.assignment.strategy": "range"})
    try:
        wait_for(lambda: kp.owned == {0, 1} and w.owned() == {2, 3}, "a-kp {0,1}, b-rdk {2,3}", pollers=[kp])
        r1 = produce_round(broker, topic, "r1", 10)
        wait_for(lambda: len(kp.records) >= 20 and {(p, o) for p, o, _ in w.records()} >= {k for k in r1 if k[0] >= 2},
                 "r1", pollers=[kp])
        assert sorted(kp.keys()) == sorted(k for k in r1 if k[0] < 2)
        assert sorted((p, o) for p, o, _ in w.records()) == sorted(k for k in r1 if k[0] >= 2)
        kp.call(lambda c: c.commit())
        wait_committed([w], {2: 10, 3: 10})
        assert committed_via_librdkafka(broker, group, topic) == {p: 10 for p in range(N_PART)}

        # kafka-python leaves; the librdkafka member takes over at kafka-python's commits.
        mark = w.mark()
        kp.close()
        wait_for(lambda: w.owned() == set(range(N_PART)), "b-rdk owning all")
        r2 = produce_round(broker, topic, "r2", 2)
        wait_consumed([w], r2)
        assert sorted((p, o) for p, o, _ in w.records(mark)) == sorted(r2)
    finally:
        kp.close()
        stop_all([w])
