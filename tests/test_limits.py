"""Limits on what a client can hold: connections per address (max.connections.per.ip and its
overrides), per listener (listener.name.<l>.max.connections), the connection creation rate,
idle connections (connections.max.idle.ms), a request frame that stalls half-way
(strom.request.read.timeout.ms, with its queued.max.request.bytes reservation given back), a
parked Fetch whose client hangs up (its socket closed at once, no CLOSE-WAIT), producer ids
no InitProducerId issued, and topic requests writing more than 10,000 metadata records."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import NewPartitions, NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder

import fetch_wire
import kafka_wire
import kwire
from helpers import admin, create_topic, error_code, metric, unique, wait_until
from test_dynamic_configs import BROKER, DELETE, INVALID_CONFIG, SET, alter_raw, wait_code
from test_producer_state import batch, describe_producers, init_producer_id

UNKNOWN_PRODUCER_ID = 59
INVALID_PRODUCER_ID_MAPPING = 49
TCP_CLOSE_WAIT = 0x08
TCP_ESTABLISHED = 0x01


def connect_from(broker, source: str, port: int | None = None, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((broker.host, port or broker.port), timeout=timeout,
                                    source_address=(source, 0))
    sock.settimeout(timeout)
    return sock


def served(sock: socket.socket, timeout: float = 2.0) -> bool:
    """Whether the broker answers ApiVersions on this connection (False if it closes it or
    stays silent)."""
    sock.settimeout(timeout)
    try:
        kwire.api_versions(sock)
        return True
    except (TimeoutError, socket.timeout, ConnectionError, OSError):
        return False


def hold(broker, source: str, count: int, port: int | None = None) -> list[socket.socket]:
    """`count` served connections from `source`; retried while the broker still counts
    connections that were just closed (the readiness check's, an earlier step's)."""
    deadline = time.monotonic() + 10
    while True:
        socks = [connect_from(broker, source, port) for _ in range(count)]
        if all(served(s) for s in socks):
            return socks
        for s in socks:
            s.close()
        assert time.monotonic() < deadline, f"could not hold {count} connections from {source}"
        time.sleep(0.2)


def close_all(socks) -> None:
    for s in socks:
        s.close()


def test_a_client_over_max_connections_per_ip_is_refused_while_others_are_served(broker_factory):
    broker = broker_factory({"max.connections.per.ip": "2",
                             "max.connections.per.ip.overrides": "127.0.0.2:4"})
    local = hold(broker, "127.0.0.1", 2)
    try:
        # The third from 127.0.0.1 is accepted and closed at once, with Kafka's log line.
        since = len(broker.log())
        over = connect_from(broker, "127.0.0.1")
        assert kafka_wire.closed_by_peer(over, 5.0)
        over.close()
        line = broker.wait_for_log(r"rejected connection: the address already has the configured maximum", since=since)
        assert "127.0.0.1" in line and "max=2" in line
        # Other addresses are served meanwhile; the override raises 127.0.0.2's limit to 4.
        other = hold(broker, "127.0.0.3", 2)
        raised = hold(broker, "127.0.0.2", 4)
        fifth = connect_from(broker, "127.0.0.2")
        assert kafka_wire.closed_by_peer(fifth, 5.0)
        fifth.close()
        assert "max=4" in broker.wait_for_log(r"rejected connection.*127\.0\.0\.2", since=since)
        # The held connections still work.
        assert all(served(s) for s in local + other + raised)
        close_all(other + raised)
        # Once one of 127.0.0.1's closes, a new one is served.
        local.pop().close()
        local += hold(broker, "127.0.0.1", 1)
    finally:
        close_all(local)


def test_per_ip_limits_change_without_a_restart(broker):
    # Kafka's bounds are checked.
    assert alter_raw(broker, BROKER, "", [("max.connections.per.ip", SET, "-1")]) == INVALID_CONFIG
    assert alter_raw(broker, BROKER, "", [("max.connections.per.ip.overrides", SET, "bad host:1")]) \
        == INVALID_CONFIG
    assert alter_raw(broker, BROKER, "", [("max.connections.per.ip", SET, "1")]) == 0
    held = hold(broker, "127.0.0.1", 1)
    over = connect_from(broker, "127.0.0.1")
    assert kafka_wire.closed_by_peer(over, 5.0)
    close_all(held + [over])
    # An override set later raises 127.0.0.1's limit to 3.
    assert wait_code(lambda: alter_raw(broker, BROKER, "", [("max.connections.per.ip.overrides", SET,
                                                                "127.0.0.1:3")])) == 0
    held = hold(broker, "127.0.0.1", 3)
    over = connect_from(broker, "127.0.0.1")
    assert kafka_wire.closed_by_peer(over, 5.0)
    close_all(held + [over])
    assert wait_code(lambda: alter_raw(broker, BROKER, "", [("max.connections.per.ip", DELETE, None),
                                                            ("max.connections.per.ip.overrides", DELETE, None)])) == 0
    close_all(hold(broker, "127.0.0.1", 5))


def test_listener_max_connections_holds_back_only_its_listener(broker_factory):
    broker = broker_factory({"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
                             "listener.name.external.max.connections": "1"}, listeners=["EXTERNAL"])
    external_port = int(broker.address("EXTERNAL").rsplit(":", 1)[1])
    first = hold(broker, "127.0.0.1", 1, port=external_port)
    # The listener accepts nothing more until a connection closes (delayed, not refused).
    waiting = connect_from(broker, "127.0.0.1", port=external_port)
    try:
        assert not served(waiting, timeout=1.0)
        plain = hold(broker, "127.0.0.1", 3)
        close_all(plain)
        first[0].close()
        # The ApiVersions `served` sent is answered once the listener takes the connection.
        waiting.settimeout(5)
        r = kwire.Reader(kwire.recv_frame(waiting))
        assert r.i32() == 1
        assert kwire.parse_api_versions_v0(r).error_code == 0
    finally:
        waiting.close()
        close_all(first)


def test_lowering_max_connections_closes_the_least_recently_active_connections(broker):
    """More connections open than a lowered max.connections: the least recently active ones
    are closed (Kafka's closeExcessConnections), the others stay served."""
    socks = hold(broker, "127.0.0.1", 6)  # each answered one ApiVersions, in order
    time.sleep(0.05)
    for i in (1, 3, 4):  # now 0, 2 and 5 are the least recently active, 0 and 2 the oldest
        assert served(socks[i])
        time.sleep(0.05)
    # Lowered to 5 on the newest connection (it becomes the most recently active): one of
    # six over. Then to 4: one more.
    assert alter_raw(broker, BROKER, "", [("max.connections", SET, "5")], sock=socks[5]) == 0
    assert kafka_wire.closed_by_peer(socks[0], timeout_s=5)
    assert served(socks[2])  # 2 is now more recently active than anything but 5
    assert alter_raw(broker, BROKER, "", [("max.connections", SET, "4")], sock=socks[5]) == 0
    assert kafka_wire.closed_by_peer(socks[1], timeout_s=5)
    assert [served(socks[i]) for i in (2, 3, 4, 5)] == [True] * 4
    broker.wait_for_log("closing the least recently active connection")
    assert alter_raw(broker, BROKER, "", [("max.connections", DELETE, None)], sock=socks[5]) == 0
    close_all(socks)


def test_connection_creation_rate_delays_accepts_and_refuses_none(broker_factory):
    # Kafka's rate over eleven 1 s samples counts a young rate over ten seconds: about ten
    # connections pass at once, each later one waits up to a window (1 s) before it is accepted.
    broker = broker_factory({"max.connection.creation.rate": "1"})
    took = []
    socks = []
    try:
        for _ in range(13):
            started = time.monotonic()
            s = kwire.connect(broker.host, broker.port, timeout=10)
            socks.append(s)
            kwire.api_versions(s)
            took.append(time.monotonic() - started)
        assert all(t < 0.5 for t in took[:5]), took
        assert all(0.7 < t < 2.5 for t in took[-2:]), took
    finally:
        close_all(socks)


def test_idle_connections_are_closed_after_connections_max_idle_ms(broker_factory):
    broker = broker_factory({"connections.max.idle.ms": "1000"})
    topic = unique("idle")
    create_topic(broker, topic, 1)
    silent = kwire.connect(broker.host, broker.port)
    used = kwire.connect(broker.host, broker.port)
    busy = kwire.connect(broker.host, broker.port)
    parked = fetch_wire.Conn(broker)
    try:
        kwire.api_versions(used)
        started = time.monotonic()
        # A long poll counts as idle too, as in Kafka: the wait it asked for is cut at the idle time.
        parked.send_fetch(12, [(topic, 0, 0)], max_wait_ms=2**31 - 1, min_bytes=1)
        # A connection with a request every 400 ms stays open throughout.
        while time.monotonic() - started < 2.5:
            kwire.api_versions(busy)
            time.sleep(0.4)
        for sock in (silent, used, parked.sock):
            assert kafka_wire.closed_by_peer(sock, 2.0)
        assert time.monotonic() - started < 5
        assert served(busy)
    finally:
        for s in (silent, used, busy):
            s.close()
        parked.close()


def queued_bytes(broker) -> float:
    return metric(broker.metrics(), "strom_queued_request_bytes")


def test_a_stalled_half_frame_is_dropped_after_the_deadline_and_its_memory_given_back(broker_factory):
    budget = 1 << 20
    broker = broker_factory({"queued.max.request.bytes": str(budget), "socket.request.max.bytes": str(budget),
                             "strom.request.read.timeout.ms": "1500"})
    since = len(broker.log())
    # A frame of the whole budget announced, 100 bytes of it sent, then nothing (104 bytes with
    # the size prefix, as the log counts them).
    stalled = kwire.connect(broker.host, broker.port)
    stalled.sendall(struct.pack(">i", budget - 4) + b"\x00" * 100)
    wait_until(lambda: queued_bytes(broker) == budget, timeout_s=5, what="the stalled frame's reservation")
    # Another client's request waits for the budget ...
    waiting = kwire.connect(broker.host, broker.port, timeout=10)
    waiting.sendall(kwire.request_frame(kwire.API_KEY_API_VERSIONS, 0, 5, b""))
    # ... a size prefix cut short and a frame trickled a byte at a time are held to the deadline too.
    half_prefix = kwire.connect(broker.host, broker.port)
    half_prefix.sendall(b"\x00\x00")
    trickle = kwire.connect(broker.host, broker.port)
    trickle.sendall(struct.pack(">i", 64))
    started = time.monotonic()
    try:
        trickle.settimeout(0.25)
        closed = False
        for _ in range(20):
            try:
                trickle.sendall(b"\x00")
                if trickle.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
        assert closed, "a frame trickled a byte at a time outlived the read deadline"
        assert kafka_wire.closed_by_peer(stalled, 5.0)
        assert kafka_wire.closed_by_peer(half_prefix, 5.0)
        assert time.monotonic() - started < 4.5
        # The budget is back: the waiting request is answered and nothing stays reserved.
        r = kwire.Reader(kwire.recv_frame(waiting))
        assert r.i32() == 5
        assert kwire.parse_api_versions_v0(r).error_code == 0
        wait_until(lambda: queued_bytes(broker) == 0, timeout_s=5, what="the budget given back")
        log = broker.log()[since:]
        assert "104 bytes of a request arrived and the rest not within strom.request.read.timeout.ms (1500 ms)" in log
        assert "2 bytes of a request arrived" in log
        assert log.count("strom.request.read.timeout.ms (1500 ms)") == 3
    finally:
        for s in (stalled, waiting, half_prefix, trickle):
            s.close()


def tcp_states(local_port: int, remote_port: int) -> list[int]:
    """TCP states of the sockets from local_port to remote_port, from /proc/net/tcp{,6}."""
    states = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], int(fields[3], 16)
            if int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                states.append(state)
    return states


