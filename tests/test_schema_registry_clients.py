"""Real clients over strom's schema registry: confluent-kafka's SerializingProducer and
DeserializingConsumer with AvroSerializer/AvroDeserializer (key and value schemas, auto-registration,
use.latest.version) produce and consume through strom, and the bytes on the log are Confluent's wire
format (magic byte 0, the 4-byte big-endian id the registry gave, Avro binary). The registry's
state lives in `_schemas` in Confluent's key/value JSON, read here with a plain consumer, and
survives a kill -9 of the broker."""

from __future__ import annotations

import io
import json
import struct
import time

import fastavro
import pytest
from confluent_kafka import DeserializingConsumer, SerializingProducer, TopicPartition
from confluent_kafka.admin import ConfigResource
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer

from helpers import admin, create_topic, read_partition, unique, watermarks
from registry_helpers import INCOMPATIBLE_ERROR_CODE, RegistryClient, assert_version, record

KEY = record("UserKey", ("id", "long"), namespace="com.example")
VALUE = record("User", ("name", "string"), ("age", "int"),
               ("email", ["null", "string"], {"default": None}), namespace="com.example")
# VALUE with one more field, with a default: BACKWARD compatible.
VALUE_V2 = record("User", ("name", "string"), ("age", "int"),
                  ("email", ["null", "string"], {"default": None}), ("score", "double", {"default": 0.5}),
                  namespace="com.example")


def serializing_producer(broker, client, key_schema, value_schema, **value_conf) -> SerializingProducer:
    return SerializingProducer({
        "bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5,
        "key.serializer": AvroSerializer(client, json.dumps(key_schema)),
        "value.serializer": AvroSerializer(client, json.dumps(value_schema), conf=value_conf or None),
    })


