"""Group admin APIs (ListGroups, DescribeGroups, DeleteGroups, OffsetFetch, admin OffsetCommit,
OffsetDelete) through confluent-kafka's AdminClient and kafka-python's KafkaAdminClient.

Three groups on one 4-partition topic:
- `active`: one live member (client a0) that consumed and committed everything: Stable;
- `left`: its only member consumed, committed and closed (LeaveGroup): Empty, protocol type consumer;
- `simple`: never had members, offsets set by the admin client only: Empty, a "simple" group."""

from __future__ import annotations

import pytest
from confluent_kafka import (ConsumerGroupState, ConsumerGroupTopicPartitions, ConsumerGroupType, KafkaException,
                             TopicPartition)

from helpers import admin, create_topic, produce_all, producer, unique
from test_groups_support import (FAST_CONSUMER, GROUP_BROKER_CONFIGS, GroupWorker, requires_classic_groups,
                                 stop_all, wait_assignments, wait_committed, wait_consumed)

pytestmark = [requires_classic_groups(), pytest.mark.timeout(120)]

N_PART = 4
PER_PART = 10
OFFSET_INVALID = -1001  # librdkafka's "no committed offset"

UNKNOWN_MEMBER_ID = 25
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69


def offsets_of(adm, group: str, topic: str, partitions=range(N_PART)) -> dict[int, tuple[int, str]]:
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    res = adm.list_consumer_group_offsets([req])[group].result(timeout=30)
    assert res.group_id == group
    out = {}
    for tp in res.topic_partitions:
        assert tp.error is None, f"{group} {tp}: {tp.error}"
        assert tp.topic == topic
        out[tp.partition] = (tp.offset, tp.metadata or "")
    return out


def listing(adm, **kw) -> dict:
    res = adm.list_consumer_groups(request_timeout=15, **kw).result(timeout=30)
    assert res.errors == [], res.errors
    return {g.group_id: g for g in res.valid}


def kafka_code(exc: KafkaException) -> int:
    return exc.args[0].code()


@pytest.fixture
def groups(broker_factory):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic = unique("adm")
    create_topic(broker, topic, N_PART)
    recs = [{"partition": i % N_PART, "value": f"v{i}".encode()} for i in range(N_PART * PER_PART)]
    produce_all(producer(broker), topic, recs)
    tag = unique("g")
    names = {"active": f"{tag}-active", "left": f"{tag}-left", "simple": f"{tag}-simple"}
    every = {(p, o): None for p in range(N_PART) for o in range(PER_PART)}
    ends = {p: PER_PART for p in range(N_PART)}
    workers = []
    try:
        left = GroupWorker(broker.bootstrap, names["left"], [topic], "l0", FAST_CONSUMER)
        workers.append(left)
        wait_consumed([left], every)
        wait_committed([left], ends)
        assert left.close() == 0
        active = GroupWorker(broker.bootstrap, names["active"], [topic], "a0",
                             {**FAST_CONSUMER, "partition.assignment.strategy": "range"})
        workers.append(active)
        wait_assignments([active], [set(range(N_PART))])
        wait_consumed([active], every)
        wait_committed([active], ends)
        adm = admin(broker)
        res = adm.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
            names["simple"], [TopicPartition(topic, 0, 3, metadata="m-zero"), TopicPartition(topic, 1, 7)])])
        done = res[names["simple"]].result(timeout=30)
        assert [(tp.partition, tp.offset, tp.error) for tp in done.topic_partitions] == [(0, 3, None), (1, 7, None)]
        yield broker, adm, topic, names, workers
    finally:
        stop_all(workers)


