"""Storage faults in a cluster (issue 14, KIP-858): three brokers, each with two log dirs, the
second a 2 MiB tmpfs. When the leader's tmpfs fills up, the dir goes offline; the broker reports
it in its heartbeat (its replicas' dirs are known to the controller from AssignReplicasToDirs),
and the controller takes it out of the ISR of the partitions in that dir and elects another
leader, as Kafka's handleDirectoriesOffline does. An acks=all producer goes on through the move
and every acknowledged record is read back from the new leader; the broker still serves its
partitions in the healthy dir."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from cluster import Cluster
from helpers import kp_admin, read_partition

STORAGE_ERROR = 56  # KAFKA_STORAGE_ERROR
VALUE_BYTES = 10_000


@pytest.fixture
def tiny_mounts(tmp_path):
    """A 2 MiB tmpfs per node, unmounted at teardown (after the nodes are gone)."""
    mounts = {}
    try:
        for node_id in (1, 2, 3):
            mount = tmp_path / f"tiny{node_id}"
            mount.mkdir()
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"mounting a tmpfs failed (the test needs root): {done.stderr}")
            mounts[node_id] = mount
        yield mounts
    finally:
        for mount in mounts.values():
            subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def cluster(tmp_path, tiny_mounts):
    c = Cluster(tmp_path / "cluster", 3)
    for node_id, node in c.nodes.items():
        node.configs["log.dirs"] = f"{node.data_dir},{tiny_mounts[node_id]}"
    try:
        yield c.start()
    finally:
        c.stop_all()
    assert not any("panicked at" in n.log() for n in c.nodes.values()), c.logs()


def free_bytes(path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def create_topic(cluster: Cluster, name: str, replicas: list[int]) -> None:
    admin = cluster.admin()
    topic = NewTopic(name, num_partitions=1, replica_assignment=[replicas], config={"min.insync.replicas": "2"})
    for f in admin.create_topics([topic], operation_timeout=30).values():
        f.result()
    cluster.wait_for(f"{name} led by {replicas[0]} with a full ISR",
                     lambda: cluster.partition(name)[0] == replicas[0]
                     and cluster.partition(name)[2] == sorted(replicas))


def log_dirs_of(node) -> dict[str, dict]:
    ka = kp_admin(node)
    try:
        out = ka.describe_log_dirs()
    finally:
        ka.close()
    mine = [r for r in out if r["broker"] == node.node_id]
    assert len(mine) == 1, out
    return {os.path.realpath(d["log_dir"]): d for d in mine[0]["log_dirs"]}


def offline_replicas(node, topic: str) -> list[int]:
    """Partition 0's offline replicas in a Metadata answer (v5+) from `node`, by kafka-python."""
    ka = kp_admin(node)
    try:
        [described] = ka.describe_topics([topic])
    finally:
        ka.close()
    [partition] = described["partitions"]
    return sorted(partition["offline_replicas"])


def test_a_full_log_dir_moves_leadership_of_its_partitions_only(cluster, tiny_mounts):
    # One partition at a time: each broker puts its first partition in its first dir, the
    # next in the tmpfs (the dir with the fewest partitions). Broker 1 leads both.
    create_topic(cluster, "healthy", [1, 2, 3])
    create_topic(cluster, "victim", [1, 2, 3])
    for node_id, node in cluster.nodes.items():
        assert (node.data_dir / "healthy-0").is_dir(), node_id
        assert (tiny_mounts[node_id] / "victim-0").is_dir(), node_id
        assert not (tiny_mounts[node_id] / "healthy-0").exists()

    acked: list[tuple[int, bytes, bytes]] = []
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(err)
        else:
            acked.append((msg.offset(), msg.key(), msg.value()))

    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 0, "message.timeout.ms": 60000, "retry.backoff.ms": 100})

    def produce(topic: str, key: bytes, value: bytes) -> None:
        p.produce(topic, key=key, value=value, partition=0, on_delivery=on_delivery)
        assert p.flush(60) == 0
        assert not failures, failures

    def value(i: int) -> bytes:
        return f"{i:06d}".encode() + os.urandom(VALUE_BYTES)

    for i in range(5):
        produce("victim", b"k%d" % i, value(i))
    # Leave broker 1's tmpfs room for a dozen more records; the followers' stay empty.
    filler = tiny_mounts[1] / "filler"
    filler.write_bytes(b"\0" * max(0, free_bytes(tiny_mounts[1]) - 150_000))
    for i in range(5, 40):
        produce("victim", b"k%d" % i, value(i))

    node1 = cluster.nodes[1]
    assert node1.wait_for_log(r"log dir is offline after a storage error")
    leader, replicas, isr = cluster.wait_for(
        "victim led elsewhere without broker 1 in its ISR",
        lambda: (lambda s: s if s[0] in (2, 3) and s[2] == [2, 3] else None)(cluster.partition("victim")))
    assert replicas == [1, 2, 3]
    # Every record acknowledged, in order, at consecutive offsets, then more after the move.
    for i in range(40, 45):
        produce("victim", b"k%d" % i, value(i))
    assert [o for o, _, _ in acked] == list(range(45))
    assert [k for _, k, _ in acked] == [b"k%d" % i for i in range(45)]
    new_leader = cluster.nodes[leader]
    got = read_partition(new_leader, "victim", 0, 0, 45)
    assert [(m.offset(), m.key(), m.value()) for m in got] == acked

    # Broker 1 still leads the partition in its healthy dir and serves it.
    assert cluster.partition("healthy") == (1, [1, 2, 3], [1, 2, 3])
    victim_acked = list(acked)
    acked.clear()
    healthy = [(b"h%d" % i, b"healthy-%d" % i * 100) for i in range(10)]
    for key, v in healthy:
        produce("healthy", key, v)
    assert [(o, k, v) for o, k, v in acked] == [(i, k, v) for i, (k, v) in enumerate(healthy)]
    got = read_partition(node1, "healthy", 0, 0, 10)
    assert [(m.offset(), m.key(), m.value()) for m in got] == acked
    dirs = log_dirs_of(node1)
    assert dirs[os.path.realpath(tiny_mounts[1])]["error_code"] == STORAGE_ERROR
    assert dirs[os.path.realpath(node1.data_dir)]["error_code"] == 0
    # Its replica of the victim stays out of the ISR: it is in the offline dir.
    time.sleep(2)
    assert cluster.partition("victim")[2] == [2, 3]
    # Metadata names it an offline replica on every node (Kafka's isReplicaInOfflineDir); its
    # replica of the healthy partition is not.
    for node in cluster.nodes.values():
        assert offline_replicas(node, "victim") == [1], node.node_id
        assert offline_replicas(node, "healthy") == [], node.node_id

    # Space freed and broker 1 restarted: its dir is online again, its replica catches up
    # from the new leader and rejoins the ISR, with exactly the acknowledged records.
    filler.unlink()
    node1.restart()
    cluster.wait_for("broker 1 back in the victim's ISR",
                     lambda: cluster.partition("victim")[2] == [1, 2, 3])
    got = read_partition(new_leader, "victim", 0, 0, 45)
    assert [(m.offset(), m.key(), m.value()) for m in got] == victim_acked
    assert all(log_dir["error_code"] == 0 for log_dir in log_dirs_of(node1).values())
    cluster.wait_for("broker 1's replica of the victim online again in Metadata",
                     lambda: offline_replicas(new_leader, "victim") == [])
