"""Raw wire probes: the advertised APIs and request pipelining (malformed input: test_robustness.py)."""

from __future__ import annotations

import struct

import kwire
from helpers import create_topic

# APIs the integration suite's clients rely on (Kafka api keys).
REQUIRED_APIS = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 18: "ApiVersions", 19: "CreateTopics",
                 20: "DeleteTopics", 21: "DeleteRecords", 32: "DescribeConfigs", 33: "AlterConfigs",
                 35: "DescribeLogDirs", 37: "CreatePartitions", 44: "IncrementalAlterConfigs", 60: "DescribeCluster"}


def test_api_versions_lists_the_required_apis(broker):
    with kwire.connect(broker.host, broker.port) as sock:
        av = kwire.api_versions(sock)
    assert av.error_code == 0
    missing = {k: n for k, n in REQUIRED_APIS.items() if k not in av.versions}
    assert missing == {}, f"ApiVersions lacks {missing}"
    assert all(0 <= lo <= hi for lo, hi in av.versions.values()), av.versions
    # Flexible ApiVersions (v3, KIP-511) is what current clients start with.
    assert av.versions[18][1] >= 3


def test_pipelined_requests_answered_in_order(broker):
    with kwire.connect(broker.host, broker.port) as sock:
        frames = b"".join(kwire.request_frame(18, 0, cid, b"") for cid in range(100, 150))
        sock.sendall(frames)
        for cid in range(100, 150):
            r = kwire.Reader(kwire.recv_frame(sock))
            assert r.i32() == cid
            assert kwire.parse_api_versions_v0(r).error_code == 0


# ApiVersions, exactly: Apache Kafka 4.1's ranges (KIP-896 removed the oldest versions in 4.0)
# for the APIs strom serves. Produce v0-2 are listed but refused, as Kafka 4.x does (KAFKA-18659).
ADVERTISED = {
    0: (0, 13),   # Produce
    1: (4, 18),   # Fetch
    2: (1, 10),   # ListOffsets
    3: (0, 13),   # Metadata
    8: (2, 9),    # OffsetCommit
    9: (1, 9),    # OffsetFetch
    10: (0, 6),   # FindCoordinator
    11: (0, 9),   # JoinGroup
    12: (0, 4),   # Heartbeat
    13: (0, 5),   # LeaveGroup
    14: (0, 5),   # SyncGroup
    15: (0, 6),   # DescribeGroups
    16: (0, 5),   # ListGroups
    17: (0, 1),   # SaslHandshake
    18: (0, 4),   # ApiVersions
    19: (2, 7),   # CreateTopics
    20: (1, 6),   # DeleteTopics
    21: (0, 2),   # DeleteRecords
    22: (0, 5),   # InitProducerId
    23: (2, 4),   # OffsetForLeaderEpoch
    24: (0, 5),   # AddPartitionsToTxn
    25: (0, 4),   # AddOffsetsToTxn
    26: (0, 5),   # EndTxn
    27: (1, 1),   # WriteTxnMarkers
    28: (0, 5),   # TxnOffsetCommit
    29: (1, 3),   # DescribeAcls
    30: (1, 3),   # CreateAcls
    31: (1, 3),   # DeleteAcls
    32: (1, 4),   # DescribeConfigs
    33: (0, 2),   # AlterConfigs
    35: (1, 4),   # DescribeLogDirs
    36: (0, 2),   # SaslAuthenticate
    37: (0, 3),   # CreatePartitions
    42: (0, 2),   # DeleteGroups
    43: (0, 2),   # ElectLeaders
    44: (0, 1),   # IncrementalAlterConfigs
    45: (0, 0),   # AlterPartitionReassignments
    46: (0, 0),   # ListPartitionReassignments
    47: (0, 0),   # OffsetDelete
    48: (0, 1),   # DescribeClientQuotas
    49: (0, 1),   # AlterClientQuotas
    50: (0, 0),   # DescribeUserScramCredentials
    51: (0, 0),   # AlterUserScramCredentials
    55: (0, 2),   # DescribeQuorum
    60: (0, 2),   # DescribeCluster
    61: (0, 0),   # DescribeProducers
    64: (0, 0),   # UnregisterBroker
    65: (0, 0),   # DescribeTransactions
    66: (0, 2),   # ListTransactions
    68: (0, 1),   # ConsumerGroupHeartbeat
    69: (0, 1),   # ConsumerGroupDescribe
    74: (0, 1),   # ListConfigResources
}


def test_api_versions_advertises_exactly_the_served_ranges(broker):
    with kwire.connect(broker.host, broker.port) as sock:
        av = kwire.api_versions(sock)
        # An unsupported ApiVersions version gets UNSUPPORTED_VERSION and the same table (KIP-511).
        unsupported = kwire.api_versions(sock, correlation_id=2, version=99)
    assert (av.error_code, av.versions) == (0, ADVERTISED)
    assert (unsupported.error_code, unsupported.versions) == (35, ADVERTISED)


def metadata_v0_topics(sock, topics: list[str]) -> dict[str, int]:
    """Metadata v0 (no null list); returns {topic: partition count}."""
    body = struct.pack(">i", len(topics)) + b"".join(kwire.enc_string(t) for t in topics)
    r = kwire.roundtrip(sock, kwire.API_KEY_METADATA, 0, 3, body)
    r.array(lambda rr: (rr.i32(), rr.string(), rr.i32()))  # brokers
    partition = lambda rr: (rr.i16(), rr.i32(), rr.i32(), rr.array(lambda x: x.i32()), rr.array(lambda x: x.i32()))
    out = {}
    for error_code, name, partitions in r.array(lambda rr: (rr.i16(), rr.string(), rr.array(partition))):
        assert error_code == 0, (name, error_code)
        out[name] = len(partitions)
    assert r.done()
    return out


def test_metadata_v0_empty_topic_list_means_every_topic(broker):
    create_topic(broker, "first", 2)
    create_topic(broker, "second", 1)
    with kwire.connect(broker.host, broker.port) as sock:
        assert metadata_v0_topics(sock, []) == {"first": 2, "second": 1}
        assert metadata_v0_topics(sock, ["second"]) == {"second": 1}
        # From v1 on an empty list asks for no topic (null asks for all).
        assert kwire.metadata_v4(sock, [], allow_auto_create=False).topics == []


def describe_cluster_v1_error(sock, endpoint_type: int) -> tuple[int, str | None]:
    """DescribeCluster v1 (flexible: request header v2, response header v1); returns the error."""
    payload = (struct.pack(">hhi", 60, 1, 4) + kwire.enc_string("strom-tests") + b"\x00"
               + struct.pack(">?b", False, endpoint_type) + b"\x00")
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    r = kwire.Reader(kwire.recv_frame(sock))
    assert r.i32() == 4 and r.take(1) == b"\x00"  # correlation id, no tagged fields
    r.i32()  # throttle_time_ms
    error_code = r.i16()
    n = r.take(1)[0]  # compact nullable string: length + 1 (short messages fit one byte)
    assert n < 0x80
    return error_code, (r.take(n - 1).decode() if n else None)


def test_describe_cluster_names_this_a_broker_endpoint(broker):
    with kwire.connect(broker.host, broker.port) as sock:
        assert describe_cluster_v1_error(sock, 1) == (0, None)
        assert describe_cluster_v1_error(sock, 2) == (
            114, "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER")
        assert describe_cluster_v1_error(sock, 7) == (115, "Unsupported endpoint type 7")
