"""The schema registry served by every node of a three-node cluster: one writer elected through the
Kafka group `schema-registry` (protocol type "sr", as Confluent's registries elect theirs), writes sent
to any node forwarded to it, reads answered everywhere, and a new leader after kill -9 of the old one
with ids going on after the highest."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests

from cluster import Cluster
from conftest import free_port
from registry_helpers import register_through_each

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@pytest.fixture
def registry_cluster(tmp_path, request):
    c = Cluster(tmp_path / "cluster", 3, {"group.initial.rebalance.delay.ms": "0"})
    for node in c.nodes.values():
        node.registry_port = free_port()
    try:
        c.start()
        for node in c.nodes.values():
            wait_serving(node)
        yield c
    finally:
        c.stop_all()
        for node in c.nodes.values():
            if "panicked at" in node.log():
                pytest.fail(f"node {node.node_id} panicked:\n{node.log_tail(120)}")


def wait_serving(node, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(node.registry_url + "/subjects", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"node {node.node_id}'s registry is not serving:\n{node.log_tail()}")


def schema(name: str) -> str:
    return json.dumps({"type": "record", "name": name, "fields": [{"name": "f", "type": "long"}]})


def register(node, subject: str, text: str) -> int:
    resp = requests.post(f"{node.registry_url}/subjects/{subject}/versions", data=json.dumps({"schema": text}),
                         headers={"Content-Type": CONTENT_TYPE}, timeout=60)
    assert resp.status_code == 200, (node.node_id, subject, resp.status_code, resp.text)
    return resp.json()["id"]


def leader_of(cluster) -> int:
    """The node whose registry last logged that it leads (every node logs each election)."""
    leaders = []
    for i, node in cluster.nodes.items():
        if not node.running():
            continue
        elected = re.findall(r"schema registry leader elected leader=(\w+)", node.log())
        if elected and elected[-1] == "This":
            leaders.append(i)
    assert len(leaders) <= 1, leaders
    return leaders[0] if leaders else 0


def test_one_registry_writes_and_every_node_serves(registry_cluster):
    c = registry_cluster
    leader = c.wait_for("a registry leader", lambda: leader_of(c))
    followers = [n for i, n in c.nodes.items() if i != leader]
    # Writes through every node at once: each is forwarded to the one writer, so ids never clash.
    ids = register_through_each(c.nodes.values(), 4, register)
    assert sorted(ids.values()) == list(range(1, 13)), ids

    # Every node answers reads from its own copy of _schemas: the same subjects, ids and texts.
    for node in c.nodes.values():
        def caught_up(node=node):
            return sorted(requests.get(node.registry_url + "/subjects", timeout=5).json()) == sorted(ids)
        c.wait_for(f"node {node.node_id} to read every subject", caught_up)
        for subject, schema_id in ids.items():
            got = requests.get(f"{node.registry_url}/subjects/{subject}/versions/1", timeout=5).json()
            assert (got["id"], got["version"], got["subject"]) == (schema_id, 1, subject)
    # The same schema registered again through a follower keeps its id.
    assert register(followers[0], "s1-0", schema("R1x0")) == ids["s1-0"]
    # Config and mode writes go through the leader too and are seen everywhere.
    resp = requests.put(f"{followers[1].registry_url}/config/s2-0", data=json.dumps({"compatibility": "NONE"}),
                        headers={"Content-Type": CONTENT_TYPE}, timeout=30)
    assert (resp.status_code, resp.json()) == (200, {"compatibility": "NONE"})
    for node in c.nodes.values():
        c.wait_for(f"node {node.node_id} to see the config",
                   lambda node=node: requests.get(f"{node.registry_url}/config/s2-0", timeout=5).json()
                   .get("compatibilityLevel") == "NONE")
    # Exactly one node leads, and it is still the one elected first.
    assert leader_of(c) == leader


def test_a_new_leader_takes_over_after_kill_9(registry_cluster):
    c = registry_cluster
    leader = c.wait_for("a registry leader", lambda: leader_of(c))
    # Nodes started together: the registry waited for all three brokers before creating _schemas.
    assert sorted(c.partition("_schemas")[1]) == [1, 2, 3]
    others = [n for i, n in c.nodes.items() if i != leader]
    first = register(others[0], "before", schema("Before"))
    c.nodes[leader].kill()
    # A write through a survivor waits for the next election, then succeeds with the next id.
    second = register(others[1], "after", schema("After"))
    assert second == first + 1
    new_leader = c.wait_for("a new registry leader", lambda: leader_of(c))
    assert new_leader != leader and c.nodes[new_leader].running()
    # The old leader comes back as a follower and serves what was written meanwhile.
    c.nodes[leader].start()
    wait_serving(c.nodes[leader])
    c.wait_for("the restarted registry to read the new subject",
               lambda: requests.get(f"{c.nodes[leader].registry_url}/subjects/after/versions/1", timeout=5)
               .json().get("id") == second)
    third = register(c.nodes[leader], "again", schema("Again"))
    assert third == second + 1
    assert leader_of(c) == new_leader
