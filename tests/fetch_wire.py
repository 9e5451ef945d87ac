"""Fetch requests built by hand, for the fetch session and fetch memory tests.

The codec is kafka-python's, generated from Kafka's JSON message schemas, so any Fetch version
(v12 by topic name, v13+ by topic id, sessions, forgotten topics) can be sent exactly as a test
wants it. Responses come back decoded, with a flat view of their partitions.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from kafka.protocol.consumer import FetchRequest, FetchResponse
from kafka.protocol.metadata import MetadataRequest, MetadataResponse
from kafka.record import MemoryRecords

import kwire

NONE = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71
UNKNOWN_TOPIC_ID = 100
FETCH_SESSION_TOPIC_ID_ERROR = 106

_FetchTopic = FetchRequest.FetchTopic
_FetchPartition = _FetchTopic.FetchPartition
_ForgottenTopic = FetchRequest.ForgottenTopic


@dataclass
class Part:
    """One partition of a Fetch response; `topic` is the name (v12) or the topic id (v13+)."""
    topic: object
    partition: int
    error_code: int
    high_watermark: int
    log_start_offset: int
    records: bytes

    def batches(self) -> list[tuple[int, int, int]]:
        """(base offset, last offset, size in bytes) of each whole batch in the records."""
        out = []
        mr = MemoryRecords(self.records)
        while mr.has_next():
            batch = mr.next_batch()
            if batch is None:
                break
            out.append((batch.base_offset, batch.last_offset, batch.size_in_bytes))
        return out

    def values(self) -> list[tuple[int, bytes]]:
        """(offset, value) of each record."""
        out = []
        mr = MemoryRecords(self.records)
        while mr.has_next():
            batch = mr.next_batch()
            if batch is None:
                break
            out.extend((r.offset, r.value) for r in batch)
        return out


@dataclass
class Fetched:
    error_code: int
    session_id: int
    parts: list[Part]

    def by_key(self) -> dict[tuple[object, int], Part]:
        return {(p.topic, p.partition): p for p in self.parts}


class Conn:
    """One connection; requests get rising correlation ids."""

    def __init__(self, broker, timeout_s: float = 30.0):
        host, port = broker.bootstrap.rsplit(":", 1)
        self.sock = kwire.connect(host, int(port), timeout=timeout_s)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, request, version: int) -> int:
        self.correlation_id += 1
        request.with_header(correlation_id=self.correlation_id, client_id="strom-tests")
        self.sock.sendall(bytes(request.encode(version=version, header=True, framed=True)))
        return self.correlation_id

    def receive(self, response_class, version: int, correlation_id: int):
        frame = kwire.recv_frame(self.sock)
        response = response_class.decode(frame, version=version, header=True)
        assert response.header.correlation_id == correlation_id
        return response

    def topic_ids(self, topics: list[str]) -> dict[str, object]:
        request = MetadataRequest(topics=[MetadataRequest.MetadataRequestTopic(name=t) for t in topics],
                                  allow_auto_topic_creation=False)
        cid = self.send(request, 12)
        response = self.receive(MetadataResponse, 12, cid)
        return {t.name: t.topic_id for t in response.topics}

    def send_fetch(self, version: int, partitions: list[tuple[object, int, int]], *, session_id: int = 0,
                   epoch: int = -1, forgotten: list[tuple[object, int]] = (), max_bytes: int = 50 << 20,
                   partition_max_bytes: int = 1 << 20, min_bytes: int = 1, max_wait_ms: int = 0,
                   replica_id: int = -1) -> int:
        """Sends a Fetch of (topic, partition, fetch offset), topic a name before v13 and an id from v13."""
        req = FetchRequest(
            replica_id=replica_id, max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=max_bytes,
            isolation_level=0, session_id=session_id, session_epoch=epoch,
            topics=_topics(version, partitions, partition_max_bytes),
            forgotten_topics_data=_forgotten(version, forgotten), rack_id="")
        if version >= 15:
            req.replica_state = FetchRequest.ReplicaState(replica_id=replica_id, replica_epoch=-1)
        return self.send(req, version)

    def receive_fetch(self, version: int, correlation_id: int) -> Fetched:
        response = self.receive(FetchResponse, version, correlation_id)
        parts = []
        for t in response.responses:
            topic = t.topic_id if version >= 13 else t.topic
            for p in t.partitions:
                parts.append(Part(topic, p.partition_index, p.error_code, p.high_watermark, p.log_start_offset,
                                  bytes(p.records or b"")))
        return Fetched(response.error_code, response.session_id, parts)

    def fetch(self, version: int, partitions, **kw) -> Fetched:
        return self.receive_fetch(version, self.send_fetch(version, partitions, **kw))


def _topics(version: int, partitions, partition_max_bytes: int):
    topics: list = []
    for topic, partition, offset in partitions:
        fp = _FetchPartition(partition=partition, current_leader_epoch=-1, fetch_offset=offset,
                             last_fetched_epoch=-1, log_start_offset=-1, partition_max_bytes=partition_max_bytes)
        key = {"topic_id": topic} if version >= 13 else {"topic": topic}
        if topics and topics[-1][0] == topic:
            topics[-1][1].append(fp)
        else:
            topics.append((topic, [fp]))
    out = []
    for topic, fps in topics:
        out.append(_FetchTopic(partitions=fps, **({"topic_id": topic} if version >= 13 else {"topic": topic})))
    return out


def _forgotten(version: int, forgotten):
    grouped: dict = {}
    for topic, partition in forgotten:
        grouped.setdefault(topic, []).append(partition)
    return [_ForgottenTopic(partitions=ps, **({"topic_id": t} if version >= 13 else {"topic": t}))
            for t, ps in grouped.items()]
