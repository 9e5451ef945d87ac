"""The REST proxy's v3 API (Confluent REST Proxy's), served by `strom server` on `rest.proxy.listeners`:
clusters, brokers, broker, cluster and topic configs, topics, partitions, replicas, records produce (also in
the streaming form), consumer groups with their consumers, assignments and lag, and ACLs. What the proxy does
is checked through confluent-kafka's AdminClient, Producer and Consumer, and the API against strom's OpenAPI
document with schemathesis."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   ConfigResource, ConfigSource, NewTopic, ResourcePatternType, ResourceType)

from conftest import NODE_ID

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@pytest.fixture
def proxy(broker_factory):
    return broker_factory(registry=True, proxy=True)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class V3:
    """A client of one proxy's v3 API."""

    def __init__(self, broker):
        self.broker = broker
        self.base = broker.proxy_url
        self.session = requests.Session()
        self.cluster_id = self.ok("GET", "/v3/clusters")["data"][0]["cluster_id"]
        self.c = f"/v3/clusters/{self.cluster_id}"

    def call(self, method: str, path: str, body=None, content_type: str | None = "application/json", **params):
        headers = {"Content-Type": content_type} if content_type is not None and body is not None else {}
        data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
        resp = self.session.request(method, self.base + path, data=data, headers=headers, params=params or None,
                                    timeout=60)
        parsed = resp.json() if resp.content else None
        if resp.content:
            assert resp.headers["Content-Type"] == "application/json", resp.headers
        return resp.status_code, parsed, resp

    def ok(self, method: str, path: str, body=None, expect: int = 200, **kw):
        status, parsed, _ = self.call(method, path, body, **kw)
        assert status == expect, (method, path, status, parsed)
        return parsed

    def url(self, *segments) -> str:
        return "/".join([f"{self.base}{self.c}", *map(str, segments)]) if segments else f"{self.base}{self.c}"

    def crn(self, *parts) -> str:
        return "/".join([f"crn:///kafka={self.cluster_id}", *parts])


_admins: dict[str, AdminClient] = {}


@pytest.fixture(autouse=True)
def _drop_admins():
    yield
    _admins.clear()


def admin(broker) -> AdminClient:
    """One AdminClient per broker, kept alive while its futures are pending."""
    if broker.bootstrap not in _admins:
        _admins[broker.bootstrap] = AdminClient({"bootstrap.servers": broker.bootstrap})
    return _admins[broker.bootstrap]


