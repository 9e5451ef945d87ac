"""The three-broker runs of bench/run: `strom dev cluster --brokers 3` on this machine.

- Replication: the same produce workload (acks=all, 3 partitions, 2 producers) to a topic
  with replication factor 1 and to one with replication factor 3, alternately, on one cluster.
- Failover: an idempotent librdkafka producer (bench/rdkafka-load) writes at a fixed rate to a
  partition with replication factor 3 and min.insync.replicas=2 while its leader is killed
  with `kill -9`; the longest a record waited, from its scheduled send time to its
  acknowledgement, is the time from the leader's death to producing again (the record sent
  just after the kill waits longest). One fresh cluster per sample, since the killed broker
  is not restarted.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

BROKERS = 3
# Short enough that a fenced broker's leadership moves in seconds (Kafka's defaults: 9000 and 2000).
FAST_SESSION = {"broker.session.timeout.ms": "2000", "broker.heartbeat.interval.ms": "250"}


class CliError(Exception):
    pass


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_base_port() -> int:
    """A base port whose 3 x 3 ports (clients, controllers, metrics) are free, below Linux's
    ephemeral range so no outgoing connection takes one meanwhile."""
    for _ in range(500):
        base = random.randrange(20000, 32000)
        if all(port_free(base + offset + i) for offset in (0, 100, 200) for i in range(BROKERS)):
            return base
    raise SystemExit("bench/run: no free block of ports for the cluster")


class DevCluster:
    """`strom dev cluster --brokers 3` in a temporary folder; stop() ends it and removes the folder."""

    def __init__(self, strom: Path, settings: dict[str, str] | None = None, ready_timeout_s: float = 90):
        self.strom = strom
        self.dir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
        self.base = free_base_port()
        cmd = [str(strom), "dev", "cluster", "--brokers", str(BROKERS), "--dir", str(self.dir / "nodes"),
               "--base-port", str(self.base)]
        for name, value in (settings or {}).items():
            cmd += ["--set", f"{name}={value}"]
        self.log_path = self.dir / "dev-cluster.log"
        self.log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL,
                                     env=env, text=True)
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(ready_timeout_s)
        if not ready or not ready[0].startswith("bootstrap servers:"):
            self.stop(keep=True)
            raise SystemExit(f"bench/run: the dev cluster did not start; see {self.log_path}")
        self.bootstrap = ready[0].split(":", 1)[1].strip()
        self.pids = {int(m.group(1)): int(m.group(2))
                     for m in re.finditer(r"broker (\d+) \(pid (\d+)\)", self.log_path.read_text())}

    def cli(self, *args: str, timeout_s: float = 60) -> str:
        proc = subprocess.run([str(self.strom), *args, "--brokers", self.bootstrap], capture_output=True,
                              text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise CliError(f"bench/run: strom {' '.join(args)} exited {proc.returncode}: {proc.stderr[-1000:]}")
        return proc.stdout

    def partitions(self, topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
        """partition -> (leader, replicas, ISR), from `strom topic describe`."""
        rows = {}
        for line in self.cli("topic", "describe", topic).splitlines():
            m = re.match(r"^\s*(\d+)\s+(-?\d+)\s+\d+\s+([\d,]+)\s+([\d,]+)\s", line)
            if m:
                rows[int(m.group(1))] = (int(m.group(2)), [int(x) for x in m.group(3).split(",")],
                                         [int(x) for x in m.group(4).split(",")])
        return rows

    def create_topic(self, topic: str, partitions: int, replication: int, configs: dict[str, str] | None = None,
                     timeout_s: float = 60) -> None:
        args = ["topic", "create", topic, "-p", str(partitions), "-r", str(replication)]
        for name, value in (configs or {}).items():
            args += ["--config", f"{name}={value}"]
        self.cli(*args)
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                rows = self.partitions(topic)
            except CliError as e:  # a broker that has not applied the creation yet
                rows, last = {}, e
            if len(rows) == partitions and all(leader >= 0 and len(isr) == replication
                                               for leader, _, isr in rows.values()):
                return
            time.sleep(0.2)
        raise SystemExit(f"bench/run: topic {topic} was not led with a full ISR within {timeout_s} s ({last})")

    def controller(self) -> int | None:
        m = re.search(r"CONTROLLER\s+(\d+)", self.cli("cluster", "status"))
        return int(m.group(1)) if m else None

    def cpu(self) -> float:
        """CPU seconds of every broker still running."""
        total = 0.0
        for pid in self.pids.values():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self, keep: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.pids.values() if hasattr(self, "pids") else ():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def replication_rows(strom: Path, workloads: list[dict], pairs: list[str], run_tool, produce_cmd,
                     check_count, row) -> list[dict]:
    """Each workload to a replication factor 1 and a replication factor 3 topic on one cluster,
    for each generator in `pairs`; rows carry `replication`."""
    cluster = DevCluster(strom)
    rows = []
    try:
        for w in workloads:
            for gen in pairs:
                for rf in (1, 3):
                    topic = f"rf{rf}-" + "".join(c if c.isalnum() else "-" for c in f"{gen}-{w['name']}")
                    cluster.create_topic(topic, w["partitions"], rf)
                    cpu0 = cluster.cpu()
                    report, tool_cpu = run_tool(produce_cmd(gen, cluster.bootstrap, topic, w), w["timeout_s"])
                    check_count(report, w["records"], f"{gen} on the cluster, rf{rf}, {w['name']}")
                    r = row("strom cluster", gen, w, "produce", report, cluster.cpu() - cpu0, tool_cpu)
                    rows.append({**r, "replication": rf})
    finally:
        cluster.stop()
    return rows


def lead_from(cluster: DevCluster, topic: str, target: int, timeout_s: float = 60) -> None:
    """Makes `target` partition 0's preferred replica (a reordering reassignment) and its leader."""
    replicas = [target] + sorted(b for b in cluster.pids if b != target)
    cluster.cli("cluster", "reassign", "--topic", topic, "--partition", "0",
                "--replicas", ",".join(map(str, replicas)))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        leader, order, isr = cluster.partitions(topic)[0]
        if leader == target and len(isr) == len(replicas):
            return
        if order == replicas:
            try:
                cluster.cli("cluster", "elect-leaders", "--topic", topic)
            except CliError:  # not needed yet, or an election already under way
                pass
        time.sleep(0.2)
    raise SystemExit(f"bench/run: broker {target} did not become the leader of {topic} within {timeout_s} s")


