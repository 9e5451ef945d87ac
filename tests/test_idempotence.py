"""Idempotent producers, which clients turn on by default (kafka-python 3, the Java client) or on request
(librdkafka enable.idempotence=true): InitProducerId, then sequenced batches, read back exactly once."""

from __future__ import annotations

from helpers import create_topic, produce_all, producer, read_partition


def test_librdkafka_idempotent_producer(broker):
    topic = "idem-rd"
    create_topic(broker, topic, 2)
    recs = [{"key": b"k%d" % (i % 10), "value": b"v%d" % i, "partition": i % 2} for i in range(2000)]
    delivered = produce_all(producer(broker, **{"enable.idempotence": True}), topic, recs)
    for part in range(2):
        ds = [d for d in delivered if d.partition == part]
        assert [d.offset for d in ds] == list(range(1000))
        msgs = read_partition(broker, topic, part, 0, 1000)
        assert [(m.key(), m.value()) for m in msgs] == [(d.key, d.value) for d in ds]


def test_kafka_python_producer_with_its_default_config(broker):
    """kafka-python 3's KafkaProducer is idempotent by default; an unmodified client must just work."""
    from kafka import KafkaProducer
    topic = "idem-kp"
    create_topic(broker, topic, 1)
    kp = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        mds = [kp.send(topic, key=b"k", value=b"default-%d" % i).get(timeout=30) for i in range(50)]
    finally:
        kp.close()
    assert [(md.partition, md.offset) for md in mds] == [(0, i) for i in range(50)]
    assert [m.value() for m in read_partition(broker, topic, 0, 0, 50)] == [b"default-%d" % i for i in range(50)]