def topic_configs(broker, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin(broker).describe_configs([res])[res].result(30)


def broker_configs(broker, name: str) -> dict:
    res = ConfigResource(ResourceType.BROKER, name)
    return admin(broker).describe_configs([res])[res].result(30)


NOT_FOUND = {"error_code": 404, "message": "HTTP 404 Not Found"}
UNKNOWN_TOPIC = {"error_code": 40403, "message": "This server does not host this topic-partition."}


def test_clusters_and_brokers(proxy):
    v3 = V3(proxy)
    cid = admin(proxy).describe_cluster().result(30).cluster_id
    assert v3.cluster_id == cid
    cluster = {
        "kind": "KafkaCluster",
        "metadata": {"self": v3.url(), "resource_name": v3.crn()},
        "cluster_id": cid,
        "controller": {"related": v3.url("brokers", NODE_ID)},
        "acls": {"related": v3.url("acls")},
        "brokers": {"related": v3.url("brokers")},
        "broker_configs": {"related": v3.url("broker-configs")},
        "consumer_groups": {"related": v3.url("consumer-groups")},
        "topics": {"related": v3.url("topics")},
        "partition_reassignments": {"related": v3.url("topics", "-", "partitions", "-", "reassignment")},
    }
    assert v3.ok("GET", "/v3/clusters") == {
        "kind": "KafkaClusterList", "metadata": {"self": f"{v3.base}/v3/clusters", "next": None},
        "data": [cluster]}
    assert v3.ok("GET", v3.c) == cluster
    # Links follow the Host the client used.
    host = v3.session.get(v3.base + v3.c, headers={"Host": "proxy.example:8082"}, timeout=30).json()
    assert host["metadata"]["self"] == f"http://proxy.example:8082/v3/clusters/{cid}"

    broker = {
        "kind": "KafkaBroker",
        "metadata": {"self": v3.url("brokers", NODE_ID), "resource_name": v3.crn(f"broker={NODE_ID}")},
        "cluster_id": cid, "broker_id": NODE_ID, "host": proxy.host, "port": proxy.port, "rack": None,
        "configs": {"related": v3.url("brokers", NODE_ID, "configs")},
        "partition_replicas": {"related": v3.url("brokers", NODE_ID, "partition-replicas")},
    }
    assert v3.ok("GET", f"{v3.c}/brokers") == {
        "kind": "KafkaBrokerList", "metadata": {"self": v3.url("brokers"), "next": None}, "data": [broker]}
    assert v3.ok("GET", f"{v3.c}/brokers/{NODE_ID}") == broker

    # Errors: an unknown cluster, broker, path; JSON only.
    assert v3.call("GET", "/v3/clusters/nope")[:2] == (404, {"error_code": 404,
                                                             "message": "Cluster nope cannot be found."})
    assert v3.call("GET", "/v3/clusters/nope/topics")[:2] == (404, {"error_code": 404,
                                                                    "message": "Cluster nope cannot be found."})
    assert v3.call("GET", f"{v3.c}/brokers/7")[:2] == (404, NOT_FOUND)
    assert v3.call("GET", f"{v3.c}/brokers/x")[:2] == (404, NOT_FOUND)
    assert v3.call("GET", f"{v3.c}/no-such-thing")[:2] == (404, NOT_FOUND)
    resp = v3.session.get(v3.base + v3.c, headers={"Accept": "text/html"}, timeout=30)
    assert (resp.status_code, resp.json()) == (406, {"error_code": 406, "message": "HTTP 406 Not Acceptable"})
    assert v3.call("DELETE", v3.c)[:2] == (405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"})


def test_topics_created_through_v3_reach_kafka_with_their_configs(proxy):
    v3 = V3(proxy)
    body = {"topic_name": "orders", "partitions_count": 3, "replication_factor": 1,
            "configs": [{"name": "cleanup.policy", "value": "compact"}, {"name": "retention.ms", "value": "123456"}]}
    status, created, resp = v3.call("POST", f"{v3.c}/topics", body)
    expected = {
        "kind": "KafkaTopic",
        "metadata": {"self": v3.url("topics", "orders"), "resource_name": v3.crn("topic=orders")},
        "cluster_id": v3.cluster_id, "topic_name": "orders", "is_internal": False, "replication_factor": 1,
        "partitions_count": 3,
        "partitions": {"related": v3.url("topics", "orders", "partitions")},
        "configs": {"related": v3.url("topics", "orders", "configs")},
        "partition_reassignments": {"related": v3.url("topics", "orders", "partitions", "-", "reassignment")},
        "authorized_operations": [],
    }
    assert (status, created) == (201, expected)
    assert resp.headers["Location"] == v3.url("topics", "orders")

    md = admin(proxy).list_topics(timeout=30)
    assert sorted(md.topics["orders"].partitions) == [0, 1, 2]
    configs = topic_configs(proxy, "orders")
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].value == "123456"

    assert v3.ok("GET", f"{v3.c}/topics/orders") == expected
    listed = v3.ok("GET", f"{v3.c}/topics")
    assert listed["kind"] == "KafkaTopicList"
    assert listed["metadata"] == {"self": v3.url("topics"), "next": None}
    assert [t["topic_name"] for t in listed["data"]] == sorted(t["topic_name"] for t in listed["data"])
    assert expected in listed["data"]
    assert all(not t["topic_name"].startswith("__") for t in listed["data"])

    # validate_only answers 200 with what would be created, and creates nothing.
    dry = v3.ok("POST", f"{v3.c}/topics", {"topic_name": "dry", "partitions_count": 2, "validate_only": True})
    assert (dry["topic_name"], dry["partitions_count"]) == ("dry", 2)
    assert "dry" not in admin(proxy).list_topics(timeout=30).topics
    assert v3.call("GET", f"{v3.c}/topics/dry")[:2] == (404, UNKNOWN_TOPIC)

    # Growing through PATCH.
    grown = v3.ok("PATCH", f"{v3.c}/topics/orders", {"partitions_count": 5})
    assert grown == {**expected, "partitions_count": 5}
    assert sorted(admin(proxy).list_topics(timeout=30).topics["orders"].partitions) == [0, 1, 2, 3, 4]

    # Errors: Kafka's refusals are 40002, impossible payloads 42206, malformed JSON 400.
    status, err, _ = v3.call("POST", f"{v3.c}/topics", {"topic_name": "orders", "partitions_count": 1})
    assert (status, err["error_code"]) == (400, 40002) and "TOPIC_ALREADY_EXISTS" in err["message"]
    assert v3.call("POST", f"{v3.c}/topics", {"topic_name": "bad name!"})[:2] == (
        422, {"error_code": 42206, "message": "Payload error. Invalid topic name."})
    status, err, _ = v3.call("POST", f"{v3.c}/topics", '{"topic_name": ')
    assert (status, err["error_code"]) == (400, 400)
    status, err, _ = v3.call("POST", f"{v3.c}/topics", {"partitions_count": 1})
    assert (status, err["error_code"]) == (422, 422)
    assert v3.call("POST", f"{v3.c}/topics", "topic_name=x", content_type="text/plain")[:2] == (
        415, {"error_code": 415, "message": "HTTP 415 Unsupported Media Type"})
    status, err, _ = v3.call("PATCH", f"{v3.c}/topics/orders", {"partitions_count": 2})
    assert (status, err["error_code"]) == (400, 40002) and "INVALID_PARTITIONS" in err["message"]

    assert v3.call("DELETE", f"{v3.c}/topics/orders")[0] == 204
    deadline = time.monotonic() + 20
    while "orders" in admin(proxy).list_topics(timeout=30).topics and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "orders" not in admin(proxy).list_topics(timeout=30).topics
    assert v3.call("GET", f"{v3.c}/topics/orders")[:2] == (404, UNKNOWN_TOPIC)
    assert v3.call("DELETE", f"{v3.c}/topics/orders")[:2] == (404, UNKNOWN_TOPIC)


def test_topic_configs_altered_through_v3_are_seen_by_kafka(proxy):
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("cfg", 1, 1)])["cfg"].result(30)
    base = f"{v3.c}/topics/cfg/configs"

    listed = v3.ok("GET", base)
    assert listed["kind"] == "KafkaTopicConfigList"
    assert listed["metadata"] == {"self": v3.url("topics", "cfg", "configs"), "next": None}
    names = [c["name"] for c in listed["data"]]
    assert names == sorted(names) and "retention.ms" in names
    kafka = topic_configs(proxy, "cfg")
    assert {c["name"]: c["value"] for c in listed["data"]} == {n: e.value for n, e in kafka.items()}

    default = {
        "kind": "KafkaTopicConfig",
        "metadata": {"self": v3.url("topics", "cfg", "configs", "retention.ms"),
                     "resource_name": v3.crn("topic=cfg", "config=retention.ms")},
        "cluster_id": v3.cluster_id, "topic_name": "cfg", "name": "retention.ms", "value": "604800000",
        "is_default": True, "is_read_only": False, "is_sensitive": False, "source": "DEFAULT_CONFIG",
    }
    got = v3.ok("GET", f"{base}/retention.ms")
    assert {k: v for k, v in got.items() if k != "synonyms"} == default
    # The synonyms Kafka reports, in its order.
    assert [(x["name"], x["value"]) for x in got["synonyms"]] == [
        (x.name, x.value) for x in kafka["retention.ms"].synonyms.values()]
    assert got["synonyms"] and all(x["source"] in ("DEFAULT_CONFIG", "STATIC_BROKER_CONFIG")
                                   for x in got["synonyms"])

    assert v3.call("PUT", f"{base}/retention.ms", {"value": "3600000"})[0] == 204
    entry = topic_configs(proxy, "cfg")["retention.ms"]
    assert (entry.value, ConfigSource(entry.source)) == ("3600000", ConfigSource.DYNAMIC_TOPIC_CONFIG)
    got = v3.ok("GET", f"{base}/retention.ms")
    assert {k: v for k, v in got.items() if k != "synonyms"} == {
        **default, "value": "3600000", "is_default": False, "source": "DYNAMIC_TOPIC_CONFIG"}
    assert got["synonyms"][0] == {"name": "retention.ms", "value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG"}

    assert v3.call("DELETE", f"{base}/retention.ms")[0] == 204
    assert topic_configs(proxy, "cfg")["retention.ms"].value == "604800000"

    # A batch is applied at once: SET and DELETE.
    v3.call("PUT", f"{base}/segment.ms", {"value": "7200000"})
    assert topic_configs(proxy, "cfg")["segment.ms"].value == "7200000"
    batch = {"data": [{"name": "cleanup.policy", "value": "compact"},
                      {"name": "max.message.bytes", "value": "65536", "operation": "SET"},
                      {"name": "segment.ms", "operation": "DELETE"}]}
    assert v3.call("POST", f"{base}:alter", batch)[0] == 204
    after = topic_configs(proxy, "cfg")
    assert (after["cleanup.policy"].value, after["max.message.bytes"].value, after["segment.ms"].value) == (
        "compact", "65536", "604800000")
    # validate_only changes nothing.
    assert v3.call("POST", f"{base}:alter", {"data": [{"name": "cleanup.policy", "value": "delete"}],
                                             "validate_only": True})[0] == 204
    assert topic_configs(proxy, "cfg")["cleanup.policy"].value == "compact"

    all_configs = v3.ok("GET", f"{v3.c}/topics/-/configs")
    assert all_configs["metadata"]["self"] == v3.url("topics", "-", "configs")
    mine = {c["name"]: c["value"] for c in all_configs["data"] if c["topic_name"] == "cfg"}
    assert mine["cleanup.policy"] == "compact" and mine["max.message.bytes"] == "65536"

    missing = f"Config nope cannot be found for TOPIC cfg in cluster {v3.cluster_id}."
    assert v3.call("PUT", f"{base}/nope", {"value": "1"})[:2] == (404, {"error_code": 404, "message": missing})
    assert v3.call("DELETE", f"{base}/nope")[:2] == (404, {"error_code": 404, "message": missing})
    assert v3.call("POST", f"{base}:alter", {"data": [{"name": "nope", "value": "1"}]})[:2] == (
        404, {"error_code": 404, "message": missing})
    assert v3.call("GET", f"{base}/nope")[:2] == (404, NOT_FOUND)
    status, err, _ = v3.call("PUT", f"{base}/retention.ms", {"value": "not-a-number"})
    assert (status, err["error_code"]) == (400, 40002) and "INVALID_CONFIG" in err["message"]
    assert v3.call("GET", f"{v3.c}/topics/ghost/configs")[:2] == (404, UNKNOWN_TOPIC)
    assert v3.call("PUT", f"{v3.c}/topics/ghost/configs/retention.ms", {"value": "1"})[:2] == (404, UNKNOWN_TOPIC)


