"""A clean stop (SIGTERM) and a start on the same data dir keep every topic, config, record and offset."""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, ResourceType

from helpers import (admin, consume_to_end, consumer, create_topic, produce_all, producer, wait_for_topic,
                     wait_until, watermarks)


def snapshot(broker, topics: dict[str, int]) -> dict:
    """Everything observable about the given topics: partitions, configs, watermarks, records."""
    adm = admin(broker)
    out = {"cluster_id": adm.describe_cluster(request_timeout=15).result(timeout=30).cluster_id}
    md = adm.list_topics(timeout=10)
    out["topics"] = {t: sorted(md.topics[t].partitions) for t in md.topics if not t.startswith("__")}
    for topic, n in topics.items():
        res = ConfigResource(ResourceType.TOPIC, topic)
        cfg = adm.describe_configs([res], request_timeout=15)[res].result(timeout=30)
        out[f"{topic}/configs"] = {k: (e.value, int(getattr(e.source, "value", e.source))) for k, e in cfg.items()}
        marks = {p: watermarks(broker, topic, p) for p in range(n)}
        out[f"{topic}/watermarks"] = marks
        c = consumer(broker)
        try:
            msgs = consume_to_end(c, [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(n)],
                                  {(topic, p): marks[p][1] for p in range(n)})
        finally:
            c.close()
        out[f"{topic}/records"] = sorted((m.partition(), m.offset(), m.key(), m.value(), m.headers(), m.timestamp())
                                         for m in msgs)
    return out


def test_clean_restart_keeps_topics_configs_and_records(broker):
    adm = admin(broker)
    create_topic(broker, "r-plain", 3, adm=adm)
    create_topic(broker, "r-configured", 2, config={"retention.ms": "86400000", "cleanup.policy": "delete",
                                                    "message.timestamp.type": "LogAppendTime",
                                                    "compression.type": "zstd"}, adm=adm)
    create_topic(broker, "r-grown", 1, adm=adm)
    create_topic(broker, "r-deleted", 1, adm=adm)
    p = producer(broker)
    produce_all(p, "r-plain", [{"key": b"k%d" % i, "value": b"v%d" % i, "headers": [("h", b"%d" % i)],
                                "timestamp": 1_690_000_000_000 + i} for i in range(3000)])
    produce_all(p, "r-configured", [{"key": None, "value": b"c%d" % i, "partition": i % 2} for i in range(500)])
    produce_all(p, "r-grown", [{"value": b"g%d" % i} for i in range(10)])
    # Its own producer, closed before the delete: a live librdkafka producer keeps asking for the metadata
    # of topics it knows, which (auto.create.topics.enable=true) would create it again.
    doomed = producer(broker)
    produce_all(doomed, "r-deleted", [{"value": b"gone"}])
    doomed.close()
    adm.create_partitions([NewPartitions("r-grown", 4)], request_timeout=15)["r-grown"].result(timeout=30)
    wait_for_topic(broker, "r-grown", 4, adm)
    # A new producer: librdkafka's cached metadata of `p` still has one partition.
    produce_all(producer(broker), "r-grown", [{"value": b"new-partition", "partition": 3}])
    res = ConfigResource(ResourceType.TOPIC, "r-plain", incremental_configs=[
        ConfigEntry("segment.bytes", "1048576", incremental_operation=AlterConfigOpType.SET)])
    adm.incremental_alter_configs([res], request_timeout=15)[res].result(timeout=30)
    adm.delete_records([TopicPartition("r-configured", 1, 100)], request_timeout=15)
    wait_until(lambda: watermarks(broker, "r-configured", 1) == (100, 250), what="log start 100")
    adm.delete_topics(["r-deleted"], request_timeout=15)["r-deleted"].result(timeout=30)
    wait_until(lambda: "r-deleted" not in adm.list_topics(timeout=10).topics, what="r-deleted gone")

    layout = {"r-plain": 3, "r-configured": 2, "r-grown": 4}
    before = snapshot(broker, layout)
    assert before["topics"] == {"r-plain": [0, 1, 2], "r-configured": [0, 1], "r-grown": [0, 1, 2, 3]}
    assert len(before["r-plain/records"]) == 3000
    assert before["r-configured/watermarks"] == {0: (0, 250), 1: (100, 250)}

    assert broker.stop() == 0, f"SIGTERM exit code; log:\n{broker.log_tail()}"
    broker.start()
    after = snapshot(broker, layout)
    assert after == before

    # Still writable, offsets continue where they were.
    d = produce_all(producer(broker), "r-grown", [{"value": b"after-restart", "partition": 0}])
    assert (d[0].partition, d[0].offset) == (0, before["r-grown/watermarks"][0][1])

    # And a second restart, without any traffic in between, changes nothing either.
    assert broker.stop() == 0
    broker.start()
    again = snapshot(broker, layout)
    assert again["r-grown/records"] == sorted(before["r-grown/records"] + [
        (0, d[0].offset, None, b"after-restart", None, d[0].timestamp)])
    again["r-grown/records"] = before["r-grown/records"]
    again["r-grown/watermarks"][0] = before["r-grown/watermarks"][0]
    assert again == before


def test_restart_of_an_empty_broker_keeps_cluster_id(broker):
    adm = admin(broker)
    cid = adm.describe_cluster(request_timeout=15).result(timeout=30).cluster_id
    assert broker.stop() == 0
    broker.start()
    assert admin(broker).describe_cluster(request_timeout=15).result(timeout=30).cluster_id == cid
    assert {t for t in admin(broker).list_topics(timeout=10).topics if not t.startswith("__")} == set()
