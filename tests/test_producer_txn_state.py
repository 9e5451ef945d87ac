"""Producer state as Kafka keeps it: `<offset>.snapshot` files written at every segment roll and at
a clean shutdown (strom keeps the newest three, `strom_log::producer_snapshot`), DescribeProducers (key 61), and expiry of idle producers (producer.id.expiration.ms)
except those with an open transaction."""

from __future__ import annotations

import pytest
from kafka.protocol.admin.transactions import DescribeProducersRequest, DescribeProducersResponse

import fetch_wire
import kwire
from helpers import create_topic, produce_all, producer, unique, wait_until
from test_idempotence_restart import batch, init_producer_id, produce
from txn_helpers import (READ_COMMITTED, TXN_CALL_TIMEOUT_S, Rec, high_watermarks, init, produce_in_txn, read_all,
                         txn_producer)

pytestmark = pytest.mark.timeout(120)


def describe_producers(broker, topic: str, partition: int) -> list[tuple[int, int, int, int]]:
    """DescribeProducers v0 for one partition: sorted (producer id, epoch, last sequence, current
    transaction start offset) of its active producers."""
    conn = fetch_wire.Conn(broker)
    try:
        request = DescribeProducersRequest(topics=[DescribeProducersRequest.TopicRequest(
            name=topic, partition_indexes=[partition])])
        response = conn.receive(DescribeProducersResponse, 0, conn.send(request, 0))
    finally:
        conn.close()
    [t] = response.topics
    [p] = t.partitions
    assert (t.name, p.partition_index, p.error_code) == (topic, partition, 0), p
    return sorted((s.producer_id, s.producer_epoch, s.last_sequence, s.current_txn_start_offset)
                  for s in p.active_producers)


def test_idle_producers_expire_but_not_while_their_transaction_is_open(broker_factory):
    broker = broker_factory({"producer.id.expiration.ms": "2000",
                             "producer.id.expiration.check.interval.ms": "200"})
    topic = unique("pstate-expiry")
    create_topic(broker, topic, 1)
    txn = init(txn_producer(broker, unique("long-txn")))
    txn.begin_transaction()
    produce_in_txn(txn, topic, [(b"t%d" % i, b"txn-%d" % i) for i in range(3)], partition=0)  # offsets 0..2
    [(txn_pid, txn_epoch, txn_last_seq, txn_start)] = describe_producers(broker, topic, 0)
    assert (txn_last_seq, txn_start) == (2, 0)

    with kwire.connect(broker.host, broker.port) as sock:
        pid, epoch = init_producer_id(sock)
        b0 = batch(pid, epoch, 0, [b"a", b"b"])
        b1 = batch(pid, epoch, 2, [b"c", b"d"])
        assert produce(sock, topic, b0) == (0, 3)
        assert produce(sock, topic, b1) == (0, 5)
        assert describe_producers(broker, topic, 0) == sorted([(txn_pid, txn_epoch, 2, 0), (pid, epoch, 3, -1)])
        assert produce(sock, topic, b1) == (0, 5)  # a retry while the producer is known: deduplicated

        # The idle idempotent producer expires; the transactional one, idle longer, stays while its
        # transaction is open.
        wait_until(lambda: describe_producers(broker, topic, 0) == [(txn_pid, txn_epoch, 2, 0)], timeout_s=30,
                   what="the idle idempotent producer to expire")
        # Forgotten: the same batch is new again (Kafka accepts any sequence from an unknown producer).
        assert produce(sock, topic, b1) == (0, 7)
        assert describe_producers(broker, topic, 0) == sorted([(txn_pid, txn_epoch, 2, 0), (pid, epoch, 3, -1)])

    txn.commit_transaction(TXN_CALL_TIMEOUT_S)
    assert high_watermarks(broker, topic, 1) == {0: 10}  # the commit marker at 9
    assert read_all(broker, topic, 1, READ_COMMITTED)[0] == [
        Rec(0, b"t0", b"txn-0"), Rec(1, b"t1", b"txn-1"), Rec(2, b"t2", b"txn-2"),
        Rec(3, None, b"a"), Rec(4, None, b"b"), Rec(5, None, b"c"), Rec(6, None, b"d"),
        Rec(7, None, b"c"), Rec(8, None, b"d")]


def test_snapshots_at_segment_rolls_and_clean_shutdown(broker):
    topic = unique("pstate-snapshots")
    create_topic(broker, topic, 1, config={"segment.bytes": "1048576"})
    p = producer(broker, **{"enable.idempotence": True, "linger.ms": 20})
    produce_all(p, topic, [{"key": b"k%d" % i, "value": b"%05d" % i + b"." * 1000, "partition": 0}
                           for i in range(3000)])
    assert broker.stop() == 0
    part_dir = broker.data_dir / f"{topic}-0"
    bases = sorted(int(f.stem) for f in part_dir.glob("*.log"))
    assert len(bases) >= 3, bases
    snapshots = sorted(int(f.stem) for f in part_dir.glob("*.snapshot"))
    # One at each rolled-to segment's base offset and one at the log end from the clean shutdown,
    # of which the newest three are kept.
    assert snapshots == sorted(set(bases[1:]) | {3000})[-3:]

    # The broker restarts from them and appends go on at the log end.
    broker.start()
    more = produce_all(p, topic, [{"key": b"after", "value": b"after", "partition": 0}])
    assert more[0].offset == 3000
