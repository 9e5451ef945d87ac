"""Broker-side schema id validation (`confluent.key.schema.validation`,
`confluent.value.schema.validation`): a record whose key or value does not carry a schema id
registered under the topic's subject is refused with INVALID_RECORD; nothing of its batch is
written; other topics are not checked."""

from __future__ import annotations

import json
import struct
import time

from confluent_kafka import KafkaError
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from helpers import admin, create_topic, produce_all, produce_errors, producer, read_partition, unique, watermarks
from registry_helpers import RegistryClient, record

ORDER = record("Order", ("id", "long"), ("item", "string"))


def framed(schema_id: int, payload: bytes = b"\x02\x02x") -> bytes:
    return b"\x00" + struct.pack(">i", schema_id) + payload


def one_by_one(p, topic, records):
    """Each record in its own batch, so each gets its own answer."""
    return [produce_errors(p, topic, [r])[0] for r in records]


def codes(errors):
    return [None if e is None else e.code() for e in errors]


def test_values_without_a_registered_id_are_refused(broker_factory):
    b = broker_factory(registry=True)
    sr = RegistryClient(b.registry_url)
    topic = unique("validated")
    create_topic(b, topic, 1, config={"confluent.value.schema.validation": "true"})
    order_id = sr.register(f"{topic}-value", ORDER)
    elsewhere_id = sr.register(unique("elsewhere") + "-value", record("Other", ("x", "int")))
    assert elsewhere_id != order_id

    # confluent-kafka's Avro serializer frames the value with the registered id: accepted.
    client = SchemaRegistryClient({"url": b.registry_url})
    serialize = AvroSerializer(client, json.dumps(ORDER), conf={"auto.register.schemas": False,
                                                                           "use.latest.version": True})
    value = serialize({"id": 7, "item": "book"}, SerializationContext(topic, MessageField.VALUE))
    assert value[:5] == framed(order_id)[:5]
    # This producer's first flush also gives it the topic's leader, so that its later records go
    # straight to the partition's queue and are sent as one batch (records waiting for metadata
    # can be split when a flush ignores linger.ms).
    batching = producer(b, **{"linger.ms": 2000})
    delivered = produce_all(batching, topic, [{"key": b"k1", "value": value}, {"key": b"gone", "value": None}])
    assert [d.offset for d in delivered] == [0, 1]
    p = producer(b, **{"linger.ms": 0})

    # No prefix, a prefix with another subject's id, an unknown id, a short value: refused.
    refused = [{"value": b"plain json {}"}, {"value": framed(elsewhere_id)}, {"value": framed(9999)},
               {"value": b"\x00\x00\x01"}]
    assert codes(one_by_one(p, topic, refused)) == [KafkaError.INVALID_RECORD] * 4
    # A batch with one bad record is refused whole: nothing of it is written.
    errors = produce_errors(batching, topic, [{"value": framed(order_id)}, {"value": b"bad"}])
    assert codes(errors) == [KafkaError.INVALID_RECORD] * 2
    assert watermarks(b, topic, 0) == (0, 2)
    got = read_partition(b, topic, 0, 0, 2)
    assert [(m.key(), m.value()) for m in got] == [(b"k1", value), (b"gone", None)]

    # Keys are not checked unless asked; another topic is not checked at all.
    plain = unique("plain")
    create_topic(b, plain, 1)
    assert codes(one_by_one(p, plain, [{"value": b"anything"}])) == [None]
    assert codes(one_by_one(p, topic, [{"key": b"raw key", "value": framed(order_id)}])) == [None]


def test_key_validation_and_turning_it_on_at_runtime(broker_factory):
    b = broker_factory(registry=True)
    sr = RegistryClient(b.registry_url)
    topic = unique("keyed")
    create_topic(b, topic, 1)
    key_id = sr.register(f"{topic}-key", record("Key", ("k", "string")))
    p = producer(b, **{"linger.ms": 0})
    assert codes(one_by_one(p, topic, [{"key": b"raw", "value": b"raw"}])) == [None]

    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("confluent.key.schema.validation", "true", incremental_operation=AlterConfigOpType.SET)])
    a = admin(b)
    a.incremental_alter_configs([res])[res].result(timeout=15)
    described = a.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    configs = list(described.values())[0].result(timeout=15)
    assert configs["confluent.key.schema.validation"].value == "true"
    assert configs["confluent.value.schema.validation"].value == "false"
    assert configs["confluent.key.subject.name.strategy"].value == \
        "io.confluent.kafka.serializers.subject.TopicNameStrategy"

    # Applied once the broker has the new config: retry until the raw key is refused.
    deadline = time.monotonic() + 15
    while one_by_one(p, topic, [{"key": b"raw", "value": b"raw"}])[0] is None:
        assert time.monotonic() < deadline, "key validation never took effect"
        time.sleep(0.1)
    assert codes(one_by_one(p, topic, [
        {"key": framed(key_id), "value": b"raw value"},  # values are not checked
        {"key": None, "value": b"null keys pass"},
        {"key": framed(key_id + 100), "value": b"x"},
    ])) == [None, None, KafkaError.INVALID_RECORD]
