"""The REST proxy's v2 API (Confluent REST Proxy's), served by `strom server` on `rest.proxy.listeners`:
metadata, produce in every embedded format, consumer instances (subscriptions, assignments, seeks,
records, commits), and Confluent's status codes and error bodies. Records written through the proxy
are read back with confluent-kafka and the other way round, byte for byte."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

V2 = "application/vnd.kafka.v2+json"
BINARY = "application/vnd.kafka.binary.v2+json"
JSON = "application/vnd.kafka.json.v2+json"
AVRO = "application/vnd.kafka.avro.v2+json"
JSONSCHEMA = "application/vnd.kafka.jsonschema.v2+json"
PROTOBUF = "application/vnd.kafka.protobuf.v2+json"


@pytest.fixture
def proxy(broker_factory):
    return broker_factory(registry=True, proxy=True)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def create_topic(broker, name: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)


class Rest:
    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def call(self, method: str, path: str, body=None, content_type: str | None = V2, accept: str | None = V2,
             **params):
        headers = {}
        if content_type is not None and body is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        resp = self.session.request(method, self.base + path, data=data, headers=headers, params=params or None,
                                    timeout=60)
        parsed = resp.json() if resp.content else None
        return resp.status_code, parsed, resp

    def ok(self, method: str, path: str, body=None, expect: int = 200, **kw):
        status, parsed, resp = self.call(method, path, body, **kw)
        assert status == expect, (method, path, status, parsed)
        return parsed

    def consumer(self, group: str, fmt: str = "binary", **config) -> str:
        body = {"name": f"c-{uuid.uuid4().hex[:8]}", "format": fmt, **config}
        created = self.ok("POST", f"/consumers/{group}", body)
        assert created["instance_id"] == body["name"]
        assert created["base_uri"] == f"{self.base}/consumers/{group}/instances/{body['name']}"
        return f"/consumers/{group}/instances/{body['name']}"

    def read_until(self, instance: str, count: int, accept: str, timeout_s: float = 20.0) -> list[dict]:
        records: list[dict] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            status, got, resp = self.call("GET", f"{instance}/records", accept=accept, timeout=500)
            assert status == 200, (status, got)
            assert resp.headers["Content-Type"].startswith(accept)
            records += got
        return records


def kafka_consume(broker, topic: str, count: int, group: str | None = None, value_deserializer=None) -> list:
    """`count` records of `topic` read by confluent-kafka (through `value_deserializer` when given)."""
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": group or f"g-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    if value_deserializer is None:
        c = Consumer(conf)
    else:
        from confluent_kafka import DeserializingConsumer
        c = DeserializingConsumer({**conf, "value.deserializer": value_deserializer})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + 30
    while len(out) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m)
    c.close()
    return out


def test_metadata_resources_and_their_errors(proxy):
    rest = Rest(proxy.proxy_url)
    create_topic(proxy, "meta", 2)
    assert rest.ok("GET", "/") == {}
    assert "meta" in rest.ok("GET", "/topics")
    topic = rest.ok("GET", "/topics/meta")
    assert topic["name"] == "meta"
    assert topic["configs"]["cleanup.policy"] == "delete"
    assert topic["partitions"] == [
        {"partition": p, "leader": 1, "replicas": [{"broker": 1, "leader": True, "in_sync": True}]} for p in (0, 1)]
    assert rest.ok("GET", "/topics/meta/partitions") == topic["partitions"]
    assert rest.ok("GET", "/topics/meta/partitions/1") == topic["partitions"][1]
    assert rest.ok("GET", "/brokers") == {"brokers": [1]}

    p = Producer({"bootstrap.servers": proxy.bootstrap})
    for i in range(3):
        p.produce("meta", b"v%d" % i, partition=1)
    p.flush(10)
    assert rest.ok("GET", "/topics/meta/partitions/1/offsets") == {"beginning_offset": 0, "end_offset": 3}
    assert rest.ok("GET", "/topics/meta/partitions/0/offsets") == {"beginning_offset": 0, "end_offset": 0}

    # Confluent's error bodies and codes.
    assert rest.call("GET", "/topics/nope")[:2] == (404, {"error_code": 40401, "message": "Topic not found."})
    assert rest.call("GET", "/topics/meta/partitions/7")[:2] == (
        404, {"error_code": 40402, "message": "Partition not found."})
    assert rest.call("GET", "/topics/meta/partitions/7/offsets")[1]["error_code"] == 40402
    assert rest.call("GET", "/no/such/path")[:2] == (404, {"error_code": 404, "message": "HTTP 404 Not Found"})
    assert rest.call("GET", "/topics", accept="text/html")[:2] == (
        406, {"error_code": 406, "message": "HTTP 406 Not Acceptable"})
    status, body, resp = rest.call("GET", "/topics")
    assert resp.headers["Content-Type"] == V2


def test_binary_produce_round_trips_with_confluent_kafka(proxy):
    rest = Rest(proxy.proxy_url)
    create_topic(proxy, "bin", 3)
    records = [{"key": b64(b"k1"), "value": b64(b"\x00\x01binary\xff")},
               {"value": b64(b"no key"), "partition": 2},
               {"key": b64(b"k3"), "value": None, "partition": 1}]
    answer = rest.ok("POST", "/topics/bin", {"records": records}, content_type=BINARY)
    assert answer["key_schema_id"] is None and answer["value_schema_id"] is None
    offsets = answer["offsets"]
    assert [o["error_code"] for o in offsets] == [None] * 3
    # Offsets within each partition follow the records' order.
    assert [o["partition"] for o in offsets[1:]] == [2, 1]
    for i, o in enumerate(offsets):
        earlier = sum(1 for e in offsets[:i] if e["partition"] == o["partition"])
        assert o == {"partition": o["partition"], "offset": earlier, "error_code": None, "error": None}
    # To one partition, through its own resource.
    to_p0 = rest.ok("POST", "/topics/bin/partitions/0", {"records": [{"value": b64(b"p0")}]}, content_type=BINARY)
    assert to_p0["offsets"] == [{"partition": 0, "offset": 0 if offsets[0]["partition"] != 0 else 1,
                                 "error_code": None, "error": None}]

    got = {(m.partition(), m.offset()): (m.key(), m.value()) for m in kafka_consume(proxy, "bin", 4)}
    assert got[(offsets[0]["partition"], offsets[0]["offset"])] == (b"k1", b"\x00\x01binary\xff")
    assert got[(2, offsets[1]["offset"])] == (None, b"no key")
    assert got[(1, offsets[2]["offset"])] == (b"k3", None)
    assert got[(0, to_p0["offsets"][0]["offset"])] == (None, b"p0")


def test_v2_consumer_reads_commits_and_reports_offsets(proxy):
    rest = Rest(proxy.proxy_url)
    create_topic(proxy, "jsontopic", 1)
    values = [{"n": i, "text": f"record {i}", "nested": {"ok": True}} for i in range(5)]
    answer = rest.ok("POST", "/topics/jsontopic",
                     {"records": [{"key": {"id": i}, "value": v} for i, v in enumerate(values)]}, content_type=JSON)
    assert [o["offset"] for o in answer["offsets"]] == [0, 1, 2, 3, 4]
    # The record bytes are the JSON texts.
    raw = kafka_consume(proxy, "jsontopic", 5)
    assert [json.loads(m.value()) for m in raw] == values
    assert [json.loads(m.key()) for m in raw] == [{"id": i} for i in range(5)]

    instance = rest.consumer("jgroup", "json", **{"auto.offset.reset": "earliest", "auto.commit.enable": "false"})
    assert rest.ok("POST", f"{instance}/subscription", {"topics": ["jsontopic"]}, expect=204) is None
    assert rest.ok("GET", f"{instance}/subscription") == {"topics": ["jsontopic"]}
    got = rest.read_until(instance, 5, JSON)
    assert got == [{"topic": "jsontopic", "key": {"id": i}, "value": values[i], "partition": 0, "offset": i}
                   for i in range(5)]
    assert rest.ok("GET", f"{instance}/assignments") == {"partitions": [{"topic": "jsontopic", "partition": 0}]}

    # Asking for another format than the instance's: 406 40601.
    status, body, _ = rest.call("GET", f"{instance}/records", accept=BINARY)
    assert (status, body["error_code"]) == (406, 40601)

    # Commit the last record processed (offset 2): the group's committed offset is 3.
    rest.ok("POST", f"{instance}/offsets", {"offsets": [{"topic": "jsontopic", "partition": 0, "offset": 2}]})
    committed = rest.ok("GET", f"{instance}/offsets", {"partitions": [{"topic": "jsontopic", "partition": 0}]})
    assert committed == {"offsets": [{"topic": "jsontopic", "partition": 0, "offset": 3, "metadata": ""}]}
    # Metadata given with an offset is committed with it, and Kafka's clients see it.
    rest.ok("POST", f"{instance}/offsets",
            {"offsets": [{"topic": "jsontopic", "partition": 0, "offset": 3, "metadata": "batch-7"}]})
    committed = rest.ok("GET", f"{instance}/offsets", {"partitions": [{"topic": "jsontopic", "partition": 0}]})
    assert committed == {"offsets": [{"topic": "jsontopic", "partition": 0, "offset": 4, "metadata": "batch-7"}]}
    admin = AdminClient({"bootstrap.servers": proxy.bootstrap})  # kept alive until the answer
    seen = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("jgroup", [TopicPartition("jsontopic", 0)])])["jgroup"].result(timeout=30)
    assert [(tp.offset, tp.metadata) for tp in seen.topic_partitions] == [(4, "batch-7")]
    # Commit everything read so far.
    rest.ok("POST", f"{instance}/offsets", None)
    committed = rest.ok("GET", f"{instance}/offsets", {"partitions": [{"topic": "jsontopic", "partition": 0}]})
    assert committed["offsets"][0]["offset"] == 5

    assert rest.ok("DELETE", instance, expect=204) is None
    status, body, _ = rest.call("GET", f"{instance}/subscription")
    assert (status, body) == (404, {"error_code": 40403, "message": "Consumer instance not found."})

    # A Kafka consumer of the same group starts where the REST consumer committed.
    p = Producer({"bootstrap.servers": proxy.bootstrap})
    p.produce("jsontopic", b'{"n": 5}')
    p.flush(10)
    after = kafka_consume(proxy, "jsontopic", 1, group="jgroup")
    assert [(m.offset(), m.value()) for m in after] == [(5, b'{"n": 5}')]


def test_a_pattern_subscription_follows_new_topics(broker_factory):
    """`topic_pattern` matches whole topic names, and is matched again every
    `consumer.metadata.max.age.ms` (as a Kafka consumer's metadata refresh does): a topic created
    later joins the subscription, and the instance reads it."""
    proxy = broker_factory({"consumer.metadata.max.age.ms": "1000"}, proxy=True)
    rest = Rest(proxy.proxy_url)
    for name in ("orders-eu", "orders-us-archive", "xorders-eu"):
        create_topic(proxy, name, 1)
    produce = lambda topic, value: rest.ok("POST", f"/topics/{topic}",  # noqa: E731
                                           {"records": [{"value": b64(value)}]}, content_type=BINARY)
    for topic in ("orders-eu", "orders-us-archive", "xorders-eu"):
        produce(topic, f"{topic} 0".encode())

    instance = rest.consumer("pgroup", **{"auto.offset.reset": "earliest"})
    # `orders-[a-z]+` must match the whole name: not orders-us-archive, not xorders-eu.
    assert rest.ok("POST", f"{instance}/subscription", {"topic_pattern": "orders-[a-z]+"}, expect=204) is None
    assert rest.ok("GET", f"{instance}/subscription") == {"topics": []}
    got = rest.read_until(instance, 1, BINARY)
    assert [(r["topic"], base64.b64decode(r["value"])) for r in got] == [("orders-eu", b"orders-eu 0")]
    assert rest.ok("GET", f"{instance}/subscription") == {"topics": ["orders-eu"]}

    create_topic(proxy, "orders-us", 2)
    produce("orders-us", b"orders-us 0")
    produce("orders-eu", b"orders-eu 1")
    got = rest.read_until(instance, 2, BINARY, timeout_s=30)
    assert sorted((r["topic"], r["offset"], base64.b64decode(r["value"])) for r in got) == [
        ("orders-eu", 1, b"orders-eu 1"), ("orders-us", 0, b"orders-us 0")]
    assert rest.ok("GET", f"{instance}/subscription") == {"topics": ["orders-eu", "orders-us"]}
    assigned = rest.ok("GET", f"{instance}/assignments")["partitions"]
    assert sorted((p["topic"], p["partition"]) for p in assigned) == [
        ("orders-eu", 0), ("orders-us", 0), ("orders-us", 1)]
    assert rest.ok("DELETE", instance, expect=204) is None


def test_manual_assignment_and_seeks(proxy):
    rest = Rest(proxy.proxy_url)
    create_topic(proxy, "seeks", 2)
    rest.ok("POST", "/topics/seeks/partitions/1",
            {"records": [{"value": b64(b"r%d" % i)} for i in range(6)]}, content_type=BINARY)
    instance = rest.consumer("sgroup", "binary", **{"auto.commit.enable": "false"})
    rest.ok("POST", f"{instance}/assignments", {"partitions": [{"topic": "seeks", "partition": 1}]}, expect=204)
    assert rest.ok("GET", f"{instance}/assignments") == {"partitions": [{"topic": "seeks", "partition": 1}]}
    # auto.offset.reset defaults to latest: nothing to read until a seek.
    status, got, _ = rest.call("GET", f"{instance}/records", accept=BINARY, timeout=300)
    assert (status, got) == (200, [])
    rest.ok("POST", f"{instance}/positions", {"offsets": [{"topic": "seeks", "partition": 1, "offset": 4}]},
            expect=204)
    got = rest.read_until(instance, 2, BINARY)
    assert [(r["offset"], base64.b64decode(r["value"])) for r in got] == [(4, b"r4"), (5, b"r5")]
    assert got[0] == {"topic": "seeks", "key": None, "value": b64(b"r4"), "partition": 1, "offset": 4}
    rest.ok("POST", f"{instance}/positions/beginning", {"partitions": [{"topic": "seeks", "partition": 1}]},
            expect=204)
    # max_bytes bounds what one read hands out; the rest comes next time.
    first = rest.ok("GET", f"{instance}/records", accept=BINARY, max_bytes=4, timeout=2000)
    assert [r["offset"] for r in first] == [0, 1]
    rest_of = rest.read_until(instance, 4, BINARY)
    assert [r["offset"] for r in rest_of] == [2, 3, 4, 5]
    rest.ok("POST", f"{instance}/positions/end", {"partitions": [{"topic": "seeks", "partition": 1}]}, expect=204)
    assert rest.ok("GET", f"{instance}/records", accept=BINARY, timeout=300) == []
    # A read waits at most the instance's request timeout (1 s by default), as Confluent bounds `timeout`.
    started = time.monotonic()
    assert rest.ok("GET", f"{instance}/records", accept=BINARY, timeout=8000) == []
    assert 0.9 < time.monotonic() - started < 5

    # A seek on a partition not assigned, or a subscription beside an assignment: 409 40903.
    status, body, _ = rest.call("POST", f"{instance}/positions",
                                {"offsets": [{"topic": "seeks", "partition": 0, "offset": 0}]})
    assert (status, body) == (409, {"error_code": 40903,
                                    "message": "Illegal state: No current assignment for partition seeks-0"})
    status, body, _ = rest.call("POST", f"{instance}/subscription", {"topics": ["seeks"]})
    assert (status, body["error_code"]) == (409, 40903)
    assert "mutually exclusive" in body["message"]
    rest.ok("DELETE", instance, expect=204)


def test_a_v2_consumer_shares_a_group_with_a_kafka_consumer(proxy):
    rest = Rest(proxy.proxy_url)
    create_topic(proxy, "shared", 2)
    p = Producer({"bootstrap.servers": proxy.bootstrap})
    for i in range(10):
        p.produce("shared", b"v%d" % i, partition=i % 2)
    p.flush(10)

    instance = rest.consumer("mixed", "binary", **{"auto.offset.reset": "earliest"})
    rest.ok("POST", f"{instance}/subscription", {"topics": ["shared"]}, expect=204)
    alone = rest.read_until(instance, 10, BINARY)
    assert sorted(base64.b64decode(r["value"]) for r in alone) == sorted(b"v%d" % i for i in range(10))
    rest.ok("POST", f"{instance}/offsets", None)

    # A Kafka consumer joins: the group rebalances and each member owns one partition.
    kafka = Consumer({"bootstrap.servers": proxy.bootstrap, "group.id": "mixed", "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, "session.timeout.ms": 10000})
    kafka.subscribe(["shared"])
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not kafka.assignment():
        kafka.poll(0.2)
        rest.call("GET", f"{instance}/records", accept=BINARY, timeout=100)
    kafka_parts = sorted(tp.partition for tp in kafka.assignment())
    rest_parts = []
    while time.monotonic() < deadline:
        rest.call("GET", f"{instance}/records", accept=BINARY, timeout=100)
        rest_parts = [p["partition"] for p in rest.ok("GET", f"{instance}/assignments")["partitions"]]
        if len(rest_parts) == 1:
            break
        kafka.poll(0.2)
    assert len(kafka_parts) == 1 and sorted(rest_parts + kafka_parts) == [0, 1], (rest_parts, kafka_parts)

    # New records go to whichever member owns their partition, each read once.
    for i in range(10, 14):
        p.produce("shared", b"v%d" % i, partition=i % 2)
    p.flush(10)
    via_rest = rest.read_until(instance, 2, BINARY)
    via_kafka = []
    while len(via_kafka) < 2 and time.monotonic() < deadline + 20:
        m = kafka.poll(0.5)
        if m is not None and not m.error():
            via_kafka.append(m)
    assert {r["partition"] for r in via_rest} == set(rest_parts)
    assert {m.partition() for m in via_kafka} == set(kafka_parts)
    assert sorted([base64.b64decode(r["value"]) for r in via_rest] + [m.value() for m in via_kafka]) == \
        sorted(b"v%d" % i for i in range(10, 14))
    kafka.close()
    rest.ok("DELETE", instance, expect=204)


def test_request_errors_match_confluent(proxy):
    rest = Rest(proxy.proxy_url)
    create_topic(proxy, "errs", 1)
    # Produce needs an embedded-format content type.
    status, body, _ = rest.call("POST", "/topics/errs", {"records": [{"value": "x"}]}, content_type="application/json")
    assert (status, body) == (415, {"error_code": 415, "message": "HTTP 415 Unsupported Media Type"})
    status, body, _ = rest.call("POST", "/topics/errs", '{"records": [', content_type=BINARY)
    assert (status, body["error_code"]) == (400, 400)
    status, body, _ = rest.call("POST", "/topics/errs", {"records": []}, content_type=BINARY)
    assert (status, body["error_code"]) == (422, 422)
    status, body, _ = rest.call("POST", "/topics/errs", {"records": [{"value": "not base64!"}]}, content_type=BINARY)
    assert (status, body["error_code"]) == (422, 42207)
    status, body, _ = rest.call("POST", "/topics/errs", {"records": [{"value": {"a": 1}}]}, content_type=AVRO)
    assert (status, body) == (422, {"error_code": 42202,
                                    "message": "Request includes values but does not include value schema"})
    status, body, _ = rest.call("POST", "/topics/errs", {"records": [{"key": 1, "value": None}]},
                                content_type=JSONSCHEMA)
    assert (status, body["error_code"]) == (422, 42201)
    status, body, _ = rest.call("POST", "/topics/errs/partitions/5", {"records": [{"value": "eA=="}]},
                                content_type=BINARY)
    assert (status, body["error_code"]) == (404, 40402)
    status, body, _ = rest.call("DELETE", "/topics/errs")
    assert (status, body) == (405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"})

    # Consumer instances.
    group = "errgroup"
    rest.ok("POST", f"/consumers/{group}", {"name": "one", "format": "binary"})
    status, body, _ = rest.call("POST", f"/consumers/{group}", {"name": "one", "format": "binary"})
    assert (status, body) == (409, {"error_code": 40902, "message":
                                    "Consumer with specified consumer ID already exists in the specified consumer group."})
    status, body, _ = rest.call("POST", f"/consumers/{group}", {"name": "two", "format": "xml"})
    assert (status, body) == (422, {"error_code": 422, "message": "Invalid format type."})
    status, body, _ = rest.call("POST", f"/consumers/{group}", {"name": "two", "auto.offset.reset": "sometimes"})
    assert (status, body["error_code"]) == (422, 42204)
    status, body, _ = rest.call("GET", f"/consumers/{group}/instances/none/records", accept=BINARY)
    assert (status, body["error_code"]) == (404, 40403)
    status, body, _ = rest.call("POST", f"/consumers/{group}/instances/one/subscription", {"topics": ["errs"]},
                                content_type="text/plain")
    assert status == 415
    rest.ok("POST", f"/consumers/{group}/instances/one/subscription", {"topics": ["errs"]}, expect=204)
    status, body, _ = rest.call("POST", f"/consumers/{group}/instances/one/subscription", {"topics": ["other"]})
    assert (status, body["error_code"]) == (409, 40901)
    rest.ok("DELETE", f"/consumers/{group}/instances/one", expect=204)
    # The broker keeps serving Kafka clients throughout.
    assert len(kafka_consume(proxy, "errs", 0)) == 0


AVRO_USER = json.dumps({"type": "record", "name": "User", "namespace": "rest.test",
                        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"},
                                   {"name": "email", "type": ["null", "string"], "default": None}]})
JSON_USER = json.dumps({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        "required": ["name", "age"], "additionalProperties": False})
PROTO_USER = 'syntax = "proto3";\npackage resttest;\n\nmessage User {\n  string name = 1;\n  int32 age = 2;\n}\n'


def schema_round_trip(proxy, topic: str, content_type: str, fmt: str, schema_text: str, values: list[dict],
                      schema_type: str | None) -> int:
    """Produces `values` with a value schema through the proxy, checks the registration and the wire
    bytes, then reads them back through a v2 consumer of format `fmt`; returns the schema id."""
    rest = Rest(proxy.proxy_url)
    create_topic(proxy, topic, 1)
    answer = rest.ok("POST", f"/topics/{topic}", {"value_schema": schema_text,
                                                  "records": [{"value": v} for v in values[:2]]},
                     content_type=content_type)
    schema_id = answer["value_schema_id"]
    assert isinstance(schema_id, int) and answer["key_schema_id"] is None
    assert [o["offset"] for o in answer["offsets"]] == [0, 1]
    registered = requests.get(f"{proxy.registry_url}/subjects/{topic}-value/versions/latest", timeout=10).json()
    assert registered["id"] == schema_id and registered.get("schemaType") == schema_type
    # The same schema by id.
    again = rest.ok("POST", f"/topics/{topic}", {"value_schema_id": schema_id,
                                                 "records": [{"value": v} for v in values[2:]]},
                    content_type=content_type)
    assert again["value_schema_id"] == schema_id
    for m in kafka_consume(proxy, topic, len(values)):
        assert m.value()[0] == 0 and int.from_bytes(m.value()[1:5], "big") == schema_id

    instance = rest.consumer(f"{topic}-readers", fmt, **{"auto.offset.reset": "earliest"})
    rest.ok("POST", f"{instance}/subscription", {"topics": [topic]}, expect=204)
    got = rest.read_until(instance, len(values), content_type)
    assert [(r["offset"], r["key"], r["value"]) for r in got] == [(i, None, v) for i, v in enumerate(values)]
    rest.ok("DELETE", instance, expect=204)
    return schema_id


def test_avro_embedded_format(proxy):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    values = [{"name": "ann", "age": 31, "email": None}, {"name": "bob", "age": 7, "email": "b@x"},
              {"name": "cy", "age": 0, "email": None}]
    schema_round_trip(proxy, "avro-users", AVRO, "avro", AVRO_USER, values, None)
    client = SchemaRegistryClient({"url": proxy.registry_url})
    got = kafka_consume(proxy, "avro-users", 3, value_deserializer=AvroDeserializer(client))
    assert [m.value() for m in got] == values
    # A value that does not fit the schema: 422 42207 before anything is written.
    rest = Rest(proxy.proxy_url)
    status, body, _ = rest.call("POST", "/topics/avro-users", {"value_schema": AVRO_USER,
                                                               "records": [{"value": {"name": 5}}]}, content_type=AVRO)
    assert (status, body["error_code"]) == (422, 42207)
    status, body, _ = rest.call("POST", "/topics/avro-users", {"value_schema": '{"type": "recrd"}',
                                                               "records": [{"value": 1}]}, content_type=AVRO)
    assert (status, body["error_code"]) == (422, 42205)
    assert body["message"].startswith("Invalid schema: "), body
    # Neither request wrote anything.
    assert rest.ok("GET", "/topics/avro-users/partitions/0/offsets") == {"beginning_offset": 0, "end_offset": 3}


def test_jsonschema_embedded_format(proxy):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    values = [{"name": "ann", "age": 31}, {"name": "bob", "age": 7}, {"name": "cy", "age": 0}]
    schema_round_trip(proxy, "json-users", JSONSCHEMA, "jsonschema", JSON_USER, values, "JSON")
    client = SchemaRegistryClient({"url": proxy.registry_url})
    got = kafka_consume(proxy, "json-users", 3,
                        value_deserializer=JSONDeserializer(JSON_USER, schema_registry_client=client))
    assert [m.value() for m in got] == values
    rest = Rest(proxy.proxy_url)
    status, body, _ = rest.call("POST", "/topics/json-users", {"value_schema": JSON_USER,
                                                               "records": [{"value": {"name": "x"}}]},
                                content_type=JSONSCHEMA)
    assert (status, body["error_code"]) == (422, 42207)


def test_protobuf_embedded_format(proxy, tmp_path):
    import importlib
    import subprocess
    import sys
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    values = [{"name": "ann", "age": 31}, {"name": "bob", "age": 7}, {"name": "cy", "age": 5}]
    schema_round_trip(proxy, "proto-users", PROTOBUF, "protobuf", PROTO_USER, values, "PROTOBUF")
    (tmp_path / "restuser.proto").write_text(PROTO_USER)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}", f"--python_out={tmp_path}",
                    "restuser.proto"], check=True)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("restuser_pb2")
        got = kafka_consume(proxy, "proto-users", 3,
                            value_deserializer=ProtobufDeserializer(module.User, {"use.deprecated.format": False}))
        assert [(m.value().name, m.value().age) for m in got] == [(v["name"], v["age"]) for v in values]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("restuser_pb2", None)


def test_the_v2_openapi_document_is_served_and_schemathesis_finds_no_failure(proxy, tmp_path):
    """schemathesis generates requests for every v2 operation of strom's document (against a real topic,
    partition and consumer instance) and checks each answer: no server error, a documented status, the
    documented content type and body schema. Deleting the instance is left out, so that the others reach it."""
    rest = Rest(proxy.proxy_url)
    resp = requests.get(f"{rest.base}/v2/openapi.yaml", timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/yaml"
    source = Path(__file__).resolve().parent.parent / "crates/strom-rest-proxy/openapi/v2.yaml"
    assert resp.text == source.read_text()
    create_topic(proxy, "fuzzed", 2)
    rest.ok("POST", "/topics/fuzzed", {"records": [{"value": b64(b"x")}]}, content_type=BINARY)
    instance = rest.consumer("fuzzers", **{"auto.offset.reset": "earliest"})
    config = tmp_path / "schemathesis.toml"
    config.write_text('[parameters]\n"path.topic" = "fuzzed"\n"path.partition" = 0\n"path.group" = "fuzzers"\n'
                      f'"path.instance" = "{instance.rsplit("/", 1)[1]}"\n')
    cli = Path(sys.executable).with_name("schemathesis")
    # One worker: schemathesis on two threads trips a CPython 3.11 ast race in Hypothesis' lambda naming.
    run = subprocess.run(
        [str(cli), "--config-file", str(config), "run", f"{rest.base}/v2/openapi.yaml", "--url", rest.base,
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance",
         "--exclude-operation-id", "deleteConsumerInstance",
         "--max-examples", "15", "--phases", "examples,coverage,fuzzing", "--workers", "1",
         "--request-timeout", "30", "--seed", "1", "--no-color", "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=110, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"})
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # The proxy still serves, and the instance is still there (whatever the fuzzing left it subscribed to).
    assert "fuzzed" in rest.ok("GET", "/topics")
    status, _, _ = rest.call("GET", f"{instance}/assignments")
    assert status == 200
