"""A metadata change the broker cannot carry out on its disk is refused whole, never half done.

CreateTopics whose partition logs cannot be created answers KAFKA_STORAGE_ERROR for that topic and
leaves no trace (metadata, metadata log, dirs); DeleteTopics takes effect even when the files cannot
go at once (they go at the next start); a clean stop with thousands of partitions marks every log
clean and a restart brings every record back.
"""

from __future__ import annotations

import re

import pytest
from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import NewPartitions, NewTopic

from helpers import (admin, consume_to_end, consumer, create_topic, error_code, produce_all, producer,
                     wait_for_topic, wait_until)

KAFKA_STORAGE_ERROR = 56
UNKNOWN_TOPIC_OR_PARTITION = 3
NO_AUTO_CREATE = {"auto.create.topics.enable": "false"}


def create_error(adm, name: str, partitions: int) -> tuple[int, str] | None:
    """CreateTopics for one topic: its error code and message, or None on success."""
    fut = adm.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                            request_timeout=30)[name]
    try:
        fut.result(timeout=60)
        return None
    except Exception as e:  # KafkaException carrying the topic's error
        return error_code(e), e.args[0].str()


def assert_topic_absent(adm, name: str) -> None:
    md = adm.list_topics(topic=name, timeout=10)
    assert md.topics[name].error is not None and md.topics[name].error.code() == UNKNOWN_TOPIC_OR_PARTITION
    assert name not in adm.list_topics(timeout=10).topics


def round_trip(broker, topic: str, partitions: int) -> None:
    """One record to each partition and back, exact values."""
    produce_all(producer(broker), topic, [{"value": b"v%d" % p, "partition": p} for p in range(partitions)])
    c = consumer(broker)
    try:
        msgs = consume_to_end(c, [TopicPartition(topic, p, 0) for p in range(partitions)],
                              {(topic, p): 1 for p in range(partitions)})
    finally:
        c.close()
    assert sorted((m.partition(), m.offset(), m.value()) for m in msgs) == [(p, 0, b"v%d" % p)
                                                                            for p in range(partitions)]


def test_create_topics_refused_when_a_partition_dir_cannot_be_made(broker_factory):
    broker = broker_factory(NO_AUTO_CREATE)
    adm = admin(broker)
    # A regular file where partition 3's dir must go: partitions 0-2 (and maybe 4-5) are made first.
    blocker = broker.data_dir / "blocked-3"
    blocker.write_bytes(b"not a directory")

    code, message = create_error(adm, "blocked", 6)
    assert code == KAFKA_STORAGE_ERROR
    assert "creating partition blocked-3 failed" in message
    assert_topic_absent(adm, "blocked")
    # Only the file that was there before is left, untouched.
    assert sorted(p.name for p in broker.data_dir.iterdir() if p.name.startswith("blocked")) == ["blocked-3"]
    assert blocker.read_bytes() == b"not a directory"

    # The broker keeps serving: other topics are created and carry records.
    create_topic(broker, "fine", 3, adm=adm)
    round_trip(broker, "fine", 3)

    # Nothing of the refused topic reached the metadata log: a restart does not bring it back.
    broker.restart()
    adm = admin(broker)
    assert_topic_absent(adm, "blocked")
    assert blocker.read_bytes() == b"not a directory"

    # Once the way is clear the same topic is created whole.
    blocker.unlink()
    create_topic(broker, "blocked", 6, adm=adm)
    round_trip(broker, "blocked", 6)


def test_create_topics_refused_when_descriptors_run_out(broker_factory):
    # Segment files are cached up to strom.log.max.open.files (half the limit by default);
    # a cache larger than the limit lets creation run out: 200 partitions have 600 files.
    broker = broker_factory({**NO_AUTO_CREATE, "strom.log.max.open.files": "10000"}, nofile=256)
    adm = admin(broker)

    code, message = create_error(adm, "many", 200)
    assert code == KAFKA_STORAGE_ERROR
    assert "Too many open files" in message
    assert_topic_absent(adm, "many")
    assert sorted(p.name for p in broker.data_dir.iterdir() if p.name.startswith("many-")) == []

    # The descriptors came back: new connections and a smaller topic work.
    create_topic(broker, "few", 4, adm=admin(broker))
    round_trip(broker, "few", 4)


def topic_id_of(broker, topic: str) -> str:
    text = (broker.data_dir / f"{topic}-0" / "partition.metadata").read_text()
    return re.search(r"topic_id: ([0-9a-f-]{36})", text).group(1).replace("-", "")


