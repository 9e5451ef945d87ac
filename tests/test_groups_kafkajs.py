"""A kafkajs (Node.js) consumer group against strom: tests/js/group_consumer.js, run with node.

Needs `npm ci --prefix tests/js` (kafkajs 2.2.4, pinned by tests/js/package-lock.json)."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions, TopicPartition

from helpers import admin, create_topic, produce_all, producer, unique
from test_groups_support import GROUP_BROKER_CONFIGS, raw_join_group_v5, requires_classic_groups

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")

pytestmark = [
    requires_classic_groups(),
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(not (JS / "node_modules" / "kafkajs").is_dir(),
                       reason="kafkajs not installed: run `npm ci --prefix tests/js`"),
    pytest.mark.timeout(120),
]

N_PART = 3
INCONSISTENT_GROUP_PROTOCOL = 23


class JsMember:
    def __init__(self, broker, group, topic, client_id, expect=0, timeout_ms=60000):
        spec = {"brokers": [broker.bootstrap], "groupId": group, "topic": topic, "clientId": client_id,
                "expect": expect, "timeoutMs": timeout_ms}
        self.proc = subprocess.Popen([NODE, str(JS / "group_consumer.js"), json.dumps(spec)], cwd=JS,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[dict] = []
        self.stderr = ""
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self._te = threading.Thread(target=self._read_err, daemon=True)
        self._te.start()

    def _read_err(self):
        self.stderr = self.proc.stderr.read()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"ev": "garbage", "line": line})

    def of(self, kind):
        return [e for e in list(self.events) if e["ev"] == kind]

    def wait_exit(self, timeout_s=90) -> int:
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"kafkajs member did not finish in {timeout_s}s; events {self.events[-10:]}")
        self._t.join(5)
        self._te.join(5)
        return self.proc.returncode

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
        return self.wait_exit(30)

    def wait(self, pred, timeout_s=45, what="event"):
        deadline = time.monotonic() + timeout_s
        while not pred():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"kafkajs: no {what}; exit {self.proc.poll()}; events {self.events[-10:]}")
            time.sleep(0.05)


def produce_round(broker, topic, tag, per_part):
    recs = [{"partition": i % N_PART, "value": f"{tag}-{i}".encode()} for i in range(per_part * N_PART)]
    return {(d.partition, d.offset): d.value.decode() for d in produce_all(producer(broker), topic, recs)}


def committed(adm, group, topic):
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(N_PART)])
    res = adm.list_consumer_group_offsets([req])[group].result(timeout=30)
    return {tp.partition: tp.offset for tp in res.topic_partitions}


def test_kafkajs_group_consumes_commits_and_resumes(broker_factory):
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("js"), unique("g-js")
    create_topic(broker, topic, N_PART)
    r1 = produce_round(broker, topic, "r1", 10)
    m = JsMember(broker, group, topic, "js0", expect=len(r1))
    assert m.wait_exit() == 0, (m.events[-10:], m.stderr)
    assert not m.of("crash"), m.of("crash")
    got = [(e["p"], e["o"]) for e in m.of("msg")]
    assert sorted(got) == sorted(r1) and len(got) == len(set(got))
    assert {(e["p"], e["o"]): e["v"] for e in m.of("msg")} == r1
    joins = m.of("join")
    assert joins and joins[-1]["memberId"].startswith("js0-")
    assert joins[-1]["groupProtocol"] == "RoundRobinAssigner"
    adm = admin(broker)
    assert committed(adm, group, topic) == {p: 10 for p in range(N_PART)}
    # kafkajs disconnect() sends LeaveGroup: the group is empty right away.
    listed = {g.group_id: g for g in adm.list_consumer_groups().result(timeout=30).valid}
    assert listed[group].state == ConsumerGroupState.EMPTY

    # A second run of the group reads only what came after the commits.
    r2 = produce_round(broker, topic, "r2", 4)
    m2 = JsMember(broker, group, topic, "js1", expect=len(r2))
    assert m2.wait_exit() == 0, (m2.events[-10:], m2.stderr)
    assert sorted((e["p"], e["o"]) for e in m2.of("msg")) == sorted(r2)
    assert committed(adm, group, topic) == {p: 14 for p in range(N_PART)}


def test_kafkajs_member_visible_and_protocol_mismatch(broker_factory):
    """A live kafkajs member shows in DescribeGroups; a member offering only `range` (librdkafka's and
    the Java client's name) cannot join its RoundRobinAssigner group: INCONSISTENT_GROUP_PROTOCOL."""
    broker = broker_factory(GROUP_BROKER_CONFIGS)
    topic, group = unique("js"), unique("g-js")
    create_topic(broker, topic, N_PART)
    m = JsMember(broker, group, topic, "js0")
    try:
        m.wait(lambda: m.of("join"), what="join")
        adm = admin(broker)
        d = adm.describe_consumer_groups([group])[group].result(timeout=30)
        assert (d.state, d.partition_assignor) == (ConsumerGroupState.STABLE, "RoundRobinAssigner")
        [member] = d.members
        assert member.client_id == "js0" and member.member_id == m.of("join")[-1]["memberId"]
        assert sorted(tp.partition for tp in member.assignment.topic_partitions) == list(range(N_PART))
        res = raw_join_group_v5(broker, group, "", None, [topic], protocol="range")
        assert res["error"] == INCONSISTENT_GROUP_PROTOCOL, res
    finally:
        assert m.stop() == 0, (m.events[-10:], m.stderr)
