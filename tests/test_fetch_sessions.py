"""KIP-227 fetch sessions and per-partition wake-ups of parked fetches.

kafka-python consumes many partitions through incremental fetches (librdkafka, which has no
KIP-227 support, through sessionless ones);
hand-built Fetch v12 (topic names) and v13+ (topic ids) requests check the session rules as Kafka's
FetchSession.scala applies them: creation, incremental responses that leave out partitions with
nothing new, adding and forgetting partitions, epochs, closing, the errors, and eviction.
"""

from __future__ import annotations

import threading
from collections import defaultdict

import pytest
from confluent_kafka import TopicPartition

import fetch_wire as fw
from helpers import (admin, consume_to_end, consumer, create_topic, kp_consumer, kp_read, metric, produce_all,
                     producer, unique, wait_until)


def fetch_kinds(broker) -> dict[str, float]:
    samples = broker.metrics()
    return {kind: metric(samples, "strom_fetch_requests_total", kind=kind) or 0
            for kind in ("full", "incremental", "sessionless", "session_error")}


def produce_values(broker, topic: str, partition: int, values: list[bytes]) -> None:
    """One batch per value, so a fetch from any offset returns exactly the records from there."""
    p = producer(broker, **{"linger.ms": 0})
    for v in values:
        produce_all(p, topic, [{"value": v, "partition": partition}])


