"""Produce and fetch with real clients: volume, ordering, keys, headers, null/empty fields, size limits."""

from __future__ import annotations

import zlib
from collections import defaultdict

import pytest
from confluent_kafka import KafkaError, TopicPartition

from helpers import (consume_to_end, consumer, create_topic, kp_consumer, kp_producer, kp_read, produce_all,
                     produce_errors, producer, read_partition, watermarks)


@pytest.mark.timeout(300)
def test_100k_keyed_records_six_partitions_exactly_once_in_order(broker):
    topic, partitions, n, n_keys = "volume", 6, 100_000, 1000
    create_topic(broker, topic, partitions)
    p = producer(broker, **{"acks": "all", "linger.ms": 20, "batch.num.messages": 5000,
                            "queue.buffering.max.messages": 200_000})
    records = [{"key": b"key-%04d" % (i % n_keys), "value": b"value-%06d" % i} for i in range(n)]
    delivered = produce_all(p, topic, records, timeout_s=120)

    # librdkafka's default partitioner (consistent_random) is CRC32(key) % partition count.
    for rec, d in zip(records, delivered):
        assert d.partition == zlib.crc32(rec["key"]) % partitions, (rec["key"], d.partition)
    by_partition: dict[int, list] = defaultdict(list)
    for d in delivered:
        by_partition[d.partition].append(d)
    # Offsets handed out per partition are exactly 0..count-1, in produce order.
    for part, ds in by_partition.items():
        assert [d.offset for d in ds] == list(range(len(ds))), f"partition {part} offsets not dense and ordered"
    assert sum(len(ds) for ds in by_partition.values()) == n
    ends = {(topic, part): len(by_partition.get(part, [])) for part in range(partitions)}
    assert {part: watermarks(broker, topic, part) for part in range(partitions)} == \
        {part: (0, ends[(topic, part)]) for part in range(partitions)}

    c = consumer(broker, **{"fetch.max.bytes": 4 * 1024 * 1024})
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, part, 0) for part in range(partitions)], ends, timeout_s=180)
    finally:
        c.close()
    assert len(msgs) == n
    got: dict[int, list] = defaultdict(list)
    for m in msgs:
        got[m.partition()].append((m.offset(), m.key(), m.value()))
    for part in range(partitions):
        want = [(d.offset, d.key, d.value) for d in by_partition.get(part, [])]
        assert got[part] == want, f"partition {part} differs from what was produced"
    # Same key, same partition, and each key's values in produce order.
    key_partition: dict[bytes, int] = {}
    last_index: dict[bytes, int] = {}
    for part in range(partitions):
        for _, key, value in got[part]:
            assert key_partition.setdefault(key, part) == part, f"key {key!r} in two partitions"
            idx = int(value.split(b"-")[1])
            assert idx > last_index.get(key, -1)
            last_index[key] = idx
    assert len(key_partition) == n_keys


def test_kafka_python_reads_what_librdkafka_wrote_and_vice_versa(broker):
    topic = "cross"
    create_topic(broker, topic, 3)
    # librdkafka -> kafka-python
    recs = [{"key": b"rk%d" % i, "value": b"from-librdkafka-%d" % i, "partition": i % 3,
             "headers": [("n", b"%d" % i)]} for i in range(300)]
    delivered = produce_all(producer(broker), topic, recs)
    kc = kp_consumer(broker)
    try:
        tps = [__import__("kafka").TopicPartition(topic, part) for part in range(3)]
        kc.assign(tps)
        kc.seek_to_beginning()
        records = kp_read(kc, {tp: 100 for tp in tps})
    finally:
        kc.close()
    got = sorted((r.partition, r.offset, r.key, r.value, list(r.headers)) for r in records)
    want = sorted((d.partition, d.offset, r["key"], r["value"], r["headers"]) for d, r in zip(delivered, recs))
    assert got == want

    # kafka-python -> librdkafka; kafka-python's partitioner is murmur2 like the Java client.
    from kafka.partitioner.default import murmur2
    kp = kp_producer(broker)
    sent = []
    for i in range(300):
        key = b"kp-key-%d" % (i % 17)
        md = kp.send(topic, key=key, value=b"from-kafka-python-%d" % i, headers=[("i", b"%d" % i)]).get(timeout=30)
        assert md.partition == (murmur2(key) & 0x7FFFFFFF) % 3
        sent.append((md.partition, md.offset, key, b"from-kafka-python-%d" % i, [("i", b"%d" % i)]))
    kp.close()
    ends = {}
    for part in range(3):
        ends[(topic, part)] = 100 + sum(1 for s in sent if s[0] == part)
    c = consumer(broker)
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, part, 100) for part in range(3)], ends)
    finally:
        c.close()
    got = sorted((m.partition(), m.offset(), m.key(), m.value(), m.headers()) for m in msgs)
    assert got == sorted(sent)
    # Offsets continue densely after the librdkafka records.
    for part in range(3):
        assert sorted(s[1] for s in sent if s[0] == part) == list(range(100, ends[(topic, part)]))


