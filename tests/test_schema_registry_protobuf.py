"""Protobuf schemas (`schemaType: "PROTOBUF"`) in strom's schema registry, as Confluent's registry
serves them: registration stores the schema printed back from its parsed form (the canonical text),
lookups match differently formatted texts, Confluent's Protobuf compatibility rules (a diff from the
older schema to the newer one) under each level, imports resolved through references to other
subjects, and confluent-kafka's ProtobufSerializer/ProtobufDeserializer producing and consuming
through strom with message classes protoc generates at test time. One broker serves the module; every
case keeps to its own subjects."""

from __future__ import annotations

import importlib
import struct
import subprocess
import sys
import time

import pytest
from confluent_kafka import DeserializingConsumer, SerializingProducer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaReference, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from helpers import create_topic, read_partition, unique, watermarks
from registry_helpers import INCOMPATIBLE_ERROR_CODE, INCOMPATIBLE_MESSAGE_PREFIX, RegistryClient

ORDER = """syntax = "proto3";
package shop.orders;

// An order, with comments and odd spacing the registry drops.
message Order {
    string id = 1;
    repeated Line lines   = 2;
    map<string, int64> counts = 3;
    oneof payment { string card = 4; string iban = 5; }
    message Line { string sku = 1; int32 qty = 2; }
}
enum Status { UNKNOWN = 0; PAID = 1; }
"""

ORDER_CANONICAL = """syntax = "proto3";
package shop.orders;

message Order {
  string id = 1;
  repeated Line lines = 2;
  map<string, int64> counts = 3;

  oneof payment {
    string card = 4;
    string iban = 5;
  }

  message Line {
    string sku = 1;
    int32 qty = 2;
  }
}
enum Status {
  UNKNOWN = 0;
  PAID = 1;
}
"""


def proto(body: str, package: str = "p") -> str:
    return f'syntax = "proto3";\npackage {package};\n{body}'


def body(schema: str, **extra) -> dict:
    return {"schemaType": "PROTOBUF", "schema": schema, **extra}


@pytest.fixture(scope="module")
def sr(module_registry) -> RegistryClient:
    return RegistryClient(module_registry.registry_url)


def register(sr: RegistryClient, subject: str, schema: str, **extra) -> int:
    status, answer = sr.post(f"/subjects/{subject}/versions", body(schema, **extra))
    assert status == 200, (status, answer)
    return answer["id"]


def test_register_stores_canonical_text_and_lookup_matches(sr):
    subject = unique("orders-value")
    schema_id = register(sr, subject, ORDER)
    status, answer = sr.get(f"/schemas/ids/{schema_id}")
    assert status == 200
    assert answer == {"schemaType": "PROTOBUF", "schema": ORDER_CANONICAL}
    status, version = sr.get(f"/subjects/{subject}/versions/1")
    assert status == 200
    assert version == {"subject": subject, "version": 1, "id": schema_id, "schemaType": "PROTOBUF",
                       "schema": ORDER_CANONICAL}
    # The canonical text and the original text are the same schema: same id, no new version.
    assert register(sr, subject, ORDER_CANONICAL) == schema_id
    assert sr.versions(subject) == [1]
    status, found = sr.post(f"/subjects/{subject}", body(ORDER.replace("\n", " \n ")))
    assert status == 200 and found["id"] == schema_id and found["version"] == 1
    # The same text in another subject gets the same id.
    assert register(sr, unique("orders-copy"), ORDER) == schema_id
    status, types = sr.get("/schemas/types")
    assert status == 200 and "PROTOBUF" in types


def test_normalize_qualifies_and_sorts(sr):
    subject = unique("normalized")
    text = proto('import "google/protobuf/timestamp.proto";\nmessage M {\n  string b = 2;\n'
                 '  google.protobuf.Timestamp a = 1;\n  N n = 3;\n}\nmessage N {}\n')
    status, answer = sr.post(f"/subjects/{subject}/versions", body(text), normalize="true")
    assert status == 200, answer
    schema_id = answer["id"]
    status, stored = sr.get(f"/schemas/ids/{schema_id}")
    assert stored["schema"] == ('syntax = "proto3";\npackage p;\n\nimport "google/protobuf/timestamp.proto";\n\n'
                                'message M {\n  .google.protobuf.Timestamp a = 1;\n  string b = 2;\n'
                                '  .p.N n = 3;\n}\nmessage N {}\n')