def produce_records(p: SerializingProducer, topic: str, pairs) -> None:
    errors = []
    for k, v in pairs:
        p.produce(topic, key=k, value=v, on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    assert p.flush(30) == 0
    assert errors == []


def read_deserialized(broker, client, topic: str, end: int, **value_conf) -> list[tuple]:
    c = DeserializingConsumer({
        "bootstrap.servers": broker.bootstrap, "group.id": unique("avro-reader"), "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "key.deserializer": AvroDeserializer(client),
        "value.deserializer": AvroDeserializer(client, conf=value_conf or None),
    })
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        deadline = time.monotonic() + 30
        while len(out) < end:
            assert time.monotonic() < deadline, f"read {len(out)} of {end}"
            msg = c.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append((msg.offset(), msg.key(), msg.value()))
        return out
    finally:
        c.close()


def decode(data: bytes, schema) -> tuple[int, dict]:
    """Confluent's wire format: magic byte 0, the schema id (4 bytes, big-endian), Avro binary."""
    assert data[0] == 0, data[:8]
    (schema_id,) = struct.unpack(">I", data[1:5])
    return schema_id, fastavro.schemaless_reader(io.BytesIO(data[5:]), fastavro.parse_schema(schema))


def test_avro_produce_and_consume_with_registered_schemas(registry):
    sr = RegistryClient(registry.registry_url)
    client = SchemaRegistryClient({"url": registry.registry_url})
    topic = "users"
    create_topic(registry, topic, 1)
    pairs = [({"id": i}, {"name": f"user-{i}", "age": 20 + i, "email": None if i % 2 else f"u{i}@example.com"})
             for i in range(20)]
    p = serializing_producer(registry, client, KEY, VALUE)
    produce_records(p, topic, pairs)

    # Auto-registration under the topic's subjects: the key is serialized (and registered) first.
    assert sr.get("/subjects") == (200, [f"{topic}-key", f"{topic}-value"])
    status, body = sr.get(f"/subjects/{topic}-key/versions/1")
    assert status == 200
    assert_version(body, f"{topic}-key", 1, 1, KEY)
    status, body = sr.get(f"/subjects/{topic}-value/versions/latest")
    assert status == 200
    assert_version(body, f"{topic}-value", 1, 2, VALUE)

    # The raw records: magic byte, the registry's id, then the Avro encoding of exactly what was sent.
    raw = read_partition(registry, topic, 0, 0, len(pairs))
    assert [m.offset() for m in raw] == list(range(len(pairs)))
    for m, (k, v) in zip(raw, pairs):
        assert m.key()[:5] == b"\x00\x00\x00\x00\x01" and m.value()[:5] == b"\x00\x00\x00\x00\x02"
        assert decode(m.key(), KEY) == (1, k)
        assert decode(m.value(), VALUE) == (2, v)

    # Read back through the registry (the deserializer fetches each writer schema by id).
    assert read_deserialized(registry, client, topic, len(pairs)) == \
        [(i, k, v) for i, (k, v) in enumerate(pairs)]

    # A second version registered by hand; a producer with use.latest.version writes with it (id 3)
    # without registering anything.
    assert sr.register(f"{topic}-value", VALUE_V2) == 3
    more = [({"id": 100 + i}, {"name": f"late-{i}", "age": i, "email": None, "score": i / 4}) for i in range(5)]
    p2 = serializing_producer(registry, SchemaRegistryClient({"url": registry.registry_url}), KEY, VALUE_V2,
                              **{"auto.register.schemas": False, "use.latest.version": True})
    produce_records(p2, topic, more)
    assert sr.versions(f"{topic}-value") == [1, 2]
    assert sr.versions(f"{topic}-key") == [1]
    raw = read_partition(registry, topic, 0, len(pairs), len(pairs) + len(more))
    for m, (k, v) in zip(raw, more):
        assert decode(m.key(), KEY) == (1, k)
        assert decode(m.value(), VALUE_V2) == (3, v)

    # A reader on the latest version sees the old records with the new field's default.
    total = len(pairs) + len(more)
    want = [(i, k, {**v, "score": 0.5}) for i, (k, v) in enumerate(pairs)] + \
        [(len(pairs) + i, k, v) for i, (k, v) in enumerate(more)]
    assert read_deserialized(registry, SchemaRegistryClient({"url": registry.registry_url}), topic, total,
                             **{"use.latest.version": True}) == want

    # A producer that may not register and finds its schema nowhere fails to serialize.
    unknown = record("User", ("name", "string"), namespace="com.example")
    p3 = serializing_producer(registry, SchemaRegistryClient({"url": registry.registry_url}), KEY, unknown,
                              **{"auto.register.schemas": False})
    try:
        p3.produce(topic, key={"id": 1}, value={"name": "x"})
    except Exception as e:  # SerializationError wrapping the registry's 40403
        assert "40403" in str(e) or "Schema not found" in str(e), e
    else:
        raise AssertionError("serializing with an unregistered schema and auto.register.schemas=false succeeded")
    assert watermarks(registry, topic, 0) == (0, total)


def schemas_log(broker) -> list[tuple[bytes, dict, object]]:
    """Every record of `_schemas` as (key bytes, parsed key, parsed value or None for a tombstone)."""
    low, high = watermarks(broker, "_schemas", 0)
    assert low == 0
    out = []
    for m in read_partition(broker, "_schemas", 0, 0, high):
        value = None if m.value() is None else json.loads(m.value())
        out.append((m.key(), json.loads(m.key()), value))
    return out


def schema_value(v: dict, subject: str, version: int, schema_id: int, schema, deleted: bool) -> None:
    assert (v["subject"], v["version"], v["id"], json.loads(v["schema"]), v["deleted"]) == \
        (subject, version, schema_id, schema, deleted), v
    assert v.get("schemaType", "AVRO") == "AVRO", v
    assert v.get("references", []) == [], v


def test_schemas_topic_holds_confluent_keys_and_values(registry):
    sr = RegistryClient(registry.registry_url)
    a = record("A", ("x", "int"))
    b = record("A", ("x", "int"), ("y", "int", {"default": 1}))
    assert sr.register("s", a) == 1
    assert sr.register("s", b) == 2
    assert sr.put("/config/s", {"compatibility": "FULL"}) == (200, {"compatibility": "FULL"})
    assert sr.delete("/subjects/s/versions/1") == (200, 1)
    assert sr.delete("/subjects/s/versions/1", permanent="true") == (200, 1)
    assert sr.delete("/config/s") == (200, {"compatibilityLevel": "FULL"})
    assert sr.put("/mode/s", {"mode": "READONLY"}) == (200, {"mode": "READONLY"})
    c = record("C", ("z", "string"))
    assert sr.register("t", c) == 3
    assert sr.delete("/subjects/t") == (200, [1])
    assert sr.delete("/subjects/t", permanent="true") == (200, [1])

    # The topic is compacted, with one partition.
    res = ConfigResource(ConfigResource.Type.TOPIC, "_schemas")
    kafka_admin = admin(registry)  # kept alive until its futures complete
    configs = kafka_admin.describe_configs([res])[res].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"
    md = kafka_admin.list_topics("_schemas", timeout=10)
    assert list(md.topics["_schemas"].partitions) == [0]

    records = schemas_log(registry)
    # Records without a subject (NOOP markers, a global config) may come and go; ours are exact.
    ours = [(kb, v) for kb, k, v in records if k.get("subject") in ("s", "t")]
    keys = [kb for kb, _ in ours]
    assert keys == [
        b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}',
        b'{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}',
        b'{"keytype":"CONFIG","subject":"s","magic":0}',
        b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}',  # soft delete
        b'{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}',  # permanent delete: tombstone
        b'{"keytype":"CONFIG","subject":"s","magic":0}',  # config deleted: tombstone
        b'{"keytype":"MODE","subject":"s","magic":0}',
        b'{"keytype":"SCHEMA","subject":"t","version":1,"magic":1}',
        # Unsure: a subject's soft delete is one DELETE_SUBJECT record (Confluent's), not a
        # deleted:true per version.
        b'{"keytype":"DELETE_SUBJECT","subject":"t","magic":0}',
        b'{"keytype":"SCHEMA","subject":"t","version":1,"magic":1}',  # tombstone
    ], [kb for kb, _ in ours]
    values = [v for _, v in ours]
    schema_value(values[0], "s", 1, 1, a, False)
    schema_value(values[1], "s", 2, 2, b, False)
    assert values[2]["compatibilityLevel"] == "FULL" and values[2].get("subject", "s") == "s", values[2]
    schema_value(values[3], "s", 1, 1, a, True)
    assert values[4] is None and values[5] is None
    assert values[6]["mode"] == "READONLY" and values[6].get("subject", "s") == "s", values[6]
    schema_value(values[7], "t", 1, 3, c, False)
    assert {k: values[8][k] for k in ("subject", "version")} == {"subject": "t", "version": 1}, values[8]
    assert values[9] is None

    # Every key of the log is one of Confluent's key types.
    assert {k["keytype"] for _, k, _ in records} <= {"SCHEMA", "CONFIG", "MODE", "NOOP", "DELETE_SUBJECT",
                                                      "CLEAR_SUBJECT", "CONTEXT"}