def test_headers_binary_duplicate_and_null_values(broker):
    topic = "headers"
    create_topic(broker, topic, 1)
    headers = [("text", b"plain"), ("binary", bytes(range(256))), ("empty", b""), ("null", None),
               ("dup", b"first"), ("dup", b"second"), ("utf8-\u00e9\u4e2d", "v\u00e9".encode())]
    delivered = produce_all(producer(broker), topic, [
        {"key": b"k0", "value": b"v0", "headers": headers},
        {"key": b"k1", "value": b"v1"},
        {"key": b"k2", "value": b"v2", "headers": [("only", b"1")]},
    ])
    assert [d.offset for d in delivered] == [0, 1, 2]
    msgs = read_partition(broker, topic, 0, 0, 3)
    assert [m.headers() for m in msgs] == [headers, None, [("only", b"1")]]
    # kafka-python sees the same headers (its null header value is None too).
    from kafka import TopicPartition as KTP
    kc = kp_consumer(broker)
    try:
        kc.assign([KTP(topic, 0)])
        kc.seek(KTP(topic, 0), 0)
        recs = kp_read(kc, {KTP(topic, 0): 3})
    finally:
        kc.close()
    assert [list(r.headers) for r in recs] == [headers, [], [("only", b"1")]]


def test_null_and_empty_keys_and_values(broker):
    topic = "nulls"
    create_topic(broker, topic, 1)
    records = [{"key": None, "value": None}, {"key": b"", "value": b""}, {"key": None, "value": b"v"},
               {"key": b"k", "value": None}, {"key": b"", "value": None}, {"key": None, "value": b""}]
    produce_all(producer(broker), topic, [dict(r, partition=0) for r in records])
    msgs = read_partition(broker, topic, 0, 0, len(records))
    assert [(m.offset(), m.key(), m.value()) for m in msgs] == \
        [(i, r["key"], r["value"]) for i, r in enumerate(records)]
    from kafka import TopicPartition as KTP
    kc = kp_consumer(broker)
    try:
        kc.assign([KTP(topic, 0)])
        kc.seek(KTP(topic, 0), 0)
        recs = kp_read(kc, {KTP(topic, 0): len(records)})
    finally:
        kc.close()
    assert [(r.key, r.value) for r in recs] == [(r["key"], r["value"]) for r in records]


def test_fetch_from_a_middle_offset_and_past_the_end(broker):
    topic = "middle"
    create_topic(broker, topic, 1)
    produce_all(producer(broker), topic, [{"value": b"m%d" % i} for i in range(100)])
    msgs = read_partition(broker, topic, 0, 57, 100)
    assert [(m.offset(), m.value()) for m in msgs] == [(i, b"m%d" % i) for i in range(57, 100)]
    # Fetching beyond the high watermark is OFFSET_OUT_OF_RANGE (auto.offset.reset=error surfaces it).
    c = consumer(broker)
    try:
        c.assign([TopicPartition(topic, 0, 150)])
        err = None
        for _ in range(60):
            m = c.poll(0.5)
            if m is not None:
                assert m.error() is not None, f"unexpected record at offset {m.offset()}"
                err = m.error()
                break
        assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET, err
        assert "Offset out of range" in err.str(), err.str()
    finally:
        c.close()


def test_record_larger_than_fetch_limits_is_still_returned(broker):
    """A batch bigger than max.partition.fetch.bytes / fetch.max.bytes still comes back (KIP-74)."""
    topic = "big"
    create_topic(broker, topic, 1)
    big = bytes(range(256)) * 3500  # 896,000 bytes, under the default max.message.bytes
    produce_all(producer(broker), topic, [{"key": b"big", "value": big}, {"key": b"small", "value": b"s"}])
    msgs = read_partition(broker, topic, 0, 0, 2,
                          **{"max.partition.fetch.bytes": 1024, "fetch.max.bytes": 1024,
                             "message.max.bytes": 1000, "receive.message.max.bytes": 2_000_000})
    assert [(m.key(), m.value()) for m in msgs] == [(b"big", big), (b"small", b"s")]