def failover_sample(strom: Path, rdkafka: Path, settings: dict[str, str], rate: int, seconds: float,
                    kill_after_s: float, run_tool, kill_controller: bool) -> dict:
    """One kill -9 of a partition leader under a fixed-rate idempotent acks=all producer; the
    leader is the active controller too when `kill_controller`, and another broker otherwise."""
    cluster = DevCluster(strom, settings)
    try:
        topic = "failover"
        cluster.create_topic(topic, 1, 3, {"min.insync.replicas": "2"})
        controller = cluster.controller()
        if controller is None:
            raise SystemExit("bench/run: the cluster reports no active controller")
        lead_from(cluster, topic, controller if kill_controller else min(b for b in cluster.pids if b != controller))
        records = int(rate * seconds)
        cmd = [str(rdkafka), "produce", "--bootstrap", cluster.bootstrap, "--topic", topic,
               "--records", str(records), "--size", "100", "--acks", "-1", "--partitions", "1",
               "--producers", "1", "--linger-ms", "5", "--rate", str(rate), "--idempotence", "true"]
        result: dict = {}
        producer = threading.Thread(target=lambda: result.update(zip(("report", "cpu"), run_tool(cmd, seconds + 120))),
                                    daemon=True)
        producer.start()
        time.sleep(kill_after_s)
        leader = cluster.partitions(topic)[0][0]
        controller = cluster.controller()
        os.kill(cluster.pids[leader], signal.SIGKILL)
        producer.join(seconds + 150)
        if "report" not in result:
            raise SystemExit("bench/run: the failover producer did not finish")
        report = result["report"]
        if report.get("records") != records:
            raise SystemExit(f"bench/run: the failover producer reported {report.get('records')} records, "
                             f"not {records}")
        new_leader = cluster.partitions(topic)[0][0]
        latency = report.get("latency_ms") or {}
        return {"session_timeout_ms": int(settings.get("broker.session.timeout.ms", 9000)),
                "heartbeat_ms": int(settings.get("broker.heartbeat.interval.ms", 2000)),
                "rate": rate, "records": records, "killed": leader, "killed_controller": leader == controller,
                "new_leader": new_leader, "max_ms": latency.get("max"), "p999_ms": latency.get("p999"),
                "p99_ms": latency.get("p99"), "p50_ms": latency.get("p50")}
    finally:
        cluster.stop()