def test_a_parked_fetchs_socket_is_closed_promptly_when_its_client_hangs_up(broker):
    topic = unique("parked")
    create_topic(broker, topic, 1)
    for pipelined in (False, True):
        conn = fetch_wire.Conn(broker)
        client_port = conn.sock.getsockname()[1]
        # max_wait_ms of 24 days on an empty partition: parked until the client goes.
        conn.send_fetch(12, [(topic, 0, 0)], max_wait_ms=2**31 - 1, min_bytes=1)
        if pipelined:
            conn.sock.sendall(kwire.request_frame(kwire.API_KEY_API_VERSIONS, 0, 99, b""))
        time.sleep(0.3)
        assert tcp_states(broker.port, client_port) == [TCP_ESTABLISHED]
        conn.close()
        wait_until(lambda: tcp_states(broker.port, client_port) == [], timeout_s=1.0, interval_s=0.05,
                   what=f"the broker's side of the parked fetch closed (pipelined={pipelined})")
    # The broker serves as before.
    fetched = fetch_wire.Conn(broker)
    try:
        with kwire.connect(broker.host, broker.port) as sock:
            assert kafka_wire.produce_v8(sock, {topic: {0: kafka_wire.batch_v2([(None, b"v")])}})[(topic, 0)].error_code == 0
        assert fetched.fetch(12, [(topic, 0, 0)], max_wait_ms=5000).parts[0].values() == [(0, b"v")]
    finally:
        fetched.close()


