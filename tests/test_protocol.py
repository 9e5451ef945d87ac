"""Raw wire probes: the advertised APIs and request pipelining (malformed input: test_robustness.py)."""

from __future__ import annotations

import kwire

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
