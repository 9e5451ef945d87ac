"""Client quotas (issue #14 item 4): AlterClientQuotas and DescribeClientQuotas through
kafka-python's protocol classes, and producer_byte_rate, consumer_byte_rate,
request_percentage and controller_mutation_rate enforced on real clients
(confluent-kafka / librdkafka, kafka-python) and raw frames: throttle_time_ms in the
responses, the connection muted for it, throughput near the quota, other clients
untouched.

The brokers here measure over quota.window.num=2 samples of one second (Kafka's
default is 11), so a client's first burst allowed before throttling is small and a
few seconds of traffic show the quota's rate."""

from __future__ import annotations

import socket
import struct
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaAdminClient
from kafka.protocol.admin import (AlterClientQuotasRequest, CreateTopicsRequest,
                                  DescribeClientQuotasRequest)

import kwire
from helpers import create_topic, produce_all, unique

FAST_WINDOWS = {"quota.window.num": "2", "quota.window.size.seconds": "1",
                "controller.quota.window.num": "2", "controller.quota.window.size.seconds": "1"}

ALTER = AlterClientQuotasRequest
DESCRIBE = DescribeClientQuotasRequest


def send(admin: KafkaAdminClient, request):
    return admin._manager.run(admin._manager.send, request)


def alter(admin, entity: dict[str, str | None], ops: dict[str, float | None], validate_only=False):
    entry = ALTER.EntryData(
        entity=[ALTER.EntryData.EntityData(entity_type=t, entity_name=n) for t, n in entity.items()],
        ops=[ALTER.EntryData.OpData(key=k, value=v or 0.0, remove=v is None) for k, v in ops.items()])
    response = send(admin, ALTER(entries=[entry], validate_only=validate_only))
    assert len(response.entries) == 1
    return response.entries[0].error_code, response.entries[0].error_message


def describe(admin, components: list[tuple[str, int, str | None]], strict=False):
    response = send(admin, DESCRIBE(
        components=[DESCRIBE.ComponentData(entity_type=t, match_type=m, match=n) for t, m, n in components],
        strict=strict))
    if response.error_code:
        return response.error_code, response.error_message
    return {frozenset((e.entity_type, e.entity_name) for e in entry.entity):
            {v.key: v.value for v in entry.values} for entry in response.entries}


def test_quotas_are_altered_described_validated_and_survive_kill(broker_factory):
    broker = broker_factory(FAST_WINDOWS)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert alter(admin, {"user": "alice"}, {"producer_byte_rate": 1048576.0,
                                                "request_percentage": 25.5})[0] == 0
        assert alter(admin, {"user": "alice", "client-id": None}, {"consumer_byte_rate": 2048.0})[0] == 0
        assert alter(admin, {"client-id": "app"}, {"controller_mutation_rate": 3.0})[0] == 0
        assert alter(admin, {"user": None}, {"producer_byte_rate": 512.0})[0] == 0
        # validate_only checks and changes nothing.
        assert alter(admin, {"user": "bob"}, {"producer_byte_rate": 1.0}, validate_only=True)[0] == 0

        alice = frozenset({("user", "alice")})
        alice_default_client = frozenset({("user", "alice"), ("client-id", None)})
        everything = describe(admin, [])
        assert everything == {
            alice: {"producer_byte_rate": 1048576.0, "request_percentage": 25.5},
            alice_default_client: {"consumer_byte_rate": 2048.0},
            frozenset({("client-id", "app")}): {"controller_mutation_rate": 3.0},
            frozenset({("user", None)}): {"producer_byte_rate": 512.0},
        }
        # Exact name, non-strict: every entity naming alice; strict: only alice alone.
        assert set(describe(admin, [("user", 0, "alice")])) == {alice, alice_default_client}
        assert set(describe(admin, [("user", 0, "alice")], strict=True)) == {alice}
        assert set(describe(admin, [("user", 1, None)], strict=True)) == {frozenset({("user", None)})}
        assert set(describe(admin, [("client-id", 2, None)])) == {
            alice_default_client, frozenset({("client-id", "app")})}

        # Kafka's refusals, with its messages.
        assert alter(admin, {"user": "alice"}, {"bogus_rate": 1.0}) == (42, "Invalid configuration key bogus_rate")
        assert alter(admin, {"user": "alice"}, {"producer_byte_rate": 1.5}) == (
            42, "producer_byte_rate cannot be a fractional value.")
        assert alter(admin, {"user": "alice"}, {"request_percentage": -1.0}) == (
            42, "Quota request_percentage must be greater than 0")
        assert alter(admin, {"group": "g"}, {"producer_byte_rate": 1.0}) == (
            42, "Unhandled client quota entity type: group")
        assert alter(admin, {"ip": "127.0.0.1", "user": "alice"}, {"connection_creation_rate": 1.0})[0] == 42
        assert describe(admin, [("group", 2, None)]) == (35, "Unsupported entity type group")
        assert describe(admin, [("user", 0, None)]) == (
            42, "Request specified MATCH_TYPE_EXACT, but set match string to null.")

        # Removing a key; an entity with no key left is gone.
        assert alter(admin, {"user": "alice", "client-id": None}, {"consumer_byte_rate": None})[0] == 0
        assert alter(admin, {"user": "alice"}, {"request_percentage": None})[0] == 0
        expected = {
            alice: {"producer_byte_rate": 1048576.0},
            frozenset({("client-id", "app")}): {"controller_mutation_rate": 3.0},
            frozenset({("user", None)}): {"producer_byte_rate": 512.0},
        }
        assert describe(admin, []) == expected
    finally:
        admin.close()

    broker.kill()
    broker.start()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert describe(admin, []) == expected
    finally:
        admin.close()


