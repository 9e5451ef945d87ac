"""Cluster operations on one broker, through real admin clients: ElectLeaders
(confluent-kafka), AlterPartitionReassignments and ListPartitionReassignments
(kafka-python), with Kafka's per-partition error codes; the replication throttle configs."""

from __future__ import annotations

import pytest
from confluent_kafka import ElectionType, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

from helpers import admin, create_topic, error_code, kp_admin, unique

ELECTION_NOT_NEEDED = 84
UNKNOWN_TOPIC_OR_PARTITION = 3


def election_codes(result: dict) -> dict:
    """{(topic, partition): error code or 0} from elect_leaders' result (KafkaError values)."""
    return {(tp.topic, tp.partition): (0 if err is None else err.code())
            for tp, err in result.items()}


def test_preferred_election_of_rf1_partitions_is_not_needed_and_unknown_ones_are_named(broker):
    adm = admin(broker)
    topic = unique("elect")
    create_topic(broker, topic, partitions=2, adm=adm)
    missing = unique("missing")
    result = adm.elect_leaders(
        ElectionType.PREFERRED,
        [TopicPartition(topic, 0), TopicPartition(topic, 1), TopicPartition(topic, 7),
         TopicPartition(missing, 0)]).result(timeout=30)
    assert election_codes(result) == {
        (topic, 0): ELECTION_NOT_NEEDED,
        (topic, 1): ELECTION_NOT_NEEDED,
        (topic, 7): UNKNOWN_TOPIC_OR_PARTITION,
        (missing, 0): UNKNOWN_TOPIC_OR_PARTITION,
    }
    # Each partition has its leader: an unclean election is not needed either.
    result = adm.elect_leaders(ElectionType.UNCLEAN, [TopicPartition(topic, 0)]).result(timeout=30)
    assert election_codes(result) == {(topic, 0): ELECTION_NOT_NEEDED}
    # Every partition (a null list): those needing no election are left out.
    assert adm.elect_leaders(ElectionType.PREFERRED, None).result(timeout=30) == {}


def test_reassignments_through_kafka_python(broker):
    from kafka import TopicPartition as KpTopicPartition
    from kafka.errors import for_code

    invalid_assignment, no_reassignment, unknown = for_code(39), for_code(85), for_code(3)
    assert (invalid_assignment.errno, no_reassignment.errno, unknown.errno) == (39, 85, 3)

    topic = unique("move")
    create_topic(broker, topic, partitions=2)
    kp = kp_admin(broker)
    try:
        tp0, tp1 = KpTopicPartition(topic, 0), KpTopicPartition(topic, 1)
        missing = KpTopicPartition(unique("missing"), 0)
        # To its own broker: nothing to move, so it completes at once; broker 2 does not exist.
        result = kp.alter_partition_reassignments({tp0: [1], tp1: [1, 2], missing: [1],
                                                   KpTopicPartition(topic, 5): [1]})
        assert result == {tp0: None, tp1: invalid_assignment,
                          missing: unknown,
                          KpTopicPartition(topic, 5): unknown}
        assert kp.list_partition_reassignments() == {}
        assert kp.list_partition_reassignments([tp0, tp1]) == {}
        # Cancelling when nothing moves.
        assert kp.alter_partition_reassignments({tp0: None}) == {tp0: no_reassignment}
        described = kp.describe_topics([topic])[0]["partitions"]
        assert sorted((p["partition_index"], p["leader_id"], p["replica_nodes"], p["isr_nodes"]) for p in described) == [
            (0, 1, [1], [1]), (1, 1, [1], [1])]
    finally:
        kp.close()


def test_replication_throttle_configs_are_checked_and_kept(broker):

    adm = admin(broker)
    topic = unique("throttle")
    create_topic(broker, topic, partitions=1, adm=adm)

    def alter(resource, name, value):
        entry = ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
        res = ConfigResource(resource, target[resource], incremental_configs=[entry])
        return adm.incremental_alter_configs([res])[res]

    target = {ResourceType.TOPIC: topic, ResourceType.BROKER: "1"}
    alter(ResourceType.TOPIC, "leader.replication.throttled.replicas", "0:1,0:2").result(timeout=30)
    alter(ResourceType.TOPIC, "follower.replication.throttled.replicas", "*").result(timeout=30)
    with pytest.raises(KafkaException) as exc:
        alter(ResourceType.TOPIC, "leader.replication.throttled.replicas", "0-1").result(timeout=30)
    assert error_code(exc.value) == 40  # INVALID_CONFIG
    alter(ResourceType.BROKER, "leader.replication.throttled.rate", "1048576").result(timeout=30)
    alter(ResourceType.BROKER, "follower.replication.throttled.rate", "2097152").result(timeout=30)

    res = ConfigResource(ResourceType.TOPIC, topic)
    configs = adm.describe_configs([res])[res].result(timeout=30)
    assert (configs["leader.replication.throttled.replicas"].value,
            configs["follower.replication.throttled.replicas"].value) == ("0:1,0:2", "*")
    res = ConfigResource(ResourceType.BROKER, "1")
    configs = adm.describe_configs([res])[res].result(timeout=30)
    assert (configs["leader.replication.throttled.rate"].value,
            configs["follower.replication.throttled.rate"].value) == ("1048576", "2097152")
