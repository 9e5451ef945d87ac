"""Shared pieces of the consumer-group tests (tests/test_groups_*.py); holds no tests itself.

- `GroupWorker`: one confluent-kafka consumer in its own process (so it can be `kill -9`ed),
  subscribed to topics in a group. It reports everything as JSON lines on stdout (assignment
  changes, every record, every commit, errors) and obeys `close` on stdin.
  The same file is the worker's program: `python test_groups_support.py worker '<json>'`.
- `broker_api_keys()` / `requires_api()`: skip marks on what the committed binary advertises
  (JoinGroup = 11 for the classic protocol, ConsumerGroupHeartbeat = 68 for KIP-848), probed
  once per run by starting the binary on a scratch data dir.
- raw-wire Heartbeat/JoinGroup, for error codes a real client only surfaces as a log line.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

API_JOIN_GROUP = 11
API_HEARTBEAT = 12
API_CONSUMER_GROUP_HEARTBEAT = 68

# Broker configs for every group test: no 3 s wait before the first rebalance of a new group.
GROUP_BROKER_CONFIGS = {"group.initial.rebalance.delay.ms": "0"}

# Consumer settings that make rebalances fast without touching what is being tested.
FAST_CONSUMER = {
    "session.timeout.ms": 6000,       # the broker's group.min.session.timeout.ms
    "heartbeat.interval.ms": 300,
    "fetch.wait.max.ms": 100,
    "topic.metadata.refresh.interval.ms": 2000,
}


# --- what the binary serves ---------------------------------------------------

@functools.lru_cache(maxsize=1)
def broker_api_keys() -> frozenset | None:
    """The API keys the broker binary advertises, or None if it cannot be started (then nothing is
    skipped and the tests fail on their own fixtures, which say why)."""
    import conftest  # tests/ is on sys.path (pytest's rootdir-relative import)

    if not conftest.strom_bin().exists():
        return None
    workdir = Path(tempfile.mkdtemp(prefix="strom-apiprobe-"))
    b = conftest.Broker(workdir)
    try:
        b.start()
        import kwire
        with kwire.connect(b.host, b.port) as sock:
            return frozenset(kwire.api_versions(sock).versions)
    except Exception:
        return None
    finally:
        if b.running():
            b.kill()
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)


def lacks_api(key: int) -> bool:
    keys = broker_api_keys()
    return keys is not None and key not in keys


def requires_classic_groups():
    import pytest
    return pytest.mark.skipif(lacks_api(API_JOIN_GROUP),
                              reason="broker does not advertise JoinGroup (11) yet: classic groups not landed")


def requires_kip848():
    import pytest
    return pytest.mark.skipif(lacks_api(API_CONSUMER_GROUP_HEARTBEAT),
                              reason="broker does not advertise ConsumerGroupHeartbeat (68): KIP-848 not landed")


# --- the consumer worker (parent side) ----------------------------------------

class GroupWorker:
    """A confluent-kafka consumer in a child process; `events` is everything it reported."""

    def __init__(self, bootstrap: str, group: str, topics: list[str], name: str, conf: dict | None = None,
                 commit: bool = True, stats: bool = False):
        self.name = name
        spec = {"bootstrap": bootstrap, "group": group, "topics": topics, "name": name,
                "conf": conf or {}, "commit": commit, "stats": stats}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "worker", json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.events: list[dict] = []
        self.stderr_lines: list[str] = []
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _read(self):
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"ev": "garbage", "line": line}
            ev["t"] = time.monotonic()
            with self._cv:
                self.events.append(ev)
                self._cv.notify_all()
        with self._cv:
            self.events.append({"ev": "eof", "t": time.monotonic()})
            self._cv.notify_all()

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.rstrip())

    # --- views -----------------------------------------------------------
    def snapshot(self) -> list[dict]:
        with self._cv:
            return list(self.events)

    def of(self, kind: str, since: int = 0) -> list[dict]:
        return [e for e in self.snapshot()[since:] if e["ev"] == kind]

    def mark(self) -> int:
        """An index into events, for 'what happened after this point'."""
        with self._cv:
            return len(self.events)

    def owned(self) -> set[int] | None:
        """Partitions of the current assignment (as last reported), None before the first report."""
        a = self.of("assignment")
        return None if not a else {p for _, p in a[-1]["parts"]}

    def owned_tp(self) -> set[tuple[str, int]] | None:
        """Like owned(), as (topic, partition) pairs (for multi-topic subscriptions)."""
        a = self.of("assignment")
        return None if not a else {(t, p) for t, p in a[-1]["parts"]}

    def records(self, since: int = 0) -> list[tuple[int, int, str]]:
        return [(e["p"], e["o"], e["v"]) for e in self.of("msg", since)]

    def committed(self) -> dict[int, int]:
        """Highest offset this member saw acknowledged by a commit, per partition."""
        out: dict[int, int] = {}
        for e in self.of("commit"):
            for _, p, o in e["offsets"]:
                out[p] = max(out.get(p, -1), o)
        return out

    def errors(self) -> list[dict]:
        return [e for e in self.snapshot() if e["ev"] in ("error", "error_cb", "commit_error")]

    def wait(self, pred, timeout_s: float = 30, what: str = "event"):
        deadline = time.monotonic() + timeout_s
        with self._cv:
            while True:
                got = pred(self)
                if got:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"worker {self.name}: timed out after {timeout_s}s waiting for {what}; "
                                         f"last events: {self.events[-8:]}; stderr: {self.stderr_lines[-10:]}")
                self._cv.wait(min(left, 0.2))

    # --- control ---------------------------------------------------------
    def send(self, cmd: str):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def close(self, timeout_s: float = 30) -> int:
        """Clean close (consumer.close(): LeaveGroup for dynamic members) and exit."""
        if self.proc.poll() is None:
            try:
                self.send("close")
            except (BrokenPipeError, OSError):
                pass
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"worker {self.name} did not close within {timeout_s}s; "
                                     f"stderr: {self.stderr_lines[-10:]}")
        self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        """kill -9: no LeaveGroup, no final commit; the broker only notices at the session timeout."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reader.join(5)

    def alive(self) -> bool:
        return self.proc.poll() is None