def test_registry_state_survives_kill_9(registry):
    sr = RegistryClient(registry.registry_url)
    client = SchemaRegistryClient({"url": registry.registry_url})
    a = record("A", ("x", "int"))
    b = record("A", ("x", "int"), ("y", "string", {"default": ""}))
    other = record("O", ("z", "long"))
    assert sr.register("s1", a) == 1
    assert sr.register("s1", b) == 2
    assert sr.register("s2", a) == 1
    assert sr.register("s3", other) == 3
    assert sr.register("s3", record("O", ("z", "long"), ("w", "int", {"default": 0}))) == 4
    assert sr.delete("/subjects/s3/versions/1") == (200, 1)
    assert sr.put("/config/s1", {"compatibility": "FULL_TRANSITIVE"}) == (200, {"compatibility": "FULL_TRANSITIVE"})
    assert sr.put("/config", {"compatibility": "FORWARD"}) == (200, {"compatibility": "FORWARD"})
    assert sr.put("/mode/s2", {"mode": "READONLY"}) == (200, {"mode": "READONLY"})
    topic = "events"
    create_topic(registry, topic, 1)
    pairs = [({"id": i}, {"name": f"n{i}", "age": i, "email": None}) for i in range(10)]
    produce_records(serializing_producer(registry, client, KEY, VALUE), topic, pairs)
    assert (sr.versions(f"{topic}-key"), sr.versions(f"{topic}-value")) == ([1], [1])

    def snapshot():
        snap = {"subjects": sr.get("/subjects"), "deleted": sr.get("/subjects", deleted="true"),
                "config": sr.get("/config"), "mode": sr.get("/mode")}
        for s in ("s1", "s2", "s3", f"{topic}-key", f"{topic}-value"):
            snap[s] = (sr.get(f"/subjects/{s}/versions"), sr.get(f"/subjects/{s}/versions", deleted="true"),
                       sr.get(f"/config/{s}"), sr.get(f"/mode/{s}"))
            for v in sr.versions(s, deleted="true"):
                snap[(s, v)] = sr.get(f"/subjects/{s}/versions/{v}", deleted="true")
        for i in range(1, 8):
            snap[i] = (sr.get(f"/schemas/ids/{i}"), sr.get(f"/schemas/ids/{i}/versions"))
        return snap

    before = snapshot()
    assert before["subjects"] == (200, ["events-key", "events-value", "s1", "s2", "s3"])
    assert before["s3"][:2] == ((200, [2]), (200, [1, 2]))
    assert before[("events-key", 1)][1]["id"] == 5 and before[("events-value", 1)][1]["id"] == 6
    assert before[7][0][0] == 404

    registry.kill()
    registry.start()
    after = snapshot()
    assert after == before

    # Ids go on after the highest one.
    assert sr.register("s4", record("New", ("q", "int"))) == 7
    assert sr.register("s1", record("A", ("x", "int"), ("y", "string", {"default": ""}),
                                    ("k", "int", {"default": 3}))) == 8
    assert sr.versions("s1") == [1, 2, 3]
    # Settings still apply: READONLY s2, FULL_TRANSITIVE s1 (a field without default refused).
    assert sr.post("/subjects/s2/versions", {"schema": json.dumps(b)})[1]["error_code"] == 42205
    status, body = sr.post("/subjects/s1/versions",
                           {"schema": json.dumps(record("A", ("x", "int"), ("must", "int")))})
    assert (status, body["error_code"]) == (409, INCOMPATIBLE_ERROR_CODE), body

    # Records written before the crash decode through the restarted registry.
    assert read_deserialized(registry, SchemaRegistryClient({"url": registry.registry_url}), topic, len(pairs)) == \
        [(i, k, v) for i, (k, v) in enumerate(pairs)]
    raw = read_partition(registry, topic, 0, 0, len(pairs))
    assert [decode(m.value(), VALUE) for m in raw] == [(6, v) for _, v in pairs]