def test_broker_and_cluster_configs(proxy):
    v3 = V3(proxy)
    base = f"{v3.c}/brokers/{NODE_ID}/configs"
    listed = v3.ok("GET", base)
    assert listed["kind"] == "KafkaBrokerConfigList"
    by_name = {c["name"]: c for c in listed["data"]}
    conn = by_name["max.connections"]
    assert conn["kind"] == "KafkaBrokerConfig" and conn["broker_id"] == NODE_ID
    assert conn["metadata"]["resource_name"] == v3.crn(f"broker={NODE_ID}", "config=max.connections")
    assert v3.ok("GET", f"{base}/max.connections") == conn

    assert v3.call("PUT", f"{base}/max.connections", {"value": "5000"})[0] == 204
    entry = broker_configs(proxy, str(NODE_ID))["max.connections"]
    assert (entry.value, ConfigSource(entry.source)) == ("5000", ConfigSource.DYNAMIC_BROKER_CONFIG)
    got = v3.ok("GET", f"{base}/max.connections")
    assert (got["value"], got["source"], got["is_default"]) == ("5000", "DYNAMIC_BROKER_CONFIG", False)
    assert v3.call("POST", f"{base}:alter", {"data": [{"name": "max.connections", "operation": "DELETE"}]})[0] == 204
    assert broker_configs(proxy, str(NODE_ID))["max.connections"].value == "2147483647"
    assert v3.call("GET", f"{v3.c}/brokers/9/configs")[:2] == (404, NOT_FOUND)
    missing = f"Config nope cannot be found for BROKER {NODE_ID} in cluster {v3.cluster_id}."
    assert v3.call("PUT", f"{base}/nope", {"value": "1"})[:2] == (404, {"error_code": 404, "message": missing})

    # The cluster-wide defaults: listed only once set.
    cluster = f"{v3.c}/broker-configs"
    assert v3.ok("GET", cluster) == {"kind": "KafkaClusterConfigList",
                                     "metadata": {"self": v3.url("broker-configs"), "next": None}, "data": []}
    assert v3.call("PUT", f"{cluster}/log.cleaner.backoff.ms", {"value": "20000"})[0] == 204
    entry = broker_configs(proxy, str(NODE_ID))["log.cleaner.backoff.ms"]
    assert (entry.value, ConfigSource(entry.source)) == ("20000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
    assert v3.ok("GET", f"{cluster}/log.cleaner.backoff.ms") == {
        "kind": "KafkaClusterConfig",
        "metadata": {"self": v3.url("broker-configs", "log.cleaner.backoff.ms"),
                     "resource_name": v3.crn("broker-config=log.cleaner.backoff.ms")},
        "cluster_id": v3.cluster_id, "config_type": "BROKER", "name": "log.cleaner.backoff.ms", "value": "20000",
        "is_default": False, "is_read_only": False, "is_sensitive": False,
        "source": "DYNAMIC_DEFAULT_BROKER_CONFIG",
        "synonyms": [{"name": "log.cleaner.backoff.ms", "value": "20000",
                      "source": "DYNAMIC_DEFAULT_BROKER_CONFIG"}]}
    assert [c["name"] for c in v3.ok("GET", cluster)["data"]] == ["log.cleaner.backoff.ms"]
    assert v3.call("DELETE", f"{cluster}/log.cleaner.backoff.ms")[0] == 204
    entry = broker_configs(proxy, str(NODE_ID))["log.cleaner.backoff.ms"]
    assert (entry.value, ConfigSource(entry.source)) == ("15000", ConfigSource.DEFAULT_CONFIG)
    assert v3.call("GET", f"{cluster}/log.cleaner.backoff.ms")[:2] == (404, NOT_FOUND)
    assert v3.call("POST", f"{cluster}:alter", {"data": [{"name": "log.cleaner.backoff.ms", "value": "16000"}]}
                   )[0] == 204
    assert broker_configs(proxy, str(NODE_ID))["log.cleaner.backoff.ms"].value == "16000"


def test_partitions_and_replicas(proxy):
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("parts", 2, 1)])["parts"].result(30)
    base = f"{v3.c}/topics/parts/partitions"

    def partition(p):
        return {
            "kind": "KafkaPartition",
            "metadata": {"self": v3.url("topics", "parts", "partitions", p),
                         "resource_name": v3.crn("topic=parts", f"partition={p}")},
            "cluster_id": v3.cluster_id, "topic_name": "parts", "partition_id": p,
            "leader": {"related": v3.url("topics", "parts", "partitions", p, "replicas", NODE_ID)},
            "replicas": {"related": v3.url("topics", "parts", "partitions", p, "replicas")},
            "reassignment": {"related": v3.url("topics", "parts", "partitions", p, "reassignment")},
        }

    def replica(p):
        return {
            "kind": "KafkaReplica",
            "metadata": {"self": v3.url("topics", "parts", "partitions", p, "replicas", NODE_ID),
                         "resource_name": v3.crn("topic=parts", f"partition={p}", f"replica={NODE_ID}")},
            "cluster_id": v3.cluster_id, "topic_name": "parts", "partition_id": p, "broker_id": NODE_ID,
            "is_leader": True, "is_in_sync": True, "broker": {"related": v3.url("brokers", NODE_ID)},
        }

    assert v3.ok("GET", base) == {"kind": "KafkaPartitionList",
                                  "metadata": {"self": v3.url("topics", "parts", "partitions"), "next": None},
                                  "data": [partition(0), partition(1)]}
    assert v3.ok("GET", f"{base}/1") == partition(1)
    assert v3.ok("GET", f"{base}/1/replicas")["data"] == [replica(1)]
    assert v3.ok("GET", f"{base}/1/replicas/{NODE_ID}") == replica(1)
    mine = [r for r in v3.ok("GET", f"{v3.c}/brokers/{NODE_ID}/partition-replicas")["data"]
            if r["topic_name"] == "parts"]
    assert mine == [replica(0), replica(1)]
    assert v3.ok("GET", f"{base}/-/reassignment")["data"] == []
    assert v3.ok("GET", f"{v3.c}/topics/-/partitions/-/reassignment")["data"] == []
    assert v3.call("GET", f"{base}/0/reassignment")[:2] == (404, NOT_FOUND)

    assert v3.call("GET", f"{base}/2")[:2] == (404, NOT_FOUND)
    assert v3.call("GET", f"{base}/-1")[:2] == (404, NOT_FOUND)
    assert v3.call("GET", f"{base}/0/replicas/9")[:2] == (404, NOT_FOUND)
    assert v3.call("GET", f"{v3.c}/topics/ghost/partitions")[:2] == (404, UNKNOWN_TOPIC)
    assert v3.call("GET", f"{v3.c}/topics/ghost/partitions/0")[:2] == (404, UNKNOWN_TOPIC)


def consume_all(broker, topic: str, count: int) -> list:
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + 30
    while len(out) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m)
    c.close()
    return out


def test_records_produced_through_v3_are_read_by_confluent_kafka(proxy):
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("recs", 3, 1)])["recs"].result(30)
    records = [
        {"partition_id": 2, "key": {"type": "BINARY", "data": b64(b"\x00k\xff")},
         "value": {"type": "BINARY", "data": b64(b"\x01\x02binary")},
         "headers": [{"name": "h1", "value": b64(b"v1")}, {"name": "h2", "value": None},
                     {"name": "h3", "value": b64(b"")}]},
        {"partition_id": 0, "key": {"type": "STRING", "data": "user-1"},
         "value": {"type": "JSON", "data": {"n": 1, "tags": ["a", "b"], "ok": True}},
         "timestamp": "2021-02-05T19:14:42.120Z"},
        {"partition_id": 1, "value": {"type": "STRING", "data": "just a value"}},
        {"partition_id": 1, "key": {"type": "BINARY", "data": None}, "value": {"type": "JSON", "data": None}},
    ]
    answers = []
    for r in records:
        answers.append(v3.ok("POST", f"{v3.c}/topics/recs/records", r))
    for a, r in zip(answers, records):
        assert a["error_code"] == 200, a
        assert a["cluster_id"] == v3.cluster_id and a["topic_name"] == "recs"
        assert a["partition_id"] == r["partition_id"]
        assert a["timestamp"].endswith("Z")
    assert [a["offset"] for a in answers] == [0, 0, 0, 1]
    assert answers[0]["key"] == {"type": "BINARY", "size": 3} and answers[0]["value"] == {"type": "BINARY",
                                                                                          "size": 8}
    value_json = json.dumps(records[1]["value"]["data"], separators=(",", ":")).encode()
    assert answers[1]["key"] == {"type": "STRING", "size": 6}
    assert answers[1]["value"] == {"type": "JSON", "size": len(value_json)}
    assert answers[1]["timestamp"] == "2021-02-05T19:14:42.120Z"
    assert "key" not in answers[2] and answers[2]["value"] == {"type": "STRING", "size": 12}
    assert answers[3]["key"] == {"type": "BINARY", "size": 0} and answers[3]["value"] == {"type": "JSON",
                                                                                          "size": 0}

    got = {(m.partition(), m.offset()): m for m in consume_all(proxy, "recs", 4)}
    assert sorted(got) == [(0, 0), (1, 0), (1, 1), (2, 0)]
    m = got[(2, 0)]
    assert (m.key(), m.value()) == (b"\x00k\xff", b"\x01\x02binary")
    assert m.headers() == [("h1", b"v1"), ("h2", None), ("h3", b"")]
    m = got[(0, 0)]
    assert (m.key(), m.value(), m.timestamp()[1]) == (b"user-1", value_json, 1612552482120)
    m = got[(1, 0)]
    assert (m.key(), m.value()) == (None, b"just a value")
    m = got[(1, 1)]
    assert (m.key(), m.value()) == (None, None)

    # Per-record errors come as the record's answer, with status 200.
    def answer(body):
        return v3.ok("POST", f"{v3.c}/topics/recs/records", body)

    assert answer({"partition_id": 7, "value": {"type": "STRING", "data": "x"}}) == {
        "error_code": 40402, "message": "Partition not found."}
    assert answer({"value": {"type": "BINARY", "data": "not base64!"}}) == {
        "error_code": 400, "message": 'Bad Request: data="not base64!" is not a valid base64 string.'}
    assert answer({"value": {"type": "STRING", "data": 5}}) == {
        "error_code": 400, "message": "Bad Request: data=5 is not a string."}
    assert v3.ok("POST", f"{v3.c}/topics/ghost/records", {"value": {"type": "STRING", "data": "x"}}) == UNKNOWN_TOPIC
    # Request-level errors.
    assert v3.call("POST", f"{v3.c}/topics/recs/records", "  ")[:2] == (
        422, {"error_code": 42206, "message": "Payload error. Request body is empty. Data is required."})
    assert v3.call("POST", "/v3/clusters/nope/topics/recs/records", {"value": None})[:2] == (
        404, {"error_code": 404, "message": "Cluster nope cannot be found."})
    assert v3.call("POST", f"{v3.c}/topics/recs/records", "x", content_type="text/plain")[0] == 415
    status, bad, _ = v3.call("POST", f"{v3.c}/topics/recs/records", '{"value": ')
    assert status == 200 and bad["error_code"] == 400 and bad["message"].startswith("Bad Request: Error processing")
    # Malformed JSON followed by more body: the one answer arrives whole (the rest of the body is read).
    for _ in range(5):
        status, bad, _ = v3.call("POST", f"{v3.c}/topics/recs/records",
                                 '{"value": {"type": "JSON", "data": NaN}} ' + "{}" * 500_000)
        assert status == 200 and bad["error_code"] == 400, bad


