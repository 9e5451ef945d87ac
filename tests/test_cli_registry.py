"""The CLI and the schema registry: `strom registry` (subjects registered, listed, shown, checked
and deleted; compatibility levels and modes; schemas by id; Confluent's error codes on failures)
with the registry's state checked through its REST API; `strom produce --schema-registry` writing
Confluent's wire format (Avro and JSON Schema) that confluent-kafka's DeserializingConsumer with
AvroDeserializer/JSONDeserializer reads back exactly; and `strom consume --schema-registry`
decoding what confluent-kafka's AvroSerializer wrote; the same for Protobuf (a schema with a nested
message and an import reference) with ProtobufSerializer/ProtobufDeserializer and message classes
protoc generates at test time."""

from __future__ import annotations

import importlib
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import DeserializingConsumer, SerializingProducer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer

from conftest import strom_bin
from helpers import create_topic, read_partition, unique, watermarks
from registry_helpers import RegistryClient, record

USER = record("User", ("name", "string"), ("age", "int"),
              ("email", ["null", "string"], {"default": None}), namespace="com.example")
# A field added with a default: BACKWARD compatible.
USER_V2 = record("User", ("name", "string"), ("age", "int"),
                 ("email", ["null", "string"], {"default": None}), ("score", "double", {"default": 0.5}),
                 namespace="com.example")
# A new field without a default: not BACKWARD compatible.
USER_BAD = record("User", ("name", "string"), ("age", "int"), ("country", "string"), namespace="com.example")
KEY = record("UserKey", ("id", "long"), namespace="com.example")
ORDER_JSON = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
              "properties": {"id": {"type": "integer"}, "item": {"type": "string"},
                             "price": {"type": "number"}},
              "required": ["id", "item"], "additionalProperties": False}


def cli(*args: str, stdin: str | None = None, ok: bool = True, env: dict | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    cmd = [str(strom_bin()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL, env=env)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr}"
    return proc


def reg(registry, *args: str, **kw) -> subprocess.CompletedProcess:
    return cli("registry", *args, "--registry-url", registry.registry_url, **kw)


def schema_file(tmp_path: Path, schema, name: str = "schema.avsc") -> str:
    path = tmp_path / name
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return str(path)


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines()]


@pytest.fixture
def sr(module_registry) -> RegistryClient:
    return RegistryClient(module_registry.registry_url)


# --- strom registry ---------------------------------------------------------------------------

def test_subject_register_list_get_compat_delete(module_registry, sr, tmp_path):
    r = module_registry
    subject = unique("cli-users") + "-value"
    out = reg(r, "subject", "register", subject, "--schema", schema_file(tmp_path, USER)).stdout
    status, by_rest = sr.get(f"/subjects/{subject}/versions/latest")
    assert status == 200 and by_rest["version"] == 1
    assert rows(out) == [["SUBJECT", "VERSION", "ID"], [subject, "1", str(by_rest["id"])]]

    # Registering the same schema again is the same version and id.
    again = reg(r, "subject", "register", subject, "--schema", schema_file(tmp_path, USER)).stdout
    assert rows(again)[1] == [subject, "1", str(by_rest["id"])]

    # Compatibility: against every version the level checks, and against one version.
    assert reg(r, "subject", "compat", subject, "--schema", schema_file(tmp_path, USER_V2, "v2.avsc")).stdout \
        == "compatible\n"
    bad = reg(r, "subject", "compat", subject, "--schema", schema_file(tmp_path, USER_BAD, "bad.avsc"),
              ok=False)
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert lines[0] == "incompatible" and len(lines) >= 2
    _, verbose = sr.post(f"/compatibility/subjects/{subject}/versions", {"schema": json.dumps(USER_BAD)},
                         verbose="true")
    assert lines[1:] == verbose["messages"]
    assert f"incompatible with subject {subject}" in bad.stderr
    bad1 = reg(r, "subject", "compat", subject, "--schema", schema_file(tmp_path, USER_BAD, "bad.avsc"),
               "--version", "1", ok=False)
    assert bad1.returncode == 1 and bad1.stdout.splitlines()[0] == "incompatible"

    out = reg(r, "subject", "register", subject, "--schema", schema_file(tmp_path, USER_V2, "v2.avsc")).stdout
    status, v2 = sr.get(f"/subjects/{subject}/versions/2")
    assert status == 200
    assert rows(out)[1] == [subject, "2", str(v2["id"])]
    assert sr.versions(subject) == [1, 2]

    # list and get print what the REST API answers.
    assert subject in reg(r, "subject", "list").stdout.splitlines()
    assert json.loads(reg(r, "subject", "get", subject).stdout) == v2
    assert json.loads(reg(r, "subject", "get", subject, "--version", "1").stdout) == by_rest
    assert json.loads(reg(r, "schema", "get", str(v2["id"])).stdout) == sr.get(f"/schemas/ids/{v2['id']}")[1]

    # Deleting one version, then the subject (soft), then for good.
    out = reg(r, "subject", "delete", subject, "--version", "1").stdout
    assert rows(out) == [["SUBJECT", "VERSION"], [subject, "1"]]
    assert sr.versions(subject) == [2]
    assert sr.versions(subject, deleted="true") == [1, 2]
    out = reg(r, "subject", "delete", subject).stdout
    assert rows(out)[1:] == [[subject, "2"]]
    assert subject not in reg(r, "subject", "list").stdout.splitlines()
    assert subject in reg(r, "subject", "list", "--deleted").stdout.splitlines()
    out = reg(r, "subject", "delete", subject, "--permanent").stdout
    assert rows(out)[1:] == [[subject, "1"], [subject, "2"]]
    assert subject not in reg(r, "subject", "list", "--deleted").stdout.splitlines()
    assert sr.get(f"/subjects/{subject}/versions", deleted="true")[0] == 404


