#!/usr/bin/env python3
"""Captures the request frames real clients send to strom, as seeds for the `broker` fuzz target.

Starts target/release/strom with its advertised listener pointing at a small TCP proxy in this
process, so every connection of confluent-kafka, kafka-python and kcat (bootstrap and the ones
metadata sends them to) goes through the proxy; each client-to-broker frame is written, without
its size prefix, to fuzz/seeds/broker/. Frames are deduplicated by content and, per api key and
version, at most a few are kept (the smallest and a spread of the rest). The record batches the
clients produced, read back from the broker's segment files (base offset 0 again, as sent), seed
the batch targets (validate, record, compression: an options byte, then the batch), and a few
runs of captured frames with their size prefixes seed the frame splitter.

    .venv/bin/python fuzz/capture_seeds.py        # rewrites fuzz/seeds/broker/

The fuzzing broker (strom_broker::fuzzing::FuzzBroker::start_seeded) creates the topics these
sessions create and sends their InitProducerId calls in the same order, so the seeds' producer
ids are issued ones there too: keep the two in step (`cargo test -p strom-broker fuzzing`
replays the seeds and fails when they are not).
"""

from __future__ import annotations

import collections
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds" / "broker"
SEEDS = ROOT / "fuzz" / "seeds"
PER_API_VERSION = 6
BATCHES_PER_CODEC = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """Forwards 127.0.0.1:listen to 127.0.0.1:target and records client frames."""

    def __init__(self, listen: int, target: int):
        self.listen, self.target = listen, target
        self.frames: list[bytes] = []
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", listen))
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        while True:
            client, _ = self.server.accept()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self.pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(upstream, client, False), daemon=True).start()

    def pump(self, src: socket.socket, dst: socket.socket, record: bool) -> None:
        pending = b""
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if not record:
                    continue
                pending += data
                while len(pending) >= 4:
                    size = struct.unpack(">i", pending[:4])[0]
                    if len(pending) < 4 + size:
                        break
                    with self.lock:
                        self.frames.append(pending[4:4 + size])
                    pending = pending[4 + size:]
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def wait_port(port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def confluent_session(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import (AdminClient, ConfigResource, NewPartitions, NewTopic,
                                       AlterConfigOpType, ConfigEntry)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = ["seed-plain", "seed-compact", "seed-txn"]
    fs = admin.create_topics([NewTopic("seed-plain", 3, 1), NewTopic("seed-compact", 1, 1, config={"cleanup.policy": "compact"}),
                              NewTopic("seed-txn", 2, 1)])
    for f in fs.values():
        f.result(30)
    admin.create_partitions([NewPartitions("seed-plain", 4)])["seed-plain"].result(30)
    res = ConfigResource(ConfigResource.Type.TOPIC, "seed-plain")
    admin.describe_configs([res])[res].result(30)
    admin.incremental_alter_configs([ConfigResource(ConfigResource.Type.TOPIC, "seed-plain", incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])])[res].result(30)
    admin.describe_cluster().result(30)

    for codec in ("none", "gzip", "snappy", "lz4", "zstd"):
        p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "enable.idempotence": codec != "none",
                      "linger.ms": 5})
        for i in range(20):
            p.produce("seed-plain", key=b"k%d" % i, value=(b"value-%d-" % i) * (1 + i % 4), partition=i % 4,
                      headers=[("h", b"v")] if i % 3 == 0 else None)
            p.produce("seed-compact", key=b"key-%d" % (i % 5), value=None if i % 7 == 0 else b"v%d" % i)
        p.flush(30)
    p = Producer({"bootstrap.servers": bootstrap, "acks": "0"})
    p.produce("seed-plain", b"acks-zero", partition=0)
    p.flush(30)

    # Transactions: produce, offsets in the transaction, commit; then an abort.
    tp = Producer({"bootstrap.servers": bootstrap, "transactional.id": "seed-txn-id"})
    tp.init_transactions(30)
    for commit in (True, False):
        tp.begin_transaction()
        for i in range(5):
            tp.produce("seed-txn", key=b"t%d" % i, value=b"txn", partition=i % 2)
        meta = Consumer({"bootstrap.servers": bootstrap, "group.id": "seed-txn-group"}).consumer_group_metadata()
        tp.send_offsets_to_transaction([TopicPartition("seed-plain", 0, 5)], meta, 30)
        tp.commit_transaction(30) if commit else tp.abort_transaction(30)

    # Consumers: the classic protocol and KIP-848's, read_committed too.
    for props in ({"group.id": "seed-classic"},
                  {"group.id": "seed-848", "group.protocol": "consumer"},
                  {"group.id": "seed-rc", "isolation.level": "read_committed", "group.instance.id": "static-1"}):
        c = Consumer({"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest",
                      "enable.auto.commit": False, **props})
        c.subscribe(["seed-plain", "seed-txn"])
        got, deadline = 0, time.monotonic() + 20
        while got < 40 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got += 1
        c.commit(asynchronous=False)
        c.committed([TopicPartition("seed-plain", 0)], 10)
        c.get_watermark_offsets(TopicPartition("seed-plain", 0), 10, cached=False)
        c.offsets_for_times([TopicPartition("seed-plain", 0, int(time.time() * 1000) - 60_000)], 10)
        c.close()
    admin.list_consumer_groups().result(30)
    admin.describe_consumer_groups(["seed-classic", "seed-848"])["seed-classic"].result(30)
    admin.list_consumer_group_offsets([__import__("confluent_kafka").ConsumerGroupTopicPartitions("seed-classic")])
    admin.delete_records([TopicPartition("seed-plain", 1, 2)])
    time.sleep(1)
    admin.delete_consumer_groups(["seed-classic"])["seed-classic"].result(30)
    admin.delete_topics(["seed-txn"])["seed-txn"].result(30)