def stop_all(workers):
    for w in workers:
        if w.alive():
            w.kill()


def wait_assignments(workers, expected, timeout_s: float = 45, what: str = "assignment"):
    """Waits until each worker reports exactly its expected partitions. `expected` is a list of sets in
    worker order, or a callable (list of owned sets) -> bool."""
    deadline = time.monotonic() + timeout_s
    while True:
        owned = [w.owned() for w in workers]
        ok = expected(owned) if callable(expected) else owned == [set(e) for e in expected]
        if ok:
            return owned
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; owned: "
                                 f"{ {w.name: w.owned() for w in workers} }; errors: "
                                 f"{ {w.name: w.errors()[-3:] for w in workers} }")
        time.sleep(0.05)


def partitions_split(owned, total: int, sizes: list[int] | None = None) -> bool:
    """Every one of `total` partitions owned by exactly one worker (with these sizes, if given)."""
    if any(o is None for o in owned):
        return False
    flat = [p for o in owned for p in o]
    if sorted(flat) != list(range(total)):
        return False
    return sizes is None or sorted(len(o) for o in owned) == sorted(sizes)


def wait_consumed(workers, expected: dict[tuple[int, int], str], timeout_s: float = 45):
    """Waits until the workers together delivered every (partition, offset) in `expected` and each has
    acknowledged a commit up to its records."""
    def done():
        seen = {(p, o) for w in workers for p, o, _ in w.records()}
        return set(expected) <= seen
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            seen = {(p, o) for w in workers for p, o, _ in w.records()}
            missing = sorted(set(expected) - seen)
            raise AssertionError(f"timed out consuming: {len(missing)} records missing, first {missing[:10]}; owned: "
                                 f"{ {w.name: w.owned() for w in workers} }; errors: "
                                 f"{ {w.name: w.errors()[-3:] for w in workers} }")
        time.sleep(0.05)


def wait_committed(workers, positions: dict[int, int], timeout_s: float = 30):
    """Waits until, per partition, some worker acknowledged a commit of exactly `positions[p]`."""
    def done():
        best: dict[int, int] = {}
        for w in workers:
            for p, o in w.committed().items():
                best[p] = max(best.get(p, -1), o)
        return all(best.get(p, -1) >= o for p, o in positions.items())
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            raise AssertionError(f"commits not acknowledged within {timeout_s}s; want {positions}, have "
                                 f"{ {w.name: w.committed() for w in workers} }")
        time.sleep(0.05)


# --- raw wire (header v1, non-flexible versions only) --------------------------

def _s(v: str | None) -> bytes:
    import kwire
    return kwire.enc_string(v)


def raw_heartbeat_v3(broker, group: str, generation: int, member_id: str, instance_id: str | None) -> int:
    """Heartbeat v3; returns the error code."""
    import kwire
    body = _s(group) + struct.pack(">i", generation) + _s(member_id) + _s(instance_id)
    with kwire.connect(broker.host, broker.port) as sock:
        r = kwire.roundtrip(sock, API_HEARTBEAT, 3, 7, body)
        r.i32()  # throttle
        return r.i16()