def failover_rows(strom: Path, rdkafka: Path, samples: int, rate: int, seconds: float, run_tool,
                  log) -> list[dict]:
    """`samples` kills for each session setting; the killed leader is by turns another broker
    and the active controller, counted across both settings so that each has both kinds."""
    out = []
    for settings, label in ((FAST_SESSION, "session 2 s"), ({}, "Kafka's defaults")):
        for i in range(samples):
            kill_controller = len(out) % 2 == 1
            log(f"cluster failover ({label}), sample {i + 1} of {samples}, "
                f"{'the controller' if kill_controller else 'a leader alone'}")
            out.append(failover_sample(strom, rdkafka, settings, rate, seconds, seconds / 3, run_tool,
                                       kill_controller))
    return out


def table(rows: list[dict], failovers: list[dict], tansu_rows: dict, fmt, ratio) -> list[str]:
    """The cluster section of the bench/run table."""
    lines: list[str] = []
    if rows:
        lines += [
            "",
            "Three brokers (`strom dev cluster --brokers 3`, each broker also a metadata voter, default "
            "configs) on the same 2 cores as the client: produce with acks=all to a topic of replication "
            "factor 1 and one of factor 3, alternately on one cluster, MB/s (records/s). Tansu 0.6.0 "
            "does not replicate; its column is the same workload on one Tansu broker (memory engine).",
            "",
            "| workload | generator | RF 1 | RF 3 | RF 3 ÷ RF 1 | RF 3 p99 ms | Tansu · rdk | RF 3 ÷ Tansu | CPU s (RF 1; RF 3) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        by = {(r["generator"], r["workload"], r["replication"]): r for r in rows}
        for gen, workload in dict.fromkeys((r["generator"], r["workload"]) for r in rows):
            one, three = by.get((gen, workload, 1)), by.get((gen, workload, 3))
            tansu = tansu_rows.get(workload) if gen == "rdkafka" else None
            cell = lambda r: "–" if r is None else f"{fmt(r['mb_per_s'], 1)} ({fmt(r['records_per_s'])})"
            lines.append(
                f"| {workload} | {'perf' if gen == 'strom perf' else 'rdk'} | {cell(one)} | {cell(three)} | "
                f"{ratio(three and three['mb_per_s'], one and one['mb_per_s'])} | "
                f"{three['p99_ms'] if three else '–'} | {cell(tansu)} | "
                f"{ratio(three and three['mb_per_s'], tansu and tansu['mb_per_s'])} | "
                f"{one['broker_cpu_s'] if one else '–'}; {three['broker_cpu_s'] if three else '–'} |")
    if failovers:
        lines += [
            "",
            "Failover: kill -9 of a partition's leader (replication factor 3, min.insync.replicas=2) under "
            "an idempotent acks=all librdkafka producer at a fixed rate of 100 B records; the longest "
            "a record waited (scheduled send to acknowledgement) is the time from the leader's death "
            "to producing again. A fresh cluster per sample.",
            "",
            "| broker.session.timeout.ms / heartbeat ms | rate, records/s | killed (was controller?) | new leader | max ms | p99.9 ms | p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in failovers:
            lines.append(f"| {f['session_timeout_ms']} / {f['heartbeat_ms']} | {fmt(f['rate'])} | "
                         f"{f['killed']} ({'yes' if f['killed_controller'] else 'no'}) | {f['new_leader']} | "
                         f"{f['max_ms']} | {f['p999_ms']} | {f['p99_ms']} |")
    return lines