@pytest.mark.parametrize("text", [
    'syntax = "proto3"; message A { int32 x = 1',
    'syntax = "proto3"; message A { Missing x = 1; }',
    'syntax = "proto3"; message A { int32 x = 1; string y = 1; }',
    'syntax = "proto3"; import "other.proto"; message A { int32 x = 1; }',
    '{"type": "record", "name": "R", "fields": []}',
])
def test_invalid_schemas_are_refused(sr, text):
    status, answer = sr.post(f"/subjects/{unique('invalid')}/versions", body(text))
    assert status == 422, answer
    assert answer["error_code"] == 42201
    assert answer["message"].startswith("Invalid schema of type PROTOBUF, details: ")


BASE = "message M {\n  int32 a = 1;\n  string b = 2;\n  oneof o { int64 c = 3; string d = 4; }\n}\nmessage Extra {}\n"

# name: (new schema, new reads old (BACKWARD), old reads new (FORWARD)), per Confluent's diff.
EVOLUTIONS = {
    "add-field": (BASE.replace("string b = 2;", "string b = 2; bool e = 5;"), True, True),
    "remove-field": (BASE.replace("string b = 2;", ""), True, True),
    "rename-field": (BASE.replace("string b = 2;", "string bee = 2;"), True, True),
    "int32-to-int64": (BASE.replace("int32 a = 1;", "int64 a = 1;"), True, True),
    "int32-to-sint32": (BASE.replace("int32 a = 1;", "sint32 a = 1;"), False, False),
    "string-to-bytes": (BASE.replace("string b = 2;", "bytes b = 2;"), True, True),
    "string-to-int32": (BASE.replace("string b = 2;", "int32 b = 2;"), False, False),
    "scalar-to-message": (BASE.replace("int32 a = 1;", "Extra a = 1;"), False, False),
    "remove-message": (BASE.replace("message Extra {}\n", ""), False, True),
    "remove-oneof-member": (BASE.replace("string d = 4;", ""), False, True),
    "add-oneof-member": (BASE.replace("string d = 4;", "string d = 4; bool f = 6;"), True, False),
    "fields-into-new-oneof": (BASE.replace("int32 a = 1;\n  string b = 2;",
                                           "oneof n { int32 a = 1; string b = 2; }"), False, True),
    "package-change": ("package q;\n" + BASE, False, False),
}


def expected(level: str, backward: bool, forward: bool) -> bool:
    if level == "NONE":
        return True
    ok = True
    if level.startswith("BACKWARD") or level.startswith("FULL"):
        ok &= backward
    if level.startswith("FORWARD") or level.startswith("FULL"):
        ok &= forward
    return ok


@pytest.mark.parametrize("level", ["BACKWARD", "FORWARD", "FULL", "NONE"])
@pytest.mark.parametrize("evolution", sorted(EVOLUTIONS))
def test_evolution(sr, level, evolution):
    new_body, backward, forward = EVOLUTIONS[evolution]
    old = 'syntax = "proto3";\npackage p;\n' + BASE
    new = 'syntax = "proto3";\n' + (new_body if new_body.startswith("package") else "package p;\n" + new_body)
    subject = unique(f"evo-{evolution}")
    assert sr.put(f"/config/{subject}", {"compatibility": level})[0] == 200
    register(sr, subject, old)
    want = expected(level, backward, forward)
    status, answer = sr.post(f"/compatibility/subjects/{subject}/versions/latest", body(new))
    assert status == 200 and answer == {"is_compatible": want}, answer
    status, answer = sr.post(f"/subjects/{subject}/versions", body(new))
    if want:
        assert status == 200, answer
    else:
        assert status == 409 and answer["error_code"] == INCOMPATIBLE_ERROR_CODE, answer
        assert answer["message"].startswith(INCOMPATIBLE_MESSAGE_PREFIX)


def test_verbose_messages_are_confluents(sr):
    subject = unique("verbose")
    old = proto("message M {\n  int32 a = 1;\n}\n")
    register(sr, subject, old)
    status, answer = sr.post(f"/compatibility/subjects/{subject}/versions/latest",
                             body(proto("message M {\n  string a = 1;\n}\n")), verbose="true")
    assert status == 200
    assert answer == {"is_compatible": False, "messages": [
        "{errorType:\"FIELD_SCALAR_KIND_CHANGED\", description:\"The kind of a SCALAR field at path '#/M/1' in "
        "the new schema does not match its kind in the old schema\"}",
        "{oldSchemaVersion: 1}",
        "{oldSchema: 'syntax = \"proto3\";\npackage p;\n\nmessage M {\n  int32 a = 1;\n}\n'}",
        "{validateFields: 'false', compatibility: 'BACKWARD'}",
    ]}
    # FORWARD names the sides the other way round.
    assert sr.put(f"/config/{subject}", {"compatibility": "FORWARD"})[0] == 200
    status, answer = sr.post(f"/compatibility/subjects/{subject}/versions/latest",
                             body(proto("message N {}\n")), verbose="true")
    assert answer["messages"][0] == (
        "{errorType:\"MESSAGE_REMOVED\", description:\"The old schema is missing a MESSAGE type at path "
        "'#/N' in the new schema\"}")