# --- real clients -----------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_librdkafka_consumes_many_partitions_with_sessionless_fetches(broker):
    """librdkafka has no KIP-227 support (its INTRODUCTION.md: "Not supported"): every Fetch it
    sends carries session id 0 and epoch -1, and must be answered in full, without a session."""
    topic, partitions, per_partition = "sessions-rdkafka", 24, 500
    create_topic(broker, topic, partitions)
    records = [{"value": b"p%02d-%05d" % (p, i), "partition": p}
               for i in range(per_partition) for p in range(partitions)]
    p = producer(broker, **{"linger.ms": 20})
    produce_all(p, topic, records[: len(records) // 2])
    before = fetch_kinds(broker)
    # Small fetches, so the partitions take many fetches to read.
    c = consumer(broker, **{"fetch.wait.max.ms": 100, "max.partition.fetch.bytes": 1024})
    ends = {(topic, part): per_partition for part in range(partitions)}
    got: dict[int, list] = defaultdict(list)
    try:
        # The second half is produced while the consumer reads, so later fetches find news
        # on some partitions only.
        t = threading.Thread(target=produce_all, args=(producer(broker, **{"linger.ms": 5}), topic,
                                                       records[len(records) // 2:]))
        t.start()
        msgs = consume_to_end(c, [TopicPartition(topic, part, 0) for part in range(partitions)], ends,
                              timeout_s=180)
        t.join()
    finally:
        c.close()
    for m in msgs:
        got[m.partition()].append((m.offset(), m.value()))
    for part in range(partitions):
        assert got[part] == [(i, b"p%02d-%05d" % (part, i)) for i in range(per_partition)], part
    after = fetch_kinds(broker)
    assert after["sessionless"] - before["sessionless"] > partitions, (before, after)
    assert {k: after[k] - before[k] for k in ("full", "incremental", "session_error")} == \
        {"full": 0, "incremental": 0, "session_error": 0}
    assert metric(broker.metrics(), "strom_fetch_sessions") == 0


@pytest.mark.timeout(240)
def test_kafka_python_consumes_many_partitions_through_incremental_fetches(broker):
    from kafka import TopicPartition as KTP
    topic, partitions, per_partition = "sessions-kp", 16, 1000
    create_topic(broker, topic, partitions)
    # Batches of at most 1 KiB, and fetches of at most 16 KiB: reading the ~320 KB takes twenty
    # fetches or more, however the producer happened to batch under load.
    produce_all(producer(broker, **{"linger.ms": 20, "batch.size": 1024}), topic,
                [{"value": b"p%02d-%05d" % (p, i), "partition": p}
                 for i in range(per_partition) for p in range(partitions)])
    before = fetch_kinds(broker)
    kc = kp_consumer(broker, fetch_max_wait_ms=100, max_partition_fetch_bytes=2048, fetch_max_bytes=16 * 1024)
    try:
        tps = [KTP(topic, part) for part in range(partitions)]
        kc.assign(tps)
        for tp in tps:
            kc.seek(tp, 0)
        records = kp_read(kc, {tp: per_partition for tp in tps}, timeout_s=180)
    finally:
        kc.close()
    got: dict[int, list] = defaultdict(list)
    for r in records:
        got[r.partition].append((r.offset, r.value))
    for part in range(partitions):
        assert got[part] == [(i, b"p%02d-%05d" % (part, i)) for i in range(per_partition)], part
    after = fetch_kinds(broker)
    incremental = after["incremental"] - before["incremental"]
    full = after["full"] - before["full"]
    assert full >= 1, (before, after)
    assert incremental > 5 * full, f"kafka-python should fetch incrementally: {before} -> {after}"
    assert after["session_error"] == before["session_error"]


# --- hand-built requests ----------------------------------------------------------------------


def test_full_fetch_creates_a_session_and_incremental_fetches_answer_only_news(broker):
    topic = unique("sess")
    create_topic(broker, topic, 3)
    produce_values(broker, topic, 0, [b"a0", b"a1"])
    produce_values(broker, topic, 1, [b"b0"])
    conn = fw.Conn(broker)
    try:
        full = conn.fetch(12, [(topic, 0, 0), (topic, 1, 0), (topic, 2, 0)], session_id=0, epoch=0)
        assert full.error_code == fw.NONE
        assert full.session_id != 0
        parts = full.by_key()
        assert sorted(parts) == [(topic, 0), (topic, 1), (topic, 2)]
        assert parts[(topic, 0)].values() == [(0, b"a0"), (1, b"a1")]
        assert parts[(topic, 1)].values() == [(0, b"b0")]
        assert (parts[(topic, 2)].values(), parts[(topic, 2)].high_watermark) == ([], 0)
        sid = full.session_id

        # Epoch 1 moves partitions 0 and 1 to their ends: nothing is new anywhere.
        inc = conn.fetch(12, [(topic, 0, 2), (topic, 1, 1)], session_id=sid, epoch=1)
        assert (inc.error_code, inc.session_id, inc.parts) == (fw.NONE, sid, [])

        # New records on partition 2 only: epoch 2 (naming no partition) answers just that one.
        produce_values(broker, topic, 2, [b"c0"])
        inc = conn.fetch(12, [], session_id=sid, epoch=2)
        assert inc.session_id == sid
        assert [(p.topic, p.partition, p.high_watermark, p.values()) for p in inc.parts] == \
            [(topic, 2, 1, [(0, b"c0")])]

        # The session still remembers partition 0's offset: new records there come from offset 2.
        produce_values(broker, topic, 0, [b"a2"])
        inc = conn.fetch(12, [(topic, 2, 1)], session_id=sid, epoch=3)
        assert [(p.partition, p.values()) for p in inc.parts] == [(0, [(2, b"a2")])]
    finally:
        conn.close()


def test_incremental_fetch_adds_and_forgets_partitions_by_topic_id(broker):
    topic = unique("sess-id")
    create_topic(broker, topic, 3)
    conn = fw.Conn(broker)
    try:
        tid = conn.topic_ids([topic])[topic]
        full = conn.fetch(13, [(tid, 0, 0), (tid, 1, 0)], session_id=0, epoch=0)
        assert full.error_code == fw.NONE and full.session_id != 0
        assert sorted(full.by_key()) == [(tid, 0), (tid, 1)]
        sid = full.session_id

        # Add partition 2, forget partition 0: the added one is always answered once.
        inc = conn.fetch(13, [(tid, 2, 0)], session_id=sid, epoch=1, forgotten=[(tid, 0)])
        assert [(p.topic, p.partition, p.error_code) for p in inc.parts] == [(tid, 2, fw.NONE)]

        # Records on every partition: the forgotten one is no longer read.
        for part in range(3):
            produce_values(broker, topic, part, [b"v%d" % part])
        inc = conn.fetch(13, [], session_id=sid, epoch=2)
        assert sorted((p.partition, p.values()) for p in inc.parts) == [(1, [(0, b"v1")]), (2, [(0, b"v2")])]

        # A v12 request cannot go on with a session that names topics by id.
        err = conn.fetch(12, [], session_id=sid, epoch=3)
        assert (err.error_code, err.session_id, err.parts) == (fw.FETCH_SESSION_TOPIC_ID_ERROR, 0, [])

        # Forgetting the last partitions closes the session: the answer carries no session.
        inc = conn.fetch(13, [], session_id=sid, epoch=3, forgotten=[(tid, 1), (tid, 2)])
        assert (inc.error_code, inc.session_id) == (fw.NONE, 0)
        gone = conn.fetch(13, [], session_id=sid, epoch=4)
        assert gone.error_code == fw.FETCH_SESSION_ID_NOT_FOUND
    finally:
        conn.close()


def test_wrong_epoch_and_unknown_session_are_refused_as_kafka_does(broker):
    topic = unique("sess-err")
    create_topic(broker, topic, 1)
    produce_values(broker, topic, 0, [b"x"])
    conn = fw.Conn(broker)
    try:
        sid = conn.fetch(12, [(topic, 0, 0)], session_id=0, epoch=0).session_id
        assert sid != 0
        for wrong_epoch in (2, 5):
            err = conn.fetch(12, [], session_id=sid, epoch=wrong_epoch)
            assert (err.error_code, err.session_id, err.parts) == (fw.INVALID_FETCH_SESSION_EPOCH, 0, [])
        unknown = sid + 1 if sid < 2**31 - 1 else 1
        err = conn.fetch(12, [], session_id=unknown, epoch=1)
        assert (err.error_code, err.session_id, err.parts) == (fw.FETCH_SESSION_ID_NOT_FOUND, 0, [])
        # The refused requests left the session at epoch 1.
        ok = conn.fetch(12, [(topic, 0, 1)], session_id=sid, epoch=1)
        assert (ok.error_code, ok.session_id, ok.parts) == (fw.NONE, sid, [])
        # A request retried with the same epoch is out of date now.
        err = conn.fetch(12, [(topic, 0, 1)], session_id=sid, epoch=1)
        assert err.error_code == fw.INVALID_FETCH_SESSION_EPOCH
    finally:
        conn.close()


def test_epoch_minus_one_closes_the_session_and_fetches_without_one(broker):
    topic = unique("sess-close")
    create_topic(broker, topic, 2)
    produce_values(broker, topic, 1, [b"y0", b"y1"])
    conn = fw.Conn(broker)
    try:
        sid = conn.fetch(12, [(topic, 0, 0), (topic, 1, 0)], session_id=0, epoch=0).session_id
        assert sid != 0
        closing = conn.fetch(12, [(topic, 1, 1)], session_id=sid, epoch=-1)
        assert (closing.error_code, closing.session_id) == (fw.NONE, 0)
        assert [(p.partition, p.values()) for p in closing.parts] == [(1, [(1, b"y1")])]
        err = conn.fetch(12, [], session_id=sid, epoch=1)
        assert err.error_code == fw.FETCH_SESSION_ID_NOT_FOUND
        assert metric(broker.metrics(), "strom_fetch_sessions") == 0
    finally:
        conn.close()


def test_full_cache_evicts_as_kafka_policy_decides(broker_factory):
    broker = broker_factory({"max.incremental.fetch.session.cache.slots": "2"})
    topic = unique("sess-evict")
    create_topic(broker, topic, 3)
    conn = fw.Conn(broker)
    try:
        bigger = conn.fetch(12, [(topic, 0, 0), (topic, 1, 0)], session_id=0, epoch=0).session_id
        smaller = conn.fetch(12, [(topic, 2, 0)], session_id=0, epoch=0).session_id
        assert 0 not in (bigger, smaller) and bigger != smaller
        # Cache full of young sessions: a consumer's new session gets no slot (session id 0)
        # and evicts nothing, however many partitions it has.
        none = conn.fetch(12, [(topic, 0, 0), (topic, 1, 0), (topic, 2, 0)], session_id=0, epoch=0)
        assert (none.error_code, none.session_id, len(none.parts)) == (fw.NONE, 0, 3)
        assert conn.fetch(12, [], session_id=bigger, epoch=1).error_code == fw.NONE
        assert conn.fetch(12, [], session_id=smaller, epoch=1).error_code == fw.NONE
        # A follower's session is privileged: it takes the slot of the smallest consumer session.
        follower = conn.fetch(12, [(topic, 0, 0)], session_id=0, epoch=0, replica_id=2).session_id
        assert follower not in (0, bigger, smaller)
        assert conn.fetch(12, [], session_id=smaller, epoch=2).error_code == fw.FETCH_SESSION_ID_NOT_FOUND
        assert conn.fetch(12, [], session_id=bigger, epoch=2).error_code == fw.NONE
        samples = broker.metrics()
        assert metric(samples, "strom_fetch_sessions") == 2
        assert metric(samples, "strom_fetch_session_evictions") == 1
        assert metric(samples, "strom_fetch_session_partitions") == 3
    finally:
        conn.close()


# --- parked fetches ---------------------------------------------------------------------------


def test_parked_fetch_is_woken_only_by_its_own_partitions(broker):
    """A fetch parked on topic B stays parked through produces to topic A (no wake-up at all),
    and is answered with B's record once B gets one."""
    topic_a, topic_b = unique("wake-a"), unique("wake-b")
    create_topic(broker, topic_a, 1)
    create_topic(broker, topic_b, 2)
    parked = fw.Conn(broker, timeout_s=60)
    try:
        woken_before = metric(broker.metrics(), "strom_fetch_wakeups_total") or 0
        cid = parked.send_fetch(12, [(topic_b, 0, 0), (topic_b, 1, 0)], max_wait_ms=120_000, min_bytes=1)
        # The fetch is parked once it has been counted as served.
        wait_until(lambda: fetch_kinds(broker)["sessionless"] >= 1, what="the parked fetch")
        for i in range(5):
            produce_values(broker, topic_a, 0, [b"elsewhere-%d" % i])
        produce_values(broker, topic_b, 1, [b"mine"])
        got = parked.receive_fetch(12, cid)
        assert [(p.partition, p.values()) for p in got.parts] == [(0, []), (1, [(0, b"mine")])]
        woken = (metric(broker.metrics(), "strom_fetch_wakeups_total") or 0) - woken_before
        assert woken == 1, f"the fetch parked on {topic_b} was woken {woken} times"
    finally:
        parked.close()


@pytest.mark.parametrize("version", [12, 13])
def test_deleting_a_topic_answers_fetches_parked_on_it(broker, version):
    topic = unique("wake-del")
    create_topic(broker, topic, 1)
    parked = fw.Conn(broker, timeout_s=60)
    try:
        key = parked.topic_ids([topic])[topic] if version >= 13 else topic
        before = fetch_kinds(broker)["sessionless"]
        cid = parked.send_fetch(version, [(key, 0, 0)], max_wait_ms=120_000, min_bytes=1)
        wait_until(lambda: fetch_kinds(broker)["sessionless"] > before, what="the parked fetch")
        adm = admin(broker)
        adm.delete_topics([topic])[topic].result(timeout=30)
        got = parked.receive_fetch(version, cid)
        want = fw.UNKNOWN_TOPIC_ID if version >= 13 else fw.UNKNOWN_TOPIC_OR_PARTITION
        assert [(p.topic, p.partition, p.error_code) for p in got.parts] == [(key, 0, want)]
    finally:
        parked.close()