def transactional_batch(producer_id: int, epoch: int, values: list[bytes]) -> bytes:
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True, producer_id=producer_id,
                                  producer_epoch=epoch, base_sequence=0, batch_size=1 << 30)
    for i, value in enumerate(values):
        assert b.append(i, timestamp=int(time.time() * 1000), key=None, value=value, headers=[]) is not None
    return bytes(b.build())


def produce_transactional(sock, transactional_id: str, topic: str, records: bytes):
    """Produce v8 carrying a transactional id (the v3 layout's first field)."""
    body = kwire.enc_string(transactional_id) + kafka_wire.produce_v3_body({topic: {0: records}})[2:]

    def partition(r):
        error_code = r.i16()
        r.take(24)
        r.array(lambda rr: (rr.i32(), rr.string()))
        return error_code, r.string()
    return kafka_wire._produce(sock, 8, 11, body, partition)[(topic, 0)]


def test_producer_ids_no_init_producer_id_issued_are_refused(broker):
    topic = unique("pids")
    create_topic(broker, topic, 1)
    now = int(time.time() * 1000)
    with kwire.connect(broker.host, broker.port) as sock:
        issued, epoch = init_producer_id(sock)
        invented = [issued + 1_000_000, 2**40, 123_456_789]
        for pid in invented:
            refused = kafka_wire.produce_v8(sock, {topic: {0: batch(pid, 0, 0, [b"x"], now)}})[(topic, 0)]
            assert refused.error_code == UNKNOWN_PRODUCER_ID
            assert f"producer id {pid} was never issued" in refused.error_message
        code, message = produce_transactional(sock, "txn-invented", topic, transactional_batch(2**40, 0, [b"t"]))
        assert code == INVALID_PRODUCER_ID_MAPPING
        # The issued id is taken; nothing was written or tracked for the invented ones.
        ok = kafka_wire.produce_v8(sock, {topic: {0: batch(issued, epoch, 0, [b"a", b"b"], now)}})[(topic, 0)]
        assert (ok.error_code, ok.base_offset) == (0, 0)
        assert describe_producers(sock, topic, [0])[0] == (0, [(issued, epoch, 1, now, -1, -1)])