def test_another_schema_type_is_incompatible(sr):
    subject = unique("mixed")
    status, _ = sr.post(f"/subjects/{subject}/versions",
                        {"schema": '{"type": "record", "name": "R", "fields": []}'})
    assert status == 200
    status, answer = sr.post(f"/compatibility/subjects/{subject}/versions/latest",
                             body(proto("message R {}\n")), verbose="true")
    assert answer == {"is_compatible": False, "messages": [
        "Incompatible because of different schema type", "{validateFields: 'false', compatibility: 'BACKWARD'}"]}


def test_import_through_a_reference(sr):
    money_subject = unique("money")
    money = proto("message Money {\n  int64 units = 1;\n  string currency = 2;\n}\n", package="shop.common")
    money_id = register(sr, money_subject, money)
    invoice = proto('import "shop/money.proto";\nimport "google/protobuf/timestamp.proto";\n\n'
                    'message Invoice {\n  shop.common.Money total = 1;\n  google.protobuf.Timestamp at = 2;\n}\n',
                    package="shop.billing")
    refs = [{"name": "shop/money.proto", "subject": money_subject, "version": 1}]
    subject = unique("invoice")
    # Without the reference the import is not found.
    status, answer = sr.post(f"/subjects/{subject}/versions", body(invoice))
    assert status == 422 and answer["error_code"] == 42201
    invoice_id = register(sr, subject, invoice, references=refs)
    assert invoice_id != money_id
    status, answer = sr.get(f"/schemas/ids/{invoice_id}")
    assert answer["references"] == refs
    assert answer["schema"].startswith('syntax = "proto3";\npackage shop.billing;\n\nimport "shop/money.proto";\n'
                                       'import "google/protobuf/timestamp.proto";\n')
    assert sr.get(f"/subjects/{money_subject}/versions/1/referencedby") == (200, [invoice_id])
    # A new version of the referenced schema that changes the field's kind breaks the referrer.
    status, _ = sr.put(f"/config/{money_subject}", {"compatibility": "NONE"})
    register(sr, money_subject, money.replace("int64 units", "string units"))
    refs2 = [{"name": "shop/money.proto", "subject": money_subject, "version": 2}]
    status, answer = sr.post(f"/compatibility/subjects/{subject}/versions/latest",
                             body(invoice, references=refs2), verbose="true")
    assert answer["is_compatible"] is False
    assert answer["messages"][:2] == [
        "{errorType:\"FIELD_SCALAR_KIND_CHANGED\", description:\"The kind of a SCALAR field at path "
        "'#/Money/1' in the new schema does not match its kind in the old schema\"}",
        "{errorType:\"FIELD_NAMED_TYPE_CHANGED\", description:\"The type of a MESSAGE field at path "
        "'#/Invoice/1' in the new schema does not match its type in the old schema\"}",
    ]
    # The deleted referenced version is refused while referenced.
    status, answer = sr.delete(f"/subjects/{money_subject}/versions/1")
    assert status == 422 and answer["error_code"] == 42206


def test_confluent_client_registers_protobuf(module_registry):
    client = SchemaRegistryClient({"url": module_registry.registry_url})
    subject = unique("client-proto")
    schema_id = client.register_schema(subject, Schema(ORDER, "PROTOBUF"))
    registered = client.get_latest_version(subject)
    assert registered.schema_id == schema_id
    assert registered.schema.schema_type == "PROTOBUF"
    assert registered.schema.schema_str == ORDER_CANONICAL
    client.set_compatibility(subject, "BACKWARD")
    assert client.test_compatibility(subject, Schema(ORDER.replace("string id = 1;", "string id = 1; int32 v = 9;"),
                                                     "PROTOBUF"))
    with pytest.raises(SchemaRegistryError) as err:
        client.register_schema(subject, Schema(ORDER.replace("string id = 1;", "int32 id = 1;"), "PROTOBUF"))
    assert err.value.http_status_code == 409