def test_streaming_produce_answers_each_record_in_order(proxy):
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("stream", 2, 1)])["stream"].result(30)
    n = 40
    body = "".join(json.dumps({"partition_id": i % 2, "key": {"type": "STRING", "data": f"k{i}"},
                               "value": {"type": "STRING", "data": f"v{i}"}}) + ("\n" if i % 3 else "")
                   for i in range(n))
    # One record in the middle fails on its own; the stream goes on.
    body = body.replace('"partition_id": 1, "key": {"type": "STRING", "data": "k21"}',
                        '"partition_id": 5, "key": {"type": "STRING", "data": "k21"}')
    resp = requests.post(f"{v3.base}{v3.c}/topics/stream/records", data=body.encode(),
                         headers={"Content-Type": "application/json"}, timeout=60)
    assert resp.status_code == 200
    answers = [json.loads(line) for line in resp.text.split("\r\n") if line]
    assert len(answers) == n
    assert answers[21] == {"error_code": 40402, "message": "Partition not found."}
    ok = [a for i, a in enumerate(answers) if i != 21]
    assert [(a["partition_id"], a["offset"]) for a in ok] == (
        [(i % 2, i // 2) for i in range(21)] + [(i % 2, i // 2 - (1 if i % 2 else 0)) for i in range(22, n)])

    got = consume_all(proxy, "stream", n - 1)
    by_partition = {0: [], 1: []}
    for m in sorted(got, key=lambda m: (m.partition(), m.offset())):
        by_partition[m.partition()].append((m.key(), m.value()))
    assert by_partition[0] == [(f"k{i}".encode(), f"v{i}".encode()) for i in range(0, n, 2)]
    assert by_partition[1] == [(f"k{i}".encode(), f"v{i}".encode()) for i in range(1, n, 2) if i != 21]


def test_streaming_produce_answers_before_the_body_ends(proxy):
    """The proxy answers each record as it is produced, while the client still holds the request open."""
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("live", 1, 1)])["live"].result(30)
    host, port = proxy.proxy_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall((f"POST {v3.c}/topics/live/records HTTP/1.1\r\nHost: {host}:{port}\r\n"
                  "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode())
    reader = sock.makefile("rb")

    def send(chunk: bytes):
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))

    def read_chunk() -> bytes:
        size = int(reader.readline().strip(), 16)
        data = reader.read(size)
        assert reader.readline() == b"\r\n"
        return data

    send(b'{"value": {"type": "STRING", "data": "first"}}')
    status = reader.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    while reader.readline() not in (b"\r\n", b""):
        pass
    answers = []
    for i in range(3):
        buf = b""
        while not buf.endswith(b"\r\n"):
            buf += read_chunk()
        answers.append(json.loads(buf))
        # Split the next record over two chunks.
        nxt = json.dumps({"value": {"type": "STRING", "data": f"next{i}"}}).encode()
        send(nxt[:7])
        send(nxt[7:])
    buf = b""
    while not buf.endswith(b"\r\n"):
        buf += read_chunk()
    answers.append(json.loads(buf))
    send(b"")  # the end of the body
    assert read_chunk() == b""  # and of the answers
    sock.close()
    assert [(a["error_code"], a["offset"]) for a in answers] == [(200, 0), (200, 1), (200, 2), (200, 3)]
    assert [m.value() for m in consume_all(proxy, "live", 4)] == [b"first", b"next0", b"next1", b"next2"]


AVRO_USER = json.dumps({"type": "record", "name": "User", "namespace": "rest.test",
                        "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}]})
JSON_USER = json.dumps({"title": "JUser", "type": "object",
                        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        "required": ["name", "age"], "additionalProperties": False})
PROTO_USER = 'syntax = "proto3";\npackage resttest;\n\nmessage User {\n  string name = 1;\n  int32 age = 2;\n}\n'


def registry_get(broker, path: str):
    resp = requests.get(broker.registry_url + path, timeout=10)
    return resp.status_code, resp.json()


def frame_of(raw: bytes) -> int:
    """The schema id of a value in Confluent's wire format (magic byte 0)."""
    assert raw[0] == 0, raw
    return int.from_bytes(raw[1:5], "big")


def test_schema_typed_records_through_v3_are_read_by_confluent_kafka(proxy):
    """AVRO, JSONSCHEMA and PROTOBUF keys and values, with the schema chosen by raw schema, id, version or the
    subject's latest version, under each subject name strategy: what the answer says is what the registry holds
    and what confluent-kafka's deserializers read back."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.schema_registry.json_schema import JSONDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("typed", 1, 1)])["typed"].result(30)
    client = SchemaRegistryClient({"url": proxy.registry_url})

    def produce(record):
        answer = v3.ok("POST", f"{v3.c}/topics/typed/records", record)
        return answer

    ann, bob = {"name": "ann", "age": 31}, {"name": "bob", "age": 7}
    # A raw schema: registered under the topic's subjects (TOPIC_NAME).
    first = produce({"key": {"type": "AVRO", "schema": '"string"', "data": "k1"},
                     "value": {"type": "AVRO", "schema": AVRO_USER, "data": ann}})
    key_id = registry_get(proxy, "/subjects/typed-key/versions/latest")[1]["id"]
    value_id = registry_get(proxy, "/subjects/typed-value/versions/latest")[1]["id"]
    assert first["error_code"] == 200 and first["offset"] == 0
    assert first["key"] == {"type": "AVRO", "subject": "typed-key", "schema_id": key_id, "schema_version": 1,
                            "size": 5 + 1 + 2}
    assert first["value"] == {"type": "AVRO", "subject": "typed-value", "schema_id": value_id,
                              "schema_version": 1, "size": 5 + 1 + 3 + 1}
    # The same raw schema again is found, not registered twice.
    again = produce({"value": {"type": "AVRO", "schema": AVRO_USER, "data": bob}})
    assert again["value"]["schema_id"] == value_id and again["value"]["schema_version"] == 1
    assert registry_get(proxy, "/subjects/typed-value/versions")[1] == [1]
    # No type: the registered schema's, by id, by version, or the subject's latest.
    by_id = produce({"key": {"schema_id": key_id, "data": "k3"}, "value": {"schema_id": value_id, "data": ann}})
    by_version = produce({"value": {"schema_version": 1, "data": bob}})
    latest = produce({"key": {"data": "k5"}, "value": {"data": ann}})
    for a in (by_id, by_version, latest):
        assert a["value"] == {"type": "AVRO", "subject": "typed-value", "schema_id": value_id,
                              "schema_version": 1, "size": 10}
    assert latest["key"]["schema_id"] == by_id["key"]["schema_id"] == key_id
    # JSONSCHEMA under a subject of the request's choosing; PROTOBUF by record name; AVRO by topic and record.
    js = produce({"value": {"type": "JSONSCHEMA", "schema": JSON_USER, "subject": "people", "data": ann}})
    js_id = registry_get(proxy, "/subjects/people/versions/latest")[1]["id"]
    assert js["value"] == {"type": "JSONSCHEMA", "subject": "people", "schema_id": js_id, "schema_version": 1,
                           "size": 5 + len(json.dumps(ann, separators=(",", ":")))}
    pb = produce({"value": {"type": "PROTOBUF", "schema": PROTO_USER, "subject_name_strategy": "RECORD_NAME",
                            "data": ann}})
    pb_id = registry_get(proxy, "/subjects/resttest.User/versions/latest")[1]["id"]
    assert pb["value"] == {"type": "PROTOBUF", "subject": "resttest.User", "schema_id": pb_id, "schema_version": 1,
                           "size": 5 + 1 + 7}
    tr = produce({"value": {"type": "AVRO", "schema": AVRO_USER, "subject_name_strategy": "TOPIC_RECORD_NAME",
                            "data": bob}})
    assert tr["value"]["subject"] == "typed-rest.test.User" and tr["value"]["schema_id"] == value_id
    assert registry_get(proxy, "/subjects/typed-rest.test.User/versions/latest")[1]["id"] == value_id
    # Null data with a schema is a null key or value.
    tomb = produce({"key": {"schema_id": key_id, "data": "k9"}, "value": {"schema_id": value_id, "data": None}})
    assert tomb["value"]["size"] == 0

    got = sorted(consume_all(proxy, "typed", 9), key=lambda m: m.offset())
    assert [m.offset() for m in got] == list(range(9))
    avro = AvroDeserializer(client)
    ctx_key = SerializationContext("typed", MessageField.KEY)
    ctx_value = SerializationContext("typed", MessageField.VALUE)
    keys = [avro(m.key(), ctx_key) if m.key() is not None else None for m in got]
    assert keys == ["k1", None, "k3", None, "k5", None, None, None, "k9"]
    assert [frame_of(m.key()) for m in got if m.key() is not None] == [key_id] * 4
    values = [m.value() for m in got]
    assert [frame_of(v) for v in values[:8]] == [value_id] * 5 + [js_id, pb_id, value_id]
    assert [avro(values[i], ctx_value) for i in (0, 1, 2, 3, 4, 7)] == [ann, bob, ann, bob, ann, bob]
    assert JSONDeserializer(JSON_USER, schema_registry_client=client)(values[5], ctx_value) == ann
    # Protobuf: message index [0], then name (field 1) and age (field 2).
    assert values[6][5:] == b"\x00\x0a\x03ann\x10\x1f"
    assert values[8] is None

    # Errors, each the record's own answer; nothing is written.
    def error(record):
        a = produce(record)
        assert a["error_code"] != 200, a
        return a

    assert error({"value": {"type": "AVRO", "schema": AVRO_USER, "data": {"name": 5}}})["error_code"] == 400
    assert error({"value": {"schema_id": value_id, "data": "not a user"}})["message"].startswith("Bad Request: ")
    assert error({"value": {"type": "JSONSCHEMA", "schema": JSON_USER, "subject": "people",
                            "data": {"name": "x"}}})["error_code"] == 400
    status, missing = registry_get(proxy, "/schemas/ids/99999")
    assert status == 404
    assert error({"value": {"schema_id": 99999, "data": ann}}) == {
        "error_code": 422,
        "message": "Error: 42207 : Error serializing message. Error when fetching schema by id. schemaId = 99999\n"
                   f"{missing['message']}; error code: {missing['error_code']}"}
    assert error({"value": {"schema_version": 9, "data": ann}}) == {
        "error_code": 400, "message": "Bad Request: Schema does not exist for subject: typed-value, version: 9"}
    status, no_subject = registry_get(proxy, "/subjects/ghost-value/versions/latest")
    assert status == 404
    assert error({"value": {"subject": "ghost-value", "data": ann}}) == {
        "error_code": 422,
        "message": "Error: 42207 : Error serializing message. Error when fetching latest schema version. "
                   f"subject = ghost-value\n{no_subject['message']}; error code: {no_subject['error_code']}"}
    # A schema id registered, but not under the subject.
    pb_text = registry_get(proxy, f"/schemas/ids/{pb_id}")[1]["schema"]
    resp = requests.post(f"{proxy.registry_url}/subjects/typed-value",
                         json={"schema": pb_text, "schemaType": "PROTOBUF"}, timeout=10)
    assert resp.status_code == 404
    not_under = resp.json()
    assert error({"value": {"schema_id": pb_id, "data": ann}}) == {
        "error_code": 422,
        "message": "Error: 42207 : Error serializing message. Error when fetching schema version. "
                   f"subject = typed-value, schema = {pb_text}\n{not_under['message']}; "
                   f"error code: {not_under['error_code']}"}
    # A schema the registry refuses (incompatible with the subject's, BACKWARD): its message and code come through.
    resp = requests.post(f"{proxy.registry_url}/subjects/typed-value/versions", json={"schema": '"int"'}, timeout=10)
    assert resp.status_code == 409
    incompatible = resp.json()
    assert error({"value": {"type": "AVRO", "schema": '"int"', "data": 5}}) == {
        "error_code": 422,
        "message": "Error: 42207 : Error serializing message. Error when registering schema. format = AVRO, "
                   f"subject = typed-value, schema = \"int\"\n{incompatible['message']}; "
                   f"error code: {incompatible['error_code']}"}
    assert error({"value": {"type": "AVRO", "schema": '{"type": "recrd"}', "data": 1}}) == {
        "error_code": 422, "message": 'Error: 42205 : Invalid schema: Error when parsing raw schema. format = AVRO, '
                                      'schema = {"type": "recrd"}'}
    assert error({"value": {"type": "AVRO", "schema": '"string"', "subject_name_strategy": "RECORD_NAME",
                            "data": "x"}}) == {
        "error_code": 422,
        "message": "Error: 42207 : Error serializing message. In configuration value.subject.name.strategy = "
                   "io.confluent.kafka.serializers.subject.RecordNameStrategy, the message value must only be a "
                   "record schema"}
    assert error({"key": {"schema_version": 1, "subject_name_strategy": "RECORD_NAME", "data": "x"}}) == {
        "error_code": 400,
        "message": "Bad Request: Cannot use schema_subject_strategy=RECORD_NAME without schema_id or schema."}
    assert error({"value": {"schema": '"string"', "data": "x"}}) == {
        "error_code": 400, "message": "Unsupported argument: : null"}
    # Fields that do not go together, as kafka-rest reads them.
    for data, why in [
        ({"type": "AVRO", "schema_id": value_id}, f"'schema_id={value_id}' cannot be used with 'serializer'."),
        ({"type": "PROTOBUF", "schema_version": 1}, "'schema_version=1' cannot be used with 'serializer'."),
        ({"type": "JSONSCHEMA"}, "'schema_version=latest' cannot be used with 'serializer'."),
        ({"type": "BINARY", "subject": "s"}, "'type=BINARY' cannot be used with 'subject'."),
        ({"type": "STRING", "schema_id": 1}, "'type=STRING' cannot be used with 'schema_id'."),
        ({"subject": "s", "subject_name_strategy": "TOPIC_NAME"},
         "Only one of 'subject_name_strategy' or 'subject' can be used."),
        ({"schema_id": 1, "schema_version": 1}, "Only one of 'schema_id', 'schema_version' or 'schema' can be used."),
    ]:
        assert error({"value": {**data, "data": "x"}}) == {
            "error_code": 400, "message": f"Bad Request: Error processing JSON: {why}"}, data
    # The streaming form: each record answered in order, the bad one on its own.
    body = "".join(json.dumps(r) for r in [
        {"value": {"schema_id": value_id, "data": ann}},
        {"value": {"schema_id": value_id, "data": {"age": "x"}}},
        {"value": {"type": "JSONSCHEMA", "schema": JSON_USER, "subject": "people", "data": bob}}])
    resp = requests.post(f"{v3.base}{v3.c}/topics/typed/records", data=body,
                         headers={"Content-Type": "application/json"}, timeout=60)
    answers = [json.loads(line) for line in resp.text.split("\r\n") if line]
    assert [a["error_code"] for a in answers] == [200, 400, 200]
    assert [(a["offset"], a["value"]["schema_id"]) for a in (answers[0], answers[2])] == [(9, value_id), (10, js_id)]
    c = Consumer({"bootstrap.servers": proxy.bootstrap, "group.id": "typed-end"})
    assert c.get_watermark_offsets(TopicPartition("typed", 0), timeout=30) == (0, 11)
    c.close()


def test_schema_types_without_a_registry_answer_42206(broker_factory):
    v3 = V3(broker_factory(proxy=True))
    admin(v3.broker).create_topics([NewTopic("plain", 1, 1)])["plain"].result(30)
    for data in [{"type": "AVRO", "schema": '"int"', "data": 1}, {"schema_id": 1, "data": 1}, {"data": 1}]:
        assert v3.ok("POST", f"{v3.c}/topics/plain/records", {"value": data}) == {
            "error_code": 422,
            "message": "Error: 42206 : Payload error. Schema Registry must be configured when using schemas."}
    status, body, _ = v3.call("POST", f"{v3.c}/topics/plain/records:batch",
                              {"entries": [{"id": "1", "value": {"data": 1}}]})
    assert (status, body["failures"]) == (207, [{
        "id": "1", "error_code": 422,
        "message": "Error: 42206 : Payload error. Schema Registry must be configured when using schemas."}])


def test_records_batch_answers_each_entry_by_id(proxy):
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("batched", 2, 1)])["batched"].result(30)
    path = f"{v3.c}/topics/batched/records:batch"
    entries = [
        {"id": "a", "partition_id": 0, "key": {"type": "STRING", "data": "ka"},
         "value": {"type": "JSON", "data": {"n": 1}}, "headers": [{"name": "h", "value": b64(b"hv")}]},
        {"id": "b-2", "partition_id": 1, "value": {"type": "AVRO", "schema": AVRO_USER,
                                                   "data": {"name": "ann", "age": 31}}},
        {"id": "c_3", "partition_id": 9, "value": {"type": "STRING", "data": "x"}},
        {"id": "D4", "value": {"type": "BINARY", "data": "!!"}},
        {"id": "e", "partition_id": 0, "value": {"type": "BINARY", "data": b64(b"\x00\x01")},
         "timestamp": "2021-02-05T19:14:42.120Z"},
    ]
    status, body, _ = v3.call("POST", path, {"entries": entries})
    assert status == 207, body
    value_id = registry_get(proxy, "/subjects/batched-value/versions/latest")[1]["id"]
    succeeded = body["successes"]
    assert [s["id"] for s in succeeded] == ["a", "b-2", "e"]
    for s in succeeded:
        assert set(s) == {"id", "cluster_id", "topic_name", "partition_id", "offset", "timestamp", "key",
                          "value"} - ({"key"} if s["id"] != "a" else set()), s
        assert (s["cluster_id"], s["topic_name"]) == (v3.cluster_id, "batched")
    assert [(s["partition_id"], s["offset"]) for s in succeeded] == [(0, 0), (1, 0), (0, 1)]
    assert succeeded[0]["key"] == {"type": "STRING", "size": 2}
    assert succeeded[0]["value"] == {"type": "JSON", "size": 7}
    assert succeeded[1]["value"] == {"type": "AVRO", "subject": "batched-value", "schema_id": value_id,
                                     "schema_version": 1, "size": 10}
    assert succeeded[2]["timestamp"] == "2021-02-05T19:14:42.120Z"
    assert body["failures"] == [
        {"id": "c_3", "error_code": 40402, "message": "Partition not found."},
        {"id": "D4", "error_code": 400, "message": 'Bad Request: data="!!" is not a valid base64 string.'},
    ]
    got = {(m.partition(), m.offset()): m for m in consume_all(proxy, "batched", 3)}
    assert sorted(got) == [(0, 0), (0, 1), (1, 0)]
    assert (got[(0, 0)].key(), got[(0, 0)].value(), got[(0, 0)].headers()) == (b"ka", b'{"n":1}', [("h", b"hv")])
    avro = AvroDeserializer(SchemaRegistryClient({"url": proxy.registry_url}))
    assert avro(got[(1, 0)].value(), SerializationContext("batched", MessageField.VALUE)) == {"name": "ann",
                                                                                              "age": 31}
    assert (got[(0, 1)].value(), got[(0, 1)].timestamp()[1]) == (b"\x00\x01", 1612552482120)

    # Ten entries is the most.
    ten = v3.ok("POST", path, {"entries": [{"id": f"n{i}", "partition_id": 1, "value": {"type": "STRING",
                                                                                         "data": str(i)}}
                                           for i in range(10)]}, expect=207)
    assert ([s["offset"] for s in ten["successes"]], ten["failures"]) == (list(range(1, 11)), [])

    # A batch that is wrong as a whole: nothing is produced.
    def whole(body, expect_status, expect):
        status, answer, _ = v3.call("POST", path, body)
        assert (status, answer) == (expect_status, expect), body

    def batch_error(message):
        return {"error_code": 42208, "message": message}

    one = {"value": {"type": "STRING", "data": "x"}}
    whole({"entries": []}, 422, batch_error("Empty batch."))
    whole({}, 422, batch_error("Empty batch."))
    whole("  ", 422, batch_error("Request body is empty. Data is required."))
    whole({"entries": [{"id": f"m{i}", **one} for i in range(11)]}, 422, batch_error("Too many entries in batch."))
    whole({"entries": [{"id": "x", **one}, {"id": "x", **one}]}, 422, batch_error("Batch entry IDs are not distinct."))
    for bad_id in [None, 1, "", "x" * 81, "a b", "\u20ac"]:
        whole({"entries": [{"id": bad_id, **one}]}, 422, batch_error("Batch entry identifier is not a valid string."))
    whole({"entries": [one]}, 422, batch_error("Batch entry identifier is not a valid string."))
    whole({"entries": [{"id": "x", "value": {"type": "AVRO", "schema_id": 1, "data": 1}}]}, 400,
          {"error_code": 400, "message": "'schema_id=1' cannot be used with 'serializer'."})
    status, answer, _ = v3.call("POST", path, {"records": [{"id": "x", **one}]})
    assert (status, answer["error_code"]) == (422, 422)
    status, answer, _ = v3.call("POST", path, '{"entries": [')
    assert (status, answer["error_code"]) == (400, 400)
    assert v3.call("POST", path, "x", content_type="text/plain")[0] == 415
    assert v3.call("POST", "/v3/clusters/nope/topics/batched/records:batch", {"entries": [{"id": "x", **one}]})[
        :2] == (404, {"error_code": 404, "message": "Cluster nope cannot be found."})
    c = Consumer({"bootstrap.servers": proxy.bootstrap, "group.id": "batched-end"})
    assert [c.get_watermark_offsets(TopicPartition("batched", p), timeout=30) for p in (0, 1)] == [(0, 2), (0, 11)]
    c.close()
    # An unknown topic: every entry fails on its own.
    ghost = v3.ok("POST", f"{v3.c}/topics/ghost/records:batch", {"entries": [{"id": "1", **one},
                                                                            {"id": "2", **one}]}, expect=207)
    assert ghost == {"successes": [], "failures": [{"id": "1", **UNKNOWN_TOPIC}, {"id": "2", **UNKNOWN_TOPIC}]}


def test_topics_created_with_replicas_assignments(proxy):
    v3 = V3(proxy)
    # The assignment gives the partition count and replication factor; the two fields are not used, as in
    # kafka-rest.
    body = {"topic_name": "placed", "replicas_assignments": {"0": [NODE_ID], "1": [NODE_ID], "2": [NODE_ID]},
            "partitions_count": 7, "replication_factor": 3}
    status, created, _ = v3.call("POST", f"{v3.c}/topics", body)
    assert status == 201, created
    assert (created["partitions_count"], created["replication_factor"]) == (3, 1)
    md = admin(proxy).list_topics("placed", timeout=30).topics["placed"]
    assert {p: md.partitions[p].replicas for p in md.partitions} == {0: [NODE_ID], 1: [NODE_ID], 2: [NODE_ID]}
    dry = v3.ok("POST", f"{v3.c}/topics", {"topic_name": "placed-dry", "validate_only": True,
                                           "replicas_assignments": {"0": [NODE_ID], "1": [NODE_ID]}})
    assert (dry["partitions_count"], dry["replication_factor"]) == (2, 1)
    assert "placed-dry" not in admin(proxy).list_topics(timeout=30).topics
    # Kafka refuses assignments it cannot place.
    for assignments in [{"0": [7]}, {"0": [NODE_ID], "2": [NODE_ID]}, {"0": []}, {"0": [NODE_ID, NODE_ID]}]:
        status, err, _ = v3.call("POST", f"{v3.c}/topics", {"topic_name": "misplaced",
                                                            "replicas_assignments": assignments})
        assert (status, err["error_code"]) == (400, 40002), (assignments, err)
        assert "INVALID_REPLICA_ASSIGNMENT" in err["message"], err
    status, err, _ = v3.call("POST", f"{v3.c}/topics", {"topic_name": "misplaced",
                                                        "replicas_assignments": {"zero": [NODE_ID]}})
    assert (status, err["error_code"]) == (400, 400)
    assert "misplaced" not in admin(proxy).list_topics(timeout=30).topics


TOPIC_OPERATIONS = ["READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"]


def test_topic_authorized_operations_without_an_authorizer_are_all_of_them(proxy):
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("ops", 1, 1)])["ops"].result(30)
    assert v3.ok("GET", f"{v3.c}/topics/ops")["authorized_operations"] == []
    assert v3.ok("GET", f"{v3.c}/topics/ops", include_authorized_operations="true")[
        "authorized_operations"] == TOPIC_OPERATIONS
    assert v3.ok("GET", f"{v3.c}/topics/ops", include_authorized_operations="no")["authorized_operations"] == []
    listed = v3.ok("GET", f"{v3.c}/topics", includeAuthorizedOperations="true")["data"]
    # The registry's _schemas is a topic like any other to Kafka.
    assert [(t["topic_name"], t["authorized_operations"]) for t in listed] == [
        ("_schemas", TOPIC_OPERATIONS), ("ops", TOPIC_OPERATIONS)]


def test_topic_authorized_operations_follow_the_acls(broker_factory):
    broker = broker_factory({"authorizer.class.name": STANDARD_AUTHORIZER, "allow.everyone.if.no.acl.found": "true"},
                            proxy=True)
    v3 = V3(broker)
    for name in ("open", "locked"):
        admin(broker).create_topics([NewTopic(name, 1, 1)])[name].result(30)
    acl = {"resource_type": "TOPIC", "resource_name": "locked", "pattern_type": "LITERAL",
           "principal": "User:ANONYMOUS", "host": "*", "operation": "DESCRIBE", "permission": "ALLOW"}
    assert v3.call("POST", f"{v3.c}/acls", acl)[0] == 201
    deadline = time.monotonic() + 20
    while True:
        locked = v3.ok("GET", f"{v3.c}/topics/locked", include_authorized_operations="true")
        if locked["authorized_operations"] == ["DESCRIBE"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert locked["authorized_operations"] == ["DESCRIBE"]
    assert v3.ok("GET", f"{v3.c}/topics/open", include_authorized_operations="true")[
        "authorized_operations"] == TOPIC_OPERATIONS
    listed = v3.ok("GET", f"{v3.c}/topics", includeAuthorizedOperations="true")["data"]
    assert [(t["topic_name"], t["authorized_operations"]) for t in listed] == [
        ("locked", ["DESCRIBE"]), ("open", TOPIC_OPERATIONS)]
    assert [t["authorized_operations"] for t in v3.ok("GET", f"{v3.c}/topics")["data"]] == [[], []]


def test_partition_offsets_and_the_configs_of_every_broker(proxy):
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("offs", 2, 1)])["offs"].result(30)
    for i in range(3):
        v3.ok("POST", f"{v3.c}/topics/offs/records", {"partition_id": 1, "value": {"type": "STRING", "data": str(i)}})

    def offsets(partition, earliest, latest):
        return {"kind": "KafkaPartitionWithOffsets",
                "metadata": {"self": v3.url("topics", "offs", "partitions", partition, "offset"),
                             "resource_name": v3.crn("topic=offs", f"partition={partition}",
                                                     "offset_type=earliest_and_latest")},
                "cluster_id": v3.cluster_id, "topic_name": "offs", "partition_id": partition,
                "earliest_offset": earliest, "latest_offset": latest}

    assert v3.ok("GET", f"{v3.c}/topics/offs/partitions/1/offset") == offsets(1, 0, 3)
    assert v3.ok("GET", f"{v3.c}/topics/offs/partitions/0/offset", offset_type="earliest_and_latest") == offsets(
        0, 0, 0)
    assert v3.call("GET", f"{v3.c}/topics/offs/partitions/0/offset", offset_type="latest")[:2] == (
        400, {"error_code": 400, "message": "Bad Request: offset_type:latest is invalid"})
    assert v3.call("GET", f"{v3.c}/topics/offs/partitions/5/offset")[:2] == (
        404, {"error_code": 40402, "message": "Partition not found."})
    assert v3.call("GET", f"{v3.c}/topics/ghost/partitions/0/offset")[:2] == (404, UNKNOWN_TOPIC)

    one = v3.ok("GET", f"{v3.c}/brokers/{NODE_ID}/configs")["data"]
    assert len(one) > 10
    assert v3.ok("GET", f"{v3.c}/brokers/-/configs") == {
        "kind": "KafkaBrokerConfigList", "metadata": {"self": v3.url("brokers", "-", "configs"), "next": None},
        "data": one}


def test_consumer_groups_and_lag_follow_a_confluent_kafka_consumer(proxy):
    v3 = V3(proxy)
    admin(proxy).create_topics([NewTopic("lagged", 2, 1)])["lagged"].result(30)
    body = "".join(json.dumps({"partition_id": i % 2, "value": {"type": "STRING", "data": f"v{i}"}})
                   for i in range(10))
    resp = requests.post(f"{v3.base}{v3.c}/topics/lagged/records", data=body,
                         headers={"Content-Type": "application/json"}, timeout=60)
    assert all(json.loads(line)["error_code"] == 200 for line in resp.text.split("\r\n") if line)

    c = Consumer({"bootstrap.servers": proxy.bootstrap, "group.id": "watchers", "client.id": "watcher-1",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        c.subscribe(["lagged"])
        seen = 0
        deadline = time.monotonic() + 30
        while seen < 10 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                seen += 1
        assert seen == 10
        c.commit(offsets=[TopicPartition("lagged", 0, 2), TopicPartition("lagged", 1, 5)], asynchronous=False)

        g = f"{v3.c}/consumer-groups/watchers"
        group = v3.ok("GET", g)
        assert group == {
            "kind": "KafkaConsumerGroup",
            "metadata": {"self": v3.url("consumer-groups", "watchers"),
                         "resource_name": v3.crn("consumer-group=watchers")},
            "cluster_id": v3.cluster_id, "consumer_group_id": "watchers", "is_simple": False,
            "partition_assignor": group["partition_assignor"], "state": "STABLE", "type": "CLASSIC",
            "is_mixed_consumer_group": False, "coordinator": {"related": v3.url("brokers", NODE_ID)},
            "consumers": {"related": v3.url("consumer-groups", "watchers", "consumers")},
            "lag_summary": {"related": v3.url("consumer-groups", "watchers", "lag-summary")},
        }
        assert group["partition_assignor"] in ("range", "roundrobin")
        assert group in v3.ok("GET", f"{v3.c}/consumer-groups")["data"]

        consumers = v3.ok("GET", f"{g}/consumers")["data"]
        assert len(consumers) == 1
        member = consumers[0]["consumer_id"]
        assert consumers[0] == {
            "kind": "KafkaConsumer",
            "metadata": {"self": v3.url("consumer-groups", "watchers", "consumers", member),
                         "resource_name": v3.crn("consumer-group=watchers", f"consumer={member}")},
            "cluster_id": v3.cluster_id, "consumer_group_id": "watchers", "consumer_id": member,
            "instance_id": None, "client_id": "watcher-1",
            "assignments": {"related": v3.url("consumer-groups", "watchers", "consumers", member, "assignments")},
        }
        assert v3.ok("GET", f"{g}/consumers/{member}") == consumers[0]
        assignments = v3.ok("GET", f"{g}/consumers/{member}/assignments")["data"]
        assert [(a["topic_name"], a["partition_id"]) for a in assignments] == [("lagged", 0), ("lagged", 1)]
        assert assignments[1]["lag"] == {"related": v3.url("consumer-groups", "watchers", "lags", "lagged",
                                                           "partitions", 1)}
        assert v3.ok("GET", f"{g}/consumers/{member}/assignments/lagged/partitions/1") == assignments[1]

        lags = v3.ok("GET", f"{g}/lags")
        assert lags["kind"] == "KafkaConsumerLagList"
        assert [(x["partition_id"], x["current_offset"], x["log_end_offset"], x["lag"], x["consumer_id"],
                 x["client_id"]) for x in lags["data"]] == [
            (0, 2, 5, 3, member, "watcher-1"), (1, 5, 5, 0, member, "watcher-1")]
        assert v3.ok("GET", f"{g}/lags/lagged/partitions/0") == lags["data"][0]
        summary = v3.ok("GET", f"{g}/lag-summary")
        assert summary == {
            "kind": "KafkaConsumerGroupLagSummary",
            "metadata": {"self": v3.url("consumer-groups", "watchers", "lag-summary"),
                         "resource_name": v3.crn("consumer-group=watchers", "lag-summary")},
            "cluster_id": v3.cluster_id, "consumer_group_id": "watchers", "max_lag_consumer_id": member,
            "max_lag_instance_id": None, "max_lag_client_id": "watcher-1", "max_lag_topic_name": "lagged",
            "max_lag_partition_id": 0, "max_lag": 3, "total_lag": 3,
            "max_lag_consumer": {"related": v3.url("consumer-groups", "watchers", "consumers", member)},
            "max_lag_partition": {"related": v3.url("topics", "lagged", "partitions", 0)},
        }

        # More records raise the lag; a new commit lowers it.
        requests.post(f"{v3.base}{v3.c}/topics/lagged/records", timeout=60,
                      json={"partition_id": 1, "value": {"type": "STRING", "data": "late"}})
        assert v3.ok("GET", f"{g}/lags/lagged/partitions/1")["lag"] == 1
        c.commit(offsets=[TopicPartition("lagged", 0, 5)], asynchronous=False)
        assert v3.ok("GET", f"{g}/lag-summary")["total_lag"] == 1

        assert v3.call("GET", f"{g}/consumers/nobody")[:2] == (404, NOT_FOUND)
        assert v3.call("GET", f"{g}/consumers/{member}/assignments/lagged/partitions/7")[:2] == (404, NOT_FOUND)
        assert v3.call("GET", f"{g}/lags/lagged/partitions/7")[:2] == (404, NOT_FOUND)
    finally:
        c.close()
    assert v3.ok("GET", f"{v3.c}/consumer-groups/watchers")["state"] == "EMPTY"
    assert v3.ok("GET", f"{v3.c}/consumer-groups/watchers/consumers")["data"] == []

    assert v3.call("GET", f"{v3.c}/consumer-groups/ghosts")[:2] == (404, NOT_FOUND)
    assert v3.call("GET", f"{v3.c}/consumer-groups/ghosts/consumers")[:2] == (404, NOT_FOUND)
    assert v3.call("GET", f"{v3.c}/consumer-groups/ghosts/lags")[:2] == (
        404, {"error_code": 404, "message": "Consumer Group ghosts could not be found."})
    assert v3.call("GET", f"{v3.c}/consumer-groups/ghosts/lag-summary")[:2] == (
        404, {"error_code": 404, "message": "Consumer Group ghosts could not be found."})


def test_acls_through_v3_with_an_authorizer(broker_factory):
    broker = broker_factory({"authorizer.class.name": STANDARD_AUTHORIZER, "super.users": "User:ANONYMOUS"},
                            proxy=True)
    v3 = V3(broker)
    acl = {"resource_type": "TOPIC", "resource_name": "payments", "pattern_type": "LITERAL",
           "principal": "User:alice", "host": "*", "operation": "READ", "permission": "ALLOW"}
    status, body, resp = v3.call("POST", f"{v3.c}/acls", acl)
    assert (status, body) == (201, None)
    query = ("resource_type=TOPIC&resource_name=payments&pattern_type=LITERAL&principal=User%3Aalice&host=%2A"
             "&operation=READ&permission=ALLOW")
    assert resp.headers["Location"] == f"{v3.url('acls')}?{query}"
    batch = {"data": [{**acl, "principal": "User:bob", "operation": "WRITE"},
                      {**acl, "resource_type": "GROUP", "resource_name": "pay-", "pattern_type": "PREFIXED"}]}
    assert v3.call("POST", f"{v3.c}/acls:batch", batch)[0] == 204

    kafka = admin(broker).describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None,
                                                         None, AclOperation.ANY, AclPermissionType.ANY)).result(30)
    assert sorted((b.restype.name, b.name, b.resource_pattern_type.name, b.principal, b.operation.name)
                  for b in kafka) == [
        ("GROUP", "pay-", "PREFIXED", "User:alice", "READ"),
        ("TOPIC", "payments", "LITERAL", "User:alice", "READ"),
        ("TOPIC", "payments", "LITERAL", "User:bob", "WRITE")]

    found = v3.ok("GET", f"{v3.c}/acls", resource_type="TOPIC")
    assert found["kind"] == "KafkaAclList"
    assert found["metadata"]["self"].startswith(f"{v3.url('acls')}?resource_type=TOPIC&")
    assert found["data"] == [
        {"kind": "KafkaAcl", "metadata": {"self": f"{v3.url('acls')}?{query}"}, "cluster_id": v3.cluster_id,
         **acl},
        {"kind": "KafkaAcl",
         "metadata": {"self": f"{v3.url('acls')}?{query}".replace("alice", "bob").replace("READ", "WRITE")},
         "cluster_id": v3.cluster_id, **acl, "principal": "User:bob", "operation": "WRITE"}]
    assert len(v3.ok("GET", f"{v3.c}/acls")["data"]) == 3

    deleted = v3.ok("DELETE", f"{v3.c}/acls", resource_type="TOPIC", resource_name="payments",
                    pattern_type="LITERAL", principal="User:bob", host="*", operation="ANY", permission="ANY")
    assert [(a["principal"], a["operation"]) for a in deleted["data"]] == [("User:bob", "WRITE")]
    assert len(admin(broker).describe_acls(AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
        AclPermissionType.ANY)).result(30)) == 2

    assert v3.call("DELETE", f"{v3.c}/acls", resource_type="TOPIC")[:2] == (
        400, {"error_code": 400, "message": "Bad Request: pattern_type cannot be unspecified or UNKNOWN"})
    assert v3.call("GET", f"{v3.c}/acls", operation="unknown")[:2] == (
        400, {"error_code": 400, "message": "Bad Request: operation cannot be UNKNOWN"})
    assert v3.call("GET", f"{v3.c}/acls", operation="READS")[:2] == (404, NOT_FOUND)
    status, err, _ = v3.call("POST", f"{v3.c}/acls", {**acl, "operation": "READS"})
    assert (status, err["error_code"]) == (400, 400)


def test_acls_without_an_authorizer_answer_security_disabled(proxy):
    v3 = V3(proxy)
    status, err, _ = v3.call("GET", f"{v3.c}/acls")
    assert (status, err["error_code"]) == (400, 40002) and "SECURITY_DISABLED" in err["message"]
    acl = {"resource_type": "TOPIC", "resource_name": "t", "pattern_type": "LITERAL", "principal": "User:a",
           "host": "*", "operation": "READ", "permission": "ALLOW"}
    status, err, _ = v3.call("POST", f"{v3.c}/acls", acl)
    assert (status, err["error_code"]) == (400, 40002) and "SECURITY_DISABLED" in err["message"]


def test_the_openapi_document_is_served_and_schemathesis_finds_no_failure(proxy, tmp_path):
    """schemathesis generates requests for every operation of strom's document and checks each answer: no
    server error, a documented status, the documented content type and body schema. Creating and growing
    topics are left out: random partition counts (up to the broker's 100000) would fill the disk; the tests
    above cover them."""
    v3 = V3(proxy)
    resp = requests.get(f"{v3.base}/v3/openapi.yaml", timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/yaml"
    source = Path(__file__).resolve().parent.parent / "crates/strom-rest-proxy/openapi/v3.yaml"
    assert resp.text == source.read_text()
    # Some real names, so that generated requests reach past the 404s of unknown resources.
    admin(proxy).create_topics([NewTopic("fuzzed", 2, 1)])["fuzzed"].result(30)
    requests.post(f"{v3.base}{v3.c}/topics/fuzzed/records", json={"value": {"type": "STRING", "data": "x"}},
                  timeout=30)
    config = tmp_path / "schemathesis.toml"
    config.write_text(f'[parameters]\n"path.cluster_id" = "{v3.cluster_id}"\n')
    cli = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [str(cli), "--config-file", str(config), "run", f"{v3.base}/v3/openapi.yaml", "--url", v3.base,
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                     "response_schema_conformance",
         "--exclude-operation-id", "createTopic", "--exclude-operation-id", "updatePartitionsCount",
         "--max-examples", "15", "--phases", "examples,coverage,fuzzing", "--workers", "2",
         "--request-timeout", "30", "--seed", "1", "--no-color", "--suppress-health-check", "all"],
        capture_output=True, text=True, timeout=110, cwd=tmp_path, env={**os.environ, "NO_COLOR": "1"})
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
