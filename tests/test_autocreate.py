"""auto.create.topics.enable on (topics appear with num.partitions) and off (UNKNOWN_TOPIC_OR_PARTITION)."""

from __future__ import annotations

from confluent_kafka import KafkaError

import kwire
from helpers import admin, produce_all, produce_errors, producer, read_partition, wait_for_topic

UNKNOWN_TOPIC_OR_PARTITION = 3


def test_produce_to_new_topic_creates_it_with_num_partitions(broker_factory):
    b = broker_factory({"num.partitions": "3"})
    d = produce_all(producer(b), "auto-librdkafka", [{"key": b"k", "value": b"v"}])
    wait_for_topic(b, "auto-librdkafka", 3)
    assert d[0].offset == 0 and 0 <= d[0].partition < 3
    assert [m.value() for m in read_partition(b, "auto-librdkafka", d[0].partition, 0, 1)] == [b"v"]

    from helpers import kp_producer
    kp = kp_producer(b)
    md = kp.send("auto-kafka-python", key=b"k2", value=b"v2").get(timeout=30)
    kp.close()
    assert md.offset == 0
    wait_for_topic(b, "auto-kafka-python", 3)
    md_all = admin(b).list_topics(timeout=10).topics
    assert {t: len(md_all[t].partitions) for t in md_all if not t.startswith("__")} == \
        {"auto-librdkafka": 3, "auto-kafka-python": 3}


def test_metadata_request_auto_creates_only_when_allowed(broker_factory):
    b = broker_factory({"num.partitions": "2"})
    with kwire.connect(b.host, b.port) as sock:
        md = kwire.metadata_v4(sock, ["not-created"], allow_auto_create=False)
        assert [(t.name, t.error_code, t.partitions) for t in md.topics] == \
            [("not-created", UNKNOWN_TOPIC_OR_PARTITION, [])]
        md = kwire.metadata_v4(sock, ["created"], allow_auto_create=True)
        assert [t.name for t in md.topics] == ["created"]
        # While creating, Kafka answers UNKNOWN_TOPIC_OR_PARTITION or LEADER_NOT_AVAILABLE (5), or the ready
        # topic; either way it then exists (checked below).
        assert md.topics[0].error_code in (0, UNKNOWN_TOPIC_OR_PARTITION, 5)
    wait_for_topic(b, "created", 2)
    assert "not-created" not in admin(b).list_topics(timeout=10).topics


def test_auto_create_disabled(broker_factory):
    b = broker_factory({"auto.create.topics.enable": "false"})
    with kwire.connect(b.host, b.port) as sock:
        md = kwire.metadata_v4(sock, ["nowhere"], allow_auto_create=True)
    assert [(t.name, t.error_code, t.partitions) for t in md.topics] == [("nowhere", UNKNOWN_TOPIC_OR_PARTITION, [])]

    p = producer(b, **{"topic.metadata.propagation.max.ms": 1000, "message.timeout.ms": 10000})
    errs = produce_errors(p, "nowhere", [{"value": b"lost"}])
    # librdkafka reports the broker's UNKNOWN_TOPIC_OR_PART either as-is or as its local _UNKNOWN_TOPIC.
    assert errs[0] is not None and errs[0].code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), errs
    assert "nowhere" not in admin(b).list_topics(timeout=10).topics
    md = admin(b).list_topics(topic="nowhere", timeout=10)
    assert md.topics["nowhere"].error is not None
    assert md.topics["nowhere"].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
