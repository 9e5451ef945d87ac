"""process.roles: broker-only nodes (observers of the metadata log) added to a running cluster,
controller-only nodes, and decommissioning a broker (UnregisterBroker, `strom cluster unregister`),
all with real clients against real `strom server` processes."""

from __future__ import annotations

import re
import subprocess

from confluent_kafka import Producer

from cluster import Cluster
from conftest import strom_bin
from test_cluster import (ContinuousProducer, assert_acked_exactly_once_in_order, cluster_factory,  # noqa: F401
                          create_topic, read_partition)
from test_describe_quorum import describe_quorum_raw, quorum_partition


def strom(cluster: Cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(strom_bin()), "cluster", "--brokers", cluster.live_bootstrap(), *args],
                          capture_output=True, text=True, timeout=60)


def registered_brokers(cluster: Cluster) -> dict[int, str]:
    """Every registered broker, fenced or not, from `strom cluster status` (DescribeCluster v2)."""
    out = strom(cluster, "status")
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^(\d+)\s+127\.0\.0\.1\s+\d+\s+\S+\s+(fenced|unfenced)\s*$", out.stdout, re.M)
    return {int(i): state for i, state in rows}


def quorum(cluster: Cluster, via: int) -> dict:
    """DescribeQuorum sent to broker `via` (which forwards it to the active controller)."""
    node = cluster.nodes[via]
    described = describe_quorum_raw(node.host, node.port, 2)
    p = quorum_partition(described)
    assert p["error_code"] == 0, p
    return p


def described_brokers(cluster: Cluster) -> set[int]:
    """The broker ids DescribeCluster lists (confluent-kafka)."""
    admin = cluster.admin()  # kept alive until its future resolves
    return {n.id for n in admin.describe_cluster().result(10).nodes}


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> list[tuple[int, bytes]]:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    acked: list[tuple[int, bytes]] = []
    for v in values:
        p.produce(topic, value=v, partition=partition,
                  on_delivery=lambda err, msg: acked.append((msg.offset(), msg.value())) if err is None else None)
    assert p.flush(60) == 0
    assert len(acked) == len(values)
    return acked


def test_a_partition_moves_under_load_onto_a_broker_added_later_and_loses_nothing(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "moving", assignment=[[1, 2, 3]])
    cluster.add_node(4, "broker").start()
    # Broker 4 is registered and unfenced: clients see it; it follows the log as an observer.
    assert described_brokers(cluster) == {1, 2, 3, 4}
    assert set(cluster.admin().list_topics(timeout=10).brokers) == {1, 2, 3, 4}
    q = quorum(cluster, 4)
    assert [v["replica_id"] for v in q["current_voters"]] == [1, 2, 3]
    assert [o["replica_id"] for o in q["observers"]] == [4]

    with ContinuousProducer(cluster.bootstrap, "moving") as producer:
        cluster.wait_for("first acks", lambda: len(producer.acked) > 300)
        out = strom(cluster, "reassign", "--topic", "moving", "--partition", "0", "--replicas", "2,3,4")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "Reassignment of moving-0 to replicas 2,3,4 started."
        cluster.wait_for("the move completed", lambda: cluster.partition("moving")[1:] == ([2, 3, 4], [2, 3, 4]), 60)
        acked_at_move = len(producer.acked)
        cluster.wait_for("acks after the move", lambda: len(producer.acked) > acked_at_move + 300)
    assert producer.errors == []
    acked = producer.acked
    assert len(acked) == producer.sent
    assert strom(cluster, "reassign", "--list").stdout.strip().splitlines()[1:] == []
    # Read through the new broker alone, from the new replica set.
    log = read_partition(cluster.nodes[4].bootstrap, "moving", 0, len(acked))
    assert len(log) == len(acked), "the log holds records that were never acknowledged"
    assert_acked_exactly_once_in_order(acked, log)
    cluster.wait_for("identical replicas", lambda: len({cluster.segment_bytes(i, "moving", 0) for i in (2, 3, 4)}) == 1)
    assert cluster.segment_bytes(4, "moving", 0) != b""
    # The replica that left has its files removed.
    cluster.wait_for("the old replica's dir removed",
                     lambda: not (cluster.nodes[1].data_dir / "moving-0").exists())


