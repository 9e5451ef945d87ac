"""Compressed batches: every codec from both producers, and topic-level compression.type."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition

from helpers import (admin, consume_to_end, consumer, create_topic, kp_admin, kp_consumer, kp_producer, kp_read,
                     produce_all, producer, read_partition)

CODECS = ["gzip", "snappy", "lz4", "zstd"]


def records(n: int, tag: str):
    # Compressible values, distinct per record, with keys and headers.
    return [{"key": b"%s-key-%d" % (tag.encode(), i % 13),
             "value": (b"%s-value-%06d|" % (tag.encode(), i)) * 40,
             "headers": [("codec", tag.encode()), ("i", b"%d" % i)]}
            for i in range(n)]


def partition_size(broker, topic: str, partition: int) -> int:
    ka = kp_admin(broker)
    try:
        out = ka.describe_log_dirs({topic: [partition]})
    finally:
        ka.close()
    sizes = [p["partition_size"] for d in out[0]["log_dirs"] for t in d["topics"] if t["name"] == topic
             for p in t["partitions"] if p["partition_index"] == partition]
    assert len(sizes) == 1, out
    return sizes[0]


@pytest.mark.parametrize("codec", CODECS)
def test_librdkafka_compressed_round_trip(broker, codec):
    topic = f"c-{codec}"
    create_topic(broker, topic, 2)
    recs = records(2000, codec)
    delivered = produce_all(producer(broker, **{"compression.type": codec, "linger.ms": 50}), topic, recs)
    ends = {(topic, p): sum(1 for d in delivered if d.partition == p) for p in range(2)}
    c = consumer(broker)
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, p, 0) for p in range(2)], ends)
    finally:
        c.close()
    got = sorted((m.partition(), m.offset(), m.key(), m.value(), m.headers()) for m in msgs)
    want = sorted((d.partition, d.offset, r["key"], r["value"], r["headers"]) for d, r in zip(delivered, recs))
    assert got == want
    # Whole batches were stored compressed: far smaller than the raw values.
    raw = sum(len(r["value"]) for r in recs)
    stored = sum(partition_size(broker, topic, p) for p in range(2))
    assert stored < raw // 4, f"{codec}: {stored} bytes stored for {raw} raw bytes"

    # kafka-python decodes the same compressed batches.
    from kafka import TopicPartition as KTP
    kc = kp_consumer(broker)
    try:
        tps = [KTP(topic, p) for p in range(2)]
        kc.assign(tps)
        kc.seek_to_beginning()
        kp_recs = kp_read(kc, {KTP(topic, p): ends[(topic, p)] for p in range(2)})
    finally:
        kc.close()
    assert sorted((r.partition, r.offset, r.key, r.value, list(r.headers)) for r in kp_recs) == want


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_compressed_round_trip(broker, codec):
    topic = f"kc-{codec}"
    create_topic(broker, topic, 1)
    kp = kp_producer(broker, compression_type=codec, linger_ms=50, batch_size=256 * 1024)
    recs = records(1000, "kp" + codec)
    futs = [kp.send(topic, key=r["key"], value=r["value"], headers=r["headers"], partition=0) for r in recs]
    kp.flush()
    offsets = [f.get(timeout=30).offset for f in futs]
    kp.close()
    assert offsets == list(range(1000))
    msgs = read_partition(broker, topic, 0, 0, 1000)
    assert [(m.key(), m.value(), m.headers()) for m in msgs] == [(r["key"], r["value"], r["headers"]) for r in recs]


@pytest.mark.parametrize("topic_codec,producer_codec", [("zstd", "gzip"), ("gzip", "none"), ("lz4", "snappy"),
                                                        ("snappy", "zstd"), ("uncompressed", "gzip")])
def test_topic_compression_type_recompresses(broker, topic_codec, producer_codec):
    topic = f"t-{topic_codec}-{producer_codec}"
    create_topic(broker, topic, 1, config={"compression.type": topic_codec})
    recs = records(1000, "tc")
    produce_all(producer(broker, **{"compression.type": producer_codec, "linger.ms": 50}), topic,
                [dict(r, partition=0) for r in recs])
    msgs = read_partition(broker, topic, 0, 0, 1000)
    assert [(m.offset(), m.key(), m.value(), m.headers()) for m in msgs] == \
        [(i, r["key"], r["value"], r["headers"]) for i, r in enumerate(recs)]
    raw = sum(len(r["value"]) for r in recs)
    stored = partition_size(broker, topic, 0)
    if topic_codec == "uncompressed":
        assert stored > raw, f"topic compression.type=uncompressed but only {stored} bytes stored for {raw} raw"
    else:
        assert stored < raw // 4, f"topic compression.type={topic_codec} but {stored} bytes stored for {raw} raw"


def test_topic_compression_type_change_applies_to_new_batches(broker):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    topic = "switch"
    create_topic(broker, topic, 1, config={"compression.type": "uncompressed"})
    p = producer(broker, **{"compression.type": "gzip", "linger.ms": 50})
    first = records(500, "a")
    produce_all(p, topic, [dict(r, partition=0) for r in first])
    size_plain = partition_size(broker, topic, 0)
    adm = admin(broker)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("compression.type", "zstd", incremental_operation=AlterConfigOpType.SET)])
    adm.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)
    second = records(500, "b")
    produce_all(p, topic, [dict(r, partition=0) for r in second])
    size_after = partition_size(broker, topic, 0)
    raw_second = sum(len(r["value"]) for r in second)
    assert size_plain > sum(len(r["value"]) for r in first)
    assert size_after - size_plain < raw_second // 4
    msgs = read_partition(broker, topic, 0, 0, 1000)
    assert [(m.key(), m.value(), m.headers()) for m in msgs] == \
        [(r["key"], r["value"], r["headers"]) for r in first + second]