SERIALIZER_EVOLUTIONS = {
    # (first, compatible under BACKWARD, incompatible under BACKWARD, values for each)
    "AVRO": (record("Item", ("sku", "string"), namespace="compat"),
             record("Item", ("sku", "string"), ("qty", "int", {"default": 1}), namespace="compat"),
             record("Item", ("sku", "string"), ("qty", "int", {"default": 1}), ("price", "double"),
                    namespace="compat"),
             [{"sku": "a"}, {"sku": "b", "qty": 2}, {"sku": "c", "qty": 3, "price": 1.5}]),
    # Closed content models: a property added is compatible; a property's type changed is not.
    "JSON": ({"type": "object", "properties": {"sku": {"type": "string"}}, "additionalProperties": False},
             {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
              "additionalProperties": False},
             {"type": "object", "properties": {"sku": {"type": "integer"}, "qty": {"type": "integer"}},
              "additionalProperties": False},
             [{"sku": "a"}, {"sku": "b", "qty": 2}, {"sku": 3, "qty": 3}]),
}


@pytest.mark.parametrize("kind", list(SERIALIZER_EVOLUTIONS))
def test_serializers_registration_follows_compatibility(registry, kind):
    """AvroSerializer and JSONSerializer registering as they serialize (auto.register.schemas, the
    default): under BACKWARD a compatible evolution registers version 2 and its records carry the new id;
    an incompatible one fails to serialize with the registry's 409, and nothing is written."""
    from confluent_kafka.error import ValueSerializationError
    from confluent_kafka.schema_registry.json_schema import JSONSerializer
    client = SchemaRegistryClient({"url": registry.registry_url})
    topic = unique(f"ser-compat-{kind.lower()}")
    subject = f"{topic}-value"
    create_topic(registry, topic, 1)
    assert client.set_compatibility(subject_name=subject, level="BACKWARD") == {"compatibility": "BACKWARD"}
    first, compatible, incompatible, values = SERIALIZER_EVOLUTIONS[kind]

    def producer(schema) -> SerializingProducer:
        text = json.dumps(schema)
        serializer = AvroSerializer(client, text) if kind == "AVRO" else JSONSerializer(text, client)
        return SerializingProducer({"bootstrap.servers": registry.bootstrap, "acks": "all",
                                    "value.serializer": serializer})

    for schema, value in ((first, values[0]), (compatible, values[1])):
        p = producer(schema)
        p.produce(topic, value=value)
        assert p.flush(30) == 0
    assert client.get_versions(subject) == [1, 2]
    ids = [client.get_version(subject, v).schema_id for v in (1, 2)]
    assert ids[0] != ids[1]

    p = producer(incompatible)
    with pytest.raises(ValueSerializationError) as err:
        p.produce(topic, value=values[2])
    assert "409" in str(err.value) and "incompatible" in str(err.value), err.value
    assert p.flush(10) == 0
    assert client.get_versions(subject) == [1, 2]
    raw = [m.value() for m in read_partition(registry, topic, 0, 0, 2)]
    assert [struct.unpack(">I", v[1:5])[0] for v in raw] == ids
    assert watermarks(registry, topic, 0) == (0, 2)
