"""Issue #10, items 5-7: group behaviours librdkafka's own test suite checks (0045, 0081, 0113),
replayed with confluent-kafka against the real broker.

- KIP-848 subscription changes: a new subscription replaces the old one; a new regex is resolved
  after the heartbeat that brought it, so literal topics are assigned first (librdkafka
  0045_resubscribe_with_regex), and many quick updates converge (0045_subscribe_many_updates).
- Static members that close without leaving stay until their session times out, and no longer
  (0081 DescribeConsumerGroups: DeleteGroups right after the session timeout).
- Cooperative-sticky rebalancing under repeated subscription changes converges (0113
  u_multiple_subscription_changes, compressed)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import NewTopic

from helpers import admin, create_topic, produce_all, producer, unique
from test_groups_support import GROUP_BROKER_CONFIGS, requires_classic_groups, requires_kip848

pytestmark = [requires_classic_groups(), pytest.mark.timeout(120)]

KIP848_CONFIGS = {
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.session.timeout.ms": "6000",
}
NON_EMPTY_GROUP = 68


def tps(parts) -> set[tuple[str, int]]:
    return {(tp.topic, tp.partition) for tp in parts}


def all_parts(topic: str, n: int) -> set[tuple[str, int]]:
    return {(topic, p) for p in range(n)}


class Tracked:
    """A consumer whose rebalance callbacks are recorded in order."""

    def __init__(self, broker, group: str, **conf):
        self.events: list[tuple[str, set]] = []
        self.c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                           "auto.offset.reset": "earliest", "enable.auto.commit": False, **conf})

    def subscribe(self, topics):
        self.c.subscribe(topics, on_assign=lambda c, p: self.events.append(("assign", tps(p))),
                         on_revoke=lambda c, p: self.events.append(("revoke", tps(p))))

    def assignment(self) -> set[tuple[str, int]]:
        return tps(self.c.assignment())

    def next_event(self, kind: str, timeout_s: float = 30) -> set:
        """Polls until the next rebalance event; it must be of `kind`."""
        deadline = time.monotonic() + timeout_s
        while not self.events:
            assert time.monotonic() < deadline, f"no {kind} event within {timeout_s}s"
            self.c.poll(0.1)
        got, parts = self.events.pop(0)
        assert got == kind, f"expected {kind}, got {got} {sorted(parts)}"
        return parts

    def wait_assignment(self, expected: set, timeout_s: float = 30):
        deadline = time.monotonic() + timeout_s
        while self.assignment() != expected:
            assert time.monotonic() < deadline, \
                f"assignment {sorted(self.assignment())} != expected {sorted(expected)}"
            self.c.poll(0.1)


# --- item 5: KIP-848 subscription changes ------------------------------------------------------

@requires_kip848()
def test_kip848_resubscribe_with_regex(broker_factory):
    """librdkafka 0045_resubscribe_with_regex with group.protocol=consumer."""
    broker = broker_factory({**GROUP_BROKER_CONFIGS, **KIP848_CONFIGS})
    prefix = unique("rx")
    t1, t2, ta = f"{prefix}_topic_regex1", f"{prefix}_topic_regex2", f"{prefix}_topic_a"
    create_topic(broker, t1, 4)
    create_topic(broker, t2, 4)
    create_topic(broker, ta, 2)
    c = Tracked(broker, unique("g-rx"), **{"group.protocol": "consumer"})
    regex = f"^{prefix}_topic_regex.*"
    try:
        for topics, expected in (([t1], all_parts(t1, 4)), ([t2], all_parts(t2, 4)),
                                 ([regex], all_parts(t1, 4) | all_parts(t2, 4))):
            c.subscribe(topics)
            assert c.next_event("assign") == expected
            c.wait_assignment(expected)
            c.c.unsubscribe()
            assert c.next_event("revoke") == expected
            c.wait_assignment(set())

        # Regex and a name: as in Kafka, the name is assigned by the heartbeat that brings the
        # subscription, the regex's topics once it is resolved (a later epoch).
        c.subscribe([regex, ta])
        assert c.next_event("assign") == all_parts(ta, 2)
        assert c.next_event("assign") == all_parts(t1, 4) | all_parts(t2, 4)
        c.wait_assignment(all_parts(t1, 4) | all_parts(t2, 4) | all_parts(ta, 2))

        # Without unsubscribing: regex+name -> one name; only that name's partitions stay.
        c.subscribe([ta])
        assert c.next_event("revoke") == all_parts(t1, 4) | all_parts(t2, 4)
        c.wait_assignment(all_parts(ta, 2))
        # Name -> regex: the name's partitions go, the regex's come once resolved.
        c.subscribe([f"^{prefix}_topic_regex1"])
        c.wait_assignment(all_parts(t1, 4))
        assert ("assign", all_parts(ta, 2)) not in c.events
    finally:
        c.c.close()


@requires_kip848()
def test_kip848_many_quick_subscription_updates_converge(broker_factory):
    """librdkafka 0045_subscribe_many_updates (30 topics instead of 100): subscribe to a sliding
    window of 5 topics, unsubscribe right after every 7th, check every 5th and the last."""
    broker = broker_factory({**GROUP_BROKER_CONFIGS, **KIP848_CONFIGS})
    n, parts = 30, 4
    prefix = unique("many")
    topics = [f"{prefix}-{i}" for i in range(n)]
    adm = admin(broker)
    for f in adm.create_topics([NewTopic(t, parts, 1) for t in topics], request_timeout=30).values():
        f.result(timeout=30)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topics[0], "group.protocol": "consumer"})
    try:
        for i in range(n):
            window = topics[i:i + 5]
            c.subscribe(window)
            unsubscribe = i % 7 == 0
            if unsubscribe:
                c.unsubscribe()
            if i % 5 == 0 or i == n - 1:
                expected = set() if unsubscribe else {(t, p) for t in window for p in range(parts)}
                deadline = time.monotonic() + 20
                while tps(c.assignment()) != expected:
                    assert time.monotonic() < deadline, \
                        f"step {i}: assignment {sorted(tps(c.assignment()))} != {sorted(expected)}"
                    c.poll(0.1)
    finally:
        c.close()


# --- item 6: static members that close without leaving -----------------------------------------

def delete_error(adm, group: str) -> int | None:
    try:
        adm.delete_consumer_groups([group], request_timeout=10)[group].result(timeout=15)
        return None
    except KafkaException as e:
        return e.args[0].code()


def consume_some(c: Consumer, want: int, timeout_s: float = 30) -> int:
    got, deadline = 0, time.monotonic() + timeout_s
    while got < want and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            got += 1
    return got


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_closed_static_members_leave_at_session_timeout(broker_factory, protocol):
    """librdkafka 0081 do_test_DescribeConsumerGroups: static members consume, close (no
    LeaveGroup in classic, member epoch -2 in KIP-848), and the group can be deleted as soon as
    their session timed out, not before."""
    if protocol == "consumer":
        from test_groups_support import lacks_api, API_CONSUMER_GROUP_HEARTBEAT
        if lacks_api(API_CONSUMER_GROUP_HEARTBEAT):
            pytest.skip("broker does not advertise ConsumerGroupHeartbeat")
    session_ms = 5000
    broker = broker_factory({**GROUP_BROKER_CONFIGS, "group.min.session.timeout.ms": "1000",
                             "group.consumer.heartbeat.interval.ms": "500",
                             "group.consumer.min.session.timeout.ms": "1000",
                             "group.consumer.session.timeout.ms": str(session_ms)})
    topic, group = unique("static"), unique("g-static")
    create_topic(broker, topic, 2)
    produce_all(producer(broker), topic, [{"partition": i % 2, "value": b"v%d" % i} for i in range(20)])
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": True}
    if protocol == "consumer":
        conf["group.protocol"] = "consumer"
    else:
        conf["session.timeout.ms"] = session_ms
    cs = []
    for i in range(2):
        c = Consumer({**conf, "group.instance.id": f"{group}-i{i}", "client.id": f"c{i}"})
        c.subscribe([topic])
        cs.append(c)
    got = 0
    deadline = time.monotonic() + 30
    while got < 20 and time.monotonic() < deadline:
        for c in cs:
            got += consume_some(c, 1, 0.2)
    assert got == 20
    adm = admin(broker)
    d = adm.describe_consumer_groups([group])[group].result(timeout=15)
    assert sorted(m.group_instance_id for m in d.members) == [f"{group}-i0", f"{group}-i1"]

    for c in cs:
        c.close()
    closed = time.monotonic()
    # Still members until the session times out.
    assert delete_error(adm, group) == NON_EMPTY_GROUP
    d = adm.describe_consumer_groups([group])[group].result(timeout=15)
    assert sorted(m.group_instance_id for m in d.members) == [f"{group}-i0", f"{group}-i1"]
    time.sleep(max(0.0, closed + session_ms / 1000 - 1.0 - time.monotonic()))
    assert delete_error(adm, group) == NON_EMPTY_GROUP
    # Gone right after it: the last heartbeat or commit was before close() returned, and a request
    # after the deadline sees the expiry even if the broker's timer has not run yet.
    time.sleep(max(0.0, closed + session_ms / 1000 + 0.1 - time.monotonic()))
    assert delete_error(adm, group) is None
    listed = {g.group_id for g in adm.list_consumer_groups().result(timeout=15).valid}
    assert group not in listed


# --- item 7: cooperative-sticky under repeated subscription changes ----------------------------

def test_cooperative_multiple_subscription_changes_converge(broker_factory):
    """librdkafka 0113 u_multiple_subscription_changes (variation 0, its playbook at half speed):
    8 cooperative-sticky consumers switch between [t1] and [t1, t2]; afterwards every partition of
    a subscribed topic is owned by exactly one consumer subscribed to it, shared evenly."""
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    t1, t2, group = unique("u1"), unique("u2"), unique("g-u")
    create_topic(broker, t1, 16)
    create_topic(broker, t2, 16)
    s1, s2 = [t1], [t1, t2]
    cs = [Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": f"C_{i}",
                    "auto.offset.reset": "earliest", "enable.auto.commit": False,
                    "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
                    "partition.assignment.strategy": "cooperative-sticky"}) for i in range(8)]
    playbook = [(0, 0, s1), (2000, 1, s1), (2000, 1, s1), (2000, 1, s1), (2000, 2, s1), (3000, 3, s1),
                (3000, 4, s1), (3000, 5, s1), (3000, 6, s1), (3000, 7, s2), (3000, 1, s1), (3000, 1, s2),
                (3000, 1, s1), (3000, 2, s2), (3500, 2, s1), (3500, 1, s2), (4000, 0, s2), (4000, 1, s1),
                (4000, 0, s1), (6500, 2, s1), (6500, 1, s2), (6500, 5, s2), (7000, 6, s2), (7500, 7, s1),
                (7500, 1, s1), (7500, 5, s1), (7500, 6, s1)]
    subs: dict[int, list[str]] = {}

    def poll_all(until: float):
        while True:
            for c in cs:
                c.poll(0.01)
            if time.monotonic() >= until:
                return

    def assignments():
        return [tps(c.assignment()) for c in cs]

    try:
        start = time.monotonic()
        for at_ms, who, topics in playbook:
            poll_all(start + at_ms / 1000)
            subs[who] = topics
            cs[who].subscribe(topics)
        subscribers = {t: [i for i, ts in subs.items() if t in ts] for t in (t1, t2)}
        expected_counts = [sum(16 // len(subscribers[t]) for t in subs.get(i, [])) for i in range(8)]
        deadline = time.monotonic() + 40
        while True:
            poll_all(time.monotonic() + 0.5)
            owned = assignments()
            flat = [tp for o in owned for tp in o]
            ok = ([len(o) for o in owned] == expected_counts and len(flat) == len(set(flat))
                  and set(flat) == {(t, p) for t in (t1, t2) if subscribers[t] for p in range(16)}
                  and all(t in subs[i] for i, o in enumerate(owned) for t, _ in o))
            if ok:
                break
            assert time.monotonic() < deadline, f"not converged: {[sorted(o) for o in owned]}, want counts {expected_counts}"
        # And it stays that way (no further rebalance churn).
        poll_all(time.monotonic() + 3)
        assert assignments() == owned
    finally:
        for c in cs:
            c.close()