def raw_join_group_v5(broker, group: str, member_id: str, instance_id: str | None, topics: list[str],
                      session_ms: int = 6000, rebalance_ms: int = 10000, protocol: str = "range",
                      timeout_s: float = 20) -> dict:
    """JoinGroup v5 with one consumer protocol; returns error code, generation, member id, leader."""
    import kwire
    # ConsumerProtocolSubscription v0: version, topics, user data.
    meta = struct.pack(">h", 0) + struct.pack(">i", len(topics)) + b"".join(_s(t) for t in topics) + struct.pack(">i", -1)
    body = (_s(group) + struct.pack(">ii", session_ms, rebalance_ms) + _s(member_id) + _s(instance_id)
            + _s("consumer") + struct.pack(">i", 1) + _s(protocol) + struct.pack(">i", len(meta)) + meta)
    with kwire.connect(broker.host, broker.port, timeout=timeout_s) as sock:
        r = kwire.roundtrip(sock, API_JOIN_GROUP, 5, 9, body)
        r.i32()  # throttle
        err = r.i16()
        generation = r.i32()
        proto = r.string()
        leader = r.string()
        member = r.string()
        return {"error": err, "generation": generation, "protocol": proto, "leader": leader, "member_id": member}


# --- the consumer worker (child side) -------------------------------------------

def _worker_main(spec: dict) -> int:
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    out_lock = threading.Lock()

    def emit(kind: str, **fields):
        line = json.dumps({"ev": kind, **fields})
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def tps(parts):
        return [[tp.topic, tp.partition] for tp in parts]

    def error_cb(err):
        emit("error_cb", code=err.code(), name=err.name(), str=err.str(), fatal=err.fatal())

    def stats_cb(text):
        try:
            cgrp = json.loads(text).get("cgrp")
        except ValueError:
            return
        if cgrp:
            emit("stats", cgrp=cgrp)

    conf = {"bootstrap.servers": spec["bootstrap"], "group.id": spec["group"], "client.id": spec["name"],
            "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False,
            "error_cb": error_cb}
    if spec.get("stats"):
        conf["statistics.interval.ms"] = 200
        conf["stats_cb"] = stats_cb
    conf.update(spec["conf"])

    c = Consumer(conf)
    commands: queue.Queue = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("close")  # parent went away

    threading.Thread(target=read_stdin, daemon=True).start()

    def on_assign(consumer, parts):
        emit("assign", parts=tps(parts))

    def on_revoke(consumer, parts):
        emit("revoke", parts=tps(parts))

    def on_lost(consumer, parts):
        emit("lost", parts=tps(parts))

    c.subscribe(spec["topics"], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit("started", pid=os.getpid())
    last_assignment = None
    fatal = False
    while True:
        try:
            cmd = commands.get_nowait()
        except queue.Empty:
            cmd = None
        if cmd == "close":
            c.close()
            emit("closed")
            return 0
        if fatal:
            time.sleep(0.05)
            continue
        msgs = c.consume(num_messages=500, timeout=0.1)
        try:
            assignment = sorted(tps(c.assignment()))
        except Exception as e:  # after a fatal error
            assignment = last_assignment
            emit("error", code=-1, name="assignment", str=str(e), fatal=True)
            fatal = True
        if assignment != last_assignment:
            last_assignment = assignment
            emit("assignment", parts=assignment)
        last: dict = {}
        for m in msgs:
            if m.error() is not None:
                err = m.error()
                # librdkafka hands a fatal error to the consumer as _FATAL (-150) with the cause in
                # the text (err.fatal() is not set on it).
                is_fatal = err.fatal() or err.code() == KafkaError._FATAL
                emit("error", code=err.code(), name=err.name(), str=err.str(), fatal=is_fatal)
                if is_fatal:
                    fatal = True
                continue
            v = m.value()
            emit("msg", topic=m.topic(), p=m.partition(), o=m.offset(),
                 v=None if v is None else v.decode(errors="replace"))
            last[(m.topic(), m.partition())] = m.offset() + 1
        if last and spec.get("commit", True) and not fatal:
            offsets = [TopicPartition(t, p, o) for (t, p), o in sorted(last.items())]
            try:
                res = c.commit(offsets=offsets, asynchronous=False)
                bad = [tp for tp in res if tp.error is not None]
                if bad:
                    emit("commit_error", offsets=[[tp.topic, tp.partition, tp.offset, tp.error.code()] for tp in bad])
                good = [tp for tp in res if tp.error is None]
                if good:
                    emit("commit", offsets=[[tp.topic, tp.partition, tp.offset] for tp in good])
            except Exception as e:
                err = e.args[0] if e.args else None
                code = err.code() if isinstance(err, KafkaError) else -1
                emit("commit_error", code=code, str=str(e),
                     offsets=[[t, p, o] for (t, p), o in sorted(last.items())])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        sys.exit(_worker_main(json.loads(sys.argv[2])))
    sys.exit(f"usage: {sys.argv[0]} worker '<json spec>'")