def kafka_python_session(bootstrap: str) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
    from kafka.protocol.admin.topics import ElectionType

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic("seed-kp", 2, 1)])
    admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "seed-kp")])
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, "seed-kp", configs={"retention.ms": "7200000"})],
                        incremental=False)
    admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
    for codec in (None, "gzip", "lz4", "zstd"):
        p = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, linger_ms=5)
        for i in range(10):
            p.send("seed-kp", key=b"kp%d" % i, value=b"kafka-python-%d" % i, headers=[("x", b"y")])
        p.flush(30)
        p.close()
    c = KafkaConsumer("seed-kp", bootstrap_servers=bootstrap, group_id="seed-kp-group",
                      auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5000)
    n = 0
    for _ in c:
        n += 1
        if n >= 40:
            break
    c.commit()
    c.end_offsets([TopicPartition("seed-kp", 0)])
    c.beginning_offsets([TopicPartition("seed-kp", 0)])
    c.close()
    # Calls whose answer does not matter here: only the requests they send are kept.
    for call, args in ((admin.list_groups, ()), (admin.describe_groups, (["seed-kp-group"],)),
                       (admin.list_group_offsets, ("seed-kp-group",)), (admin.describe_cluster, ()),
                       (admin.describe_log_dirs, ()), (admin.describe_topics, (["seed-kp"],)),
                       (admin.list_transactions, ()), (admin.describe_transactions, (["seed-txn-id"],)),
                       (admin.describe_producers, ([TopicPartition("seed-kp", 0)],)),
                       (admin.describe_metadata_quorum, ()), (admin.list_partition_reassignments, ()),
                       (admin.list_config_resources, ()), (admin.delete_records, ({TopicPartition("seed-kp", 0): 1},)),
                       (admin.elect_leaders, (ElectionType(0), [TopicPartition("seed-kp", 0)])),
                       (admin.alter_configs, ([ConfigResource(ConfigResourceType.TOPIC, "seed-kp",
                                                              configs={"retention.ms": "3600000"})],),
                        ),
                       (admin.alter_partition_reassignments, ({TopicPartition("seed-kp", 1): [1]},)),
                       (admin.delete_group_offsets, ("seed-kp-group", [TopicPartition("seed-kp", 0)])),
                       (admin.delete_groups, (["seed-kp-group"],))):
        try:
            call(*args)
        except Exception as e:  # noqa: BLE001
            print(f"  {call.__name__}: {type(e).__name__}: {str(e)[:80]}")
    admin.delete_topics(["seed-kp"])
    admin.close()


def kcat_session(bootstrap: str) -> None:
    run = lambda *args, **kw: subprocess.run(["kcat", "-b", bootstrap, *args], check=True, timeout=60,
                                             capture_output=True, **kw)
    run("-L")
    run("-P", "-t", "seed-kcat", "-K:", "-z", "snappy", input=b"a:1\nb:2\nc:3\n")
    run("-C", "-t", "seed-kcat", "-o", "beginning", "-e", "-c", "3")
    run("-Q", "-t", f"seed-kcat:0:{int(time.time() * 1000) - 60_000}")
    run("-G", "seed-kcat-group", "-o", "beginning", "-e", "-c", "3", "seed-kcat")


