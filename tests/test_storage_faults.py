"""Storage faults (issue 14): a broker with two log dirs, one of them a tiny real
filesystem (a 2 MiB tmpfs) that fills up.

Kafka's semantics: any I/O error in a log dir (ENOSPC on append included) takes that
whole dir offline (LogDirFailureChannel); its partitions answer KAFKA_STORAGE_ERROR and
DescribeLogDirs reports it with that error, while the broker serves its other dirs. The
failed write is cut off, so every acknowledged record is read back after a restart with
space freed, and appends continue at the next offset."""

from __future__ import annotations

import os
import subprocess

import pytest
from confluent_kafka import KafkaError

from helpers import admin as admin_client
from helpers import create_topic, kp_admin, kp_consumer, producer

STORAGE_ERROR = 56  # KAFKA_STORAGE_ERROR
VALUE_BYTES = 20_000


@pytest.fixture
def tiny_fs(tmp_path):
    """A 2 MiB tmpfs, unmounted at teardown (after the broker is gone)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"mounting a tmpfs failed (the test needs root): {done.stderr}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def free_bytes(path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def read_partition(broker, topic: str, partition: int, count: int) -> list[tuple[int, bytes]]:
    """Exactly `count` records from offset 0 with kafka-python (no group: no
    __consumer_offsets, whose partitions would land on the tiny dir too)."""
    from kafka import TopicPartition as KTP
    c = kp_consumer(broker, consumer_timeout_ms=15000, fetch_max_bytes=4 << 20)
    try:
        tp = KTP(topic, partition)
        c.assign([tp])
        c.seek(tp, 0)
        out = []
        for msg in c:
            out.append((msg.offset, msg.value))
            if len(out) == count:
                break
        return out
    finally:
        c.close()


def produce_one(p, topic: str, value: bytes):
    """Produces one record synchronously: (offset, None) or (None, KafkaError)."""
    got = {}
    p.produce(topic, value=value, partition=0,
              on_delivery=lambda err, msg: got.update(err=err, offset=msg.offset()))
    assert p.flush(30) == 0
    return (None, got["err"]) if got["err"] is not None else (got["offset"], None)


def log_dirs_by_path(broker) -> dict[str, dict]:
    ka = kp_admin(broker)
    try:
        out = ka.describe_log_dirs()
    finally:
        ka.close()
    assert [r["broker"] for r in out] == [1]
    return {os.path.realpath(d["log_dir"]): d for d in out[0]["log_dirs"]}


def partitions_of(log_dir: dict) -> set[tuple[str, int]]:
    return {(t["name"], p["partition_index"]) for t in log_dir["topics"] for p in t["partitions"]}


def test_full_log_dir_goes_offline_and_the_others_keep_serving(tiny_fs, broker_factory, tmp_path):
    data = tmp_path / "broker0" / "data"
    broker = broker_factory({"log.dirs": f"{data},{tiny_fs}"})
    # Placement: the dir with the fewest partitions, ties to the first in log.dirs.
    create_topic(broker, "normal")
    create_topic(broker, "tiny")
    assert (data / "normal-0").is_dir() and not (tiny_fs / "normal-0").exists()
    assert (tiny_fs / "tiny-0").is_dir() and not (data / "tiny-0").exists()
    assert (tiny_fs / "meta.properties").is_file()
    ids = [dict(line.split("=", 1) for line in (d / "meta.properties").read_text().splitlines()
                if "=" in line) for d in (data, tiny_fs)]
    assert ids[0]["cluster.id"] == ids[1]["cluster.id"] and ids[0]["node.id"] == ids[1]["node.id"] == "1"
    assert ids[0]["directory.id"] != ids[1]["directory.id"]

    dirs = log_dirs_by_path(broker)
    assert set(dirs) == {os.path.realpath(data), os.path.realpath(tiny_fs)}
    assert partitions_of(dirs[os.path.realpath(data)]) == {("normal", 0)}
    assert partitions_of(dirs[os.path.realpath(tiny_fs)]) == {("tiny", 0)}
    assert 0 < dirs[os.path.realpath(tiny_fs)]["total_bytes"] <= 2 << 20

    # Leave room for a few dozen records, then fill it.
    filler = tiny_fs / "filler"
    filler.write_bytes(b"\0" * max(0, free_bytes(tiny_fs) - 400_000))
    p = producer(broker, **{"retries": 0, "linger.ms": 0, "acks": "all",
                            "enable.idempotence": False, "message.timeout.ms": 20000})
    acked: list[tuple[int, bytes]] = []
    error = None
    for i in range(200):
        value = f"{i:06d}".encode() + os.urandom(VALUE_BYTES)
        offset, error = produce_one(p, "tiny", value)
        if error is not None:
            break
        acked.append((offset, value))
    assert error is not None, "the 2 MiB filesystem never filled up"
    assert error.code() == KafkaError.KAFKA_STORAGE_ERROR == STORAGE_ERROR, error
    assert len(acked) >= 5
    assert [o for o, _ in acked] == list(range(len(acked)))
    # The dir is offline now: the next produce is refused without touching the disk.
    offset, error = produce_one(p, "tiny", b"refused")
    assert offset is None and error.code() == STORAGE_ERROR

    # The other dir keeps serving: produce and read back exact records.
    normal_values = [f"normal-{i}".encode() * 50 for i in range(20)]
    for i, value in enumerate(normal_values):
        assert produce_one(p, "normal", value) == (i, None)
    assert read_partition(broker, "normal", 0, 20) == list(enumerate(normal_values))

    dirs = log_dirs_by_path(broker)
    assert dirs[os.path.realpath(tiny_fs)]["error_code"] == STORAGE_ERROR
    assert partitions_of(dirs[os.path.realpath(tiny_fs)]) == set()
    assert dirs[os.path.realpath(data)]["error_code"] == 0
    assert partitions_of(dirs[os.path.realpath(data)]) == {("normal", 0)}
    assert broker.wait_for_log(r"log dir is offline after a storage error")

    # Free the space and restart: every acknowledged record is there, appends go on.
    filler.unlink()
    broker.restart()
    assert read_partition(broker, "tiny", 0, len(acked)) == acked
    after = b"after-restart" * 10
    p2 = producer(broker, **{"linger.ms": 0})
    assert produce_one(p2, "tiny", after) == (len(acked), None)
    assert read_partition(broker, "tiny", 0, len(acked) + 1) == acked + [(len(acked), after)]
    assert read_partition(broker, "normal", 0, 20) == list(enumerate(normal_values))
    dirs = log_dirs_by_path(broker)
    assert [d["error_code"] for d in dirs.values()] == [0, 0]
    assert partitions_of(dirs[os.path.realpath(tiny_fs)]) == {("tiny", 0)}


def fill(path) -> None:
    """Writes a file in `path` until the filesystem refuses with ENOSPC."""
    import errno
    with open(path / "filler", "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                chunk = chunk[: len(chunk) // 2]
                if not chunk:
                    return


def test_metadata_log_dir_full_stops_the_process_and_keeps_only_durable_changes(
        tiny_fs, broker_factory, tmp_path):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    data = tmp_path / "broker0" / "data"
    # The first log dir holds the metadata log. No partition lands there (no topic is made)
    # and the high watermark checkpoint waits, so the metadata log meets the full disk first.
    broker = broker_factory({"log.dirs": f"{tiny_fs},{data}",
                             "replica.high.watermark.checkpoint.interval.ms": "3600000"})
    adm = admin_client(broker)
    name = "log.cleaner.backoff.ms"

    def alter(value: int):
        res = ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
            ConfigEntry(name, str(value), incremental_operation=AlterConfigOpType.SET)])
        adm.incremental_alter_configs([res], request_timeout=10)[res].result(timeout=15)

    alter(1000)
    fill(tiny_fs)
    acked = [1000]
    for value in range(1001, 1300):
        try:
            alter(value)
        except Exception:  # the broker stops: the request fails one way or another
            break
        acked.append(value)
    else:
        pytest.fail("the metadata log never met the full disk")
    assert broker.proc.wait(timeout=20) == 1
    assert broker.wait_for_log(r"the metadata quorum failed; stopping the process")

    # With space again, the node starts with exactly the changes that were acknowledged.
    (tiny_fs / "filler").unlink()
    broker.start()
    adm = admin_client(broker)
    res = ConfigResource(ResourceType.BROKER, "1")
    described = adm.describe_configs([res], request_timeout=10)[res].result(timeout=15)
    assert described[name].value == str(acked[-1])


def test_metadata_log_dir_apart_from_the_log_dirs(broker_factory, tmp_path):
    """metadata.log.dir outside log.dirs, as in Kafka: the metadata log and a meta.properties of
    the same cluster there and no partition; the data dir has no metadata log; topics and records
    survive kill -9 and a clean stop, whose marker the metadata dir gets too."""
    from helpers import produce_all, read_partition, unique
    meta = tmp_path / "metadata"
    b = broker_factory({"metadata.log.dir": str(meta)})
    topic = unique("md")
    create_topic(b, topic, 2)
    produce_all(producer(b), topic, [{"key": b"k%d" % i, "value": b"v%d" % i, "partition": i % 2}
                                     for i in range(6)])
    assert (meta / "__cluster_metadata-0").is_dir()
    assert not (b.data_dir / "__cluster_metadata-0").exists()
    cluster_ids = {line for d in (meta, b.data_dir) for line in (d / "meta.properties").read_text().splitlines()
                   if line.startswith("cluster.id=")}
    assert len(cluster_ids) == 1, cluster_ids
    assert not any(p.name.startswith(topic) for p in meta.iterdir())
    assert {p.name for p in b.data_dir.iterdir() if p.name.startswith(topic)} == {f"{topic}-0", f"{topic}-1"}

    def records(partition: int) -> list[tuple[bytes, bytes]]:
        return [(m.key(), m.value()) for m in read_partition(b, topic, partition, 0, 3)]
    expected = {p: [(b"k%d" % i, b"v%d" % i) for i in range(p, 6, 2)] for p in (0, 1)}

    b.restart(kill=True)
    assert {p: records(p) for p in (0, 1)} == expected
    # A clean stop marks the metadata dir clean too; the next start takes the marker away.
    b.stop()
    assert (meta / ".kafka_cleanshutdown").is_file() and (b.data_dir / ".kafka_cleanshutdown").is_file()
    b.start()
    assert not (meta / ".kafka_cleanshutdown").exists()
    assert {p: records(p) for p in (0, 1)} == expected
    create_topic(b, unique("md-after"), 1)


def two_dirs_with_records(broker_factory, tmp_path):
    """A broker with two log dirs: "healthy" in the first and "lost" in `second`, ten records each."""
    data = tmp_path / "broker0" / "data"
    second = tmp_path / "second"
    broker = broker_factory({"log.dirs": f"{data},{second}"})
    create_topic(broker, "healthy")
    create_topic(broker, "lost")
    assert (data / "healthy-0").is_dir() and (second / "lost-0").is_dir()
    p = producer(broker, **{"linger.ms": 0})
    lost_values = [f"lost-{i}".encode() * 20 for i in range(10)]
    healthy_values = [f"healthy-{i}".encode() * 20 for i in range(10)]
    for i, value in enumerate(lost_values):
        assert produce_one(p, "lost", value) == (i, None)
    for i, value in enumerate(healthy_values):
        assert produce_one(p, "healthy", value) == (i, None)
    return broker, data, second, lost_values, healthy_values


def check_second_dir_offline(broker, second, healthy_values):
    """The healthy dir serves (an append at offset 10), "lost" answers KAFKA_STORAGE_ERROR and
    DescribeLogDirs reports `second` with that error; returns the producer."""
    assert read_partition(broker, "healthy", 0, 10) == list(enumerate(healthy_values))
    p = producer(broker, **{"linger.ms": 0, "retries": 0, "message.timeout.ms": 10000})
    assert produce_one(p, "healthy", b"healthy-after") == (10, None)
    offset, error = produce_one(p, "lost", b"refused")
    assert offset is None and error.code() == STORAGE_ERROR, error
    assert log_dirs_by_path(broker)[os.path.realpath(second)]["error_code"] == STORAGE_ERROR
    return p


def check_both_dirs_back(broker, lost_values, healthy_values):
    """Every record of both dirs is read back and "lost" takes appends at offset 10."""
    assert read_partition(broker, "lost", 0, 10) == list(enumerate(lost_values))
    p = producer(broker, **{"linger.ms": 0})
    assert produce_one(p, "lost", b"lost-after") == (10, None)
    assert read_partition(broker, "healthy", 0, 11) == (
        list(enumerate(healthy_values)) + [(10, b"healthy-after")])


def test_log_dir_that_cannot_be_opened_at_start_is_offline_and_the_others_serve(
        broker_factory, tmp_path):
    """Kafka's LogManager starts with a dir it cannot open offline (as long as the metadata log's
    dir is fine): its partitions answer KAFKA_STORAGE_ERROR, DescribeLogDirs reports it with that
    error, the other dir serves. With the dir back, the next start has all of its records."""
    broker, data, second, lost_values, healthy_values = two_dirs_with_records(broker_factory, tmp_path)
    broker.stop()

    # The dir's path is now a regular file: it cannot be opened.
    saved = tmp_path / "second.saved"
    second.rename(saved)
    second.write_bytes(b"not a directory")
    broker.start()
    assert broker.wait_for_log(r"log dir could not be opened at start; it is offline")
    p = check_second_dir_offline(broker, second, healthy_values)
    dirs = log_dirs_by_path(broker)
    assert partitions_of(dirs[os.path.realpath(second)]) == set()
    assert dirs[os.path.realpath(data)]["error_code"] == 0
    assert partitions_of(dirs[os.path.realpath(data)]) == {("healthy", 0)}
    # Not created anew in the healthy dir: its records are in the offline one.
    assert not (data / "lost-0").exists()
    # A topic made now goes to the online dir.
    create_topic(broker, "new")
    assert (data / "new-0").is_dir()
    assert produce_one(p, "new", b"first") == (0, None)
    broker.stop()

    # The dir back: every record is there and appends go on.
    second.unlink()
    saved.rename(second)
    broker.start()
    check_both_dirs_back(broker, lost_values, healthy_values)
    dirs = log_dirs_by_path(broker)
    assert [d["error_code"] for d in dirs.values()] == [0, 0]
    assert partitions_of(dirs[os.path.realpath(second)]) == {("lost", 0)}


def test_an_io_error_loading_a_log_at_start_takes_its_dir_offline(broker_factory, tmp_path):
    """A log that fails to load with an I/O error (its offset index is a directory now, so opening
    it fails with EISDIR) takes its whole dir offline, as Kafka's LogManager does with an
    IOException while loading logs; the other dir serves. With the file back, the next start
    has every record and appends go on."""
    broker, data, second, lost_values, healthy_values = two_dirs_with_records(broker_factory, tmp_path)
    broker.kill()

    index = second / "lost-0" / "00000000000000000000.index"
    assert index.is_file()
    saved = tmp_path / "lost-index.saved"
    index.rename(saved)
    index.mkdir()
    broker.start()
    assert broker.wait_for_log(r"log dir is offline after a storage error")
    check_second_dir_offline(broker, second, healthy_values)
    dirs = log_dirs_by_path(broker)
    assert dirs[os.path.realpath(data)]["error_code"] == 0
    assert not (data / "lost-0").exists()
    broker.kill()

    index.rmdir()
    saved.rename(index)
    broker.start()
    check_both_dirs_back(broker, lost_values, healthy_values)
    assert [d["error_code"] for d in log_dirs_by_path(broker).values()] == [0, 0]