def test_errors_print_confluents_code_and_message(module_registry, tmp_path):
    r = module_registry
    subject = unique("cli-missing")
    proc = reg(r, "subject", "get", subject, ok=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == f"error: error_code 40401: Subject '{subject}' not found."
    proc = reg(r, "schema", "get", "999999", ok=False)
    assert proc.returncode != 0 and "error_code 40403" in proc.stderr
    proc = reg(r, "subject", "register", subject, "--schema", schema_file(tmp_path, '{"type": "nope"}'),
               ok=False)
    assert proc.returncode != 0 and "error_code 42201" in proc.stderr
    proc = reg(r, "config", "--set", "SOMETIMES", ok=False)
    assert proc.returncode != 0 and "error_code 42203: Invalid compatibility level" in proc.stderr
    # No registry there at all.
    proc = cli("registry", "subject", "list", "--registry-url", "http://127.0.0.1:9", ok=False)
    assert proc.returncode != 0 and "connecting to 127.0.0.1:9" in proc.stderr


def test_registry_url_from_the_environment(module_registry):
    import os
    env = {**os.environ, "STROM_REGISTRY_URL": module_registry.registry_url}
    assert cli("registry", "config", env=env).stdout.strip() in {
        "NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"}


def test_references(module_registry, sr, tmp_path):
    r = module_registry
    address = record("Address", ("city", "string"), namespace="com.example")
    person = record("Person", ("name", "string"), ("home", "com.example.Address"), namespace="com.example")
    a_subject, p_subject = unique("cli-address"), unique("cli-person")
    reg(r, "subject", "register", a_subject, "--schema", schema_file(tmp_path, address, "a.avsc"))
    out = reg(r, "subject", "register", p_subject, "--schema", schema_file(tmp_path, person, "p.avsc"),
              "--reference", f"com.example.Address={a_subject}:1").stdout
    status, body = sr.get(f"/subjects/{p_subject}/versions/1")
    assert status == 200
    assert rows(out)[1] == [p_subject, "1", str(body["id"])]
    assert body["references"] == [{"name": "com.example.Address", "subject": a_subject, "version": 1}]
    # The referenced version cannot go while it is referenced.
    proc = reg(r, "subject", "delete", a_subject, "--version", "1", ok=False)
    assert proc.returncode != 0 and "error_code 42206" in proc.stderr


def test_config_and_mode(module_registry, sr, tmp_path):
    r = module_registry
    subject = unique("cli-config")
    assert reg(r, "config").stdout == sr.get("/config")[1]["compatibilityLevel"] + "\n"
    # A subject without its own level shows the global one.
    assert reg(r, "config", subject).stdout == sr.get("/config")[1]["compatibilityLevel"] + "\n"
    assert reg(r, "config", subject, "--set", "full_transitive").stdout == "FULL_TRANSITIVE\n"
    assert sr.get(f"/config/{subject}") == (200, {"compatibilityLevel": "FULL_TRANSITIVE"})
    assert reg(r, "config", subject).stdout == "FULL_TRANSITIVE\n"
    assert reg(r, "config", subject, "--delete").stdout == "FULL_TRANSITIVE\n"
    assert sr.get(f"/config/{subject}")[0] == 404

    before = sr.get("/config")[1]["compatibilityLevel"]
    try:
        assert reg(r, "config", "--set", "NONE").stdout == "NONE\n"
        assert sr.get("/config") == (200, {"compatibilityLevel": "NONE"})
    finally:
        sr.put("/config", {"compatibility": before})

    assert reg(r, "mode").stdout == "READWRITE\n"
    assert reg(r, "mode", subject, "--set", "READONLY").stdout == "READONLY\n"
    assert sr.get(f"/mode/{subject}") == (200, {"mode": "READONLY"})
    assert reg(r, "mode", subject).stdout == "READONLY\n"
    proc = reg(r, "subject", "register", subject, "--schema", schema_file(tmp_path, USER), ok=False)
    assert proc.returncode != 0 and "error_code 42205" in proc.stderr
    assert reg(r, "mode", subject, "--set", "READWRITE").stdout == "READWRITE\n"
    reg(r, "subject", "register", subject, "--schema", schema_file(tmp_path, USER))
    assert sr.versions(subject) == [1]
    assert reg(r, "mode", subject, "--delete").stdout == "READWRITE\n"
    assert reg(r, "mode", subject).stdout == "READWRITE\n"


# --- strom produce --schema-registry ----------------------------------------------------------

def deserializing_consumer(broker, key_deserializer, value_deserializer) -> DeserializingConsumer:
    return DeserializingConsumer({
        "bootstrap.servers": broker.bootstrap, "group.id": unique("cli-reader"), "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "key.deserializer": key_deserializer, "value.deserializer": value_deserializer,
    })


def read_all(c: DeserializingConsumer, topic: str, count: int) -> list[tuple]:
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        out = []
        deadline = time.monotonic() + 30
        while len(out) < count:
            assert time.monotonic() < deadline, f"read {len(out)} of {count}"
            msg = c.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append((msg.key(), msg.value()))
        return out
    finally:
        c.close()


def produce(broker, topic: str, *args: str, lines: list[str], ok: bool = True) -> subprocess.CompletedProcess:
    return cli("produce", topic, "--brokers", broker.bootstrap, "--schema-registry", broker.registry_url,
               *args, stdin="".join(line + "\n" for line in lines), ok=ok)


def test_produce_avro_read_by_confluent_kafka(module_registry, sr):
    r = module_registry
    topic = unique("cli-avro")
    create_topic(r, topic, 1)
    value_id = sr.register(f"{topic}-value", USER)
    key_id = sr.register(f"{topic}-key", KEY)
    values = [{"name": "ann", "age": 31, "email": "ann@example.com"},
              {"name": "bob", "age": 42, "email": None},
              # A missing field with a default; a union in Avro's own JSON encoding.
              {"name": "cy", "age": 7},
              {"name": "dee", "age": -1, "email": {"string": "d@x"}}]
    lines = [f"{json.dumps({'id': i})}\t{json.dumps(v)}" for i, v in enumerate(values)]
    produce(r, topic, "--format", "avro", "-k", "\t", "--key-subject", f"{topic}-key", lines=lines)

    raw = read_partition(r, topic, 0, 0, len(values))
    for m in raw:
        assert m.value()[:5] == b"\x00" + struct.pack(">I", value_id)
        assert m.key()[:5] == b"\x00" + struct.pack(">I", key_id)

    client = SchemaRegistryClient({"url": r.registry_url})
    got = read_all(deserializing_consumer(r, AvroDeserializer(client), AvroDeserializer(client)), topic,
                   len(values))
    assert got == [({"id": i}, {"name": v["name"], "age": v["age"],
                                "email": v["email"]["string"] if isinstance(v.get("email"), dict)
                                else v.get("email")})
                   for i, v in enumerate(values)]


def test_produce_avro_by_id_and_subject(module_registry, sr):
    r = module_registry
    topic = unique("cli-avro-id")
    create_topic(r, topic, 1)
    other = unique("cli-other")
    v1 = sr.register(other, USER)
    v2 = sr.register(other, USER_V2)
    # By id: the older version; by subject: its latest.
    produce(r, topic, "--schema-id", str(v1), lines=[json.dumps({"name": "a", "age": 1, "email": None})])
    produce(r, topic, "--value-subject", other,
            lines=[json.dumps({"name": "b", "age": 2, "email": "b@x", "score": 1.25})])
    raw = read_partition(r, topic, 0, 0, 2)
    assert [struct.unpack(">I", m.value()[1:5])[0] for m in raw] == [v1, v2]
    client = SchemaRegistryClient({"url": r.registry_url})
    got = read_all(deserializing_consumer(r, None, AvroDeserializer(client)), topic, 2)
    assert [v for _, v in got] == [{"name": "a", "age": 1, "email": None},
                                   {"name": "b", "age": 2, "email": "b@x", "score": 1.25}]


def test_produce_refuses_what_does_not_fit(module_registry, sr):
    r = module_registry
    topic = unique("cli-avro-bad")
    create_topic(r, topic, 1)
    sr.register(f"{topic}-value", USER)
    proc = produce(r, topic, lines=[json.dumps({"name": "ok", "age": 1}), json.dumps({"name": "x"})], ok=False)
    assert proc.returncode != 0
    assert "line 2" in proc.stderr and "age: missing, and the field has no default" in proc.stderr
    proc = produce(r, topic, lines=["not json"], ok=False)
    assert proc.returncode != 0 and "the value is not JSON" in proc.stderr
    proc = produce(r, topic, "--format", "json-schema", lines=["{}"], ok=False)
    assert proc.returncode != 0 and "is of type AVRO, not JSON" in proc.stderr
    proc = produce(r, topic, "--format", "protobuf", lines=["{}"], ok=False)
    assert proc.returncode != 0 and "is of type AVRO, not PROTOBUF" in proc.stderr
    proc = produce(r, unique("cli-nosubject"), lines=["{}"], ok=False)
    assert proc.returncode != 0 and "error_code 40401" in proc.stderr
    # Only the good line before the bad one was written.
    assert watermarks(r, topic, 0) == (0, 1)


def test_produce_json_schema_read_by_confluent_kafka(module_registry, sr):
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    r = module_registry
    topic = unique("cli-json")
    status, body = sr.post(f"/subjects/{topic}-value/versions",
                           {"schema": json.dumps(ORDER_JSON), "schemaType": "JSON"})
    if status == 422 and "not supported" in body.get("message", ""):
        pytest.skip("this registry does not take JSON schemas yet")
    assert status == 200, body
    schema_id = body["id"]
    create_topic(r, topic, 1)
    values = [{"id": 1, "item": "book", "price": 12.5}, {"id": 2, "item": "pen"}]
    produce(r, topic, "--format", "json-schema", lines=[json.dumps(v) for v in values])
    raw = read_partition(r, topic, 0, 0, 2)
    assert [m.value() for m in raw] == [b"\x00" + struct.pack(">I", schema_id) + json.dumps(v, separators=(",", ":")).encode()
                                        for v in values]
    client = SchemaRegistryClient({"url": r.registry_url})
    got = read_all(deserializing_consumer(r, None, JSONDeserializer(json.dumps(ORDER_JSON),
                                                                   schema_registry_client=client)),
                   topic, 2)
    assert [v for _, v in got] == values
    # A value the schema refuses is not written.
    proc = produce(r, topic, lines=[json.dumps({"id": "three", "item": "x"})], ok=False)
    assert proc.returncode != 0 and "does not match the JSON schema" in proc.stderr
    # The CLI prints JSON Schema payloads as they are.
    out = cli("consume", topic, "--brokers", r.bootstrap, "--schema-registry", r.registry_url, "-n", "2",
              "--timeout-ms", "15000").stdout
    assert out.splitlines() == [json.dumps(v, separators=(",", ":")) for v in values]


# --- strom consume --schema-registry ----------------------------------------------------------

def test_consume_decodes_what_confluent_kafka_wrote(module_registry):
    r = module_registry
    topic = unique("cli-decode")
    create_topic(r, topic, 1)
    client = SchemaRegistryClient({"url": r.registry_url})
    p = SerializingProducer({
        "bootstrap.servers": r.bootstrap, "acks": "all",
        "key.serializer": AvroSerializer(client, json.dumps(KEY)),
        "value.serializer": AvroSerializer(client, json.dumps(USER_V2)),
    })
    pairs = [({"id": i}, {"name": f"u{i}", "age": 20 + i, "email": None if i % 2 else f"u{i}@x",
                          "score": i / 4}) for i in range(4)]
    for k, v in pairs:
        p.produce(topic, key=k, value=v)
    assert p.flush(30) == 0
    # Plus one record that is not in the wire format: printed as it is.
    raw_producer = SerializingProducer({"bootstrap.servers": r.bootstrap})
    raw_producer.produce(topic, key=b"plain", value=b"not framed")
    assert raw_producer.flush(30) == 0
    key_id = client.get_latest_version(f"{topic}-key").schema_id
    value_id = client.get_latest_version(f"{topic}-value").schema_id

    base = ["consume", topic, "--brokers", r.bootstrap, "--schema-registry", r.registry_url, "-n", "5",
            "--timeout-ms", "15000"]
    plain = cli(*base).stdout
    assert plain.splitlines() == [json.dumps(v, separators=(",", ":")) for _, v in pairs] + ["not framed"]

    out = [json.loads(line) for line in cli(*base, "--format", "json").stdout.splitlines()]
    assert [(o["offset"], o["key"], o.get("key_schema_id"), o["value"], o.get("value_schema_id")) for o in out] == \
        [(i, k, key_id, v, value_id) for i, (k, v) in enumerate(pairs)] + [(4, "plain", None, "not framed", None)]
    # Field order is the schema's.
    assert list(out[0]["value"]) == ["name", "age", "email", "score"]

    # What the CLI prints, the CLI produces again (same schema, same bytes).
    copy = unique("cli-copy")
    create_topic(r, copy, 1)
    produce(r, copy, "--value-subject", f"{topic}-value", lines=plain.splitlines()[:4])
    assert [m.value() for m in read_partition(r, copy, 0, 0, 4)] == \
        [m.value() for m in read_partition(r, topic, 0, 0, 4, window=True)]


# --- Protobuf ---------------------------------------------------------------------------------

PROTO_MONEY = """syntax = "proto3";
package clitest.common;
message Money {
  string currency = 1;
  int64 units = 2;
}
"""
PROTO_ORDER = """syntax = "proto3";
package clitest;
import "clitest/money.proto";
message Order {
  message Line {
    string sku = 1;
    uint32 qty = 2;
  }
  int64 id = 1;
  repeated Line lines = 2;
  clitest.common.Money total = 3;
  map<string, string> tags = 4;
}
message Refund {
  int64 order_id = 1;
  string reason = 2;
}
"""


@pytest.fixture(scope="module")
def order_pb2(tmp_path_factory):
    """Classes for PROTO_ORDER and its import, generated by grpc_tools' protoc."""
    src = tmp_path_factory.mktemp("cli-proto-src")
    out = tmp_path_factory.mktemp("cli-proto-out")
    (src / "clitest").mkdir()
    (src / "clitest" / "money.proto").write_text(PROTO_MONEY)
    (src / "clitest" / "order.proto").write_text(PROTO_ORDER)
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"--python_out={out}",
                    "clitest/money.proto", "clitest/order.proto"], check=True)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("clitest.order_pb2")
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == "clitest" or n.startswith("clitest.")]:
            del sys.modules[name]


