"""Avro compatibility under each of the seven levels, as Confluent's documentation defines them:
BACKWARD = the new schema reads data written with the latest one, FORWARD = the latest reads data
written with the new one, FULL = both, the _TRANSITIVE forms against every earlier version instead
of the latest, NONE = no check. Each evolution is checked three ways: `POST /compatibility/subjects/
{s}/versions/latest` (against the latest version only), `POST /compatibility/subjects/{s}/versions`
(against the versions the level names) and registration (refused with 409). One broker serves the
whole module; every case has its own subject with its own level."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from helpers import unique
from registry_helpers import (INCOMPATIBLE_ERROR_CODE, INCOMPATIBLE_MESSAGE_PREFIX, RegistryClient, record,
                              schema_body)

LEVELS = ["BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE"]

ENUM_AB = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}
ENUM_ABC = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}

# name: (old schema, new schema, new reads old (backward), old reads new (forward)), per Avro's
# schema resolution rules.
EVOLUTIONS = {
    "add-field-with-default": (record("R", ("a", "int")),
                               record("R", ("a", "int"), ("b", "string", {"default": "x"})), True, True),
    "add-field-without-default": (record("R", ("a", "int")),
                                  record("R", ("a", "int"), ("b", "string")), False, True),
    "remove-field-with-default": (record("R", ("a", "int"), ("b", "string", {"default": "x"})),
                                  record("R", ("a", "int")), True, True),
    "remove-field-without-default": (record("R", ("a", "int"), ("b", "string")),
                                     record("R", ("a", "int")), True, False),
    "int-to-long": (record("R", ("a", "int")), record("R", ("a", "long")), True, False),
    "long-to-int": (record("R", ("a", "long")), record("R", ("a", "int")), False, True),
    # Avro resolves string and bytes into each other both ways.
    "string-to-bytes": (record("R", ("a", "string")), record("R", ("a", "bytes")), True, True),
    "bytes-to-string": (record("R", ("a", "bytes")), record("R", ("a", "string")), True, True),
    # The old reader has no BLUE (and no enum default): forward fails.
    "add-enum-symbol": (record("R", ("c", ENUM_AB)), record("R", ("c", ENUM_ABC)), True, False),
    # The new reader finds the old field `a` through its alias; the old reader has no `b` and no
    # default for `a`. Unsure: Confluent's checker (Avro's SchemaCompatibility) honours reader aliases.
    "rename-field-with-alias": (record("R", ("a", "int")),
                                record("R", ("b", "int", {"aliases": ["a"]})), True, False),
}

# Three-version chains where each step is fully compatible with the one before it, but v3 and v1 are
# not: the transitive levels refuse v3, the others accept it. Each: ([v1, v2, v3], (v3 reads v1,
# v1 reads v3), outcome per level against the versions the level names).
CHAINS = {
    # v3 needs `b`, which v1 does not write: backward against v1 fails.
    "chain-needs-field-v1-lacks": (
        [record("R", ("a", "int")),
         record("R", ("a", "int"), ("b", "string", {"default": "x"})),
         record("R", ("a", "int"), ("b", "string"))],
        (False, True),
        {"BACKWARD": True, "BACKWARD_TRANSITIVE": False, "FORWARD": True, "FORWARD_TRANSITIVE": True,
         "FULL": True, "FULL_TRANSITIVE": False, "NONE": True}),
    # v1 needs `b` (no default), which v3 does not write: forward against v1 fails.
    "chain-drops-field-v1-needs": (
        [record("R", ("a", "int"), ("b", "string")),
         record("R", ("a", "int"), ("b", "string", {"default": "x"})),
         record("R", ("a", "int"))],
        (True, False),
        {"BACKWARD": True, "BACKWARD_TRANSITIVE": True, "FORWARD": True, "FORWARD_TRANSITIVE": False,
         "FULL": True, "FULL_TRANSITIVE": False, "NONE": True}),
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


def subject_at(sr: RegistryClient, level: str, schemas: list) -> tuple[str, list[int]]:
    """A fresh subject at `level` with `schemas` registered in order."""
    s = unique(f"compat-{level.lower()}")
    assert sr.put(f"/config/{s}", {"compatibility": level}) == (200, {"compatibility": level})
    ids = [sr.register(s, schema) for schema in schemas]
    assert sr.versions(s) == list(range(1, len(schemas) + 1))
    return s, ids


def check_latest(sr, s, schema):
    status, body = sr.post(f"/compatibility/subjects/{s}/versions/latest", schema_body(schema))
    assert status == 200, body
    assert set(body) == {"is_compatible"}, body
    return body["is_compatible"]


def check_all(sr, s, schema):
    status, body = sr.post(f"/compatibility/subjects/{s}/versions", schema_body(schema))
    assert status == 200, body
    assert set(body) == {"is_compatible"}, body
    return body["is_compatible"]


def register_outcome(sr, s, schema, old_ids, accepted: bool):
    n_before = len(sr.versions(s))
    status, body = sr.post(f"/subjects/{s}/versions", schema_body(schema))
    if accepted:
        assert status == 200, body
        assert body["id"] not in old_ids, body
        assert sr.versions(s) == list(range(1, n_before + 2))
        assert sr.get(f"/subjects/{s}/versions/latest/schema") == (200, schema)
    else:
        assert (status, body["error_code"]) == (409, INCOMPATIBLE_ERROR_CODE), body
        assert set(body) == {"error_code", "message"}, body
        # Unsure of the rest of the message (Confluent appends the details of each incompatibility).
        assert body["message"].startswith(INCOMPATIBLE_MESSAGE_PREFIX), body["message"]
        assert s in body["message"], body["message"]
        assert sr.versions(s) == list(range(1, n_before + 1))


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("evolution", list(EVOLUTIONS))
def test_two_version_evolution(sr, level, evolution):
    old, new, backward, forward = EVOLUTIONS[evolution]
    want = expected(level, backward, forward)
    s, ids = subject_at(sr, level, [old])
    # With a single earlier version the transitive levels agree with the others.
    assert (check_latest(sr, s, new), check_all(sr, s, new)) == (want, want)
    # Checking registers nothing.
    assert sr.versions(s) == [1]
    register_outcome(sr, s, new, ids, want)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("chain", list(CHAINS))
def test_three_version_chain(sr, level, chain):
    schemas, (backward_v1, forward_v1), outcomes = CHAINS[chain]
    s, ids = subject_at(sr, level, schemas[:2])
    # Against the latest version alone, v3 is fine at every level ...
    assert check_latest(sr, s, schemas[2]) is True
    # ... against the versions the level names, only the non-transitive levels accept it.
    assert check_all(sr, s, schemas[2]) is outcomes[level]
    # A specific version: v3 against v1 alone fails in the direction the chain breaks.
    status, body = sr.post(f"/compatibility/subjects/{s}/versions/1", schema_body(schemas[2]))
    assert status == 200, body
    assert body == {"is_compatible": expected(level, backward_v1, forward_v1)}, (level, body)
    register_outcome(sr, s, schemas[2], ids, outcomes[level])


def test_soft_deleted_versions_are_not_checked(sr):
    # BACKWARD_TRANSITIVE against v1 only while v1 is live.
    (v1, v2, v3), _, _ = CHAINS["chain-needs-field-v1-lacks"]
    s, ids = subject_at(sr, "BACKWARD_TRANSITIVE", [v1, v2])
    register_outcome(sr, s, v3, ids, False)
    assert sr.delete(f"/subjects/{s}/versions/1") == (200, 1)
    assert check_all(sr, s, v3) is True
    status, body = sr.post(f"/subjects/{s}/versions", schema_body(v3))
    assert status == 200 and body["id"] not in ids, body
    assert sr.versions(s) == [2, 3]


def test_verbose_compatibility_lists_messages(sr):
    old, new, _, _ = EVOLUTIONS["add-field-without-default"]
    s, _ = subject_at(sr, "BACKWARD", [old])
    status, body = sr.post(f"/compatibility/subjects/{s}/versions/latest", schema_body(new), verbose="true")
    assert status == 200 and body["is_compatible"] is False, body
    assert isinstance(body["messages"], list) and body["messages"], body
    status, body = sr.post(f"/compatibility/subjects/{s}/versions/latest", schema_body(old), verbose="true")
    assert status == 200 and body == {"is_compatible": True, "messages": []}, body
    # A version that is not there: 40402.
    status, body = sr.post(f"/compatibility/subjects/{s}/versions/7", schema_body(old))
    assert (status, body["error_code"], body["message"]) == (404, 40402, "Version 7 not found."), body


CLIENT_BASE = record("R", ("a", "int"), ("b", "string"))
CLIENT_EVOLUTIONS = {
    "add-field-without-default": (record("R", ("a", "int"), ("b", "string"), ("c", "int")), False, True),
    "remove-field-without-default": (record("R", ("a", "int")), True, False),
    "add-field-with-default": (record("R", ("a", "int"), ("b", "string"), ("d", "int", {"default": 1})), True, True),
}


@pytest.mark.parametrize("level", LEVELS)
def test_confluent_client_register_schema(sr, level):
    """confluent-kafka's SchemaRegistryClient sees the same outcomes: an id, or SchemaRegistryError
    with HTTP 409 and the registry's error code. (It sends booleans as `True`/`False` in queries.)"""
    client = SchemaRegistryClient({"url": sr.base})
    base = Schema(json.dumps(CLIENT_BASE), "AVRO")
    base_id = None
    for name, (new, backward, forward) in CLIENT_EVOLUTIONS.items():
        s = unique(f"client-{level.lower()}-{name}")
        assert client.set_compatibility(subject_name=s, level=level) == {"compatibility": level}
        assert client.get_compatibility(s) == level
        first = client.register_schema(s, base)
        assert first == (base_id if base_id is not None else first)
        base_id = first
        schema = Schema(json.dumps(new), "AVRO")
        want = expected(level, backward, forward)
        assert client.test_compatibility(s, schema) is want
        assert client.test_compatibility_all_versions(s, schema) is want
        if want:
            new_id = client.register_schema(s, schema)
            assert new_id != base_id
            latest = client.get_latest_version(s)
            assert (latest.schema_id, latest.version, latest.subject) == (new_id, 2, s)
            assert json.loads(latest.schema.schema_str) == new
        else:
            with pytest.raises(SchemaRegistryError) as err:
                client.register_schema(s, schema)
            assert (err.value.http_status_code, err.value.error_code) == (409, INCOMPATIBLE_ERROR_CODE), err.value
            assert err.value.error_message.startswith(INCOMPATIBLE_MESSAGE_PREFIX), err.value.error_message
            assert client.get_versions(s) == [1]