def test_controller_only_quorum_with_broker_only_nodes_survives_kill_9_of_the_active_controller(cluster_factory):
    cluster = cluster_factory(5, roles={1: "controller", 2: "controller", 3: "controller", 4: "broker", 5: "broker"})
    # Controllers register no broker and host nothing; the brokers are observers, not voters.
    assert set(cluster.admin().list_topics(timeout=10).brokers) == {4, 5}
    q = quorum(cluster, 4)
    assert [v["replica_id"] for v in q["current_voters"]] == [1, 2, 3]
    assert sorted(o["replica_id"] for o in q["observers"]) == [4, 5]
    create_topic(cluster, "ha", partitions=2, replication=2, min_isr=2)
    assert {len(cluster.partition("ha", i)[1]) for i in (0, 1)} == {2}
    first = {i: produce(cluster.bootstrap, "ha", [b"a%d-%03d" % (i, n) for n in range(100)], i) for i in (0, 1)}
    for node in (1, 2, 3):
        assert not any(d.name.startswith("ha-") for d in cluster.nodes[node].data_dir.iterdir())

    old = q["leader_id"]
    cluster.nodes[old].kill()
    new = cluster.wait_for("another active controller",
                           lambda: (leader := quorum(cluster, 5)["leader_id"]) not in (-1, old) and leader)
    assert new in (1, 2, 3)
    # Metadata changes go to the new controller; the brokers stay unfenced under it (RF2 needs both).
    create_topic(cluster, "after", partitions=1, replication=2, min_isr=2)
    second = {i: produce(cluster.bootstrap, "ha", [b"b%d-%03d" % (i, n) for n in range(100)], i) for i in (0, 1)}
    after = produce(cluster.bootstrap, "after", [b"c%03d" % n for n in range(50)])
    for i in (0, 1):
        log = read_partition(cluster.bootstrap, "ha", i, 200)
        assert log == [b"a%d-%03d" % (i, n) for n in range(100)] + [b"b%d-%03d" % (i, n) for n in range(100)]
        assert_acked_exactly_once_in_order(first[i] + second[i], log)
    assert read_partition(cluster.bootstrap, "after", 0, 50) == [v for _, v in after]

    # A broker-only node restarts from its own copy of the metadata log and serves again.
    cluster.nodes[5].kill()
    cluster.nodes[5].start()
    cluster.nodes[old].start()
    assert {len(cluster.partition("ha", i)[1]) for i in (0, 1)} == {2}
    cluster.wait_for("both brokers back in every ISR",
                     lambda: all(cluster.partition(t, i)[2] == [4, 5] for t, i in (("ha", 0), ("ha", 1), ("after", 0))), 60)
    assert set(cluster.admin().list_topics(timeout=10).brokers) == {4, 5}
    assert read_partition(cluster.nodes[5].bootstrap, "after", 0, 50) == [v for _, v in after]


def test_decommissioning_a_broker_moves_its_partitions_and_unregisters_it(cluster_factory):
    cluster = cluster_factory(3)
    four = cluster.add_node(4, "broker").start()
    create_topic(cluster, "leaving", assignment=[[4, 1, 2], [1, 4, 3]])
    acked = {i: produce(cluster.bootstrap, "leaving", [b"l%d-%03d" % (i, n) for n in range(100)], i) for i in (0, 1)}

    # An id that is not registered: Kafka's BROKER_ID_NOT_REGISTERED.
    out = strom(cluster, "unregister", "--id", "9")
    assert out.returncode == 1
    assert out.stderr.strip() == ("error: unregister broker 9: BROKER_ID_NOT_REGISTERED: "
                                  "Broker ID 9 is not currently registered")
    # As in Kafka 4, a live broker is not refused: its registration goes. Its next heartbeat finds
    # its epoch gone, and it registers again (a new epoch) and is unfenced once caught up.
    out = strom(cluster, "unregister", "--id", "4")
    assert (out.returncode, out.stdout.strip()) == (0, "Broker 4 is no longer registered."), out.stderr
    four.wait_for_log("registering again", 30)
    cluster.wait_for("broker 4 registered and unfenced again", lambda: registered_brokers(cluster).get(4) == "unfenced")

    # Decommission: move its partitions away, stop it, unregister it.
    out = strom(cluster, "reassign", "--topic", "leaving", "--partition", "0", "--replicas", "1,2,3")
    assert out.returncode == 0, out.stderr
    out = strom(cluster, "reassign", "--topic", "leaving", "--partition", "1", "--replicas", "1,2,3")
    assert out.returncode == 0, out.stderr
    cluster.wait_for("both moves completed", lambda: all(
        cluster.partition("leaving", i)[1:] == ([1, 2, 3], [1, 2, 3]) for i in (0, 1)), 60)
    assert four.stop() == 0
    cluster.wait_for("broker 4 fenced", lambda: registered_brokers(cluster).get(4) == "fenced")
    out = strom(cluster, "unregister", "--id", "4")
    assert (out.returncode, out.stdout.strip()) == (0, "Broker 4 is no longer registered."), out.stderr
    assert registered_brokers(cluster) == {1: "unfenced", 2: "unfenced", 3: "unfenced"}
    assert described_brokers(cluster) == {1, 2, 3}
    assert quorum(cluster, 1)["observers"] == []
    # Unregistered twice: the second time it is not registered.
    out = strom(cluster, "unregister", "--id", "4")
    assert out.stderr.strip() == ("error: unregister broker 4: BROKER_ID_NOT_REGISTERED: "
                                  "Broker ID 4 is not currently registered")
    for i in (0, 1):
        log = read_partition(cluster.bootstrap, "leaving", i, 100)
        assert log == [b"l%d-%03d" % (i, n) for n in range(100)]
        assert_acked_exactly_once_in_order(acked[i], log)