def test_produce_protobuf_read_by_confluent_kafka(module_registry, sr, order_pb2):
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    r = module_registry
    topic = unique("cli-proto")
    money_subject = unique("cli-money")
    status, body = sr.post(f"/subjects/{money_subject}/versions",
                           {"schema": PROTO_MONEY, "schemaType": "PROTOBUF"})
    assert status == 200, body
    status, body = sr.post(f"/subjects/{topic}-value/versions",
                           {"schema": PROTO_ORDER, "schemaType": "PROTOBUF",
                            "references": [{"name": "clitest/money.proto", "subject": money_subject,
                                            "version": 1}]})
    assert status == 200, body
    schema_id = body["id"]
    create_topic(r, topic, 1)
    values = [
        {"id": "1", "lines": [{"sku": "a-1", "qty": 2}, {"sku": "b", "qty": 1}],
         "total": {"currency": "EUR", "units": "17"}, "tags": {"gift": "yes"}},
        # Numbers for 64-bit integers are taken too.
        {"id": 2, "total": {"currency": "USD", "units": 5}},
        {},
    ]
    produce(r, topic, "--format", "protobuf", lines=[json.dumps(v) for v in values])

    Order, Line = order_pb2.Order, order_pb2.Order.Line
    Money = importlib.import_module("clitest.money_pb2").Money
    expected = [
        Order(id=1, lines=[Line(sku="a-1", qty=2), Line(sku="b", qty=1)],
              total=Money(currency="EUR", units=17), tags={"gift": "yes"}),
        Order(id=2, total=Money(currency="USD", units=5)),
        Order(),
    ]
    # The frame, the message index of the first message (a single 0), then the message.
    raw = read_partition(r, topic, 0, 0, len(values))
    assert [m.value() for m in raw] == [b"\x00" + struct.pack(">I", schema_id) + b"\x00" + e.SerializeToString()
                                        for e in expected]
    got = [v for _, v in read_all(deserializing_consumer(
        r, None, ProtobufDeserializer(Order, {"use.deprecated.format": False})), topic, len(values))]
    assert got == expected
    assert (got[0].id, [(x.sku, x.qty) for x in got[0].lines], got[0].total.currency, got[0].total.units,
            dict(got[0].tags)) == (1, [("a-1", 2), ("b", 1)], "EUR", 17, {"gift": "yes"})

    # What strom consume prints (proto3's JSON mapping), strom produce writes again byte for byte.
    out = cli("consume", topic, "--brokers", r.bootstrap, "--schema-registry", r.registry_url, "-n", "3",
              "--timeout-ms", "15000").stdout
    assert out.splitlines() == [
        '{"id":"1","lines":[{"sku":"a-1","qty":2},{"sku":"b","qty":1}],'
        '"total":{"currency":"EUR","units":"17"},"tags":{"gift":"yes"}}',
        '{"id":"2","total":{"currency":"USD","units":"5"}}',
        "{}",
    ]
    copy = unique("cli-proto-copy")
    create_topic(r, copy, 1)
    produce(r, copy, "--value-subject", f"{topic}-value", lines=out.splitlines())
    assert [m.value() for m in read_partition(r, copy, 0, 0, 3)] == [m.value() for m in raw]

    # A value the message has no field for is refused, and nothing is written.
    proc = produce(r, topic, lines=[json.dumps({"id": 3, "colour": "red"})], ok=False)
    assert proc.returncode != 0
    assert "the value does not fit message clitest.Order" in proc.stderr and "colour" in proc.stderr
    assert watermarks(r, topic, 0) == (0, 3)