# --- confluent-kafka's Protobuf serializers ------------------------------------------------------

COMMON_PROTO = """syntax = "proto3";
package strom.test.common;
message Address {
  string city = 1;
}
"""

USER_PROTO = """syntax = "proto3";
package strom.test;
import "strom/common.proto";
import "google/protobuf/timestamp.proto";
message Header {
  string trace = 1;
}
message User {
  string name = 1;
  int32 age = 2;
  strom.test.common.Address address = 3;
  google.protobuf.Timestamp created = 4;
  map<string, string> tags = 5;
}
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Python classes for USER_PROTO (and its import), generated by grpc_tools' protoc."""
    src = tmp_path_factory.mktemp("proto-src")
    out = tmp_path_factory.mktemp("proto-out")
    (src / "strom").mkdir()
    (src / "strom" / "common.proto").write_text(COMMON_PROTO)
    (src / "strom" / "user.proto").write_text(USER_PROTO)
    import grpc_tools
    well_known = str(__import__("pathlib").Path(grpc_tools.__file__).parent / "_proto")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"-I{well_known}",
                    f"--python_out={out}", "strom/common.proto", "strom/user.proto"], check=True)
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("strom.user_pb2")
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == "strom" or n.startswith("strom.")]:
            del sys.modules[name]


def test_protobuf_serializer_round_trip(module_registry, generated):
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
    from confluent_kafka.serialization import StringDeserializer, StringSerializer

    broker = module_registry
    client = SchemaRegistryClient({"url": broker.registry_url})
    topic = unique("proto-users")
    create_topic(broker, topic, partitions=1)
    user_cls = generated.User
    producer = SerializingProducer({
        "bootstrap.servers": broker.bootstrap, "acks": "all",
        "key.serializer": StringSerializer(),
        "value.serializer": ProtobufSerializer(user_cls, client, {"use.deprecated.format": False}),
    })
    users = []
    for i in range(3):
        u = user_cls(name=f"user-{i}", age=20 + i)
        u.address.city = f"city-{i}"
        u.created.seconds = 1_700_000_000 + i
        u.tags["n"] = str(i)
        users.append(u)
    errors = []
    for i, u in enumerate(users):
        producer.produce(topic, key=f"k{i}", value=u,
                         on_delivery=lambda err, msg: errors.append(err) if err else None)
    assert producer.flush(30) == 0 and errors == []

    # The serializer registered the import as its own subject, referenced by name.
    subject = f"{topic}-value"
    latest = client.get_latest_version(subject)
    assert latest.schema.schema_type == "PROTOBUF"
    assert [(r.name, r.subject) for r in latest.schema.references] == [("strom/common.proto", "strom/common.proto")]
    # The serializer sends a compiled descriptor (base64); the registry stores it as .proto text.
    assert "message User {" in latest.schema.schema_str
    assert "  map<string, string> tags = 5;\n" in latest.schema.schema_str
    assert latest.schema.schema_str.index("message Header") < latest.schema.schema_str.index("message User")

    # Confluent's framing: magic byte 0, the id, then the message indexes ([1]: User is the second
    # message of its file, written as zigzag varints count 1 and index 1), then the message.
    low, high = watermarks(broker, topic, 0)
    records = read_partition(broker, topic, 0, low, high)
    assert len(records) == 3
    for raw, u in zip(records, users):
        value = raw.value()
        assert value[0] == 0
        assert struct.unpack(">I", value[1:5])[0] == latest.schema_id
        assert value[5:7] == b"\x02\x02"
        assert value[7:] == u.SerializeToString()

    consumer = DeserializingConsumer({
        "bootstrap.servers": broker.bootstrap, "group.id": unique("proto-reader"),
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "key.deserializer": StringDeserializer(),
        "value.deserializer": ProtobufDeserializer(user_cls, {"use.deprecated.format": False}),
    })
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 3 and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            got.append(msg.value())
    finally:
        consumer.close()
    assert got == users

    # A deserializer without the generated class reads the writer schema from the registry
    # (format=serialized) and decodes into a dynamic message.
    status, answer = RegistryClient(broker.registry_url).get(f"/schemas/ids/{latest.schema_id}",
                                                              format="serialized")
    assert status == 200 and answer["schema"] != latest.schema.schema_str
    import base64
    from google.protobuf import descriptor_pb2
    fd = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(answer["schema"]))
    assert [m.name for m in fd.message_type] == ["Header", "User"]
    assert list(fd.dependency) == ["strom/common.proto", "google/protobuf/timestamp.proto"]