def test_list_and_describe_groups(groups):
    broker, adm, topic, names, workers = groups
    got = listing(adm)
    mine = {k: got[v] for k, v in names.items()}
    assert {k: g.state for k, g in mine.items()} == {
        "active": ConsumerGroupState.STABLE, "left": ConsumerGroupState.EMPTY, "simple": ConsumerGroupState.EMPTY}
    assert {k: g.is_simple_consumer_group for k, g in mine.items()} == {"active": False, "left": False, "simple": True}
    assert {g.type for g in mine.values()} == {ConsumerGroupType.CLASSIC}  # ListGroups v5 group types
    assert not [g for g in got if g.startswith("__")], "internal topics are not groups"

    # ListGroups with a states filter (v4+).
    stable = listing(adm, states={ConsumerGroupState.STABLE})
    assert names["active"] in stable and names["left"] not in stable and names["simple"] not in stable
    empty = listing(adm, states={ConsumerGroupState.EMPTY})
    assert names["left"] in empty and names["simple"] in empty and names["active"] not in empty

    futs = adm.describe_consumer_groups(list(names.values()) + [unique("nosuch")])
    d = {k: futs[v].result(timeout=30) for k, v in names.items()}
    a = d["active"]
    assert (a.group_id, a.state, a.partition_assignor, a.is_simple_consumer_group) == \
        (names["active"], ConsumerGroupState.STABLE, "range", False)
    assert a.coordinator.id == 1 and a.coordinator.port == broker.port
    assert a.type == ConsumerGroupType.CLASSIC
    assert len(a.members) == 1
    m = a.members[0]
    assert m.client_id == "a0" and m.member_id.startswith("a0-") and m.group_instance_id is None
    assert m.host == "/127.0.0.1", m.host
    assert sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions) == \
        [(topic, p) for p in range(N_PART)]

    left = d["left"]
    assert (left.state, left.members, left.partition_assignor, left.is_simple_consumer_group) == \
        (ConsumerGroupState.EMPTY, [], "", False)
    simple = d["simple"]
    assert (simple.state, simple.members, simple.is_simple_consumer_group) == (ConsumerGroupState.EMPTY, [], True)
    # An unknown group: DescribeGroups before v6 answers state Dead with no error (librdkafka asks v5).
    nosuch = [f for g, f in futs.items() if g not in names.values()][0].result(timeout=30)
    assert (nosuch.state, nosuch.members) == (ConsumerGroupState.DEAD, [])


def test_list_and_alter_offsets(groups):
    broker, adm, topic, names, workers = groups
    assert offsets_of(adm, names["active"], topic) == {p: (PER_PART, "") for p in range(N_PART)}
    assert offsets_of(adm, names["left"], topic) == {p: (PER_PART, "") for p in range(N_PART)}
    # Metadata comes back as committed; partitions never committed read as "no offset".
    assert offsets_of(adm, names["simple"], topic) == {0: (3, "m-zero"), 1: (7, ""), 2: (OFFSET_INVALID, ""),
                                                        3: (OFFSET_INVALID, "")}
    # An unknown group has no offsets (not an error).
    assert offsets_of(adm, unique("nosuch"), topic) == {p: (OFFSET_INVALID, "") for p in range(N_PART)}

    # Altering an empty group's offsets works; a consumer then starts exactly there.
    new = {0: 2, 1: 4, 2: 6, 3: 8}
    res = adm.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        names["left"], [TopicPartition(topic, p, o) for p, o in new.items()])])[names["left"]].result(timeout=30)
    assert [(tp.partition, tp.offset, tp.error) for tp in res.topic_partitions] == [(p, o, None) for p, o in new.items()]
    assert offsets_of(adm, names["left"], topic) == {p: (o, "") for p, o in new.items()}
    w = GroupWorker(broker.bootstrap, names["left"], [topic], "l1", FAST_CONSUMER)
    workers.append(w)
    want = {(p, o): None for p, start in new.items() for o in range(start, PER_PART)}
    wait_consumed([w], want)
    wait_committed([w], {p: PER_PART for p in range(N_PART)})
    assert sorted((p, o) for p, o, _ in w.records()) == sorted(want), "read exactly from the altered offsets on"

    # Altering a group with live members is refused per partition (the admin commits as generation -1
    # with no member id): UNKNOWN_MEMBER_ID.
    res = adm.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        names["active"], [TopicPartition(topic, 0, 1)])])[names["active"]].result(timeout=30)
    [tp] = res.topic_partitions
    assert tp.error is not None and tp.error.code() == UNKNOWN_MEMBER_ID, tp
    assert offsets_of(adm, names["active"], topic)[0] == (PER_PART, "")