def produce_for(bootstrap: str, topic: str, client_id: str, seconds: float, value: bytes):
    """Produces as fast as librdkafka lets it for `seconds`; returns (acknowledged value bytes,
    elapsed seconds, throttle times reported)."""
    throttles: list[int] = []
    acked = [0]

    def on_delivery(err, msg):
        assert err is None, err
        acked[0] += len(msg.value())

    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                  "batch.size": 16384,
                  "queue.buffering.max.kbytes": 2048, "acks": "all",
                  "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            p.produce(topic, value, on_delivery=on_delivery)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    p.flush(60)
    elapsed = time.monotonic() - started
    return acked[0], elapsed, throttles


def test_a_producer_over_its_byte_rate_is_throttled_and_another_is_not(broker_factory):
    broker = broker_factory(FAST_WINDOWS)
    topic = unique("quota-produce")
    create_topic(broker, topic, partitions=1)
    quota = 200 * 1024
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert alter(admin, {"client-id": "slow-producer"}, {"producer_byte_rate": float(quota)})[0] == 0
    finally:
        admin.close()
    value = b"v" * 1000

    slow_bytes, slow_elapsed, slow_throttles = produce_for(broker.bootstrap, topic, "slow-producer", 6, value)
    slow_rate = slow_bytes / slow_elapsed
    # librdkafka reports the broker's throttle_time_ms through throttle_cb.
    assert slow_throttles and max(slow_throttles) > 0
    # Near the quota: the first window's allowance and request overhead keep it from being exact.
    assert 0.5 * quota <= slow_rate <= 1.5 * quota, (slow_rate, quota)

    fast_bytes, fast_elapsed, fast_throttles = produce_for(broker.bootstrap, topic, "fast-producer", 3, value)
    assert all(t == 0 for t in fast_throttles)
    assert fast_bytes / fast_elapsed > 5 * quota, (fast_bytes / fast_elapsed, quota)