def test_invented_transactional_producer_ids_are_refused_without_kip_890_verification(broker_factory):
    broker = broker_factory({"transaction.partition.verification.enable": "false"})
    topic = unique("pids-txn")
    create_topic(broker, topic, 1)
    with kwire.connect(broker.host, broker.port) as sock:
        issued, _ = init_producer_id(sock)
        code, message = produce_transactional(sock, "txn-invented", topic,
                                              transactional_batch(issued + 5000, 0, [b"t"]))
        assert code == INVALID_PRODUCER_ID_MAPPING
        assert "no transactional id maps to it" in message
        assert describe_producers(sock, topic, [0])[0] == (0, [])


def test_topic_requests_writing_more_than_ten_thousand_records_are_refused(broker):
    """Kafka's MAX_RECORDS_PER_USER_OP: CreateTopics and CreatePartitions that would write
    more than 10,000 metadata records get POLICY_VIOLATION and create nothing (the fuzzer's
    finding: a CreatePartitions to 63,492 partitions was accepted and took over 20 s)."""
    adm = admin(broker)
    big = unique("big")
    futures = adm.create_topics([NewTopic(big, num_partitions=10_000, replication_factor=1)])
    with pytest.raises(KafkaException) as refused:
        futures[big].result(30)
    assert error_code(refused.value) == 44  # POLICY_VIOLATION
    assert "Unable to perform excessively large batch operation." in str(refused.value)
    small = unique("small")
    create_topic(broker, small, partitions=1)
    futures = adm.create_partitions([NewPartitions(small, 63_492)])
    with pytest.raises(KafkaException) as refused:
        futures[small].result(30)
    assert error_code(refused.value) == 44
    md = adm.list_topics(timeout=10)
    assert big not in md.topics
    assert len(md.topics[small].partitions) == 1
