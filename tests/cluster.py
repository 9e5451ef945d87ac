"""Several `strom server` processes on 127.0.0.1 forming one cluster: every node is a broker and a
voter of the metadata quorum (process.roles=broker,controller), each with its own data dir, client
port, CONTROLLER port and metrics port."""

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
    def __init__(self, workdir: Path, node_id: int, controller_port: int, configs: dict[str, str]):
        super().__init__(workdir, configs)
        self.node_id = node_id
        self.controller_port = controller_port
        self.paused = False

    def command(self) -> list[str]:
        cmd = super().command()
        listeners = f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
        cmd[cmd.index(f"listeners=PLAINTEXT://{self.host}:{self.port}")] = f"listeners={listeners}"
        return cmd + ["--set", f"advertised.listeners=PLAINTEXT://{self.host}:{self.port}"]

    def start(self, timeout_s: float = 60) -> "ClusterNode":
        self.paused = False
        return super().start(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        """Ready: the node serves clients (it does once the controller unfenced it) and lists itself."""
        deadline = time.monotonic() + timeout_s
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
    def __init__(self, workdir: Path, size: int = 3, configs: dict[str, str] | None = None):
        controller_ports = {i: free_port() for i in range(1, size + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in controller_ports.items())
        self.nodes: dict[int, ClusterNode] = {}
        for i, port in controller_ports.items():
            node_configs = {
                "node.id": str(i),
                "process.roles": "broker,controller",
                "controller.quorum.voters": voters,
                "controller.listener.names": "CONTROLLER",
                **FAST_FAILOVER,
                **(configs or {}),
            }
            self.nodes[i] = ClusterNode(workdir / f"node{i}", i, port, node_configs)

    def start(self) -> "Cluster":
        # A node waits for a quorum before it serves clients: start all, then wait for each.
        for node in self.nodes.values():
            node.launch()
        for node in self.nodes.values():
            node.wait_ready(60)
        return self

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def live_bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values() if n.running() and not n.paused)

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
