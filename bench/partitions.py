"""Many partitions on one broker: creation, produce, memory, descriptors, stop and restart.

    .venv/bin/python bench/partitions.py                      # 10,000 partitions (100 x 100)
    .venv/bin/python bench/partitions.py --partitions 2000 --nofile 4096

Starts `target/release/strom server` on a fresh data dir (under `--nofile N` when
given: RLIMIT_NOFILE set before exec), creates the partitions (`--per-topic` per
topic, `--topics-per-request` topics per CreateTopics request), produces one
record to each (acks=all) and measures: CreateTopics time, produce-to-all time,
idle resident memory (VmRSS), open descriptors, SIGTERM-to-exit time,
restart-to-full-metadata time (until Metadata lists every created partition with
a leader and a consume from a sample of partitions works), then reads every
partition's record back and checks its exact value. Prints a table and a JSON
line. A phase that fails is recorded with its error and the broker's log lines
that explain it; the script goes on where the later phases still mean something.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Run:
    """One broker process on a data dir that outlives restarts."""

    def __init__(self, binary: Path, workdir: Path, nofile: int | None):
        self.binary = binary
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.nofile = nofile
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.logs: list[Path] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        log = self.workdir / f"broker.{self.starts}.log"
        self.logs.append(log)
        nofile = self.nofile

        def limit_descriptors():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_") or k == "STROM_LOG"}
        cmd = [str(self.binary), "server",
               "--set", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
               "--set", f"log.dirs={self.data_dir}",
               "--set", "strom.metrics.listener=127.0.0.1:0",
               "--set", "schema.registry.listeners=", "--set", "rest.proxy.listeners="]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=env, cwd=self.workdir, preexec_fn=limit_descriptors)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_listening(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"broker exited with {self.proc.returncode} while starting")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"broker not listening after {timeout_s}s")

    def terminate(self, timeout_s: float) -> tuple[float, int]:
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"broker still running {timeout_s}s after SIGTERM (killed)")
        return time.perf_counter() - started, code

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def log_excerpt(self, max_lines: int = 8) -> list[str]:
        """Distinct WARN/ERROR lines (numbers blanked so repeats collapse), most frequent first."""
        counts: dict[str, int] = {}
        first: dict[str, str] = {}
        for path in self.logs:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if " WARN " in line or " ERROR " in line or "panicked" in line:
                    plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
                    body = plain.split(" ", 1)[-1]
                    key = re.sub(r"\d+", "N", body)
                    counts[key] = counts.get(key, 0) + 1
                    first.setdefault(key, body)
        ranked = sorted(counts, key=lambda k: -counts[k])[:max_lines]
        return [f"{counts[k]}x {first[k][:300]}" for k in ranked]


def create_topics(run: Run, names: list[str], per_topic: int, per_request: int,
                  timeout_s: float) -> tuple[list[str], dict[str, str]]:
    admin = AdminClient({"bootstrap.servers": run.bootstrap, "socket.timeout.ms": int(min(timeout_s, 300) * 1000)})
    created, failed = [], {}
    for i in range(0, len(names), per_request):
        chunk = names[i:i + per_request]
        futures = admin.create_topics([NewTopic(n, per_topic, 1) for n in chunk],
                                      request_timeout=timeout_s, operation_timeout=timeout_s)
        for name, future in futures.items():
            try:
                future.result(timeout=timeout_s + 5)
                created.append(name)
            except Exception as e:  # KafkaException carrying the topic's error
                failed[name] = str(e.args[0] if e.args else e)
        if not run.alive():
            failed["(broker)"] = f"broker exited with {run.proc.returncode} during creation"
            break
    return created, failed


def produce_all(run: Run, partitions: list[tuple[str, int]], timeout_s: float) -> dict[str, int]:
    producer = Producer({"bootstrap.servers": run.bootstrap, "acks": "all", "linger.ms": 20,
                         "message.timeout.ms": int(timeout_s * 1000),
                         "queue.buffering.max.messages": max(100_000, len(partitions) * 2)})
    outcome = {"delivered": 0, "failed": 0}
    errors: dict[str, int] = {}

    def on_delivery(err, _msg):
        if err is None:
            outcome["delivered"] += 1
        else:
            outcome["failed"] += 1
            errors[err.name()] = errors.get(err.name(), 0) + 1

    for topic, p in partitions:
        producer.produce(topic, value=value_of(topic, p), key=b"k", partition=p, on_delivery=on_delivery)
        producer.poll(0)
    left = producer.flush(timeout_s)
    outcome["undelivered"] = left
    outcome["errors"] = errors
    return outcome


def value_of(topic: str, p: int) -> bytes:
    return f"{topic}/{p}".encode()


def wait_full_metadata(run: Run, partitions: list[tuple[str, int]], timeout_s: float) -> int:
    """Polls Metadata until every partition is listed with a leader; returns polls made."""
    wanted: dict[str, set[int]] = {}
    for topic, p in partitions:
        wanted.setdefault(topic, set()).add(p)
    admin = AdminClient({"bootstrap.servers": run.bootstrap})
    deadline = time.monotonic() + timeout_s
    polls = 0
    while True:
        polls += 1
        if not run.alive():
            raise RuntimeError(f"broker exited with {run.proc.returncode} while starting")
        try:
            md = admin.list_topics(timeout=10)
            if all(t in md.topics and all(p in md.topics[t].partitions and md.topics[t].partitions[p].leader >= 0
                                          for p in ps) for t, ps in wanted.items()):
                return polls
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"metadata incomplete after {timeout_s}s")
        time.sleep(0.1)


def read_back(run: Run, partitions: list[tuple[str, int]], timeout_s: float) -> dict:
    """Reads the one record of each partition and checks its value."""
    consumer = Consumer({"bootstrap.servers": run.bootstrap, "group.id": "strom-bench-partitions",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "fetch.wait.max.ms": 100})
    consumer.assign([TopicPartition(t, p, 0) for t, p in partitions])
    pending = set(partitions)
    wrong: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=1.0):
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        wrong.append(f"{msg.topic()}-{msg.partition()}: {msg.error()}")
                    continue
                key = (msg.topic(), msg.partition())
                if key in pending:
                    pending.discard(key)
                    if msg.value() != value_of(*key) or msg.offset() != 0:
                        wrong.append(f"{key}: offset {msg.offset()} value {msg.value()!r}")
    finally:
        consumer.close()
    return {"read": len(partitions) - len(pending), "missing": len(pending), "wrong": wrong[:10],
            "wrong_count": len(wrong)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--per-topic", type=int, default=100)
    parser.add_argument("--topics-per-request", type=int, default=10)
    parser.add_argument("--nofile", type=int, help="RLIMIT_NOFILE for the broker (default: inherited)")
    parser.add_argument("--sample", type=int, default=50, help="partitions consumed to call a restart complete")
    parser.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "strom")
    parser.add_argument("--workdir", type=Path, help="default: a temp dir, removed unless --keep")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per phase")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="strom-partitions-"))
    if workdir.exists() and args.workdir:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    run = Run(args.bin, workdir, args.nofile)
    topics = -(-args.partitions // args.per_topic)
    names = [f"scale-{i:04d}" for i in range(topics)]
    nofile = args.nofile or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    result: dict = {"partitions_requested": topics * args.per_topic, "topics": topics,
                    "per_topic": args.per_topic, "nofile": nofile, "errors": {}}
    errors = result["errors"]
    try:
        run.start()
        run.wait_listening(60)

        started = time.perf_counter()
        created, failed = create_topics(run, names, args.per_topic, args.topics_per_request, args.timeout)
        result["create_s"] = round(time.perf_counter() - started, 2)
        result["topics_created"] = len(created)
        if failed:
            errors["create"] = {"failed_topics": len(failed),
                                "first": dict(list(failed.items())[:3])}
        partitions = [(t, p) for t in created for p in range(args.per_topic)]
        result["partitions_created"] = len(partitions)
        if not run.alive():
            raise RuntimeError("broker died during creation")

        started = time.perf_counter()
        produced = produce_all(run, partitions, args.timeout)
        result["produce_s"] = round(time.perf_counter() - started, 2)
        result["produced"] = produced["delivered"]
        if produced["failed"] or produced["undelivered"]:
            errors["produce"] = produced

        time.sleep(2)
        result["rss_idle_mib"] = round(run.rss_mib(), 1)
        result["open_fds"] = run.open_fds()
        try:
            with socket.create_connection(("127.0.0.1", run.port), timeout=5) as s:
                s.sendall(b"\0\0\0\x0a\0\x12\0\0\0\0\0\x01\xff\xff")  # ApiVersions v0, client id null
                s.settimeout(5)
                result["new_connection_ok"] = len(s.recv(4)) == 4
        except OSError as e:
            result["new_connection_ok"] = False
            errors["new_connection"] = str(e)

        stop_s, code = run.terminate(args.timeout)
        result["sigterm_exit_s"] = round(stop_s, 2)
        result["exit_code"] = code
        # One marker for the log dir (Kafka's LogManager); a partition dir keeping its own is a leftover.
        markers = int((run.data_dir / ".kafka_cleanshutdown").is_file())
        result["partition_markers_left"] = sum(1 for t, p in partitions if (run.data_dir / f"{t}-{p}" / ".kafka_cleanshutdown").exists())
        result["clean_shutdown_markers"] = markers

        started = time.perf_counter()
        run.start()
        run.wait_listening(args.timeout)
        wait_full_metadata(run, partitions, args.timeout)
        sample = random.Random(7).sample(partitions, min(args.sample, len(partitions)))
        sampled = read_back(run, sample, args.timeout)
        result["restart_s"] = round(time.perf_counter() - started, 2)
        if sampled["missing"] or sampled["wrong_count"]:
            errors["restart_sample"] = sampled

        started = time.perf_counter()
        readback = read_back(run, partitions, args.timeout)
        result["read_all_s"] = round(time.perf_counter() - started, 2)
        result["read_back"] = readback["read"]
        if readback["missing"] or readback["wrong_count"]:
            errors["read_back"] = readback
        result["rss_after_restart_mib"] = round(run.rss_mib(), 1)
        stop_s, code = run.terminate(args.timeout)
        result["second_sigterm_exit_s"] = round(stop_s, 2)
        result["second_exit_code"] = code
    except Exception as e:
        errors["fatal"] = f"{type(e).__name__}: {e}"
    finally:
        if run.alive():
            run.proc.kill()
            run.proc.wait()
        result["broker_log"] = run.log_excerpt()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            result["workdir"] = str(workdir)

    rows = [("partitions created", "partitions_created"), ("CreateTopics total (s)", "create_s"),
            ("produce to all, acks=all (s)", "produce_s"), ("records acknowledged", "produced"),
            ("RSS idle (MiB)", "rss_idle_mib"), ("open descriptors", "open_fds"),
            ("new connection accepted", "new_connection_ok"), ("SIGTERM to exit (s)", "sigterm_exit_s"),
            ("exit code", "exit_code"), ("clean-shutdown markers", "clean_shutdown_markers"),
            ("restart to full metadata + sample (s)", "restart_s"), ("records read back", "read_back"),
            ("read all (s)", "read_all_s"), ("RSS after restart + read (MiB)", "rss_after_restart_mib"),
            ("second SIGTERM to exit (s)", "second_sigterm_exit_s")]
    print(f"{result['partitions_requested']} partitions ({topics} topics x {args.per_topic}), nofile {nofile}")
    for label, key in rows:
        print(f"  {label:<40} {result.get(key, '-')}")
    for phase, error in errors.items():
        print(f"  ERROR {phase}: {json.dumps(error)[:600]}")
    for line in result["broker_log"]:
        print(f"  log: {line}")
    print(json.dumps(result))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
