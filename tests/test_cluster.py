"""Three (or five) strom processes as one cluster, driven by real clients: topics with replication
factor 3, kill -9 of partition leaders and of the active controller, a paused follower, two replicas
down, and a consumer group across a coordinator failover."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from cluster import Cluster


@pytest.fixture
def cluster_factory(tmp_path, request):
    clusters: list[Cluster] = []

    def make(size: int = 3, configs: dict[str, str] | None = None,
             roles: dict[int, str] | None = None, node_configs: dict[int, dict[str, str]] | None = None) -> Cluster:
        """`size` nodes with the same `configs`, plus each node's own `node_configs`."""
        c = Cluster(tmp_path / f"cluster{len(clusters)}", size, configs, roles)
        for i, own in (node_configs or {}).items():
            c.nodes[i].configs.update(own)
        clusters.append(c)
        return c.start()

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for c in clusters:
        c.stop_all()
        for node in c.nodes.values():
            if "panicked at" in node.log():
                failed = True
                print(f"\n----- node {node.node_id} panicked -----\n{node.log_tail(120)}")
        if failed:
            print(c.logs())
    if not failed and os.environ.get("STROM_KEEP_DATA") != "1":
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert not any("panicked at" in n.log() for c in clusters for n in c.nodes.values()), "a node panicked"


def create_topic(cluster: Cluster, name: str, partitions: int = 1, replication: int = 3,
                 min_isr: int = 2, assignment: list[list[int]] | None = None) -> None:
    if assignment is not None:
        topic = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment,
                         config={"min.insync.replicas": str(min_isr)})
        partitions, replication = len(assignment), len(assignment[0])
    else:
        topic = NewTopic(name, partitions, replication, config={"min.insync.replicas": str(min_isr)})
    admin = cluster.admin()  # kept alive until its futures resolve
    for f in admin.create_topics([topic], operation_timeout=30).values():
        f.result()
    cluster.wait_for(f"{name} led with a full ISR", lambda: all(
        cluster.partition(name, i)[0] >= 0 and len(cluster.partition(name, i)[2]) == replication
        for i in range(partitions)))


