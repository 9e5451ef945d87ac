"""Fixtures that run the real `strom` binary for the integration suite.

`broker` starts one broker with default configs on free ports and a fresh
data dir; `broker_factory(configs)` starts brokers with extra Kafka configs.
Each `Broker` can stop (SIGTERM), kill (SIGKILL), restart on the same data
dir and ports, read its stderr log and scrape its Prometheus metrics.
With `registry=True` a broker also serves its schema registry on a free port
(`schema.registry.listeners`, `Broker.registry_url`); otherwise the registry is off.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import kwire

REPO = Path(__file__).resolve().parent.parent
NODE_ID = 1
START_TIMEOUT_S = float(os.environ.get("STROM_START_TIMEOUT", "30"))


def strom_bin() -> Path:
    path = Path(os.environ.get("STROM_BIN", REPO / "target" / "release" / "strom"))
    if not path.is_absolute():
        path = REPO / path
    return path


def _port_block() -> range:
    """This process's ports: a block below the kernel's ephemeral range (32768 and up, which the
    clients' own connections use) for each pytest-xdist worker, so two workers never hand out
    the same port and a just-closed client port is never offered to a broker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    start = 12_000 + (index % 5) * 4_000
    return range(start, start + 4_000)


_ports = iter(_port_block())


def free_port() -> int:
    """A port of this process's block that nothing listens on now, never handed out twice."""
    for port in _ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"every port of {_port_block()} is taken or handed out")


class BrokerError(RuntimeError):
    pass


