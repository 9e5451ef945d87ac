"""The schema registry's REST API as the tests use it: requests with Confluent's content type, and
the exact shape of its answers and errors."""

from __future__ import annotations

import json
import threading

import requests

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

# Compatibility refused on registration: HTTP 409 with error_code 40901, as Confluent answers from
# 8.1.2 on (409 before).
INCOMPATIBLE_ERROR_CODE = 40901
INCOMPATIBLE_MESSAGE_PREFIX = "Schema being registered is incompatible with an earlier schema for subject"


class RegistryClient:
    """A thin REST client: every call returns (status, parsed JSON body)."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE})

    def _call(self, method: str, path: str, body=None, params=None):
        resp = self.session.request(method, self.base + path, params=params,
                                    data=None if body is None else json.dumps(body), timeout=30)
        try:
            parsed = resp.json() if resp.content else None
        except ValueError:
            raise AssertionError(f"{method} {path}: HTTP {resp.status_code} with a body that is not JSON: "
                                 f"{resp.text[:500]!r}")
        return resp.status_code, parsed

    def get(self, path, **params):
        return self._call("GET", path, params=params or None)

    def post(self, path, body, **params):
        return self._call("POST", path, body, params or None)

    def put(self, path, body, **params):
        return self._call("PUT", path, body, params or None)

    def delete(self, path, **params):
        return self._call("DELETE", path, params=params or None)

    def raw(self, method: str, path: str, **kw) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=30, **kw)

    # --- the common calls, asserting success --------------------------------
    def register(self, subject: str, schema, **extra) -> int:
        """Registers `schema` (a dict/list/str Avro schema, or an already serialized string with
        raw=True in extra) and returns its id."""
        status, body = self.post(f"/subjects/{subject}/versions", schema_body(schema, **extra))
        assert status == 200, (subject, status, body)
        assert isinstance(body, dict) and isinstance(body.get("id"), int), body
        return body["id"]

    def register_error(self, subject: str, schema, **extra):
        status, body = self.post(f"/subjects/{subject}/versions", schema_body(schema, **extra))
        assert status != 200, (subject, status, body)
        return status, body

    def versions(self, subject: str, **params) -> list[int]:
        status, body = self.get(f"/subjects/{subject}/versions", **params)
        assert status == 200, (subject, status, body)
        return body


def schema_body(schema, raw: bool = False, **extra) -> dict:
    """The registration/lookup request body: {"schema": <string>, ...extra}."""
    text = schema if raw else json.dumps(schema)
    return {"schema": text, **extra}


def assert_error(status_and_body, http_status: int, error_code: int, message: str | None = None,
                 message_prefix: str | None = None) -> dict:
    """Confluent's error body: exactly {"error_code": ..., "message": ...}."""
    status, body = status_and_body
    assert (status, body.get("error_code") if isinstance(body, dict) else body) == (http_status, error_code), body
    assert set(body) == {"error_code", "message"}, body
    if message is not None:
        assert body["message"] == message
    if message_prefix is not None:
        assert body["message"].startswith(message_prefix), body["message"]
    return body


def schema_of(body: dict):
    """The parsed Avro schema of a response's "schema" string (the registry stores a compact
    canonical form, so tests compare parsed JSON, never whitespace)."""
    return json.loads(body["schema"])


def assert_version(body: dict, subject: str, version: int, schema_id: int, schema,
                   references: list | None = None) -> None:
    """A GET /subjects/{s}/versions/{v} (or lookup) answer for an Avro schema."""
    assert (body["subject"], body["version"], body["id"], schema_of(body)) == (subject, version, schema_id, schema), body
    # Avro is the default type: Confluent leaves schemaType out for it.
    assert body.get("schemaType", "AVRO") == "AVRO", body
    assert body.get("references", []) == (references or []), body


def record(name: str, *fields, **props) -> dict:
    """An Avro record schema: fields given as (name, type) or (name, type, {extra field props})."""
    out = []
    for f in fields:
        entry = {"name": f[0], "type": f[1]}
        if len(f) > 2:
            entry.update(f[2])
        out.append(entry)
    return {"type": "record", "name": name, **props, "fields": out}


def subject_not_found(subject: str) -> str:
    return f"Subject '{subject}' not found."


def version_not_found(version: int) -> str:
    return f"Version {version} not found."


def register_through_each(nodes, per_node: int, register) -> dict[str, int]:
    """Registers `per_node` record schemas through every node at once, one thread per node, with
    `register(node, subject, schema_text) -> id`; returns each subject's id."""
    ids: dict[str, int] = {}
    errors = []

    def writer(node):
        try:
            for k in range(per_node):
                subject = f"s{node.node_id}-{k}"
                text = json.dumps({"type": "record", "name": f"R{node.node_id}x{k}",
                                   "fields": [{"name": "f", "type": "long"}]})
                ids[subject] = register(node, subject, text)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return ids