def test_consume_decodes_protobuf_confluent_kafka_wrote(module_registry, order_pb2):
    from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
    r = module_registry
    topic = unique("cli-proto-decode")
    create_topic(r, topic, 1)
    client = SchemaRegistryClient({"url": r.registry_url})
    conf = {"use.deprecated.format": False}
    # Refund is the file's second message (indexes [1]); Order.Line a nested one ([0, 0]).
    refunds = SerializingProducer({"bootstrap.servers": r.bootstrap, "acks": "all",
                                   "value.serializer": ProtobufSerializer(order_pb2.Refund, client, conf)})
    refunds.produce(topic, value=order_pb2.Refund(order_id=7, reason="late"))
    refunds.produce(topic, value=order_pb2.Refund())
    assert refunds.flush(30) == 0
    lines = SerializingProducer({"bootstrap.servers": r.bootstrap, "acks": "all",
                                 "value.serializer": ProtobufSerializer(order_pb2.Order.Line, client, conf)})
    lines.produce(topic, value=order_pb2.Order.Line(sku="x", qty=3))
    assert lines.flush(30) == 0
    schema_id = client.get_latest_version(f"{topic}-value").schema_id
    raw = read_partition(r, topic, 0, 0, 3)
    assert [m.value()[:8] for m in raw] == [b"\x00" + struct.pack(">I", schema_id) + prefix
                                            for prefix in (b"\x02\x02\x08", b"\x02\x02", b"\x04\x00\x00")]

    base = ["consume", topic, "--brokers", r.bootstrap, "--schema-registry", r.registry_url, "-n", "3",
            "--timeout-ms", "15000"]
    assert cli(*base).stdout.splitlines() == ['{"orderId":"7","reason":"late"}', "{}", '{"sku":"x","qty":3}']
    out = [json.loads(line) for line in cli(*base, "--format", "json").stdout.splitlines()]
    assert [(o["offset"], o["value"], o["value_schema_id"]) for o in out] == \
        [(0, {"orderId": "7", "reason": "late"}, schema_id), (1, {}, schema_id),
         (2, {"sku": "x", "qty": 3}, schema_id)]


