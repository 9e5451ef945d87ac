"""Deleting a topic removes every group's committed offsets for it (as Kafka does),
so a topic re-created under the same name starts without stale positions; other
topics' offsets stay, also across a restart."""

import pytest
from confluent_kafka import TopicPartition

from helpers import admin, consumer, create_topic, wait_until

pytestmark = pytest.mark.timeout(120)


def committed(c, topics):
    return {tp.topic: tp.offset for tp in c.committed([TopicPartition(t, 0) for t in topics], timeout=30)}


def test_deleting_a_topic_drops_its_committed_offsets(broker):
    adm = admin(broker)
    create_topic(broker, "doomed", 1, adm=adm)
    create_topic(broker, "kept", 1, adm=adm)
    c = consumer(broker, **{"group.id": "deletion-group"})
    c.commit(offsets=[TopicPartition("doomed", 0, 5), TopicPartition("kept", 0, 7)], asynchronous=False)
    assert committed(c, ["doomed", "kept"]) == {"doomed": 5, "kept": 7}

    adm.delete_topics(["doomed"], request_timeout=15)["doomed"].result(timeout=30)
    wait_until(lambda: "doomed" not in adm.list_topics(timeout=10).topics, what="doomed gone")
    create_topic(broker, "doomed", 1, adm=adm)
    assert committed(c, ["doomed", "kept"]) == {"doomed": -1001, "kept": 7}
    c.close()

    broker.stop()
    broker.start()
    c = consumer(broker, **{"group.id": "deletion-group"})
    assert committed(c, ["doomed", "kept"]) == {"doomed": -1001, "kept": 7}
    c.close()
