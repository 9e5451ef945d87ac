"""Raw wire probes: ApiVersions, version negotiation and malformed input the broker must survive."""

from __future__ import annotations

import socket
import struct

import pytest

import kwire

UNSUPPORTED_VERSION = 35

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


def test_unsupported_api_versions_version_gets_v0_error_response(broker):
    with kwire.connect(broker.host, broker.port) as sock:
        av = kwire.api_versions(sock, version=127)
        assert av.error_code == UNSUPPORTED_VERSION
        assert 18 in av.versions and av.versions[18][0] == 0 and av.versions[18][1] >= 3
        # The connection stays usable for a supported version.
        assert kwire.api_versions(sock, correlation_id=9).error_code == 0


def expect_closed(sock: socket.socket) -> None:
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return
    assert data == b"", f"expected the broker to close the connection, got {data!r}"


def probe_bad_input(broker, payload: bytes) -> None:
    mark = len(broker.log())
    with kwire.connect(broker.host, broker.port, timeout=10) as sock:
        sock.sendall(payload)
        expect_closed(sock)
    broker.wait_for_log(r"closing connection", since=mark)
    # The broker is still serving.
    with kwire.connect(broker.host, broker.port) as sock:
        assert kwire.api_versions(sock).error_code == 0


@pytest.mark.parametrize("payload", [
    pytest.param(struct.pack(">i", 0x7FFFFFFF) + b"\0" * 16, id="size-2GiB"),
    pytest.param(struct.pack(">i", 200 * 1024 * 1024) + b"\0" * 16, id="size-over-socket.request.max.bytes"),
    pytest.param(struct.pack(">i", -5) + b"\0" * 16, id="negative-size"),
    pytest.param(struct.pack(">i", 3) + b"\0\x12\0", id="truncated-header"),
    pytest.param(kwire.request_frame(9999, 0, 1, b""), id="unknown-api-key"),
    pytest.param(kwire.request_frame(3, 4, 1, b"\x00\x00\x00\x05\x00"), id="metadata-body-too-short"),
])
def test_malformed_input_closes_connection_and_broker_survives(broker, payload):
    probe_bad_input(broker, payload)


def test_client_vanishing_mid_frame_is_harmless(broker):
    for _ in range(20):
        with kwire.connect(broker.host, broker.port) as sock:
            sock.sendall(struct.pack(">i", 100) + b"\0" * 10)
    with kwire.connect(broker.host, broker.port) as sock:
        assert kwire.api_versions(sock).error_code == 0


def test_pipelined_requests_answered_in_order(broker):
    with kwire.connect(broker.host, broker.port) as sock:
        frames = b"".join(kwire.request_frame(18, 0, cid, b"") for cid in range(100, 150))
        sock.sendall(frames)
        for cid in range(100, 150):
            r = kwire.Reader(kwire.recv_frame(sock))
            assert r.i32() == cid
            assert kwire.parse_api_versions_v0(r).error_code == 0
