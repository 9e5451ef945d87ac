"""OffsetCommit for topics or partitions that do not exist answers UNKNOWN_TOPIC_OR_PARTITION per
partition, as Kafka does, for classic and KIP-848 group members and for the admin API
(AlterConsumerGroupOffsets, a memberless commit); the partitions that do exist are still committed,
and no topic is created by it (librdkafka's 0030_offset_commit and 0081_admin check this)."""

from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition

from helpers import admin, consumer, create_topic, unique, wait_until
from test_groups_kip848 import KIP848_CONFIGS
from test_groups_support import GROUP_BROKER_CONFIGS

pytestmark = pytest.mark.timeout(120)


def committed(adm, group, tps):
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in tps])
    res = adm.list_consumer_group_offsets([req])[group].result(timeout=30)
    return {(tp.topic, tp.partition): tp.offset for tp in res.topic_partitions}


def commit_errors(c, offsets) -> dict:
    """Commits synchronously; returns {(topic, partition): error code or None}."""
    try:
        result = c.commit(offsets=offsets, asynchronous=False)
    except KafkaException as e:
        # librdkafka raises the first partition error; the partitions carry each one.
        result = e.args[0]
        assert isinstance(result, KafkaError)
        return {"raised": result.code()}
    return {(tp.topic, tp.partition): (tp.error.code() if tp.error else None) for tp in result}


def joined_member(broker, group, topic, protocol):
    conf = {"group.id": group, "auto.offset.reset": "earliest", "group.protocol": protocol}
    if protocol == "classic":
        conf["session.timeout.ms"] = 6000
    c = consumer(broker, **conf)
    c.subscribe([topic])
    wait_until(lambda: (c.poll(0.2), bool(c.assignment()))[1], timeout_s=60, what="assignment")
    return c


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_member_commit_to_unknown_topic_and_partition(broker_factory, protocol):
    broker = broker_factory({**GROUP_BROKER_CONFIGS, **KIP848_CONFIGS})
    topic, missing, group = unique("known"), unique("nonexistent"), unique(f"g-{protocol}")
    create_topic(broker, topic, 2)
    adm = admin(broker)
    c = joined_member(broker, group, topic, protocol)
    try:
        # Only unknown partitions: the whole commit fails with UNKNOWN_TOPIC_OR_PARTITION.
        assert commit_errors(c, [TopicPartition(missing, 0, 1)]) == \
            {"raised": KafkaError.UNKNOWN_TOPIC_OR_PART}
        assert commit_errors(c, [TopicPartition(topic, 5, 1)]) == {"raised": KafkaError.UNKNOWN_TOPIC_OR_PART}
        # Known partitions beside unknown ones are committed.
        try:
            c.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4),
                              TopicPartition(missing, 0, 1), TopicPartition(topic, 9, 1)], asynchronous=False)
        except KafkaException as e:
            assert e.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        assert committed(adm, group, [(topic, 0), (topic, 1)]) == {(topic, 0): 3, (topic, 1): 4}
    finally:
        c.close()
    # The commit created no topic (auto-creation is on).
    assert missing not in adm.list_topics(timeout=10).topics


def test_admin_alter_offsets_of_unknown_topic(broker):
    topic, missing, group = unique("known"), unique("nonexistent"), unique("g-admin")
    create_topic(broker, topic, 1)
    adm = admin(broker)
    res = adm.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, 0, 2), TopicPartition(missing, 0, 1), TopicPartition(missing, 1, 1)])])
    try:
        out = res[group].result(timeout=30)
        errors = {(tp.topic, tp.partition): tp.error.code() if tp.error else None for tp in out.topic_partitions}
    except KafkaException as e:
        pytest.fail(f"the request failed as a whole: {e}")
    assert errors == {(topic, 0): None, (missing, 0): KafkaError.UNKNOWN_TOPIC_OR_PART,
                      (missing, 1): KafkaError.UNKNOWN_TOPIC_OR_PART}
    assert committed(adm, group, [(topic, 0)]) == {(topic, 0): 2}
    assert missing not in adm.list_topics(timeout=10).topics
