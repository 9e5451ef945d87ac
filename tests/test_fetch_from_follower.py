"""KIP-392, fetching from the closest replica, on three strom processes in racks rack-1, rack-2 and
rack-3: with `replica.selector.class` set to Kafka's RackAwareReplicaSelector the leader sends a
consumer to the in-sync replica of its `client.rack`, which serves it up to its own high watermark;
without it the leader serves everyone; a consumer whose replica dies goes back to the leader."""

from __future__ import annotations

import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import kwire
from cluster import Cluster
from helpers import metric
from test_cluster import ContinuousConsumer, cluster_factory, create_topic  # noqa: F401

RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
TOPIC = "nearby"
NOT_LEADER_OR_FOLLOWER = 6
OFFSET_OUT_OF_RANGE = 1
UNKNOWN_LEADER_EPOCH = 75


@pytest.fixture
def rack_cluster(cluster_factory):
    """make(selector): three nodes, node i in rack-i, with `replica.selector.class` if given."""
    def make(selector: str | None) -> Cluster:
        return cluster_factory(3, {"replica.selector.class": selector} if selector else {},
                               node_configs={i: {"broker.rack": f"rack-{i}"} for i in (1, 2, 3)})
    return make


def produce(cluster: Cluster, first: int, count: int) -> list[tuple[int, bytes, bytes]]:
    """acks=all records with distinct keys and values; returns (offset, key, value) of each."""
    p = Producer({"bootstrap.servers": cluster.live_bootstrap(), "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5})
    acked: list[tuple[int, bytes, bytes]] = []
    errors: list[str] = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.append((msg.offset(), msg.key(), msg.value()))

    for i in range(first, first + count):
        p.produce(TOPIC, key=b"key-%05d" % i, value=b"value-%05d-" % i + b"x" * (i % 50), partition=0,
                  on_delivery=on_delivery)
        p.poll(0)
    assert p.flush(60) == 0
    assert errors == []
    return sorted(acked)


def RackConsumer(cluster: Cluster, rack: str | None) -> ContinuousConsumer:
    """A consumer in `rack` reading partition 0 from offset 0 on a thread; keeps (offset, key, value)."""
    extra = {"reconnect.backoff.max.ms": 1000, "topic.metadata.refresh.interval.ms": 2000}
    if rack is not None:
        extra["client.rack"] = rack
    return ContinuousConsumer(cluster.bootstrap, TOPIC, extra, keep=lambda m: (m.offset(), m.key(), m.value()))


def consumer_bytes(cluster: Cluster, node: int, role: str) -> float:
    """Record bytes `node` read for consumers as the partition's `role` (leader or follower)."""
    return metric(cluster.nodes[node].metrics(), "strom_fetch_consumer_record_bytes_total", replica=role) or 0


def preferred_answers(cluster: Cluster, node: int) -> float:
    return metric(cluster.nodes[node].metrics(), "strom_fetch_preferred_read_replica_total") or 0


def log_bytes(cluster: Cluster, node: int) -> int:
    return len(cluster.segment_bytes(node, TOPIC, 0))


# --- Fetch v10 / v11 by hand, to see the fields clients hide -----------------------------------

def fetch(cluster: Cluster, node: int, version: int, offset: int, rack: str = "",
          current_leader_epoch: int = -1) -> dict:
    """One sessionless Fetch of partition 0 (v10, or v11 with `rack_id`) from `node`."""
    assert version in (10, 11)
    partition = struct.pack(">iiqqi", 0, current_leader_epoch, offset, -1, 1 << 20)
    topics = struct.pack(">i", 1) + kwire.enc_string(TOPIC) + struct.pack(">i", 1) + partition
    body = struct.pack(">iiiibii", -1, 0, 1, 1 << 20, 0, 0, -1) + topics + struct.pack(">i", 0)
    if version >= 11:
        body += kwire.enc_string(rack)
    n = cluster.nodes[node]
    with kwire.connect(n.host, n.port, timeout=10) as sock:
        r = kwire.roundtrip(sock, 1, version, 42, body)
    r.i32()  # throttle
    assert r.i16() == 0
    r.i32()  # session id
    (topic,) = r.array(lambda t: (t.string(), t.array(read_partition(version))))
    assert topic[0] == TOPIC and len(topic[1]) == 1
    return topic[1][0]


def read_partition(version: int):
    def read(r: kwire.Reader) -> dict:
        out = {"index": r.i32(), "error": r.i16(), "high_watermark": r.i64(), "last_stable_offset": r.i64(),
               "log_start_offset": r.i64()}
        r.array(lambda a: (a.i64(), a.i64()))
        out["preferred_read_replica"] = r.i32() if version >= 11 else None
        size = r.i32()
        out["offsets"] = batch_offsets(r.take(size) if size > 0 else b"")
        return out
    return read


def batch_offsets(records: bytes) -> list[int]:
    """Every offset the record batches cover (base offset .. base + last offset delta)."""
    offsets, pos = [], 0
    while pos + 12 <= len(records):
        base, length = struct.unpack_from(">qi", records, pos)
        if pos + 12 + length > len(records):
            break  # a partial batch at the end of the size limit
        (last_delta,) = struct.unpack_from(">i", records, pos + 23)
        offsets.extend(range(base, base + last_delta + 1))
        pos += 12 + length
    return offsets


# --- tests --------------------------------------------------------------------------------------

def test_a_consumer_in_a_followers_rack_reads_every_record_from_that_follower(rack_cluster):
    cluster = rack_cluster(RACK_AWARE)
    create_topic(cluster, TOPIC, assignment=[[1, 2, 3]])
    assert cluster.partition(TOPIC)[0] == 1
    produced = produce(cluster, 0, 500)
    assert [o for o, _, _ in produced] == list(range(500))
    # Node 3 has every record and knows they are committed (asked at its end: no record is read).
    cluster.wait_for("node 3 at the high watermark", lambda: fetch(cluster, 3, 11, 500)["high_watermark"] == 500)
    before = consumer_bytes(cluster, 3, "follower")

    with RackConsumer(cluster, "rack-3") as consumer:
        cluster.wait_for("every record", lambda: len(consumer.seen) >= 500)
        time.sleep(1)  # anything more would be a duplicate
    assert consumer.seen == produced

    # The leader only pointed at node 3; node 3 served every record byte, as a follower.
    assert preferred_answers(cluster, 1) >= 1
    assert consumer_bytes(cluster, 1, "leader") == 0
    assert consumer_bytes(cluster, 2, "follower") == 0
    assert consumer_bytes(cluster, 3, "follower") - before >= log_bytes(cluster, 3) > 0

    # The leader's answer on the wire: the preferred replica, the leader's offsets, no records.
    to_node_3 = fetch(cluster, 1, 11, 0, rack="rack-3")
    assert (to_node_3["error"], to_node_3["preferred_read_replica"], to_node_3["offsets"]) == (0, 3, [])
    assert (to_node_3["high_watermark"], to_node_3["log_start_offset"]) == (500, 0)
    # In the leader's rack, in a rack with no replica, with no rack, or before v11: the leader reads.
    for rack in ("rack-1", "rack-9", ""):
        here = fetch(cluster, 1, 11, 0, rack=rack)
        assert (here["error"], here["preferred_read_replica"], here["offsets"][0]) == (0, -1, 0)
    assert fetch(cluster, 1, 10, 0)["offsets"][0] == 0

    # A follower serves v11 up to its high watermark, as Kafka's Partition.fetchRecords does.
    at_end = fetch(cluster, 3, 11, 490)
    assert (at_end["error"], at_end["preferred_read_replica"], at_end["offsets"][-1]) == (0, -1, 499)
    assert 490 in at_end["offsets"]
    assert fetch(cluster, 3, 11, 500)["offsets"] == []
    assert fetch(cluster, 3, 11, 500)["error"] == 0
    assert fetch(cluster, 3, 11, 505)["error"] == OFFSET_OUT_OF_RANGE
    # Older consumers and newer leader epochs than the follower knows are refused.
    assert fetch(cluster, 3, 10, 0)["error"] == NOT_LEADER_OR_FOLLOWER
    assert fetch(cluster, 3, 11, 0, current_leader_epoch=1)["error"] == UNKNOWN_LEADER_EPOCH
    assert fetch(cluster, 3, 11, 0, current_leader_epoch=0)["offsets"][0] == 0


def test_without_a_replica_selector_the_leader_serves_consumers_of_every_rack(rack_cluster):
    cluster = rack_cluster(None)
    create_topic(cluster, TOPIC, assignment=[[1, 2, 3]])
    produced = produce(cluster, 0, 300)
    with RackConsumer(cluster, "rack-3") as consumer:
        cluster.wait_for("every record", lambda: len(consumer.seen) >= 300)
        time.sleep(1)
    assert consumer.seen == produced
    assert preferred_answers(cluster, 1) == 0
    assert consumer_bytes(cluster, 3, "follower") == 0
    assert consumer_bytes(cluster, 1, "leader") >= log_bytes(cluster, 1) > 0
    answer = fetch(cluster, 1, 11, 0, rack="rack-3")
    assert (answer["error"], answer["preferred_read_replica"], answer["offsets"][0]) == (0, -1, 0)


def test_a_consumer_whose_follower_dies_goes_back_to_the_leader_and_misses_nothing(rack_cluster):
    cluster = rack_cluster(RACK_AWARE)
    create_topic(cluster, TOPIC, assignment=[[1, 2, 3]])
    produced = produce(cluster, 0, 200)
    cluster.wait_for("node 3 at the high watermark", lambda: fetch(cluster, 3, 11, 200)["high_watermark"] == 200)
    with RackConsumer(cluster, "rack-3") as consumer:
        cluster.wait_for("the first records", lambda: len(consumer.seen) >= 200)
        assert consumer_bytes(cluster, 3, "follower") > 0
        assert consumer_bytes(cluster, 1, "leader") == 0
        cluster.nodes[3].kill()
        # acks=all with min.insync.replicas=2 completes once node 3 has left the ISR.
        produced += produce(cluster, 200, 300)
        cluster.wait_for("every record", lambda: len(consumer.seen) >= 500, timeout_s=60)
        time.sleep(1)
    assert consumer.seen == produced
    assert [o for o, _, _ in produced] == list(range(500))
    # The records after the kill came from the leader (node 2 is in no consumer's rack).
    assert consumer_bytes(cluster, 1, "leader") > 0
    assert consumer_bytes(cluster, 2, "follower") == 0
