"""A real Apache Kafka cluster in KRaft mode on 127.0.0.1, started from the cached jars.

Each node is a combined broker + controller JVM. The cluster's layout (ports, process ids,
version) is saved in ``cluster.json`` in its data directory, so ``kafkaboot broker status``
and ``stop`` find a cluster that ``kafkaboot broker start`` left running.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kafkaboot.errors import BrokerError
from kafkaboot.testing.distribution import find_java, kafka_classpath, kafka_version

__all__ = ["BrokerNode", "KafkaCluster", "free_port_range", "free_ports", "process_alive"]

STATE_FILE = "cluster.json"
JVM_OPTS_ENV = "KAFKABOOT_BROKER_JVM_OPTS"
_DEFAULT_JVM_OPTS = ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
_LOGGING_OPTS = [
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS",
]
_T = TypeVar("_T")
log = logging.getLogger(__name__)


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_range(count: int, attempts: int = 100) -> int:
    """The first of ``count`` consecutive loopback ports that are all free right now.

    Raises:
        BrokerError: no such run was found.
    """
    for _ in range(attempts):
        [first] = free_ports(1)
        if first + count > 65536:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise BrokerError(f"found no {count} consecutive free ports on 127.0.0.1")


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie counts as exited)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as stopped.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _new_cluster_id() -> str:
    """A KRaft cluster id: a UUID in URL-safe base64. Like Kafka's ``Uuid.randomUuid``, never
    one that starts with '-', which the storage tool would read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from sync code, also when an event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _count_brokers(bootstrap: str, timeout_s: float) -> int:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return len(client.cluster.brokers())
    finally:
        await client.close()


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class BrokerNode:
    """One combined broker + controller process of a :class:`KafkaCluster`."""

    node_id: int
    broker_port: int
    controller_port: int
    directory: Path
    pid: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    """Set when this process started the node: lets us reap it and wait on it exactly."""

    @property
    def config_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def bootstrap_server(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def is_running(self) -> bool:
        if self.process is not None and self.process.pid == self.pid:
            return self.process.poll() is None
        return process_alive(self.pid)

    def signal(self, signum: int) -> None:
        if self.pid and self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def wait_stopped(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.is_running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def to_state(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "broker_port": self.broker_port,
            "controller_port": self.controller_port,
            "directory": str(self.directory),
            "pid": self.pid,
        }


class KafkaCluster:
    """A local Apache Kafka cluster of 1 or 3 KRaft nodes.

    Use it as a context manager, or call :meth:`start` / :meth:`stop`. Nodes can be stopped,
    killed and restarted one by one, for reliability tests.

    Args:
        data_dir: where each node keeps its storage and log; kept on stop unless purged.
        nodes: number of combined broker + controller nodes.
        port: first broker port; brokers use ``port…port+n-1`` and controllers the next
            ``n`` ports. ``None`` picks free ports.
        version: Apache Kafka version (default ``$KAFKABOOT_KAFKA_VERSION`` or the pinned one).
        properties: extra broker properties for every node.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        nodes: int = 1,
        port: int | None = None,
        version: str | None = None,
        properties: Mapping[str, str] | None = None,
    ) -> None:
        if nodes < 1:
            raise BrokerError(f"a cluster needs at least one node, got {nodes}")
        self.data_dir = Path(data_dir)
        self.version = version or kafka_version()
        self.properties = dict(properties or {})
        self.cluster_id = _new_cluster_id()
        ports = list(range(port, port + 2 * nodes)) if port is not None else free_ports(2 * nodes)
        self.nodes = [
            BrokerNode(i + 1, ports[i], ports[nodes + i], self.data_dir / f"node-{i + 1}")
            for i in range(nodes)
        ]
        self._classpath: list[Path] | None = None

    # -- saved state ----------------------------------------------------------------------

    @classmethod
    def load(cls, data_dir: str | os.PathLike[str]) -> KafkaCluster | None:
        """The cluster saved in ``data_dir`` by an earlier start, or ``None``."""
        state_file = Path(data_dir) / STATE_FILE
        if not state_file.is_file():
            return None
        state = json.loads(state_file.read_text())
        cluster = cls(data_dir, nodes=len(state["nodes"]), version=state["version"])
        cluster.cluster_id = state["cluster_id"]
        cluster.properties = state.get("properties", {})
        cluster.nodes = [
            BrokerNode(
                n["node_id"],
                n["broker_port"],
                n["controller_port"],
                Path(n["directory"]),
                n.get("pid"),
            )
            for n in state["nodes"]
        ]
        return cluster

    def _save(self) -> None:
        nodes = [node.to_state() for node in self.nodes]
        state = {
            "version": self.version,
            "cluster_id": self.cluster_id,
            "properties": self.properties,
            "nodes": nodes,
        }
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    # -- facts ----------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of every broker, comma-separated."""
        return ",".join(node.bootstrap_server for node in self.nodes)

    def is_running(self) -> bool:
        return any(node.is_running() for node in self.nodes)

    def node(self, node_id: int) -> BrokerNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise BrokerError(f"no node {node_id}; nodes are {[n.node_id for n in self.nodes]}")

    # -- lifecycle ------------------------------------------------------------------------

    def _broker_properties(self, node: BrokerNode) -> dict[str, str]:
        count = len(self.nodes)
        replicas = str(min(3, count))
        min_isr = str(min(2, count))
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        return {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.broker_port},"
            f"CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.broker_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(node.directory / "data"),
            "num.partitions": "1",
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            # Tests and local runs start consumers right away; don't wait 3s per new group.
            "group.initial.rebalance.delay.ms": "0",
        } | self.properties

    def _java(self, main: str, *args: str, jvm: list[str]) -> list[str]:
        if self._classpath is None:
            self._classpath = kafka_classpath(self.version)
        classpath = os.pathsep.join(str(jar) for jar in self._classpath)
        return [find_java(), *jvm, "-cp", classpath, main, *args]

    def _format(self, node: BrokerNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        command = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(node.config_file),
            "--ignore-formatted",
            jvm=["-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"],
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
            raise BrokerError(f"formatting the storage of node {node.node_id} failed:\n{tail}")

    def _write_config(self, node: BrokerNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self._broker_properties(node).items()]
        node.config_file.write_text("\n".join(lines) + "\n")

    def start_node(self, node_id: int) -> None:
        """Start one node (formatting its storage the first time); does not wait."""
        node = self.node(node_id)
        if node.is_running():
            return
        for port in (node.broker_port, node.controller_port):
            if _port_in_use(port):
                raise BrokerError(
                    f"port {port} on 127.0.0.1 is already in use (another broker? "
                    "`kafkaboot broker status`); choose another with --port"
                )
        self._write_config(node)
        if not (node.directory / "data" / "meta.properties").is_file():
            self._format(node)
        jvm = [*(os.environ.get(JVM_OPTS_ENV, "").split() or _DEFAULT_JVM_OPTS), *_LOGGING_OPTS]
        command = self._java("kafka.Kafka", str(node.config_file), jvm=jvm)
        with node.log_file.open("ab") as log_out:
            process = subprocess.Popen(  # noqa: S603 - our own java command line.
                command,
                stdout=log_out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Outlives `kafkaboot broker start`; immune to its ^C.
            )
        node.pid = process.pid
        node.process = process
        self._save()

    def start(self, timeout_s: float = 120.0) -> KafkaCluster:
        """Start every node and wait until all brokers answer metadata requests.

        Raises:
            BrokerError: Java/Maven missing, a port taken, a node died, or not ready in time.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for node in self.nodes:
                self.start_node(node.node_id)
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout_s: float = 120.0, *, brokers: int | None = None) -> None:
        """Wait until ``brokers`` brokers (default: every running node) are in the metadata.

        Raises:
            BrokerError: a node's process exited, or the cluster was not ready in time.
        """
        running = [node for node in self.nodes if node.pid]
        expected = brokers if brokers is not None else len(running)
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            for node in running:
                if not node.is_running():
                    raise BrokerError(
                        f"Kafka node {node.node_id} exited during startup; its log "
                        f"({node.log_file}) ends with:\n{_log_tail(node.log_file)}"
                    )
            try:
                # Ask every running node itself: a restarted node can still be listed in the
                # others' metadata from before it died, while it is not listening yet.
                found = min(
                    _run_sync(_count_brokers(node.bootstrap_server, 5.0))
                    if _port_in_use(node.broker_port)
                    else 0
                    for node in running
                )
            except Exception as exc:  # any client error means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if found >= expected:
                    return
                last_error = f"{found} of {expected} brokers registered"
            time.sleep(0.25)
        raise BrokerError(
            f"Kafka at {self.bootstrap_servers} was not ready within {timeout_s:.0f}s "
            f"({last_error}); see the node logs under {self.data_dir}"
        )

    def stop_node(self, node_id: int, timeout_s: float = 30.0) -> None:
        """Stop one node cleanly (SIGTERM, controlled shutdown), killing it after a timeout."""
        node = self.node(node_id)
        node.signal(signal.SIGTERM)
        if not node.wait_stopped(timeout_s):
            log.warning("Kafka node %s did not stop in %.0fs; killing it", node_id, timeout_s)
            self.kill_node(node_id)
        node.pid = node.process = None
        if self.data_dir.is_dir():
            self._save()

    def kill_node(self, node_id: int) -> None:
        """Kill one node at once (SIGKILL), as a crash would."""
        node = self.node(node_id)
        node.signal(signal.SIGKILL)
        node.wait_stopped(10.0)
        node.pid = node.process = None
        if self.data_dir.is_dir():
            self._save()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every node: SIGTERM to all at once, then wait (bounded), then SIGKILL."""
        for node in self.nodes:
            node.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            if not node.wait_stopped(max(0.0, deadline - time.monotonic())):
                node.signal(signal.SIGKILL)
                node.wait_stopped(10.0)
            node.pid = node.process = None
        if self.data_dir.is_dir():
            self._save()

    def purge(self) -> None:
        """Delete the data directory (stop first)."""
        if self.is_running():
            raise BrokerError("stop the cluster before purging its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
