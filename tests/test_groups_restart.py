"""Committed offsets and group state survive a broker restart, clean (SIGTERM) or kill -9.

Four groups on one topic before the restart:
- `closed`: consumed everything, committed, left: Empty with offsets at the end;
- `live`: a member that stays up across the broker restart, consuming before and after;
- `hammered`: 200 admin commits to the same partitions (the last one acknowledged just before the
  restart wins: replaying the compacted `__consumer_offsets` must keep the newest record per key);
- `deleted`: committed, then deleted: it must stay deleted (its tombstones replay too).
"""

from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from helpers import admin, create_topic, produce_all, producer, unique
from test_groups_support import (FAST_CONSUMER, GROUP_BROKER_CONFIGS, GroupWorker, requires_classic_groups,
                                 stop_all, wait_committed, wait_consumed)

pytestmark = [requires_classic_groups(), pytest.mark.timeout(120)]

N_PART = 3
OFFSET_INVALID = -1001


def produce_round(broker, topic, tag, per_part):
    recs = [{"partition": i % N_PART, "value": f"{tag}-{i}".encode()} for i in range(per_part * N_PART)]
    return {(d.partition, d.offset): d.value.decode() for d in produce_all(producer(broker), topic, recs)}


def offsets_of(adm, group, topic):
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(N_PART)])
    res = adm.list_consumer_group_offsets([req], request_timeout=15)[group].result(timeout=30)
    out = {}
    for tp in res.topic_partitions:
        assert tp.error is None, f"{group} {tp}"
        out[tp.partition] = (tp.offset, tp.metadata or "")
    return out


def alter(adm, group, offsets: dict, topic, metadata=None):
    res = adm.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p, o, **({"metadata": metadata} if metadata is not None else {}))
                for p, o in offsets.items()])],
        request_timeout=15)[group].result(timeout=30)
    assert all(tp.error is None for tp in res.topic_partitions), res.topic_partitions


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_groups_survive_broker_restart(broker_factory, how):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic = unique("rst")
    create_topic(broker, topic, N_PART)
    tag = unique("g")
    g = {k: f"{tag}-{k}" for k in ("closed", "live", "hammered", "deleted")}
    r1 = produce_round(broker, topic, "r1", 20)
    ends1 = {p: 20 for p in range(N_PART)}
    workers = []
    adm = admin(broker)
    try:
        closed = GroupWorker(broker.bootstrap, g["closed"], [topic], "k0", FAST_CONSUMER)
        live = GroupWorker(broker.bootstrap, g["live"], [topic], "l0", FAST_CONSUMER)
        workers += [closed, live]
        wait_consumed([closed], r1)
        wait_committed([closed], ends1)
        assert closed.close() == 0
        wait_consumed([live], r1)
        wait_committed([live], ends1)

        for i in range(200):
            alter(adm, g["hammered"], {p: i + p for p in range(N_PART)}, topic, metadata=f"round {i}")
        hammered = {p: (199 + p, f"round 199") for p in range(N_PART)}

        alter(adm, g["deleted"], {0: 5, 1: 6, 2: 7}, topic)
        assert adm.delete_consumer_groups([g["deleted"]])[g["deleted"]].result(timeout=30) is None

        before = {k: offsets_of(adm, v, topic) for k, v in g.items()}
        assert before["closed"] == before["live"] == {p: (20, "") for p in range(N_PART)}
        assert before["hammered"] == hammered
        assert before["deleted"] == {p: (OFFSET_INVALID, "") for p in range(N_PART)}

        live_mark = live.mark()
        broker.restart(kill=(how == "kill9"))
        adm = admin(broker)

        after = {k: offsets_of(adm, v, topic) for k, v in g.items()}
        assert after == before
        listed = {x.group_id: x for x in adm.list_consumer_groups(request_timeout=15).result(timeout=30).valid}
        assert listed[g["closed"]].state == ConsumerGroupState.EMPTY
        assert listed[g["hammered"]].state == ConsumerGroupState.EMPTY and listed[g["hammered"]].is_simple_consumer_group
        assert g["deleted"] not in listed
        assert g["live"] in listed

        # The member that lived through the restart carries on from its commits: new records once,
        # nothing of r1 again.
        r2 = produce_round(broker, topic, "r2", 10)
        wait_consumed([live], r2, timeout_s=60)
        wait_committed([live], {p: 30 for p in range(N_PART)})
        assert sorted((p, o) for p, o, _ in live.records(live_mark)) == sorted(r2)
        assert offsets_of(adm, g["live"], topic) == {p: (30, "") for p in range(N_PART)}

        # The closed group, restarted as a new consumer, also resumes at its commits.
        again = GroupWorker(broker.bootstrap, g["closed"], [topic], "k1", FAST_CONSUMER)
        workers.append(again)
        wait_consumed([again], r2)
        wait_committed([again], {p: 30 for p in range(N_PART)})
        assert sorted((p, o) for p, o, _ in again.records()) == sorted(r2)
    finally:
        stop_all(workers)


def test_offsets_survive_repeated_kill9(broker_factory):
    """Three kill -9 restarts, each right after a commit was acknowledged: every acknowledged commit
    is there after each restart."""
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("rk"), unique("g-rk")
    create_topic(broker, topic, N_PART)
    adm = admin(broker)
    for round_ in range(3):
        want = {p: 100 * round_ + 10 * p + 1 for p in range(N_PART)}
        alter(adm, group, want, topic, metadata=f"r{round_}")
        broker.restart(kill=True)
        adm = admin(broker)
        assert offsets_of(adm, group, topic) == {p: (o, f"r{round_}") for p, o in want.items()}