def test_a_consumer_over_its_byte_rate_is_throttled_and_another_is_not(broker_factory):
    broker = broker_factory(FAST_WINDOWS)
    topic = unique("quota-fetch")
    create_topic(broker, topic, partitions=1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20})
    total = 1200
    value = b"c" * 1000
    # Batches of 50 records (a flush each): the first fetch then holds about 1 MB and is throttled
    # before the rest is read. One large batch could instead carry most records past the quota
    # in a single response, read before any throttle applies.
    for start in range(0, total, 50):
        produce_all(p, topic, [{"key": str(i).encode(), "value": value} for i in range(start, start + 50)])
    quota = 300 * 1024
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert alter(admin, {"client-id": "slow-consumer"}, {"consumer_byte_rate": float(quota)})[0] == 0
    finally:
        admin.close()

    def consume_all(client_id: str):
        throttles: list[int] = []
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique("g"), "client.id": client_id,
                      "enable.auto.commit": False, "fetch.max.bytes": 1048576,
                      "throttle_cb": lambda event: throttles.append(event.throttle_time)})
        c.assign([TopicPartition(topic, 0, 0)])
        seen = []
        started = time.monotonic()
        while len(seen) < total and time.monotonic() - started < 60:
            for m in c.consume(500, 0.5):
                assert m.error() is None, m.error()
                seen.append((m.offset(), m.key()))
        elapsed = time.monotonic() - started
        c.close()
        # Every record once, in order: a throttled (empty) fetch loses nothing.
        assert seen == [(i, str(i).encode()) for i in range(total)]
        return elapsed, throttles

    slow_elapsed, slow_throttles = consume_all("slow-consumer")
    assert slow_throttles and max(slow_throttles) > 0
    # 1.2 MB at 300 KiB/s: about four seconds (less the first window's allowance).
    assert slow_elapsed >= 0.5 * total * len(value) / quota, slow_elapsed
    fast_elapsed, fast_throttles = consume_all("fast-consumer")
    assert all(t == 0 for t in fast_throttles)
    assert fast_elapsed < slow_elapsed / 2, (fast_elapsed, slow_elapsed)


def api_versions_v3(sock: socket.socket, correlation_id: int, client_id: str) -> int:
    """ApiVersions v3 (flexible request, non-flexible response header); its throttle_time_ms."""
    body = kwire.enc_compact_string("strom-tests") + kwire.enc_compact_string("1.0") + b"\x00"
    payload = (struct.pack(">hhi", kwire.API_KEY_API_VERSIONS, 3, correlation_id)
               + kwire.enc_string(client_id) + b"\x00" + body)
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    r = kwire.Reader(kwire.recv_frame(sock))
    assert r.i32() == correlation_id
    assert r.i16() == 0
    for _ in range(r.uvarint() - 1):  # api key, min and max version, tags
        r.take(6)
        r.skip_tags()
    return r.i32()


def test_request_percentage_throttles_and_mutes_the_connection(broker_factory):
    broker = broker_factory(FAST_WINDOWS)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        # A ten-thousandth of one thread's time: a few requests exceed it.
        assert alter(admin, {"client-id": "busy"}, {"request_percentage": 0.0001})[0] == 0
    finally:
        admin.close()
    host, port = broker.bootstrap.split(":")
    with kwire.connect(host, int(port)) as sock:
        throttle = 0
        for i in range(200):
            throttle = api_versions_v3(sock, i, "busy")
            if throttle:
                break
        # Kafka bounds a request quota's throttle by one sample window.
        assert 0 < throttle <= 1000, throttle
        # The connection reads nothing more until the throttle time has passed.
        sent = time.monotonic()
        api_versions_v3(sock, 999, "busy")
        assert time.monotonic() - sent >= throttle / 1000 * 0.9
    # Another client id on another connection is not throttled.
    with kwire.connect(host, int(port)) as sock:
        assert all(api_versions_v3(sock, i, "idle") == 0 for i in range(50))


def test_controller_mutation_rate_refuses_topic_creation_with_throttling_quota_exceeded(broker_factory):
    broker = broker_factory(FAST_WINDOWS)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="mutator")
    other = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="bystander")
    try:
        # One partition a second; the bucket holds two seconds' worth.
        assert alter(admin, {"client-id": "mutator"}, {"controller_mutation_rate": 1.0})[0] == 0

        def create(client, name: str, partitions: int):
            topic = CreateTopicsRequest.CreatableTopic(name=name, num_partitions=partitions,
                                                       replication_factor=1)
            response = send(client, CreateTopicsRequest(topics=[topic], timeout_ms=10000,
                                                        validate_only=False))
            return response.topics[0].error_code, response.throttle_time_ms

        assert create(admin, unique("m"), 2) == (0, 0)
        # The bucket is empty, not negative: this one passes and overdraws it.
        assert create(admin, unique("m"), 3) == (0, 0)
        refused = unique("m")
        code, throttle = create(admin, refused, 1)
        assert code == 89  # THROTTLING_QUOTA_EXCEEDED
        assert 1500 <= throttle <= 3100, throttle
        # The refused topic does not exist; a bystander creates freely.
        assert all(create(other, unique("b"), 4) == (0, 0) for _ in range(3))
        time.sleep(throttle / 1000 + 0.2)
        assert create(admin, refused, 1) == (0, 0)
    finally:
        admin.close()
        other.close()