PROTO_PAYMENT = """syntax = "proto3";
package clitest.pay;
import "google/type/money.proto";
import "google/type/date.proto";
import "google/type/dayofweek.proto";
message Payment {
  google.type.Money amount = 1;
  google.type.Date on = 2;
  google.type.DayOfWeek weekday = 3;
}
"""


def test_protobuf_importing_the_files_confluent_bundles(module_registry, sr, tmp_path):
    """`google/type/*` imports carry no reference (confluent-kafka's serializer skips them, as
    Confluent's registry bundles them): the CLI's codec resolves them as the registry does."""
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    import google.type  # googleapis-common-protos: the .proto files beside the generated classes
    r = module_registry
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "clitest" / "pay").mkdir(parents=True)
    out.mkdir()
    (src / "clitest" / "pay" / "payment.proto").write_text(PROTO_PAYMENT)
    site = Path(google.type.__path__[0]).parent.parent
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"-I{site}", f"--python_out={out}",
                    "clitest/pay/payment.proto"], check=True)
    sys.path.insert(0, str(out))
    try:
        Payment = importlib.import_module("clitest.pay.payment_pb2").Payment
    finally:
        sys.path.remove(str(out))
    from google.type import date_pb2, money_pb2

    topic = unique("cli-proto-bundled")
    create_topic(r, topic, 1)
    client = SchemaRegistryClient({"url": r.registry_url})
    producer = SerializingProducer({
        "bootstrap.servers": r.bootstrap, "acks": "all",
        "value.serializer": ProtobufSerializer(Payment, client, {"use.deprecated.format": False,
                                                                 "skip.known.types": True})})
    sent = [Payment(amount=money_pb2.Money(currency_code="EUR", units=12, nanos=500_000_000),
                    on=date_pb2.Date(year=2026, month=11, day=30), weekday=1),
            Payment()]
    for p in sent:
        producer.produce(topic, value=p)
    assert producer.flush(30) == 0
    status, latest = sr.get(f"/subjects/{topic}-value/versions/latest")
    assert status == 200, latest
    assert latest.get("references", []) == [] and "google/type/money.proto" in latest["schema"]

    base = ["consume", topic, "--brokers", r.bootstrap, "--schema-registry", r.registry_url, "-n", "2",
            "--timeout-ms", "15000"]
    lines = cli(*base).stdout.splitlines()
    assert lines == ['{"amount":{"currencyCode":"EUR","units":"12","nanos":500000000},'
                     '"on":{"year":2026,"month":11,"day":30},"weekday":"MONDAY"}', "{}"]

    # strom produce writes the same bytes as confluent-kafka's serializer did.
    copy = unique("cli-proto-bundled-copy")
    create_topic(r, copy, 1)
    produce(r, copy, "--value-subject", f"{topic}-value", lines=lines)
    raw = [m.value() for m in read_partition(r, topic, 0, 0, 2)]
    assert [m.value() for m in read_partition(r, copy, 0, 0, 2)] == raw
    assert raw[0][:6] == b"\x00" + struct.pack(">I", latest["id"]) + b"\x00"
    got = [v for _, v in read_all(deserializing_consumer(
        r, None, ProtobufDeserializer(Payment, {"use.deprecated.format": False})), copy, 2)]
    assert got == sent
