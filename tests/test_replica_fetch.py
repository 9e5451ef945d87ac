"""The leader's side of replication on one node: fetches that name a replica id are a
follower's (Kafka's Partition.fetchRecords), and acks=all follows the effective
min.insync.replicas (capped at the replication factor, as Kafka's effectiveMinIsr).

A replica id that is not one of the partition's replicas is refused as Kafka refuses it:
UNKNOWN_LEADER_EPOCH when the request carries the leader epoch (a replica a reassignment is
adding retries), NOT_LEADER_OR_FOLLOWER when it does not.
"""

from __future__ import annotations

from kafka.protocol.consumer import FetchRequest, FetchResponse

import fetch_wire as fw
from helpers import create_topic, produce_all, producer, unique

NOT_LEADER_OR_FOLLOWER = 6
UNKNOWN_LEADER_EPOCH = 75


def fetch_as(conn: fw.Conn, version: int, topic, replica_id: int, current_leader_epoch: int,
             fetch_offset: int = 0) -> tuple[int, int, bytes]:
    """(error code, high watermark, records) of partition 0 fetched as `replica_id`."""
    part = FetchRequest.FetchTopic.FetchPartition(
        partition=0, current_leader_epoch=current_leader_epoch, fetch_offset=fetch_offset,
        last_fetched_epoch=-1, log_start_offset=-1, partition_max_bytes=1 << 20)
    key = {"topic_id": topic} if version >= 13 else {"topic": topic}
    req = FetchRequest(replica_id=replica_id, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20,
                       isolation_level=0, session_id=0, session_epoch=-1,
                       topics=[FetchRequest.FetchTopic(partitions=[part], **key)],
                       forgotten_topics_data=[], rack_id="")
    if version >= 15:
        req.replica_state = FetchRequest.ReplicaState(replica_id=replica_id, replica_epoch=-1)
    response = conn.receive(FetchResponse, version, conn.send(req, version))
    [t] = response.responses
    [p] = t.partitions
    return p.error_code, p.high_watermark, bytes(p.records or b"")


def test_a_fetch_from_a_replica_outside_the_assignment_is_refused(broker):
    topic = unique("replica-fetch")
    create_topic(broker, topic)
    produce_all(producer(broker), topic, [{"value": b"v%d" % i} for i in range(3)])
    conn = fw.Conn(broker)
    try:
        topic_id = conn.topic_ids([topic])[topic]
        for version, key in ((12, topic), (15, topic_id), (17, topic_id)):
            assert fetch_as(conn, version, key, 2, 0)[0] == UNKNOWN_LEADER_EPOCH, version
            assert fetch_as(conn, version, key, 2, -1)[0] == NOT_LEADER_OR_FOLLOWER, version
            # The epoch is checked before the replica: a newer one is unknown to anyone.
            assert fetch_as(conn, version, key, -1, 1)[0] == UNKNOWN_LEADER_EPOCH, version
        # A consumer reads what is replicated, in the current epoch.
        error, high_watermark, records = fetch_as(conn, 12, topic, -1, 0)
        assert (error, high_watermark) == (fw.NONE, 3)
        assert records
    finally:
        conn.close()


def test_acks_all_on_one_replica_uses_the_effective_min_isr(broker):
    """min.insync.replicas above the replication factor counts as the replication factor."""
    topic = unique("acks-all-min-isr")
    create_topic(broker, topic, config={"min.insync.replicas": "2"})
    delivered = produce_all(producer(broker, **{"enable.idempotence": True}), topic,
                            [{"key": b"k%d" % i, "value": b"v%d" % i} for i in range(5)])
    assert [d.offset for d in delivered] == [0, 1, 2, 3, 4]