def test_an_ip_over_its_connection_creation_rate_is_closed_after_the_throttle_time(broker_factory):
    """connection_creation_rate on an IP entity, as Kafka's acceptor applies it: the connection
    over the rate is accepted but never served, and closed once its throttle time (at most one
    window) has passed; other addresses, and the same address later, are served."""
    broker = broker_factory(FAST_WINDOWS)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert alter(admin, {"ip": "127.0.0.2"}, {"connection_creation_rate": 2.0})[0] == 0
        time.sleep(0.5)  # the broker applies the record to its image
    finally:
        admin.close()
    host, port = broker.bootstrap.split(":")

    def served(source: str) -> bool:
        """Whether an ApiVersions from `source` is answered; False when the broker closes it."""
        with socket.create_connection((host, int(port)), timeout=5, source_address=(source, 0)) as sock:
            try:
                kwire.api_versions(sock)
                return True
            except (ConnectionError, OSError):
                return False

    # Two connections a second fit (a young rate counts as one full window); the third is over.
    assert served("127.0.0.2") and served("127.0.0.2")
    started = time.monotonic()
    assert not served("127.0.0.2")
    closed_after = time.monotonic() - started
    assert 0.2 < closed_after < 2.5, closed_after
    # Another address is not limited.
    assert all(served("127.0.0.1") for _ in range(10))
    # Once the rate has come down, the address is served again.
    time.sleep(3)
    assert served("127.0.0.2")


def create_topics_v2_throttle(sock, name: str, partitions: int, correlation_id: int) -> tuple[int, int]:
    """CreateTopics v2 (permissive under controller_mutation_rate): (error code, throttle_time_ms)."""
    body = (struct.pack(">i", 1) + kwire.enc_string(name) + struct.pack(">ihii", partitions, 1, 0, 0)
            + struct.pack(">i?", 10_000, False))
    r = kwire.roundtrip(sock, 19, 2, correlation_id, body)
    throttle = r.i32()
    assert r.i32() == 1 and r.string() == name
    return r.i16(), throttle


def test_a_forwarding_broker_mutes_the_client_for_the_controllers_throttle(tmp_path):
    """CreateTopics sent to a broker-only node is forwarded to the controller, whose
    controller_mutation_rate throttle comes back in the response; the forwarding broker mutes
    the client's connection for it, as Kafka's sendForwardedResponse does."""
    from cluster import Cluster
    cluster = Cluster(tmp_path, size=2, configs=FAST_WINDOWS, roles={1: "controller", 2: "broker"}).start()
    try:
        broker = cluster.nodes[2]
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            # kwire's client id; one partition a second, a bucket of two.
            assert alter(admin, {"client-id": "strom-tests"}, {"controller_mutation_rate": 1.0})[0] == 0
        finally:
            admin.close()
        time.sleep(0.5)
        host, port = broker.bootstrap.split(":")
        with kwire.connect(host, int(port), timeout=15) as sock:
            code, throttle = create_topics_v2_throttle(sock, unique("fw"), 5, 1)
            # Permissive (v2): created, and the overdrawn bucket (2 - 5 tokens) is 3 s of throttle.
            assert code == 0 and 2000 <= throttle <= 3100, (code, throttle)
            sent = time.monotonic()
            kwire.api_versions(sock, correlation_id=2)
            waited = time.monotonic() - sent
            assert waited >= throttle / 1000 * 0.9, (waited, throttle)
    finally:
        cluster.stop_all()
