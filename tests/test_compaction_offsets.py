"""A compaction round of `__consumer_offsets` holds no lock that offset commits need.

The broker is started with STROM_TEST_CLEANER_PAUSE_FILE: while that file exists, a
compaction round waits right after building its key map, the point where it holds no
lock. The test keeps the round there, commits and fetches offsets on the same
`__consumer_offsets` partition, and only then lets the round finish: the commits
completing inside the round is the ordering fact checked, with no timing involved."""

import re

import pytest
from confluent_kafka import TopicPartition

from helpers import consumer, create_topic, unique, wait_until

pytestmark = pytest.mark.timeout(180)

PARTITIONS = 10
# offset.metadata.max.bytes is 4096: big commits fill 1 MiB segments in a few dozen commits.
METADATA = "m" * 4000


def commit(c, topic, offset, metadata=METADATA):
    c.commit(offsets=[TopicPartition(topic, p, offset, metadata=metadata) for p in range(PARTITIONS)],
             asynchronous=False)


def committed(c, topic):
    return [(tp.partition, tp.offset, tp.metadata)
            for tp in c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=30)]


def compacted_lines(broker):
    return [line for line in broker.log().splitlines()
            if "__consumer_offsets" in line and re.search(r"\bcompacted\b", line)]


def test_offset_commits_complete_while_a_compaction_round_of_their_partition_runs(broker_factory, tmp_path):
    pause = tmp_path / "pause-cleaner"
    pause.touch()
    broker = broker_factory({
        "offsets.topic.num.partitions": "1",
        "offsets.topic.segment.bytes": "1048576",
        "log.cleaner.backoff.ms": "50",
    }, env={"STROM_TEST_CLEANER_PAUSE_FILE": str(pause)})
    topic = unique("committed")
    create_topic(broker, topic, PARTITIONS)
    group = unique("group")
    c = consumer(broker, **{"group.id": group})
    try:
        # The same keys over and over: ~40 KB a commit, so the offsets log rolls a few
        # 1 MiB segments whose records are nearly all superseded.
        for i in range(80):
            commit(c, topic, i)
        offsets_dir = broker.data_dir / "__consumer_offsets-0"
        assert len(list(offsets_dir.glob("*.log"))) >= 3

        wait_until(lambda: "compaction round paused for a test" in broker.log(), timeout_s=60,
                   what="a compaction round of __consumer_offsets-0 to start")
        assert compacted_lines(broker) == []

        # Inside the round: commits and fetches on the partition being cleaned.
        for i in range(80, 90):
            commit(c, topic, i, metadata=f"during-{i}")
            assert committed(c, topic) == [(p, i, f"during-{i}") for p in range(PARTITIONS)]
        assert compacted_lines(broker) == [], "the round is still paused: the commits did not wait for it"

        pause.unlink()
        wait_until(lambda: compacted_lines(broker), timeout_s=60, what="the round to finish")
        removed = int(re.search(r"records_removed=(\d+)", compacted_lines(broker)[0]).group(1))
        # The map was built from the segments rolled when the round started.
        assert removed > 0
        assert committed(c, topic) == [(p, 89, "during-89") for p in range(PARTITIONS)]

        commit(c, topic, 90, metadata="after")
    finally:
        c.close()

    # The cleaned log replays to the latest commits.
    broker.kill()
    broker.start()
    c = consumer(broker, **{"group.id": group})
    try:
        assert committed(c, topic) == [(p, 90, "after") for p in range(PARTITIONS)]
    finally:
        c.close()