def read_partition(bootstrap: str, topic: str, index: int, expected: int, timeout_s: float = 30) -> list[bytes]:
    """Every record value of a partition from offset 0 (stops at `expected` records or the timeout)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, index, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(values) < expected and time.monotonic() < deadline:
        for m in c.consume(500, 0.5):
            if m.error() is None:
                values.append(m.value())
    # Anything past `expected` would be a duplicate or an unacknowledged record: read a little longer.
    for m in c.consume(500, 1.0):
        if m.error() is None:
            values.append(m.value())
    c.close()
    return values


class ContinuousProducer:
    """An idempotent acks=all producer writing to partition 0 from a thread; records every ack."""

    def __init__(self, bootstrap: str, topic: str):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 5, "message.timeout.ms": 120000})
        self.topic = topic
        self.acked: list[tuple[int, bytes]] = []
        self.errors: list[str] = []
        self.sent = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def on_delivery(self, err, msg):
        if err is not None:
            self.errors.append(str(err))
        else:
            self.acked.append((msg.offset(), msg.value()))

    def run(self):
        while not self.stopping.is_set():
            try:
                self.producer.produce(self.topic, value=b"r%08d" % self.sent, partition=0,
                                      on_delivery=self.on_delivery)
                self.sent += 1
            except BufferError:
                pass
            self.producer.poll(0.002)
        self.producer.flush(120)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(150)


class ContinuousConsumer:
    """Reads partition 0 from the start while the cluster changes; remembers `keep(message)` of
    every record it was given (its value unless told otherwise)."""

    def __init__(self, bootstrap: str, topic: str, extra: dict | None = None, keep=lambda m: m.value()):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watcher-{time.monotonic_ns()}",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest", **(extra or {})})
        self.consumer.assign([TopicPartition(topic, 0, 0)])
        self.keep = keep
        self.seen: list = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stopping.is_set():
            for m in self.consumer.consume(200, 0.2):
                if m.error() is None:
                    self.seen.append(self.keep(m))
        self.consumer.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(30)


def assert_acked_exactly_once_in_order(acked: list[tuple[int, bytes]], log: list[bytes]) -> None:
    assert len(set(log)) == len(log), "a record is in the log twice"
    position = {v: i for i, v in enumerate(log)}
    missing = [v for _, v in acked if v not in position]
    assert not missing, f"{len(missing)} acknowledged records lost, first {missing[:3]}"
    in_log_order = [position[v] for _, v in sorted(acked)]
    assert in_log_order == sorted(in_log_order), "acknowledged records out of order"
    misplaced = [(o, v) for o, v in acked if o >= 0 and position[v] != o]
    assert not misplaced, f"records not at their acknowledged offsets: {misplaced[:3]}"


def test_acks_all_records_survive_repeated_kill_9_of_the_leader(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "orders")
    killed = []
    with ContinuousConsumer(cluster.bootstrap, "orders") as watcher:
        with ContinuousProducer(cluster.bootstrap, "orders") as producer:
            cluster.wait_for("first acks", lambda: len(producer.acked) > 200)
            for _ in range(3):
                leader, _, _ = cluster.partition("orders")
                acked_before = len(producer.acked)
                cluster.nodes[leader].kill()
                killed.append(leader)
                cluster.wait_for("a new leader", lambda: cluster.partition("orders")[0] not in (-1, leader))
                cluster.wait_for("acks from the new leader", lambda: len(producer.acked) > acked_before + 200)
                cluster.nodes[leader].start()
                cluster.wait_for("the old leader back in the ISR",
                                 lambda: cluster.partition("orders")[2] == [1, 2, 3])
        assert producer.errors == []
        acked = producer.acked
        assert len(acked) == producer.sent
        log = read_partition(cluster.bootstrap, "orders", 0, len(acked))
        assert len(log) == len(acked), "the log holds records that were never acknowledged"
        assert_acked_exactly_once_in_order(acked, log)
        cluster.wait_for("the watcher caught up", lambda: len(watcher.seen) >= len(log))
    assert set(watcher.seen) <= set(log), "a consumer read a record that was later lost"
    # Every replica holds the same bytes once all are in the ISR and nothing is written.
    cluster.wait_for("identical replicas", lambda: len({cluster.segment_bytes(i, "orders", 0) for i in (1, 2, 3)}) == 1)
    assert len(set(killed)) >= 1


def test_killing_the_active_controller_elects_another_and_changes_keep_working(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "before")
    old = cluster.controller()
    cluster.nodes[old].kill()
    new = cluster.wait_for("another controller", lambda: (c := cluster.controller()) != old and c)
    assert new in cluster.nodes and new != old

    def created():
        admin = cluster.admin()
        fs = admin.create_topics([NewTopic("after", 2, 2)], operation_timeout=10)
        try:
            fs["after"].result()
        except KafkaException as e:
            if e.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
        return True

    cluster.wait_for("a topic created after the failover", created)
    cluster.nodes[old].start()
    # The old controller caught up with the change made without it.
    md = cluster.nodes[old]
    from confluent_kafka.admin import AdminClient
    topics = AdminClient({"bootstrap.servers": md.bootstrap}).list_topics(timeout=10).topics
    assert {"before", "after"} <= set(topics)
    assert len(topics["after"].partitions) == 2


def test_a_restarted_broker_gets_its_preferred_leaderships_back_automatically(cluster_factory):
    # At 100% the ZooKeeper-era threshold would never balance; Kafka 4's KRaft controller
    # ignores it and moves every partition back to its preferred replica.
    cluster = cluster_factory(3, {"leader.imbalance.check.interval.seconds": "1",
                                  "leader.imbalance.per.broker.percentage": "100"})
    create_topic(cluster, "prefs", assignment=[[1, 2, 3], [2, 3, 1], [1, 3, 2]])
    acked: dict[int, list[bytes]] = {i: [] for i in range(3)}
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})

    def on_delivery(err, msg):
        assert err is None, err
        acked[msg.partition()].append(msg.value())

    def produce(tag: bytes):
        for i in range(3):
            for n in range(20):
                producer.produce("prefs", value=b"%s-%d-%02d" % (tag, i, n), partition=i, on_delivery=on_delivery)
        assert producer.flush(30) == 0

    produce(b"before")
    cluster.nodes[1].kill()
    cluster.wait_for("partitions 0 and 2 led by another broker",
                     lambda: all(cluster.partition("prefs", i)[0] not in (-1, 1) for i in (0, 2)))
    produce(b"during")
    cluster.nodes[1].start()
    cluster.wait_for("broker 1 leads partitions 0 and 2 again",
                     lambda: [cluster.partition("prefs", i)[0] for i in range(3)] == [1, 2, 1])
    produce(b"after")
    for i in range(3):
        assert acked[i] == [b"%s-%d-%02d" % (tag, i, n) for tag in (b"before", b"during", b"after")
                                          for n in range(20)]
        assert read_partition(cluster.bootstrap, "prefs", i, 60) == acked[i]


def test_a_paused_follower_leaves_the_isr_and_returns(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "paused")
    leader, replicas, _ = cluster.partition("paused")
    follower = next(r for r in replicas if r != leader)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    acked = []

    def produce(n, start):
        for i in range(start, start + n):
            p.produce("paused", value=b"p%05d" % i, partition=0,
                      on_delivery=lambda err, msg: acked.append((msg.offset(), msg.value())) if err is None else None)
        assert p.flush(60) == 0

    produce(100, 0)
    cluster.nodes[follower].pause()
    cluster.wait_for("the paused follower out of the ISR", lambda: follower not in cluster.partition("paused")[2])
    produce(100, 100)  # min.insync.replicas=2 still holds
    cluster.nodes[follower].resume()
    cluster.wait_for("the follower back in the ISR", lambda: cluster.partition("paused")[2] == [1, 2, 3], 60)
    produce(100, 200)
    log = read_partition(cluster.bootstrap, "paused", 0, 300)
    assert log == [b"p%05d" % i for i in range(300)]
    assert_acked_exactly_once_in_order(acked, log)
    cluster.wait_for("identical replicas", lambda: len({cluster.segment_bytes(i, "paused", 0) for i in (1, 2, 3)}) == 1)


def test_two_replicas_down_gives_not_enough_replicas_and_loses_nothing(cluster_factory):
    from kafka import KafkaProducer
    from kafka.errors import NotEnoughReplicasError

    # Five voters: with two of the partition's three replicas down the quorum still has three.
    cluster = cluster_factory(5)
    create_topic(cluster, "scarce", partitions=1, assignment=[[1, 2, 3]])
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(100):
        p.produce("scarce", value=b"s%03d" % i, partition=0)
    assert p.flush(60) == 0
    leader = cluster.partition("scarce")[0]
    down = [r for r in (1, 2, 3) if r != leader]
    for r in down:
        cluster.nodes[r].kill()
    cluster.wait_for("the ISR down to the leader", lambda: cluster.partition("scarce")[2] == [leader])
    kp = KafkaProducer(bootstrap_servers=cluster.live_bootstrap(), acks="all", retries=0)
    with pytest.raises(NotEnoughReplicasError):
        kp.send("scarce", value=b"refused", partition=0).get(timeout=30)
    kp.close()
    for r in down:
        cluster.nodes[r].start()
    cluster.wait_for("the ISR full again", lambda: cluster.partition("scarce")[2] == [1, 2, 3], 60)
    log = read_partition(cluster.bootstrap, "scarce", 0, 100)
    assert log == [b"s%03d" % i for i in range(100)]


def test_a_consumer_group_keeps_its_offsets_across_a_coordinator_failover(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "work", partitions=3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(300):
        p.produce("work", key=b"k%d" % i, value=b"w%03d" % i, partition=i % 3)
    assert p.flush(60) == 0

    def consume(n):
        c = Consumer({"bootstrap.servers": cluster.live_bootstrap(), "group.id": "workers",
                      "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        c.subscribe(["work"])
        got = []
        deadline = time.monotonic() + 60
        while len(got) < n and time.monotonic() < deadline:
            for m in c.consume(n - len(got), 0.5):
                if m.error() is None:
                    got.append(m.value())
        c.commit(asynchronous=False)
        c.close()
        return got

    first = consume(150)
    assert len(first) == 150
    def coordinator_of_group():
        admin = cluster.admin()
        return admin.describe_consumer_groups(["workers"])["workers"].result().coordinator.id

    coordinator = coordinator_of_group()
    cluster.nodes[coordinator].kill()
    cluster.wait_for("the group's partition led elsewhere", lambda: coordinator_of_group() != coordinator)
    rest = consume(150)
    assert sorted(first + rest) == sorted(b"w%03d" % i for i in range(300))


def test_transactions_commit_across_brokers_and_survive_a_coordinator_failover(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "txn-out", partitions=3)

    def transactional():
        p = Producer({"bootstrap.servers": cluster.live_bootstrap(), "transactional.id": "pipeline",
                      "enable.idempotence": True, "acks": "all"})
        p.init_transactions(60)
        return p

    def write(p, tag, commit):
        p.begin_transaction()
        for i in range(30):  # every partition, so markers go to every leader
            p.produce("txn-out", value=b"%s-%02d" % (tag, i), partition=i % 3)
        if commit:
            p.commit_transaction(60)
        else:
            p.abort_transaction(60)

    p = transactional()
    write(p, b"one", True)
    write(p, b"aborted", False)

    # The coordinator is the leader of the transactional id's __transaction_state partition
    # (Kafka's partitionFor: the id's Java hashCode, made non-negative, modulo 50 partitions).
    h = 0
    for ch in "pipeline":
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= 1 << 31 else h
    coordinator = cluster.partition("__transaction_state", (0 if h == -(1 << 31) else abs(h)) % 50)[0]
    del p
    cluster.nodes[coordinator].kill()
    p = cluster.wait_for("a producer initialized after the failover", transactional, 60)
    write(p, b"two", True)
    c = Consumer({"bootstrap.servers": cluster.live_bootstrap(), "group.id": "txn-reader",
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    c.subscribe(["txn-out"])
    got = []
    deadline = time.monotonic() + 60
    while len(got) < 60 and time.monotonic() < deadline:
        for m in c.consume(100, 0.5):
            if m.error() is None:
                got.append(m.value())
    for m in c.consume(100, 2.0):
        if m.error() is None:
            got.append(m.value())
    c.close()
    assert sorted(got) == sorted([b"one-%02d" % i for i in range(30)] + [b"two-%02d" % i for i in range(30)])


def test_unclean_election_by_request_and_by_topic_config_then_the_old_leader_truncates(cluster_factory):
    from confluent_kafka import ElectionType
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    # Five voters, so the quorum outlives both replicas of [1, 2].
    cluster = cluster_factory(5, {"unclean.leader.election.interval.ms": "300"})
    topics = ("by-request", "by-config")
    for t in topics:
        create_topic(cluster, t, replication=2, assignment=[[1, 2]], min_isr=1)

    def produce(prefix: bytes, n: int, bootstrap: str) -> None:
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
        for t in topics:
            for i in range(n):
                p.produce(t, value=prefix + b"%03d" % i, partition=0)
        assert p.flush(60) == 0

    produce(b"a", 100, cluster.bootstrap)
    leader = cluster.partition(topics[0])[0]
    assert all(cluster.partition(t)[0] == leader for t in topics)
    followers = [r for r in (1, 2) if r != leader]
    for f in followers:
        cluster.nodes[f].kill()
    cluster.wait_for("the ISRs down to the leader", lambda: all(cluster.partition(t)[2] == [leader] for t in topics))
    # Acknowledged by the leader alone (min.insync.replicas=1): lost by the unclean elections below.
    produce(b"b", 50, cluster.live_bootstrap())
    cluster.nodes[leader].kill()
    cluster.wait_for("both partitions leaderless", lambda: all(cluster.partition(t)[0] == -1 for t in topics))
    for f in followers:
        cluster.nodes[f].start()
    # Back and unfenced, but out of sync: a clean election cannot pick them.
    time.sleep(1.5)  # five rounds of the controller's unclean-election check
    assert [cluster.partition(t)[0] for t in topics] == [-1, -1]

    admin = cluster.admin()
    elected = admin.elect_leaders(ElectionType.UNCLEAN, [TopicPartition("by-request", 0)]).result()
    assert {tp.topic: err for tp, err in elected.items()} == {"by-request": None}
    cluster.wait_for("an unclean leader by request", lambda: cluster.partition("by-request")[0] in followers)
    assert cluster.partition("by-config")[0] == -1
    resource = ConfigResource("topic", "by-config", incremental_configs=[
        ConfigEntry("unclean.leader.election.enable", "true", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result()
    cluster.wait_for("an unclean leader by config", lambda: cluster.partition("by-config")[0] in followers)

    produce(b"c", 100, cluster.live_bootstrap())
    expected = [b"a%03d" % i for i in range(100)] + [b"c%03d" % i for i in range(100)]
    for t in topics:
        assert read_partition(cluster.live_bootstrap(), t, 0, 200) == expected
    # The old leader returns, drops its divergent tail of b-records and follows.
    cluster.nodes[leader].start()
    for t in topics:
        cluster.wait_for(f"{t}: the ISR full again", lambda: cluster.partition(t)[2] == [1, 2], 60)
        assert read_partition(cluster.bootstrap, t, 0, 200) == expected
        cluster.wait_for(f"{t}: identical replicas",
                         lambda: len({cluster.segment_bytes(i, t, 0) for i in (1, 2)}) == 1)


def test_every_node_killed_and_restarted_keeps_every_acknowledged_record(cluster_factory):
    cluster = cluster_factory(3)
    create_topic(cluster, "kept", partitions=3)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(300):
        p.produce("kept", key=b"k%d" % i, value=b"v%03d" % i, partition=i % 3)
    assert p.flush(60) == 0
    for node in cluster.nodes.values():
        node.kill()
    # A node starts before it has heard the committed metadata log from a quorum: it must not
    # take its partitions for strays meanwhile.
    cluster.start()
    for i in range(3):
        cluster.wait_for(f"kept-{i} led with a full ISR", lambda: cluster.partition("kept", i)[2] == [1, 2, 3], 60)
        assert read_partition(cluster.bootstrap, "kept", i, 100) == [b"v%03d" % j for j in range(i, 300, 3)]
    for node in cluster.nodes.values():
        assert "no topic owns" not in node.log()
    # A node that led an epoch without writing (while the others were still fenced) dropped it
    # when it followed again, and rejoined: every replica holds the same bytes.
    for i in range(3):
        cluster.wait_for(f"kept-{i}: identical replicas",
                         lambda: len({cluster.segment_bytes(n, "kept", i) for n in (1, 2, 3)}) == 1)
