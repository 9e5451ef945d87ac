"""Log compaction through the running broker: a compacted topic keeps the
latest record per key at its original offset, drops tombstones after
delete.retention.ms, and survives a kill -9 and restart unchanged."""

import pytest

from helpers import create_topic, produce_all, read_partition, wait_until, watermarks

pytestmark = pytest.mark.timeout(180)

PADDING = b"." * 1000


def test_compacted_topic_keeps_latest_per_key_and_drops_tombstones(broker_factory):
    broker = broker_factory({"log.cleaner.backoff.ms": "200"})
    topic = "compacted"
    create_topic(broker, topic, 1, config={
        "cleanup.policy": "compact",
        "segment.bytes": "1048576",
        "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "100",
    })
    from helpers import producer
    p = producer(broker, **{"linger.ms": 5})
    keys = [b"k%d" % i for i in range(40)]
    versions = [{"key": k, "value": b"%s-v%d-" % (k, v) + PADDING} for v in range(30) for k in keys]
    tombstone = [{"key": b"k0", "value": None}]
    # Distinct keys after the versions roll the segments holding them out of the active one.
    filler = [{"key": b"f%d" % i, "value": PADDING} for i in range(1500)]
    delivered = produce_all(p, topic, versions + tombstone + filler)
    produced = {d.offset: (d.key, d.value) for d in delivered}
    _, end = watermarks(broker, topic, 0)
    assert end == len(delivered)

    def survivors():
        return [(m.offset(), m.key(), m.value()) for m in read_partition(broker, topic, 0, 0, end)
                if m.offset() < end]

    def compacted():
        keys_seen = [k for _, k, _ in survivors() if k.startswith(b"k")]
        return keys_seen.count(b"k1") == 1 and b"k0" not in keys_seen

    wait_until(compacted, timeout_s=120, what="versions collapsed and the tombstone gone")
    first = survivors()
    # Every survivor is exactly what was produced at that offset.
    for offset, key, value in first:
        assert produced[offset] == (key, value)
    latest = {k: max(o for o, (kk, _) in produced.items() if kk == k) for k in keys}
    versioned = sorted((o, k) for o, k, _ in first if k.startswith(b"k"))
    assert versioned == sorted((latest[k], k) for k in keys if k != b"k0")
    fillers = [k for _, k, _ in first if k.startswith(b"f")]
    assert fillers == [b"f%d" % i for i in range(1500)]
    # The log end offset is unchanged; later appends continue from it.
    assert watermarks(broker, topic, 0)[1] == end

    broker.kill()
    broker.start()
    assert survivors() == first
    more = produce_all(producer(broker), topic, [{"key": b"k1", "value": b"after-restart"}])
    assert more[0].offset == end