def test_delete_groups(groups):
    broker, adm, topic, names, workers = groups
    nosuch = unique("nosuch")
    futs = adm.delete_consumer_groups([names["left"], names["simple"], names["active"], nosuch], request_timeout=15)
    assert futs[names["left"]].result(timeout=30) is None
    assert futs[names["simple"]].result(timeout=30) is None
    with pytest.raises(KafkaException) as e:
        futs[names["active"]].result(timeout=30)
    assert kafka_code(e.value) == NON_EMPTY_GROUP, e.value
    with pytest.raises(KafkaException) as e:
        futs[nosuch].result(timeout=30)
    assert kafka_code(e.value) == GROUP_ID_NOT_FOUND, e.value

    got = listing(adm)
    assert names["left"] not in got and names["simple"] not in got and names["active"] in got
    # Deleting a group deletes its offsets.
    assert offsets_of(adm, names["left"], topic) == {p: (OFFSET_INVALID, "") for p in range(N_PART)}
    assert offsets_of(adm, names["simple"], topic) == {p: (OFFSET_INVALID, "") for p in range(N_PART)}
    assert offsets_of(adm, names["active"], topic) == {p: (PER_PART, "") for p in range(N_PART)}

    # Once its last member leaves, the active group can be deleted too.
    workers[1].close()
    assert adm.delete_consumer_groups([names["active"]])[names["active"]].result(timeout=30) is None
    assert names["active"] not in listing(adm)


def test_offset_delete(groups):
    """OffsetDelete through kafka-python (confluent-kafka's AdminClient has no call for it)."""
    from kafka import TopicPartition as KTP
    from kafka import errors as kerr

    from helpers import kp_admin
    broker, adm, topic, names, workers = groups
    kadm = kp_admin(broker)
    try:
        res = kadm.delete_group_offsets(names["simple"], [KTP(topic, 0)])
        assert res == {KTP(topic, 0): kerr.NoError}
        assert offsets_of(adm, names["simple"], topic) == {0: (OFFSET_INVALID, ""), 1: (7, ""),
                                                            2: (OFFSET_INVALID, ""), 3: (OFFSET_INVALID, "")}
        # A group whose live member is subscribed to the topic keeps its offsets.
        res = kadm.delete_group_offsets(names["active"], [KTP(topic, 1)])
        assert res == {KTP(topic, 1): kerr.GroupSubscribedToTopicError}
        assert offsets_of(adm, names["active"], topic)[1] == (PER_PART, "")
        with pytest.raises(kerr.GroupIdNotFoundError):
            kadm.delete_group_offsets(unique("nosuch"), [KTP(topic, 0)])
    finally:
        kadm.close()


def test_kafka_python_admin_agrees(groups):
    """kafka-python's KafkaAdminClient sees the same groups, states, members and offsets."""
    from kafka import TopicPartition as KTP

    from helpers import kp_admin
    broker, adm, topic, names, workers = groups
    kadm = kp_admin(broker)
    try:
        listed = {g["group_id"]: g for g in kadm.list_groups()}
        assert {k: (listed[v]["protocol_type"], listed[v]["group_state"]) for k, v in names.items()} == {
            "active": ("consumer", "Stable"), "left": ("consumer", "Empty"), "simple": ("", "Empty")}
        desc = kadm.describe_groups([names["active"]])[names["active"]]
        assert (desc["error"], desc["group_state"], desc["protocol_type"], desc["protocol_data"]) == \
            (None, "Stable", "consumer", "range"), desc
        [m] = desc["members"]
        assert (m["client_id"], m["client_host"], m["group_instance_id"]) == ("a0", "/127.0.0.1", None)
        assert m["member_metadata"]["topics"] == [topic]
        assert m["member_assignment"]["assigned_partitions"] == [{"topic": topic, "partitions": list(range(N_PART))}]
        offs = kadm.list_group_offsets({names["active"]: None, names["simple"]: None})
        assert {tp: om.offset for tp, om in offs[names["active"]].items()} == \
            {KTP(topic, p): PER_PART for p in range(N_PART)}
        # confluent-kafka sends commit metadata with its C string's NUL terminator; the broker keeps the
        # bytes as sent, so kafka-python reads the NUL back (librdkafka's C string hides it).
        assert {tp.partition: (om.offset, om.metadata) for tp, om in offs[names["simple"]].items()} == \
            {0: (3, "m-zero\x00"), 1: (7, "")}
    finally:
        kadm.close()