def select(frames: list[bytes]) -> dict[str, bytes]:
    """Unique frames, at most PER_API_VERSION per (api key, version): the smallest and a spread."""
    by_api = collections.defaultdict(set)
    for f in frames:
        if len(f) >= 8:
            by_api[struct.unpack(">hh", f[:4])].add(f)
    chosen = {}
    for (key, version), group in sorted(by_api.items()):
        ordered = sorted(group, key=lambda f: (len(f), f))
        step = max(1, len(ordered) // PER_API_VERSION)
        for f in ordered[::step][:PER_API_VERSION]:
            chosen[f"api{key:02d}-v{version:02d}-{hashlib.sha1(f).hexdigest()[:16]}"] = f
    return chosen


def stored_batches(data: Path) -> list[bytes]:
    """Every record batch in the segment files under `data` (internal topics left out), with
    its base offset and leader epoch as a producer sends them."""
    batches = []
    for log in sorted(data.glob("*/*.log")):
        if log.parent.name.startswith("__"):
            continue
        raw = log.read_bytes()
        at = 0
        while at + 12 <= len(raw):
            size = struct.unpack(">i", raw[at + 8:at + 12])[0]
            if size <= 0 or at + 12 + size > len(raw):
                break
            batch = bytearray(raw[at:at + 12 + size])
            batch[0:8] = b"\0" * 8
            batch[12:16] = struct.pack(">i", -1)
            batches.append(bytes(batch))
            at += 12 + size
    return batches


def write_batch_seeds(batches: list[bytes]) -> int:
    """A spread of batches per codec (attributes' low bits), unique, for the batch targets."""
    by_codec = collections.defaultdict(set)
    for b in batches:
        if len(b) >= 61 and not struct.unpack(">h", b[21:23])[0] & 0x20:  # control batches left out
            by_codec[struct.unpack(">h", b[21:23])[0] & 0x7].add(b)
    kept = []
    for codec, group in sorted(by_codec.items()):
        ordered = sorted(group, key=lambda b: (len(b), b))
        step = max(1, len(ordered) // BATCHES_PER_CODEC)
        kept += ordered[::step][:BATCHES_PER_CODEC]
    for target in ("validate", "record", "compression"):
        out = SEEDS / target
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for i, b in enumerate(kept):
            # Options: 0 keeps the captured CRC (recomputed to the same value); the low bits pick
            # the rules or target codec, spread over the seeds.
            seed = bytes([i % 6]) + b
            (out / f"batch-{hashlib.sha1(seed).hexdigest()[:16]}").write_bytes(seed)
    return len(kept)


def write_frame_seeds(frames: list[bytes]) -> None:
    out = SEEDS / "frame"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    small = sorted({f for f in frames if len(f) < 512}, key=lambda f: (len(f), f))
    for i, chunk in enumerate((1, 7, 64, 255)):
        run = small[i * 3:i * 3 + 3]
        seed = bytes([chunk]) + b"".join(struct.pack(">i", len(f)) + f for f in run)
        (out / f"frames-{hashlib.sha1(seed).hexdigest()[:16]}").write_bytes(seed)


def main() -> None:
    strom = Path(os.environ.get("STROM_BIN", ROOT / "target/release/strom"))
    broker_port, proxy_port = free_port(), free_port()
    proxy = Proxy(proxy_port, broker_port)
    data = Path(tempfile.mkdtemp(prefix="strom-seeds-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
    proc = subprocess.Popen([str(strom), "server",
                             "--set", f"listeners=PLAINTEXT://127.0.0.1:{broker_port}",
                             "--set", f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}",
                             "--set", f"log.dirs={data}", "--set", "group.initial.rebalance.delay.ms=0"],
                            env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        wait_port(broker_port)
        bootstrap = f"127.0.0.1:{proxy_port}"
        for session in (confluent_session, kafka_python_session, kcat_session):
            print(f"{session.__name__} ...", flush=True)
            session(bootstrap)
        time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(30)
        batches = stored_batches(data)
        shutil.rmtree(data, ignore_errors=True)
    with proxy.lock:
        frames = list(proxy.frames)
    print(f"{write_batch_seeds(batches)} of {len(batches)} stored batches kept as batch seeds")
    write_frame_seeds(frames)
    chosen = select(frames)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    for name, f in chosen.items():
        (OUT / name).write_bytes(f)
    apis = sorted({name[:6] for name in chosen})
    print(f"{len(frames)} frames captured, {len(chosen)} kept in {OUT.relative_to(ROOT)} "
          f"({len(apis)} api keys: {' '.join(apis)})")


if __name__ == "__main__":
    sys.exit(main())