class Broker:
    """One `strom server` process and its data dir, which outlive restarts."""

    def __init__(self, workdir: Path, configs: dict[str, str] | None = None, nofile: int | None = None,
                 env: dict[str, str] | None = None, listeners: list[str] | None = None,
                 registry: bool = False, proxy: bool = False, https_ca: Path | None = None,
                 https_cert: tuple[Path, Path] | None = None):
        self.workdir = workdir
        self.nofile = nofile
        self.extra_env = dict(env or {})
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.configs = dict(configs or {})
        self.host = "127.0.0.1"
        self.port = free_port()
        # Listeners beside PLAINTEXT (which readiness checks use), each on its own port.
        self.listener_ports = {name: free_port() for name in listeners or []}
        self.metrics_port = free_port()
        # The schema registry's HTTP listener: off unless asked for (its default, 127.0.0.1:8081,
        # would collide between brokers and pytest workers).
        self.registry_port = free_port() if registry else None
        # The REST proxy's listener: off unless asked for, like the registry.
        self.proxy_port = free_port() if proxy else None
        # Set: the registry and the proxy serve https (their TLS settings are in `configs`),
        # and their certificates chain to this CA.
        self.https_ca = https_ca
        # A client certificate and key for a registry that asks for one.
        self.https_cert = https_cert
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.log_paths: list[Path] = []

    # --- addresses -------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def address(self, listener: str) -> str:
        """host:port of one of the extra listeners."""
        return f"{self.host}:{self.listener_ports[listener]}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def registry_url(self) -> str:
        """Base URL of the schema registry (only for brokers started with registry=True)."""
        if self.registry_port is None:
            raise BrokerError("this broker was started without its schema registry (registry=True)")
        return f"{self.http_scheme}://{self.host}:{self.registry_port}"

    @property
    def proxy_url(self) -> str:
        """Base URL of the REST proxy (only for brokers started with proxy=True)."""
        if self.proxy_port is None:
            raise BrokerError("this broker was started without its REST proxy (proxy=True)")
        return f"{self.http_scheme}://{self.host}:{self.proxy_port}"

    @property
    def http_scheme(self) -> str:
        return "https" if self.https_ca is not None else "http"

    # --- lifecycle -------------------------------------------------------
    def command(self) -> list[str]:
        listeners = ",".join([f"PLAINTEXT://{self.host}:{self.port}"]
                             + [f"{name}://{self.host}:{port}" for name, port in self.listener_ports.items()])
        cmd = [str(strom_bin()), "server",
               "--set", f"listeners={listeners}",
               "--set", f"log.dirs={self.data_dir}",
               "--set", f"strom.metrics.listener={self.host}:{self.metrics_port}",
               "--set", "schema.registry.listeners="
               + (self.registry_url if self.registry_port is not None else ""),
               "--set", "rest.proxy.listeners="
               + (self.proxy_url if self.proxy_port is not None else "")]
        for name, value in self.configs.items():
            cmd += ["--set", f"{name}={value}"]
        return cmd

    def start(self, timeout_s: float = START_TIMEOUT_S) -> "Broker":
        self.launch()
        self.wait_ready(timeout_s)
        return self

    def launch(self) -> None:
        """Starts the process without waiting for it to serve."""
        if self.running():
            raise BrokerError("broker already running")
        if not strom_bin().exists():
            raise BrokerError(f"no broker binary at {strom_bin()} (build it or set STROM_BIN)")
        self.runs += 1
        log_path = self.workdir / f"stderr.{self.runs}.log"
        self.log_paths.append(log_path)
        # The broker reads STROM_* variables as configs; the suite's own (STROM_BIN, ...) must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_") or k in ("STROM_LOG", "STROM_LOG_FORMAT")}
        env.update(self.extra_env)
        nofile = self.nofile

        def limit_descriptors():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, env=env,
                                         stdout=log, stderr=log, cwd=self.workdir,
                                         preexec_fn=limit_descriptors)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        """Ready means: TCP accepts, ApiVersions answers, Metadata lists this broker, every listener accepts,
        and the schema registry (when on) answers `GET /subjects` with 200 (it serves only once it has
        read `_schemas` to its end)."""
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"broker exited with {self.proc.returncode} while starting:\n{self.log_tail()}")
            try:
                with kwire.connect(self.host, self.port, timeout=2.0) as sock:
                    av = kwire.api_versions(sock)
                    if av.error_code != 0:
                        raise BrokerError(f"ApiVersions error {av.error_code}")
                    md = kwire.metadata_v4(sock, [], False)
                    if any(b[0] == NODE_ID and b[2] == self.port for b in md.brokers):
                        for port in list(self.listener_ports.values()) + [p for p in [self.proxy_port] if p]:
                            socket.create_connection((self.host, port), timeout=2.0).close()
                        if self.registry_port is not None and not self._registry_ready():
                            raise BrokerError("schema registry not serving GET /subjects yet")
                        return
                    raise BrokerError(f"metadata does not list node {NODE_ID}: {md.brokers}")
            except (OSError, ValueError, BrokerError) as e:
                last_error = e
            time.sleep(0.05)
        raise BrokerError(f"broker not ready after {timeout_s}s (last error: {last_error!r}):\n{self.log_tail()}")

    def _registry_ready(self) -> bool:
        try:
            context = None
            if self.https_ca is not None:
                context = ssl.create_default_context(cafile=str(self.https_ca))
                if self.https_cert is not None:
                    context.load_cert_chain(*map(str, self.https_cert))
            with urllib.request.urlopen(self.registry_url + "/subjects", timeout=2.0, context=context) as resp:
                return resp.status == 200
        except urllib.error.HTTPError:
            return False

    def stop(self, timeout_s: float = 30) -> int:
        """Clean stop with SIGTERM; returns the exit code."""
        return self._signal_and_wait(signal.SIGTERM, timeout_s)

    def kill(self) -> int:
        """kill -9: no chance to flush or close anything."""
        return self._signal_and_wait(signal.SIGKILL, 30)

    def _signal_and_wait(self, sig: int, timeout_s: float) -> int:
        if self.proc is None:
            raise BrokerError("broker never started")
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise BrokerError(f"broker did not exit within {timeout_s}s of signal {sig}:\n{self.log_tail()}")
        return self.proc.returncode

    def restart(self, configs: dict[str, str] | None = None, kill: bool = False) -> "Broker":
        """Stop (or kill -9) and start again on the same data dir and ports."""
        if self.running():
            code = self.kill() if kill else self.stop()
            if not kill and code != 0:
                raise BrokerError(f"clean stop exited with {code}:\n{self.log_tail()}")
        if configs is not None:
            self.configs.update(configs)
        return self.start()

    # --- observation -----------------------------------------------------
    def log(self) -> str:
        """Everything the broker wrote to stderr/stdout, across restarts."""
        return "".join(p.read_text(errors="replace") for p in self.log_paths if p.exists())

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout_s: float = 10, since: int = 0) -> str:
        """Polls the log (from character offset `since`) for a regex; returns the matching line."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        while True:
            text = self.log()[since:]
            for line in text.splitlines():
                if rx.search(line):
                    return line
            if time.monotonic() >= deadline:
                raise AssertionError(f"no log line matching {pattern!r} within {timeout_s}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            assert resp.status == 200
            return resp.read().decode()

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        return parse_prometheus(self.metrics_text())


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text exposition -> {(metric name, frozenset of (label, value)): value}."""
    out: dict[tuple[str, frozenset], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError(f"unparsable metrics line: {line!r}")
        name, labels, value = m.groups()
        label_set = frozenset(_LABEL.findall(labels or ""))
        out[(name, label_set)] = float(value)
    return out


# --- fixtures ----------------------------------------------------------------

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def broker_factory(tmp_path, request):
    """Returns start(configs=None, nofile=None, env=None, listeners=None, registry=False, proxy=False,
    https_ca=None, https_cert=None) -> a started Broker (under RLIMIT_NOFILE `nofile`, with the extra environment `env`, the
    extra listeners named in `listeners`, beside PLAINTEXT, its schema registry on a free port if `registry`,
    and its REST proxy on a free port if `proxy`, both over https trusted through `https_ca` if given, with
    the client certificate `https_cert` (cert, key) where asked for); all are killed at teardown."""
    brokers: list[Broker] = []

    def start(configs: dict[str, str] | None = None, nofile: int | None = None,
              env: dict[str, str] | None = None, listeners: list[str] | None = None,
              registry: bool = False, proxy: bool = False, https_ca: Path | None = None,
              https_cert: tuple[Path, Path] | None = None) -> Broker:
        b = Broker(tmp_path / f"broker{len(brokers)}", configs, nofile, env, listeners, registry, proxy,
                   https_ca, https_cert)
        brokers.append(b)
        return b.start()

    yield start

    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    _finish_brokers(brokers, failed)
    if not failed and os.environ.get("STROM_KEEP_DATA") != "1":
        shutil.rmtree(tmp_path, ignore_errors=True)


def _finish_brokers(brokers: list[Broker], failed: bool) -> None:
    """Kills the brokers; prints their log tails if a test failed or one panicked; fails on a panic."""
    panics = []
    for b in brokers:
        if b.running():
            b.kill()
        text = b.log()
        if "panicked at" in text:
            panics.append(b)
        if failed or "panicked at" in text:
            print(f"\n----- broker {b.bootstrap} log ({b.workdir}) -----\n{b.log_tail(120)}")
    if panics:
        pytest.fail(f"broker panicked (see log above): {[b.bootstrap for b in panics]}")


@pytest.fixture
def broker(broker_factory) -> Broker:
    return broker_factory()


@pytest.fixture
def registry(broker_factory) -> Broker:
    """A broker serving its schema registry (`registry.registry_url`) on a free port."""
    return broker_factory(registry=True)


@pytest.fixture(scope="module")
def module_registry(tmp_path_factory, request):
    """One registry broker shared by a whole test module (each test keeps to its own subjects), for
    modules of many small cases where a broker per test would cost more than the tests themselves."""
    failed_before = request.session.testsfailed
    b = Broker(tmp_path_factory.mktemp("module-registry"), registry=True)
    try:
        yield b.start()
    finally:
        _finish_brokers([b], request.session.testsfailed > failed_before)