def test_record_over_max_message_bytes_rejected(broker):
    topic = "small-max"
    create_topic(broker, topic, 1, config={"max.message.bytes": "1024"})
    p = producer(broker, **{"message.max.bytes": 2_000_000, "linger.ms": 0})
    errs = produce_errors(p, topic, [{"value": b"x" * 4096, "partition": 0}])
    assert errs[0] is not None and errs[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errs
    # Nothing was appended; a small record still goes to offset 0.
    d = produce_all(p, topic, [{"value": b"fits", "partition": 0}])
    assert [(x.partition, x.offset) for x in d] == [(0, 0)]
    assert watermarks(broker, topic, 0) == (0, 1)
    # kafka-python gets MessageSizeTooLargeError from the broker.
    import kafka.errors as Errors
    kp = kp_producer(broker, max_request_size=2_000_000, retries=0)
    try:
        with pytest.raises(Errors.MessageSizeTooLargeError):
            kp.send(topic, value=b"y" * 4096, partition=0).get(timeout=30)
        assert kp.send(topic, value=b"fits-too", partition=0).get(timeout=30).offset == 1
    finally:
        kp.close()
    msgs = read_partition(broker, topic, 0, 0, 2)
    assert [m.value() for m in msgs] == [b"fits", b"fits-too"]


def test_broker_message_max_bytes_applies_to_topics_without_override(broker_factory):
    b = broker_factory({"message.max.bytes": "2000"})
    create_topic(b, "limited", 1)
    p = producer(b, **{"linger.ms": 0})
    errs = produce_errors(p, "limited", [{"value": b"z" * 5000, "partition": 0}])
    assert errs[0] is not None and errs[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert produce_errors(p, "limited", [{"value": b"z" * 100, "partition": 0}]) == [None]
    assert watermarks(b, "limited", 0) == (0, 1)


def test_acks_zero_and_one(broker):
    topic = "acks"
    create_topic(broker, topic, 1)
    for acks, start in (("1", 0), ("0", 50)):
        p = producer(broker, acks=acks)
        produce_all(p, topic, [{"value": b"acks%s-%d" % (acks.encode(), i), "partition": 0} for i in range(50)])
    # acks=0 gets no response, so poll the high watermark until all 100 are there.
    from helpers import wait_until
    wait_until(lambda: watermarks(broker, topic, 0) == (0, 100), what="100 records")
    msgs = read_partition(broker, topic, 0, 0, 100)
    assert [m.value() for m in msgs] == [b"acks1-%d" % i for i in range(50)] + [b"acks0-%d" % i for i in range(50)]


def test_concurrent_producers_to_one_partition(broker):
    """Four producers at once: every record once, offsets dense, each producer's order kept."""
    import threading
    topic = "concurrent"
    create_topic(broker, topic, 1)
    results: dict[int, list] = {}

    def run(n: int):
        results[n] = produce_all(producer(broker, **{"linger.ms": 1}), topic,
                                 [{"key": b"p%d" % n, "value": b"p%d-%05d" % (n, i), "partition": 0}
                                  for i in range(5000)])
    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(d.offset for ds in results.values() for d in ds) == list(range(20000))
    msgs = read_partition(broker, topic, 0, 0, 20000)
    by_offset = {d.offset: (d.key, d.value) for ds in results.values() for d in ds}
    assert [(m.key(), m.value()) for m in msgs] == [by_offset[o] for o in range(20000)]
    for n in range(4):
        mine = [m.value() for m in msgs if m.key() == b"p%d" % n]
        assert mine == [b"p%d-%05d" % (n, i) for i in range(5000)]


def test_compacted_topic_rejects_records_without_key(broker):
    topic = "compacted"
    create_topic(broker, topic, 1, config={"cleanup.policy": "compact"})
    p = producer(broker, **{"linger.ms": 0})
    errs = produce_errors(p, topic, [{"key": None, "value": b"no-key", "partition": 0}])
    assert errs[0] is not None and errs[0].code() == KafkaError.INVALID_RECORD, errs
    assert produce_errors(p, topic, [{"key": b"k", "value": b"keyed", "partition": 0}]) == [None]
    assert [(m.offset(), m.key(), m.value()) for m in read_partition(broker, topic, 0, 0, 1)] == [(0, b"k", b"keyed")]


def test_fetch_at_log_end_waits_for_data_and_wakes_on_produce(broker):
    """Fetch long-poll: an idle consumer does not spin, and a new record reaches it long before max wait."""
    import threading
    import time

    from helpers import metric
    topic = "long-poll"
    create_topic(broker, topic, 1)
    c = consumer(broker, **{"fetch.wait.max.ms": 500})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        assert c.poll(0.5) is None
        # librdkafka fetches from its own threads; wait until it is fetching at the log end.
        from helpers import wait_until
        before = wait_until(lambda: metric(broker.metrics(), "strom_requests_total", api="Fetch"),
                            what="a first Fetch request")
        assert c.poll(2.0) is None  # two idle seconds: each Fetch should be held ~500 ms
        idle_fetches = metric(broker.metrics(), "strom_requests_total", api="Fetch") - before
        assert idle_fetches <= 10, f"{idle_fetches} Fetch requests in 2 s with fetch.wait.max.ms=500: not parked"
    finally:
        c.close()

    c = consumer(broker, **{"fetch.wait.max.ms": 10_000})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        assert c.poll(1.0) is None
        sent_at = {}

        def produce_later():
            p = producer(broker, **{"linger.ms": 0})
            sent_at["t"] = time.monotonic()
            produce_all(p, topic, [{"value": b"wake-up", "partition": 0}])
        t = threading.Thread(target=produce_later)
        t.start()
        msg = None
        deadline = time.monotonic() + 20
        while msg is None and time.monotonic() < deadline:
            msg = c.poll(0.2)
        got_at = time.monotonic()
        t.join()
        assert msg is not None and msg.error() is None and msg.value() == b"wake-up"
        assert got_at - sent_at["t"] < 3.0, f"record took {got_at - sent_at['t']:.1f}s with fetch.wait.max.ms=10000"
    finally:
        c.close()