def test_delete_topics_takes_effect_when_files_cannot_go_yet(broker_factory):
    broker = broker_factory(NO_AUTO_CREATE)
    adm = admin(broker)
    create_topic(broker, "stuck", 3, adm=adm)
    round_trip(broker, "stuck", 3)
    # The name partition 0's dir is renamed to before its removal is taken by a non-empty dir.
    blocking = broker.data_dir / f"stuck-0.{topic_id_of(broker, 'stuck')}-delete"
    (blocking / "inside").mkdir(parents=True)

    fut = adm.delete_topics(["stuck"], request_timeout=30)["stuck"]
    assert fut.result(timeout=60) is None
    assert_topic_absent(adm, "stuck")
    broker.wait_for_log(r"renaming a deleted partition dir failed.*stuck-0")

    def left():
        return sorted(p.name for p in broker.data_dir.iterdir() if p.name.startswith("stuck"))
    # Partitions 1 and 2 (and the blocking dir, named as a deleted one) go in the background;
    # partition 0's dir, never renamed, waits for the next start.
    wait_until(lambda: left() == ["stuck-0"], what="partitions 1 and 2 removed")

    broker.restart()
    assert left() == []
    broker.wait_for_log(r"removing a partition dir that no topic owns.*stuck-0")
    assert_topic_absent(admin(broker), "stuck")


@pytest.mark.timeout(600)
def test_clean_stop_and_restart_with_two_thousand_partitions(broker_factory):
    broker = broker_factory(NO_AUTO_CREATE)
    adm = admin(broker)
    topics = [f"wide-{i}" for i in range(20)]
    futs = adm.create_topics([NewTopic(t, num_partitions=100, replication_factor=1) for t in topics],
                             request_timeout=120)
    for t in topics:
        futs[t].result(timeout=180)
    p = producer(broker)
    for t in topics:
        for i in range(100):
            p.produce(t, value=f"{t}/{i}".encode(), partition=i)
        p.poll(0)
    assert p.flush(120) == 0

    assert broker.stop(timeout_s=300) == 0
    dirs = [broker.data_dir / f"{t}-{i}" for t in topics for i in range(100)]
    assert (broker.data_dir / ".kafka_cleanshutdown").is_file()
    assert [d.name for d in dirs if (d / ".kafka_cleanshutdown").exists()] == []

    first_run = len(broker.log())
    broker.start(timeout_s=300)
    c = consumer(broker, **{"enable.partition.eof": False})
    try:
        msgs = consume_to_end(c, [TopicPartition(t, i, 0) for t in topics for i in range(100)],
                              {(t, i): 1 for t in topics for i in range(100)}, timeout_s=300)
    finally:
        c.close()
    got = sorted((m.topic(), m.partition(), m.offset(), m.value()) for m in msgs)
    assert got == sorted((t, i, 0, f"{t}/{i}".encode()) for t in topics for i in range(100))
    # Every log was closed cleanly, so none was recovered batch by batch.
    opened = re.findall(r"opened log dir=\S*/(wide-\d+-\d+) clean_shutdown=(\w+)", broker.log()[first_run:])
    assert len(opened) == 2000
    assert [d for d, clean in opened if clean != "true"] == []


def test_create_partitions_refused_when_a_partition_dir_cannot_be_made(broker_factory):
    broker = broker_factory(NO_AUTO_CREATE)
    adm = admin(broker)
    create_topic(broker, "grow", 2, adm=adm)
    blocker = broker.data_dir / "grow-4"
    blocker.write_bytes(b"not a directory")

    fut = adm.create_partitions([NewPartitions("grow", 6)], request_timeout=30)["grow"]
    with pytest.raises(KafkaException) as refused:
        fut.result(timeout=60)
    assert error_code(refused.value) == KAFKA_STORAGE_ERROR
    assert "creating partition grow-4 failed" in refused.value.args[0].str()
    assert sorted(adm.list_topics(topic="grow", timeout=10).topics["grow"].partitions) == [0, 1]
    assert sorted(p.name for p in broker.data_dir.iterdir() if p.name.startswith("grow-")) == [
        "grow-0", "grow-1", "grow-4"]
    round_trip(broker, "grow", 2)

    blocker.unlink()
    adm.create_partitions([NewPartitions("grow", 6)], request_timeout=30)["grow"].result(timeout=60)
    wait_for_topic(broker, "grow", 6, adm)
