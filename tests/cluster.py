"""Several `strom server` processes on 127.0.0.1 forming one cluster, each with its own data dir and
ports. By default every node is a broker and a voter of the metadata quorum
(process.roles=broker,controller); `roles` makes some controller-only (a CONTROLLER port only) or
broker-only (a client port only: an observer of the metadata log, which can also be added later
with `add_node`)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

import kwire
from conftest import Broker, BrokerError, free_port

# Short enough that failover takes seconds, not Kafka's 9 s session timeout.
FAST_FAILOVER = {
    "broker.session.timeout.ms": "2000",
    "broker.heartbeat.interval.ms": "250",
    "replica.lag.time.max.ms": "2000",
}


class ClusterNode(Broker):
    def __init__(self, workdir: Path, node_id: int, controller_port: int | None, configs: dict[str, str],
                 roles: str = "broker,controller"):
        super().__init__(workdir, configs)
        self.node_id = node_id
        self.controller_port = controller_port
        self.roles = roles
        self.paused = False

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles.split(",")

    @property
    def is_controller(self) -> bool:
        return "controller" in self.roles.split(",")

    def command(self) -> list[str]:
        cmd = super().command()
        listeners = []
        if self.is_broker:
            listeners.append(f"PLAINTEXT://{self.host}:{self.port}")
        if self.is_controller:
            listeners.append(f"CONTROLLER://{self.host}:{self.controller_port}")
        cmd[cmd.index(f"listeners=PLAINTEXT://{self.host}:{self.port}")] = f"listeners={','.join(listeners)}"
        if self.is_broker:
            cmd += ["--set", f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}"]
        return cmd

    def start(self, timeout_s: float = 60) -> "ClusterNode":
        self.paused = False
        return super().start(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        """Ready: a broker serves clients (it does once the controller unfenced it) and lists itself; a
        controller-only node has started (its quorum runs; it serves no clients)."""
        deadline = time.monotonic() + timeout_s
        if not self.is_broker:
            earlier_runs = sum(len(p.read_text(errors="replace")) for p in self.log_paths[:-1] if p.exists())
            self.wait_for_log("strom broker started", timeout_s, since=earlier_runs)
            return
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"node {self.node_id} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with kwire.connect(self.host, self.port, timeout=2.0) as sock:
                    md = kwire.metadata_v4(sock, [], False)
                    if any(b[0] == self.node_id for b in md.brokers):
                        return
                    raise BrokerError(f"metadata does not list node {self.node_id}: {md.brokers}")
            except (OSError, ValueError, BrokerError) as e:
                last_error = e
            time.sleep(0.1)
        raise BrokerError(f"node {self.node_id} not ready after {timeout_s}s ({last_error!r}):\n{self.log_tail()}")

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False


class Cluster:
    def __init__(self, workdir: Path, size: int = 3, configs: dict[str, str] | None = None,
                 roles: dict[int, str] | None = None):
        """`size` nodes 1..size; `roles` gives some of them other process.roles than broker,controller."""
        self.workdir = workdir
        self.configs = dict(configs or {})
        roles = {i: (roles or {}).get(i, "broker,controller") for i in range(1, size + 1)}
        controller_ports = {i: free_port() for i, r in roles.items() if "controller" in r.split(",")}
        self.voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in controller_ports.items())
        self.nodes: dict[int, ClusterNode] = {}
        for i, node_roles in roles.items():
            self.nodes[i] = self._node(i, node_roles, controller_ports.get(i))

    def _node(self, node_id: int, roles: str, controller_port: int | None) -> ClusterNode:
        node_configs = {
            "node.id": str(node_id),
            "process.roles": roles,
            "controller.quorum.voters": self.voters,
            "controller.listener.names": "CONTROLLER",
            **FAST_FAILOVER,
            **self.configs,
        }
        return ClusterNode(self.workdir / f"node{node_id}", node_id, controller_port, node_configs, roles)

    def add_node(self, node_id: int, roles: str = "broker") -> ClusterNode:
        """A broker-only node joining the running cluster (not started yet)."""
        assert node_id not in self.nodes and "controller" not in roles.split(",")
        self.nodes[node_id] = self._node(node_id, roles, None)
        return self.nodes[node_id]

    @property
    def brokers(self) -> dict[int, ClusterNode]:
        return {i: n for i, n in self.nodes.items() if n.is_broker}

    def start(self) -> "Cluster":
        # A node waits for a quorum before it serves clients: start all, then wait for each.
        for node in self.nodes.values():
            node.launch()
        for node in self.nodes.values():
            node.wait_ready(60)
        return self

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.brokers.values())

    def live_bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.brokers.values() if n.running() and not n.paused)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.live_bootstrap()})

    def partition(self, topic: str, index: int = 0):
        """(leader, replicas, isr) of a partition, as a live node's Metadata says."""
        md = self.admin().list_topics(topic, timeout=10)
        p = md.topics[topic].partitions[index]
        return p.leader, list(p.replicas), sorted(p.isrs)

    def controller(self) -> int:
        return self.admin().list_topics(timeout=10).controller_id

    def wait_for(self, what: str, predicate, timeout_s: float = 30):
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
                if last:
                    return last
            except Exception as e:  # a node going away mid-call: ask again
                last = e
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(f"----- node {i} -----\n{n.log_tail(40)}" for i, n in self.nodes.items())

    def stop_all(self) -> None:
        for node in self.nodes.values():
            if node.running():
                if node.paused:
                    node.resume()
                node.kill()

    def segment_bytes(self, node_id: int, topic: str, index: int) -> bytes:
        d = self.nodes[node_id].data_dir / f"{topic}-{index}"
        return b"".join(p.read_bytes() for p in sorted(d.glob("*.log")))
