"""Several `strom server` processes on 127.0.0.1 forming one KRaft cluster, for multi-broker tests.

Every node is `process.roles=broker,controller` with its own `node.id`, data dir, PLAINTEXT and
CONTROLLER ports and metrics port; all share `controller.quorum.voters`. Each node's configs are
written to `<workdir>/node<id>/server.toml` and passed with `strom server --config`, so a failing
test leaves them next to the node's logs.

    c = Cluster(tmp_path, 3).start()
    producer(bootstrap.servers=c.bootstrap) ...
    c.kill(2); c.restart(2); c.pause(3); c.resume(3)
    c.wait_until_ready()

Use the `cluster_factory` fixture (conftest.py), which kills every node at teardown, prints the
logs of a failing test and fails a test whose nodes panicked.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import kwire
from conftest import START_TIMEOUT_S, Broker, BrokerError, free_port, strom_bin

HOST = "127.0.0.1"


class ClusterNode(Broker):
    """One node of a Cluster: a Broker whose configs make it a KRaft broker and controller."""

    def __init__(self, workdir: Path, node_id: int, controller_port: int, voters: str,
                 configs: dict[str, str] | None = None, env: dict[str, str] | None = None):
        super().__init__(workdir, configs, env=env)
        self.node_id = node_id
        self.controller_port = controller_port
        self.voters = voters
        self.paused = False

    @property
    def config_path(self) -> Path:
        return self.workdir / "server.toml"

    def server_configs(self) -> dict[str, str]:
        """Everything the node is started with (extra configs last, so a test can override)."""
        configs = {
            "node.id": str(self.node_id),
            "process.roles": "broker,controller",
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "strom.metrics.listener": f"{self.host}:{self.metrics_port}",
        }
        configs.update(self.configs)
        return configs

    def write_config(self) -> Path:
        lines = [f"{toml_string(name)} = {toml_string(value)}" for name, value in self.server_configs().items()]
        self.config_path.write_text("\n".join(lines) + "\n")
        return self.config_path

    def command(self) -> list[str]:
        return [str(strom_bin()), "server", "--config", str(self.write_config())]

    def lists(self) -> set[int]:
        """The node ids this node's Metadata lists (registered, unfenced brokers)."""
        with kwire.connect(self.host, self.port, timeout=2.0) as sock:
            return {b[0] for b in kwire.metadata_v4(sock, [], False).brokers}

    def wait_ready(self, timeout_s: float) -> None:
        """Ready: this node's Metadata lists itself on its port (so it is registered and unfenced)."""
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"node {self.node_id} exited with {self.proc.returncode} while starting:\n"
                                  f"{self.log_tail()}")
            try:
                if self.node_id in self.lists():
                    return
            except (OSError, ValueError) as e:
                last_error = e
            time.sleep(0.05)
        raise BrokerError(f"node {self.node_id} not ready after {timeout_s}s (last error: {last_error!r}):\n"
                          f"{self.log_tail()}")

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing (a hung or partitioned node)."""
        self._require_running().send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._require_running().send_signal(signal.SIGCONT)
        self.paused = False

    def _signal_and_wait(self, sig: int, timeout_s: float) -> int:
        # A stopped process only acts on SIGTERM once continued.
        if self.paused and self.running():
            self.resume()
        return super()._signal_and_wait(sig, timeout_s)

    def _require_running(self):
        if not self.running():
            raise BrokerError(f"node {self.node_id} is not running")
        return self.proc


def toml_string(value: str) -> str:
    """A TOML basic string (configs are all passed as strings)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class Cluster:
    """N nodes, ids 1..N, on free ports under `workdir/node<id>`."""

    def __init__(self, workdir: Path, size: int, configs: dict[str, str] | None = None,
                 env: dict[str, str] | None = None):
        if size < 1:
            raise ValueError("a cluster has at least one node")
        controller_ports = {node_id: free_port() for node_id in range(1, size + 1)}
        self.voters = ",".join(f"{node_id}@{HOST}:{port}" for node_id, port in controller_ports.items())
        self.nodes: dict[int, ClusterNode] = {
            node_id: ClusterNode(workdir / f"node{node_id}", node_id, port, self.voters, configs, env)
            for node_id, port in controller_ports.items()
        }

    # --- addresses -------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        """Every node's PLAINTEXT address, comma-separated (clients skip the ones that are down)."""
        return ",".join(node.bootstrap for node in self.nodes.values())

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id]

    def running_ids(self) -> list[int]:
        return [i for i, node in self.nodes.items() if node.running() and not node.paused]

    # --- lifecycle -------------------------------------------------------
    def start(self, timeout_s: float = START_TIMEOUT_S) -> "Cluster":
        """Starts every node, then waits until each lists all of them."""
        for node in self.nodes.values():
            node.spawn()
        self.wait_until_ready(timeout_s=timeout_s)
        return self

    def wait_until_ready(self, ids: list[int] | None = None, timeout_s: float = START_TIMEOUT_S) -> None:
        """Waits until each node in `ids` (default: the running, unpaused ones) lists at least all of
        `ids` in its Metadata: they are registered, unfenced, and every node has seen it."""
        wanted = set(self.running_ids() if ids is None else ids)
        deadline = time.monotonic() + timeout_s
        seen: dict[int, object] = {}
        while True:
            for node_id in sorted(wanted):
                node = self.nodes[node_id]
                if not node.running():
                    raise BrokerError(f"node {node_id} exited with {node.proc.returncode}:\n{node.log_tail()}")
                try:
                    seen[node_id] = node.lists()
                except (OSError, ValueError) as e:
                    seen[node_id] = e
            if all(isinstance(s, set) and wanted <= s for s in seen.values()):
                return
            if time.monotonic() >= deadline:
                tails = "\n".join(f"--- node {i} ---\n{self.nodes[i].log_tail(30)}" for i in sorted(wanted))
                raise BrokerError(f"cluster not ready after {timeout_s}s; each node lists {seen}\n{tails}")
            time.sleep(0.1)

    def kill(self, node_id: int) -> int:
        """SIGKILL: no flush, no controlled shutdown."""
        return self.nodes[node_id].kill()

    def stop(self, node_id: int, timeout_s: float = 30) -> int:
        """SIGTERM: a clean stop; returns the exit code."""
        return self.nodes[node_id].stop(timeout_s)

    def pause(self, node_id: int) -> None:
        self.nodes[node_id].pause()

    def resume(self, node_id: int) -> None:
        self.nodes[node_id].resume()

    def restart(self, node_id: int, kill: bool = False, timeout_s: float = START_TIMEOUT_S) -> ClusterNode:
        """Stops (or kills) the node and starts it again on the same data dir and ports."""
        node = self.nodes[node_id]
        if node.running():
            code = node.kill() if kill else node.stop()
            if not kill and code != 0:
                raise BrokerError(f"node {node_id} clean stop exited with {code}:\n{node.log_tail()}")
        node.spawn()
        node.wait_ready(timeout_s)
        return node

    def close(self) -> None:
        for node in self.nodes.values():
            if node.running():
                node.kill()
