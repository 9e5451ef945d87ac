"""kafka-python `KafkaConsumer(group_id=...)` groups, alone and mixed with librdkafka members.

Both clients offer the `range` protocol, so one group can hold members of each; member ids are
`<client id>-<uuid>` and range orders members by id, so client ids fix the assignment."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from helpers import create_topic, produce_all, producer, unique
from test_groups_support import (FAST_CONSUMER, GROUP_BROKER_CONFIGS, GroupWorker, requires_classic_groups,
                                 stop_all, wait_committed, wait_consumed)

pytestmark = [requires_classic_groups(), pytest.mark.timeout(120)]

N_PART = 4


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


def poll_all(consumers, until, timeout_s=45, what="condition", also=lambda: None):
    """Polls every kafka-python consumer in turn (they only rejoin inside poll) until until() holds;
    returns {consumer index: [records]} gathered meanwhile."""
    got = {i: [] for i in range(len(consumers))}
    deadline = time.monotonic() + timeout_s
    while True:
        for i, c in enumerate(consumers):
            for recs in c.poll(timeout_ms=50).values():
                got[i] += recs
        also()
        if until(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"kafka-python: timed out waiting for {what}; owned {[owned(c) for c in consumers]}; "
                                 f"records {[len(v) for v in got.values()]}")


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
    cs = [kp_group_consumer(broker, group, topic, f"kp{i}") for i in range(2)]
    try:
        poll_all(cs, lambda _: [owned(c) for c in cs] == [{0, 1}, {2, 3}], what="range 2/2")
        r1 = produce_round(broker, topic, "r1", 10)
        got = poll_all(cs, lambda g: sum(len(v) for v in g.values()) >= len(r1), what="all records")
        for i, want_parts in enumerate(({0, 1}, {2, 3})):
            keys = [(r.partition, r.offset) for r in got[i]]
            assert len(keys) == len(set(keys))
            assert {k: r1[k] for k in keys} == {k: r.value.decode() for k, r in zip(keys, got[i])}
            assert set(keys) == {k for k in r1 if k[0] in want_parts}
        for c in cs:
            c.commit()
        assert committed_via_librdkafka(broker, group, topic) == {p: 10 for p in range(N_PART)}

        # kp1 leaves; kp0 takes all four and reads only what comes after kp1's commits.
        cs[1].close()
        poll_all(cs[:1], lambda _: owned(cs[0]) == set(range(N_PART)), what="kp0 owning all")
        r2 = produce_round(broker, topic, "r2", 3)
        got = poll_all(cs[:1], lambda g: len(g[0]) >= len(r2), what="r2")
        # One more poll: nothing beyond r2 (no re-reads of r1) may arrive.
        got[0] += [r for recs in cs[0].poll(timeout_ms=300).values() for r in recs]
        assert sorted((r.partition, r.offset) for r in got[0]) == sorted(r2)
        cs[0].commit()
        assert committed_via_librdkafka(broker, group, topic) == {p: 13 for p in range(N_PART)}
    finally:
        for c in cs:
            c.close()


def test_mixed_kafka_python_and_librdkafka_group(broker_factory):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("mix"), unique("g-mix")
    create_topic(broker, topic, N_PART)
    kp = kp_group_consumer(broker, group, topic, "a-kp")
    w = GroupWorker(broker.bootstrap, group, [topic], "b-rdk", {**FAST_CONSUMER, "partition.assignment.strategy": "range"})
    try:
        poll_all([kp], lambda _: owned(kp) == {0, 1} and w.owned() == {2, 3}, what="a-kp {0,1}, b-rdk {2,3}")
        r1 = produce_round(broker, topic, "r1", 10)
        got = poll_all([kp], lambda g: len(g[0]) >= 20 and
                       {(p, o) for p, o, _ in w.records()} >= {k for k in r1 if k[0] >= 2}, what="r1")
        assert sorted((r.partition, r.offset) for r in got[0]) == sorted(k for k in r1 if k[0] < 2)
        assert sorted((p, o) for p, o, _ in w.records()) == sorted(k for k in r1 if k[0] >= 2)
        kp.commit()
        wait_committed([w], {2: 10, 3: 10})
        assert committed_via_librdkafka(broker, group, topic) == {p: 10 for p in range(N_PART)}

        # kafka-python leaves; the librdkafka member takes over at kafka-python's commits.
        mark = w.mark()
        kp.close()
        deadline = time.monotonic() + 30
        while w.owned() != set(range(N_PART)):
            assert time.monotonic() < deadline, w.snapshot()[-5:]
            time.sleep(0.05)
        r2 = produce_round(broker, topic, "r2", 2)
        wait_consumed([w], r2)
        assert sorted((p, o) for p, o, _ in w.records(mark)) == sorted(r2)
    finally:
        kp.close()
        stop_all([w])
