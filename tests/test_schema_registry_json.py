"""JSON Schema (`schemaType: "JSON"`) in strom's schema registry, as Confluent's registry handles it:
the stored text is the schema's compact JSON in the key order written; invalid schemas (by the
meta-schema of the draft `$schema` names) are refused with 42201; compatibility is Confluent's diff
from the older schema to the newer, where an open content model (no `additionalProperties: false`)
accepts removed properties but refuses added ones, and a closed one the opposite; `$ref`s name
other subjects' schemas through `references`; and confluent-kafka's JSONSerializer/JSONDeserializer
produce and consume through strom in Confluent's wire format (magic byte 0, the 4-byte id, JSON)."""

from __future__ import annotations

import json
import struct
import time

import pytest
from confluent_kafka import DeserializingConsumer, SerializingProducer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer

from helpers import create_topic, read_partition, unique
from registry_helpers import INCOMPATIBLE_ERROR_CODE, INCOMPATIBLE_MESSAGE_PREFIX, RegistryClient, assert_error

LEVELS = ["BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"]


def obj(properties: dict, required=(), closed: bool = False, **extra) -> dict:
    out = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    if closed:
        out["additionalProperties"] = False
    out.update(extra)
    return out


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}


def compact(schema) -> str:
    """The text the registry stores: compact JSON, keys in the order written."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def body(schema, **extra) -> dict:
    return {"schema": json.dumps(schema, indent=2), "schemaType": "JSON", **extra}


# name: (old, new, new reads old's data (backward), old reads new's data (forward)), per Confluent's
# JSON Schema diff.
EVOLUTIONS = {
    "identical": (obj({"a": STR}), obj({"a": STR}), True, True),
    # Open model: old data may hold any `b`, so a typed `b` is refused; old readers accept new data.
    "open-add-optional": (obj({"a": STR}), obj({"a": STR, "b": INT}), False, True),
    "open-add-required": (obj({"a": STR}), obj({"a": STR, "b": INT}, required=["b"]), False, True),
    "open-remove-property": (obj({"a": STR, "b": INT}), obj({"a": STR}), True, False),
    # Closed model: old data has no `b`; a closed old reader refuses new data holding `b`.
    "closed-add-optional": (obj({"a": STR}, closed=True), obj({"a": STR, "b": INT}, closed=True), True, False),
    "closed-add-required": (obj({"a": STR}, closed=True),
                            obj({"a": STR, "b": INT}, required=["b"], closed=True), False, False),
    "closed-add-required-with-default": (obj({"a": STR}, closed=True),
                                         obj({"a": STR, "b": {**INT, "default": 0}}, required=["b"], closed=True),
                                         True, False),
    "closed-remove-property": (obj({"a": STR, "b": INT}, closed=True), obj({"a": STR}, closed=True), False, True),
    "open-to-closed": (obj({"a": STR}), obj({"a": STR}, closed=True), False, True),
    "make-required": (obj({"a": STR}), obj({"a": STR}, required=["a"]), False, True),
    "integer-to-number": (obj({"a": INT}), obj({"a": NUM}), True, False),
    "string-to-nullable": (obj({"a": STR}), obj({"a": {"type": ["string", "null"]}}), True, False),
    "enum-extended": (obj({"c": {"enum": ["RED", "GREEN"]}}), obj({"c": {"enum": ["RED", "GREEN", "BLUE"]}}),
                      True, False),
    "max-length-decreased": (obj({"a": {**STR, "maxLength": 10}}), obj({"a": {**STR, "maxLength": 5}}), False, True),
    "oneof-branch-added": (obj({"a": {"oneOf": [STR, INT]}}), obj({"a": {"oneOf": [STR, INT, {"type": "null"}]}}),
                           True, False),
    "type-changed": (obj({"a": STR}), obj({"a": {"type": "boolean"}}), False, False),
}


def expected(level: str, backward: bool, forward: bool) -> bool:
    if level == "NONE":
        return True
    if level.startswith("BACKWARD"):
        return backward
    if level.startswith("FORWARD"):
        return forward
    return backward and forward


@pytest.fixture(scope="module")
def sr(module_registry) -> RegistryClient:
    return RegistryClient(module_registry.registry_url)


def register(sr: RegistryClient, subject: str, schema, **extra) -> int:
    status, reply = sr.post(f"/subjects/{subject}/versions", body(schema, **extra))
    assert status == 200, reply
    return reply["id"]


def test_register_lookup_and_read_back(sr):
    s = unique("json")
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "Pérson", "type": "object",
              "properties": {"name": STR, "age": {"type": "integer", "minimum": 0}}, "required": ["name"]}
    schema_id = register(sr, s, schema)
    status, version = sr.get(f"/subjects/{s}/versions/1")
    assert status == 200
    assert version == {"subject": s, "version": 1, "id": schema_id, "schemaType": "JSON",
                       "schema": compact(schema)}, version
    assert sr.get(f"/schemas/ids/{schema_id}") == (200, {"schemaType": "JSON", "schema": compact(schema)})
    assert sr.get(f"/subjects/{s}/versions/1/schema") == (200, schema)

    # Whitespace differs: the same schema, the same id and version.
    status, found = sr.post(f"/subjects/{s}", {"schema": json.dumps(schema), "schemaType": "JSON"})
    assert status == 200, found
    assert (found["id"], found["version"], found["schemaType"]) == (schema_id, 1, "JSON")
    assert register(sr, s, schema) == schema_id
    assert sr.versions(s) == [1]

    # Key order is part of the text: another order is another schema (compatible here).
    reordered = {"type": "object", **{k: v for k, v in schema.items() if k != "type"}}
    assert register(sr, s, reordered) != schema_id
    assert sr.versions(s) == [1, 2]
    # With normalize, keys are sorted.
    t = unique("json-normalized")
    status, reply = sr.post(f"/subjects/{t}/versions", body(schema), normalize="true")
    assert status == 200, reply
    normalized_id = reply["id"]
    status, version = sr.get(f"/subjects/{t}/versions/1")
    assert json.loads(version["schema"]) == schema
    assert version["schema"] == json.dumps(schema, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    assert normalized_id != schema_id


@pytest.mark.parametrize("schema", [
    {"type": "strng"},
    {"type": "object", "properties": {"a": 1}},
    {"type": "object", "required": "a"},
    {"type": "string", "minLength": -1},
    [1, 2],
    {"$ref": "missing.json"},
])
def test_invalid_schemas_refused(sr, schema):
    s = unique("json-invalid")
    assert_error(sr.post(f"/subjects/{s}/versions", body(schema)), 422, 42201,
                 message_prefix="Invalid schema")
    assert_error(sr.post(f"/subjects/{s}/versions", {"schema": "{not json", "schemaType": "JSON"}), 422, 42201)


def subject_at(sr: RegistryClient, level: str, schemas: list) -> tuple[str, list[int]]:
    s = unique(f"json-{level.lower()}")
    assert sr.put(f"/config/{s}", {"compatibility": level}) == (200, {"compatibility": level})
    ids = [register(sr, s, schema) for schema in schemas]
    assert sr.versions(s) == list(range(1, len(schemas) + 1))
    return s, ids


def check(sr, s, schema, against: str = "/latest", verbose: bool = False):
    params = {"verbose": "true"} if verbose else {}
    status, reply = sr.post(f"/compatibility/subjects/{s}/versions{against}", body(schema), **params)
    assert status == 200, reply
    return reply


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("evolution", list(EVOLUTIONS))
def test_evolution(sr, level, evolution):
    old, new, backward, forward = EVOLUTIONS[evolution]
    want = expected(level, backward, forward)
    s, ids = subject_at(sr, level, [old])
    assert check(sr, s, new) == {"is_compatible": want}
    assert check(sr, s, new, against="") == {"is_compatible": want}
    assert sr.versions(s) == [1]
    status, reply = sr.post(f"/subjects/{s}/versions", body(new))
    if want:
        assert status == 200, reply
        assert reply["id"] not in ids or old == new
    else:
        assert (status, reply["error_code"]) == (409, INCOMPATIBLE_ERROR_CODE), reply
        assert reply["message"].startswith(INCOMPATIBLE_MESSAGE_PREFIX), reply["message"]
        assert sr.versions(s) == [1]


def test_transitive_levels_compare_with_every_version(sr):
    # v2 makes `a` required with a default (compatible), v3 drops the default (compatible with v2,
    # whose `a` is required too): against v1, v3 adds a required `a` without default.
    v1 = obj({"a": STR})
    v2 = obj({"a": {**STR, "default": "x"}}, required=["a"])
    v3 = obj({"a": STR}, required=["a"])
    outcomes = {"BACKWARD": True, "BACKWARD_TRANSITIVE": False, "FORWARD": True, "FORWARD_TRANSITIVE": True,
                "FULL": True, "FULL_TRANSITIVE": False, "NONE": True}
    for level, accepted in outcomes.items():
        s, _ = subject_at(sr, level, [v1, v2])
        # Against the latest version alone, every level accepts.
        assert check(sr, s, v3) == {"is_compatible": True}, level
        assert check(sr, s, v3, against="") == {"is_compatible": accepted}, level
        status, reply = sr.post(f"/subjects/{s}/versions", body(v3))
        assert (status == 200) is accepted, (level, reply)


def test_verbose_messages_are_confluents(sr):
    old = obj({"a": STR, "b": INT}, closed=True)
    new = obj({"a": STR}, closed=True)
    s, _ = subject_at(sr, "BACKWARD", [old])
    reply = check(sr, s, new, verbose=True)
    assert reply == {"is_compatible": False, "messages": [
        "{errorType:\"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL\", description:\"The new has a closed content "
        "model and is missing a property or item present at path '#/properties/b' in the old schema'}",
        "{oldSchemaVersion: 1}",
        "{oldSchema: '" + compact(old) + "'}",
        "{validateFields: 'false', compatibility: 'BACKWARD'}",
    ]}, reply
    # FORWARD: the old schema is the reader; Confluent's words swap.
    s, _ = subject_at(sr, "FORWARD", [obj({"a": STR})])
    reply = check(sr, s, obj({"a": STR}, required=["a"]), verbose=True)
    assert reply["is_compatible"] is True, reply
    s, _ = subject_at(sr, "FORWARD", [obj({"a": STR}, required=["a"])])
    reply = check(sr, s, obj({"a": STR}), verbose=True)
    assert reply["messages"][0] == (
        "{errorType:\"REQUIRED_ATTRIBUTE_ADDED\", description:\"The keyword at path '#/required/a' in the old "
        "schema is not present in the new schema'}"), reply


def test_other_schema_type_is_incompatible(sr):
    s = unique("json-vs-avro")
    assert sr.put(f"/config/{s}", {"compatibility": "BACKWARD"}) == (200, {"compatibility": "BACKWARD"})
    status, _ = sr.post(f"/subjects/{s}/versions", {"schema": json.dumps({"type": "string"})})
    assert status == 200
    reply = check(sr, s, {"type": "string"}, verbose=True)
    assert reply == {"is_compatible": False, "messages": [
        "Incompatible because of different schema type",
        "{validateFields: 'false', compatibility: 'BACKWARD'}"]}, reply


def test_reference_to_another_subject(sr):
    address_subject = unique("address")
    address = obj({"street": STR, "city": STR}, required=["city"])
    # The referenced subject evolves freely; the referrer is checked.
    assert sr.put(f"/config/{address_subject}", {"compatibility": "NONE"}) == (200, {"compatibility": "NONE"})
    address_id = register(sr, address_subject, address)
    person = obj({"name": STR, "home": {"$ref": "address.json"}})
    refs = [{"name": "address.json", "subject": address_subject, "version": 1}]
    s = unique("person")
    assert sr.put(f"/config/{s}", {"compatibility": "BACKWARD"}) == (200, {"compatibility": "BACKWARD"})
    # Without the reference, the $ref cannot be resolved.
    assert_error(sr.post(f"/subjects/{s}/versions", body(person)), 422, 42201)
    person_id = register(sr, s, person, references=refs)
    assert person_id != address_id
    status, version = sr.get(f"/subjects/{s}/versions/1")
    assert status == 200
    assert version["references"] == refs and version["schemaType"] == "JSON", version
    assert sr.get(f"/subjects/{address_subject}/versions/1/referencedby") == (200, [person_id])
    status, found = sr.post(f"/subjects/{s}", body(person, references=refs))
    assert (status, found["id"]) == (200, person_id), found

    # A new address version adds an optional property to its open model; a person referencing it
    # cannot read old persons' homes (a `zip` of any type may be there).
    address_v2 = obj({"street": STR, "city": STR, "zip": STR}, required=["city"])
    register(sr, address_subject, address_v2)
    refs_v2 = [{"name": "address.json", "subject": address_subject, "version": 2}]
    status, reply = sr.post(f"/compatibility/subjects/{s}/versions/latest", body(person, references=refs_v2),
                            verbose="true")
    assert status == 200, reply
    assert reply["is_compatible"] is False, reply
    assert reply["messages"][0] == (
        "{errorType:\"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL\", description:\"The new schema has an open "
        "content model and has a property or item at path '#/properties/home/properties/zip' which is missing "
        "in the old schema'}"), reply
    assert_error(sr.post(f"/subjects/{s}/versions", body(person, references=refs_v2)), 409, INCOMPATIBLE_ERROR_CODE)
    # Removing a property of the referenced open model is fine.
    address_v3 = obj({"city": STR}, required=["city"])
    register(sr, address_subject, address_v3)
    refs_v3 = [{"name": "address.json", "subject": address_subject, "version": 3}]
    assert register(sr, s, person, references=refs_v3) not in (person_id,)
    assert sr.versions(s) == [1, 2]


VALUE = {"$schema": "http://json-schema.org/draft-07/schema#", "title": "User", "type": "object",
         "properties": {"name": STR, "age": INT, "email": {"type": ["string", "null"]}},
         "required": ["name", "age"]}


def test_json_serializer_produces_and_consumes_through_strom(registry):
    sr = RegistryClient(registry.registry_url)
    client = SchemaRegistryClient({"url": registry.registry_url})
    topic = "json-users"
    create_topic(registry, topic, 1)
    values = [{"name": f"user-{i}", "age": 20 + i, "email": None if i % 2 else f"u{i}@example.com"}
              for i in range(10)]
    p = SerializingProducer({
        "bootstrap.servers": registry.bootstrap, "acks": "all", "linger.ms": 5,
        "value.serializer": JSONSerializer(json.dumps(VALUE), client),
    })
    errors = []
    for i, v in enumerate(values):
        p.produce(topic, key=str(i).encode(), value=v,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    assert p.flush(30) == 0 and errors == []

    # Auto-registered as JSON under the topic's value subject.
    status, version = sr.get(f"/subjects/{topic}-value/versions/latest")
    assert status == 200, version
    assert version["schemaType"] == "JSON" and json.loads(version["schema"]) == VALUE, version
    schema_id = version["id"]

    # The raw records: magic byte 0, the id, then the JSON document.
    raw = read_partition(registry, topic, 0, 0, len(values))
    assert len(raw) == len(values)
    for m, v in zip(raw, values):
        assert m.value()[0] == 0
        assert struct.unpack(">I", m.value()[1:5]) == (schema_id,)
        assert json.loads(m.value()[5:]) == v

    # A value the schema refuses is not serialized.
    with pytest.raises(Exception):
        p.produce(topic, value={"name": "no age"})

    c = DeserializingConsumer({
        "bootstrap.servers": registry.bootstrap, "group.id": unique("json-reader"),
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "value.deserializer": JSONDeserializer(json.dumps(VALUE), schema_registry_client=client),
    })
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(values) and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            assert m.error() is None, m.error()
            got.append(m.value())
    finally:
        c.close()
    assert got == values

    # A reader fetching the writer's schema by id from the registry (no schema of its own).
    c = DeserializingConsumer({
        "bootstrap.servers": registry.bootstrap, "group.id": unique("json-reader"),
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "value.deserializer": JSONDeserializer(None, schema_registry_client=client),
    })
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(values) and time.monotonic() < deadline:
            m = c.poll(1.0)
            if m is None:
                continue
            assert m.error() is None, m.error()
            got.append(m.value())
    finally:
        c.close()
    assert got == values
