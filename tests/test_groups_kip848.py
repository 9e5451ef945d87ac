"""KIP-848 consumer groups (`group.protocol=consumer`: ConsumerGroupHeartbeat, server-side assignment).

Skipped until the broker advertises ConsumerGroupHeartbeat (API key 68); they turn on by themselves.
Of the installed clients only librdkafka (confluent-kafka 2.16) speaks KIP-848; kafka-python 3.0.12
and kafkajs 2.2.4 have only the classic protocol. With KIP-848 the session timeout, heartbeat interval
and assignor are the broker's (`group.consumer.*`), so the consumers set none of them."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from helpers import admin, create_topic, produce_all, producer, unique
from test_groups_support import (GROUP_BROKER_CONFIGS, GroupWorker, partitions_split, requires_classic_groups,
                                 requires_kip848, stop_all, wait_assignments, wait_committed, wait_consumed)

pytestmark = [requires_classic_groups(), requires_kip848(), pytest.mark.timeout(180)]

N_PART = 6
# Kafka's KIP-848 broker configs, lowered so rebalances and session expiry are quick (Kafka's minimums
# are 5 s heartbeat and 45 s session by default, so the minimums move too).
KIP848_CONFIGS = {
    "group.consumer.min.heartbeat.interval.ms": "500",
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.min.session.timeout.ms": "6000",
    "group.consumer.session.timeout.ms": "6000",
}
CONSUMER = {"group.protocol": "consumer", "fetch.wait.max.ms": 100}


def produce_round(broker, topic, tag, per_part):
    recs = [{"partition": i % N_PART, "value": f"{tag}-{i}".encode()} for i in range(per_part * N_PART)]
    return {(d.partition, d.offset): d.value.decode() for d in produce_all(producer(broker), topic, recs)}


def committed(adm, group, topic):
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(N_PART)])
    return {tp.partition: tp.offset for tp in adm.list_consumer_group_offsets([req])[group].result(timeout=30).topic_partitions}


def test_consumer_protocol_group(broker_factory):
    broker = broker_factory({**GROUP_BROKER_CONFIGS, **KIP848_CONFIGS})
    topic, group = unique("kip848"), unique("g-848")
    create_topic(broker, topic, N_PART)
    ws = [GroupWorker(broker.bootstrap, group, [topic], f"c{i}", CONSUMER) for i in range(3)]
    c0, c1, c2 = ws
    adm = admin(broker)
    try:
        # The broker's uniform assignor balances 6 partitions over 3 members.
        wait_assignments(ws, lambda o: partitions_split(o, N_PART, [2, 2, 2]), what="2/2/2")
        d = adm.describe_consumer_groups([group])[group].result(timeout=30)
        assert d.state == ConsumerGroupState.STABLE
        assert d.type.name == "CONSUMER"
        assert d.partition_assignor == "uniform"
        assert sorted(m.client_id for m in d.members) == ["c0", "c1", "c2"]
        assert {m.client_id: {tp.partition for tp in m.assignment.topic_partitions} for m in d.members} == \
            {w.name: w.owned() for w in ws}
        listed = {g.group_id: g for g in adm.list_consumer_groups().result(timeout=30).valid}
        assert listed[group].type.name == "CONSUMER" and listed[group].state == ConsumerGroupState.STABLE

        r1 = produce_round(broker, topic, "r1", 10)
        wait_consumed(ws, r1)
        wait_committed(ws, {p: 10 for p in range(N_PART)})
        reads = [(p, o) for w in ws for p, o, _ in w.records()]
        assert sorted(reads) == sorted(r1)
        assert committed(adm, group, topic) == {p: 10 for p in range(N_PART)}

        # c2 leaves (heartbeat with epoch -1): c0 and c1 keep theirs and split c2's (incremental).
        before = [c0.owned(), c1.owned()]
        marks = [c0.mark(), c1.mark()]
        assert c2.close() == 0
        after = wait_assignments([c0, c1], lambda o: partitions_split(o, N_PART, [3, 3]), what="3/3")
        for w, m, b, a in zip((c0, c1), marks, before, after):
            assert b < a
            assert w.of("revoke", m) == [] and w.of("lost", m) == [], w.snapshot()[m:]

        # c1 is killed: c0 gets everything once c1's 6 s session expires, from c1's commits on.
        mark = c0.mark()
        c1.kill()
        killed = time.monotonic()
        r2 = produce_round(broker, topic, "r2", 5)
        wait_assignments([c0], [set(range(N_PART))], timeout_s=60, what="c0 owning all")
        assert time.monotonic() - killed >= 5.0
        wait_consumed([c0], r2)
        wait_committed([c0], {p: 15 for p in range(N_PART)})
        c0_reads = [(p, o) for p, o, _ in c0.records(mark)]
        assert sorted(c0_reads) == sorted(r2), "everything of r2 once, nothing of r1 again"
    finally:
        stop_all(ws)


@pytest.mark.xfail(strict=True, reason=(
    "mixed classic and consumer-protocol members in one group (Kafka 4's online upgrade, "
    "group.consumer.migration.policy) are not implemented: the consumer-protocol member of a "
    "live classic group gets GROUP_ID_NOT_FOUND"))
def test_consumer_protocol_member_joins_live_classic_group(broker_factory):
    """Kafka 4's online upgrade (group.consumer.migration.policy=bidirectional, the default): a
    consumer-protocol member joining a live classic group turns it into a consumer group; the classic
    member stays in it through JoinGroup/SyncGroup/Heartbeat and both get half the partitions."""
    broker = broker_factory({**GROUP_BROKER_CONFIGS, **KIP848_CONFIGS})
    topic, group = unique("mig"), unique("g-mig")
    create_topic(broker, topic, N_PART)
    classic = GroupWorker(broker.bootstrap, group, [topic], "a-classic",
                          {"session.timeout.ms": 6000, "heartbeat.interval.ms": 300,
                           "partition.assignment.strategy": "range"})
    new = None
    try:
        wait_assignments([classic], [set(range(N_PART))], what="classic member owns all")
        new = GroupWorker(broker.bootstrap, group, [topic], "b-consumer", CONSUMER)
        wait_assignments([classic, new], lambda o: partitions_split(o, N_PART, [3, 3]), timeout_s=15,
                         what="classic + consumer-protocol member, 3/3")
        r1 = produce_round(broker, topic, "r1", 4)
        wait_consumed([classic, new], r1)
        reads = [(p, o) for w in (classic, new) for p, o, _ in w.records()]
        assert sorted(reads) == sorted(r1)
    finally:
        stop_all([classic] + ([new] if new else []))


def test_consumer_protocol_regex_subscription(broker_factory):
    """librdkafka sends a `^`-pattern subscription to the broker as SubscribedTopicRegex; the
    coordinator matches whole topic names and follows topics created later."""
    from confluent_kafka import Consumer

    broker = broker_factory({**GROUP_BROKER_CONFIGS, **KIP848_CONFIGS})
    prefix = unique("rx")
    for name in (f"{prefix}-a", f"{prefix}-b", f"other-{prefix}"):
        create_topic(broker, name, 2)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g-rx"),
                  "topic.metadata.refresh.interval.ms": 500, **CONSUMER})
    c.subscribe([f"^{prefix}-.*"])

    def owned():
        c.poll(0.2)
        return sorted((tp.topic, tp.partition) for tp in c.assignment())

    deadline = time.monotonic() + 60
    while owned() != [(f"{prefix}-a", 0), (f"{prefix}-a", 1), (f"{prefix}-b", 0), (f"{prefix}-b", 1)]:
        assert time.monotonic() < deadline, f"assignment {owned()}"
    create_topic(broker, f"{prefix}-c", 1)
    while (f"{prefix}-c", 0) not in owned():
        assert time.monotonic() < deadline, f"assignment {owned()}"
    assert all(t.startswith(f"{prefix}-") for t, _ in owned())
    c.close()
