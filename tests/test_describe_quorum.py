"""DescribeQuorum (key 55) on a one-node cluster: kafka-python's describe_metadata_quorum and raw
requests of every version (kafka-python's protocol classes) against the real broker.

A fresh node's metadata log holds three entries: offset 0 the quorum's membership, 1 the leader's
first entry of term 1, 2 the broker's registration; so its high watermark (exclusive, as Kafka's)
is 3, and each metadata change adds one."""

from __future__ import annotations

import kwire
from kafka.admin import NewTopic
from kafka.protocol.admin.cluster import DescribeQuorumRequest, DescribeQuorumResponse

from helpers import kp_admin

NOT_LEADER_OR_FOLLOWER = 6
UNKNOWN_TOPIC_OR_PARTITION = 3


def describe_quorum_raw(host: str, port: int, version: int, topic: str = "__cluster_metadata",
                        partitions: tuple[int, ...] = (0,)) -> dict:
    _Topic = DescribeQuorumRequest.TopicData
    request = DescribeQuorumRequest(topics=[
        _Topic(topic_name=topic, partitions=[_Topic.PartitionData(partition_index=p) for p in partitions])])
    request.with_header(correlation_id=11, client_id="strom-tests")
    with kwire.connect(host, port) as sock:
        sock.sendall(request.encode(version=version, header=True, framed=True))
        return DescribeQuorumResponse.decode(kwire.recv_frame(sock), version=version, header=True).to_dict()


def quorum_partition(described: dict) -> dict:
    assert [t["topic_name"] for t in described["topics"]] == ["__cluster_metadata"]
    [partition] = described["topics"][0]["partitions"]
    return partition


def voters(partition: dict) -> list[tuple[int, int]]:
    return [(v["replica_id"], v["log_end_offset"]) for v in partition["current_voters"]]


def test_describe_metadata_quorum_reports_the_one_voter_and_its_offsets(broker):
    adm = kp_admin(broker)
    try:
        described = adm.describe_metadata_quorum()
        p = quorum_partition(described)
        assert p["error"] is None
        assert (p["partition_index"], p["leader_id"], p["leader_epoch"], p["high_watermark"]) == (0, 1, 1, 3)
        assert voters(p) == [(1, 3)]
        assert p["observers"] == []
        # The leader reports itself as fetching and caught up at its own "now".
        [me] = p["current_voters"]
        assert me["last_fetch_timestamp"] == me["last_caught_up_timestamp"] > 0
        # v2 (KIP-853): where the voter is reached; with no voters configured, its broker listener.
        assert described["nodes"] == [
            {"node_id": 1, "listeners": [{"name": "PLAINTEXT", "host": "127.0.0.1", "port": broker.port}]}]

        # One metadata change is one entry: the high watermark and the log end move by one.
        adm.create_topics([NewTopic("dq-topic", 1, 1)])
        p = quorum_partition(adm.describe_metadata_quorum())
        assert (p["leader_epoch"], p["high_watermark"], voters(p)) == (1, 4, [(1, 4)])
    finally:
        adm.close()

    # A restarted one-voter quorum leads again in its stored term (openraft keeps the committed
    # vote) and writes nothing: the same epoch, high watermark and log end.
    broker.restart()
    adm = kp_admin(broker)
    try:
        p = quorum_partition(adm.describe_metadata_quorum())
        assert (p["leader_id"], p["leader_epoch"], p["high_watermark"], voters(p)) == (1, 1, 4, [(1, 4)])
    finally:
        adm.close()


def test_every_version_answers_and_only_the_metadata_partition_is_known(broker):
    for version in (0, 1, 2):
        described = describe_quorum_raw(broker.host, broker.port, version)
        assert described["error_code"] == 0
        p = quorum_partition(described)
        assert (p["error_code"], p["leader_id"], p["leader_epoch"], p["high_watermark"]) == (0, 1, 1, 3)
        assert voters(p) == [(1, 3)]
        if version >= 1:
            assert p["current_voters"][0]["last_fetch_timestamp"] > 0
        assert ("nodes" in described) == (version >= 2)

    # Kafka answers anything but exactly __cluster_metadata-0 per requested partition.
    for topic, partitions in (("__cluster_metadata", (1,)), ("orders", (0,)), ("__cluster_metadata", (0, 1))):
        described = describe_quorum_raw(broker.host, broker.port, 2, topic, partitions)
        assert described["error_code"] == 0
        assert [t["topic_name"] for t in described["topics"]] == [topic]
        assert [(p["partition_index"], p["error_code"]) for p in described["topics"][0]["partitions"]] == [
            (i, UNKNOWN_TOPIC_OR_PARTITION) for i in partitions]
