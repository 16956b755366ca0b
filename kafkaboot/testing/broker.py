"""A real Apache Kafka cluster in KRaft mode on 127.0.0.1, started from the cached jars.

Each node is a combined broker + controller JVM (:mod:`kafkaboot.testing.node`). The
cluster's layout (ports, process ids, version) is saved in ``cluster.json`` in its data
directory, so ``kafkaboot broker status``, ``start`` and ``stop`` find a cluster that another
process left running, and this object notices what they changed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kafkaboot.errors import BrokerError
from kafkaboot.testing.certificates import SecurityFiles, write_security_files
from kafkaboot.testing.distribution import kafka_classpath, kafka_version
from kafkaboot.testing.launch import broker_properties, launch
from kafkaboot.testing.metadata import PartitionInfo, count_brokers, describe_partitions, run_sync
from kafkaboot.testing.node import (
    BrokerNode,
    free_port_range,
    free_ports,
    log_tail,
    port_in_use,
    process_alive,
)
from kafkaboot.testing.security import SecurityProtocol, security_protocols

# The node helpers lived here before they got a module of their own; old imports keep working.
__all__ = ["BrokerNode", "KafkaCluster", "free_port_range", "free_ports", "process_alive"]

STATE_FILE = "cluster.json"
SECURITY_DIR = "security"
"""Under the data directory: the certificates, stores and JWKS of a secured cluster."""
log = logging.getLogger(__name__)


def _new_cluster_id() -> str:
    """A KRaft cluster id: a UUID in URL-safe base64. Like Kafka's ``Uuid.randomUuid``, never
    one that starts with '-', which the storage tool would read as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


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
        security: secured client listeners, e.g. ``"sasl_ssl"`` or ``["sasl_ssl", "ssl",
            "sasl_plaintext"]`` (see :mod:`kafkaboot.testing.security`). The first one
            listens on the broker ports; the others, and a PLAINTEXT listener for traffic
            between brokers, on further ports (each node: secured ports, controller,
            PLAINTEXT). ``None``: PLAINTEXT only, as before.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        nodes: int = 1,
        port: int | None = None,
        version: str | None = None,
        properties: Mapping[str, str] | None = None,
        security: str | Iterable[str] | None = None,
    ) -> None:
        if nodes < 1:
            raise BrokerError(f"a cluster needs at least one node, got {nodes}")
        # Absolute, so a node's command line names its config file the same from any cwd.
        self.data_dir = Path(data_dir).absolute()
        self.version = version or kafka_version()
        self.properties = dict(properties or {})
        self.cluster_id = _new_cluster_id()
        self.security: tuple[SecurityProtocol, ...] = security_protocols(security)
        # Per node: the secured listeners, the controller and (secured only) PLAINTEXT.
        width = 2 + len(self.security) if self.security else 2
        count = width * nodes
        ports = list(range(port, port + count)) if port is not None else free_ports(count)
        self.nodes = []
        for i in range(nodes):
            node = BrokerNode(i + 1, ports[i], ports[nodes + i], self.data_dir / f"node-{i + 1}")
            if self.security:
                node.internal_port = ports[2 * nodes + i]
                extra = [ports[(3 + k) * nodes + i] for k in range(len(self.security) - 1)]
                node.secured_ports = dict(
                    zip(self.security, [node.broker_port, *extra], strict=True)
                )
            self.nodes.append(node)
        self._classpath: list[Path] | None = None

    # -- saved state ----------------------------------------------------------------------

    @classmethod
    def load(cls, data_dir: str | os.PathLike[str]) -> KafkaCluster | None:
        """The cluster saved in ``data_dir`` by an earlier start, or ``None``."""
        state = cls._read_state(Path(data_dir))
        if state is None:
            return None
        cluster = cls(data_dir, nodes=len(state["nodes"]), version=state["version"])
        cluster.cluster_id = state["cluster_id"]
        cluster.properties = state.get("properties", {})
        cluster.security = security_protocols(state.get("security") or None)
        cluster.nodes = [BrokerNode.from_state(n) for n in state["nodes"]]
        return cluster

    @staticmethod
    def _read_state(data_dir: Path) -> dict[str, Any] | None:
        state_file = data_dir / STATE_FILE
        if not state_file.is_file():
            return None
        try:
            state: dict[str, Any] = json.loads(state_file.read_text())
        except ValueError as exc:
            raise BrokerError(
                f"{state_file} is not valid JSON ({exc}); it was damaged or edited by hand:"
                f" stop the brokers (`kafkaboot broker stop --data-dir {data_dir}`, or kill"
                " their java processes) and start again with --purge"
            ) from exc
        return state

    def refresh(self) -> None:
        """Take the pids saved in ``cluster.json``: another process (``kafkaboot broker
        start|stop --node``) may have stopped or started nodes since this object last looked.
        Every lifecycle method calls it first."""
        state = self._read_state(self.data_dir)
        if state is None:
            return
        saved = {n["node_id"]: n.get("pid") for n in state["nodes"]}
        for node in self.nodes:
            pid = saved.get(node.node_id, node.pid)
            if pid != node.pid:
                node.forget_process()
                node.pid = pid

    def _save(self) -> None:
        nodes = [node.to_state() for node in self.nodes]
        state = {
            "version": self.version,
            "cluster_id": self.cluster_id,
            "properties": self.properties,
            "nodes": nodes,
        }
        if self.security:
            state["security"] = list(self.security)
        # Written whole and renamed into place: another `kafkaboot broker` command reading
        # it meanwhile sees the old state or the new one, never half of one.
        path = self.data_dir / STATE_FILE
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(state, indent=2))
        os.replace(partial, path)

    # -- facts ----------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of every broker, comma-separated: the first secured listener's on a
        secured cluster."""
        return ",".join(node.bootstrap_server for node in self.nodes)

    def bootstrap_servers_for(self, security: str) -> str:
        """The bootstrap servers of the ``security`` listener (``"plaintext"``: the one
        between brokers, which a secured cluster keeps on loopback).

        Raises:
            BrokerError: the cluster has no such listener.
        """
        wanted = security.strip().upper()
        if wanted == "PLAINTEXT":
            return ",".join(node.admin_server for node in self.nodes)
        if wanted not in self.security:
            have = ", ".join(p.lower() for p in self.security) or "none (PLAINTEXT only)"
            raise BrokerError(
                f"this cluster has no {security} listener; its secured listeners: {have}"
            )
        return ",".join(f"127.0.0.1:{node.secured_ports[wanted]}" for node in self.nodes)

    @property
    def security_files(self) -> SecurityFiles | None:
        """Certificates, stores and JWKS of a secured cluster (written on first start)."""
        return SecurityFiles(self.data_dir / SECURITY_DIR) if self.security else None

    def is_running(self) -> bool:
        """Whether any node runs."""
        self.refresh()
        return any(node.is_running() for node in self.nodes)

    def node(self, node_id: int) -> BrokerNode:
        """The node with id ``node_id``.

        Raises:
            BrokerError: the cluster has no such node.
        """
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        ids = ", ".join(str(n.node_id) for n in self.nodes)
        raise BrokerError(f"this cluster has no node {node_id}; its nodes are {ids}")

    def partitions(self, timeout_s: float = 5.0) -> list[PartitionInfo]:
        """Every topic-partition with its leader, replicas and ISR, as the running nodes say.

        Right after a node is killed it may still be named leader: the controller moves its
        partitions once it fences the node (``broker.session.timeout.ms``, 9 s by default).

        Raises:
            BrokerError: no node runs, or none answered within ``timeout_s``.
        """
        self.refresh()
        running = [node.admin_server for node in self.nodes if node.is_running()]
        if not running:
            raise BrokerError(f"no node of the cluster in {self.data_dir} is running")
        try:
            return run_sync(describe_partitions(",".join(running), timeout_s))
        except Exception as exc:  # Whatever the client raised: the cluster did not answer.
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise BrokerError(
                f"the cluster at {','.join(running)} did not answer a metadata request within "
                f"{timeout_s:g}s ({detail}); are its nodes still starting?"
            ) from exc

    def leaders(self, timeout_s: float = 5.0) -> dict[tuple[str, int], int | None]:
        """``(topic, partition) -> leader node id`` (``None`` where no replica leads)."""
        return {(p.topic, p.partition): p.leader for p in self.partitions(timeout_s)}

    def leader_of(self, topic: str, partition: int, timeout_s: float = 5.0) -> int:
        """The id of the node that leads ``topic``'s ``partition`` now.

        Raises:
            BrokerError: the partition does not exist or has no leader.
        """
        leaders = self.leaders(timeout_s)
        if (topic, partition) not in leaders:
            raise BrokerError(f"{topic}-{partition} does not exist in this cluster; create it")
        leader = leaders[topic, partition]
        if leader is None:
            raise BrokerError(f"{topic}-{partition} has no leader: all its replicas are down")
        return leader

    # -- lifecycle ------------------------------------------------------------------------

    def _launch(self, node: BrokerNode) -> None:
        if self._classpath is None:
            self._classpath = kafka_classpath(self.version)
        files = self.security_files
        if files is not None:
            write_security_files(files.directory)  # Kept: a restart reuses the certificates.
        properties = broker_properties(node, self.nodes, self.properties, files)
        process = launch(
            node,
            properties,
            cluster_id=self.cluster_id,
            classpath=self._classpath,
            security=files,
        )
        node.pid = process.pid
        node.process = process
        self._save()

    def start_node(self, node_id: int, timeout_s: float = 120.0) -> None:
        """Start one node of a started cluster and wait until it is back in the cluster (it
        and every other running node list all running brokers). A running node is left alone.

        Raises:
            BrokerError: no such node, too few nodes running for a quorum, a port taken, the
                node died, or it was not back in time.
        """
        self.refresh()
        node = self.node(node_id)
        if node.is_running():
            return
        running = sum(other.is_running() for other in self.nodes)
        if running + 1 <= len(self.nodes) // 2:
            raise BrokerError(
                f"node {node_id} and the {running} running node(s) are no majority of the "
                f"{len(self.nodes)} controllers, so it could not join; start the whole cluster "
                f"(`kafkaboot broker start --data-dir {self.data_dir}`, or start())"
            )
        self._launch(node)
        self.wait_ready(timeout_s)

    def start(self, timeout_s: float = 120.0) -> KafkaCluster:
        """Start every node that is not running and wait until all brokers answer metadata
        requests. If that fails, the nodes this call started are stopped again.

        Raises:
            BrokerError: Java/Maven missing, a port taken, a node died, or not ready in time.
        """
        self.refresh()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        launched = []
        try:
            for node in self.nodes:
                if not node.is_running():
                    self._launch(node)
                    launched.append(node)
            self.wait_ready(timeout_s, brokers=len(self.nodes))
        except BaseException:
            self._stop_nodes(launched, 30.0)
            raise
        return self

    def wait_ready(self, timeout_s: float = 120.0, *, brokers: int | None = None) -> None:
        """Wait until ``brokers`` brokers (default: every running node) are in the metadata.

        Raises:
            BrokerError: a node's process exited, or the cluster was not ready in time.
        """
        running = [node for node in self.nodes if node.is_running()]
        expected = brokers if brokers is not None else len(running)
        deadline = time.monotonic() + timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            for node in running:
                if not node.is_running():
                    raise BrokerError(
                        f"Kafka node {node.node_id} exited during startup; its log "
                        f"({node.log_file}) ends with:\n{log_tail(node.log_file)}"
                    )
            try:
                # Ask every running node itself: a restarted node can still be listed in the
                # others' metadata from before it died, while it is not listening yet.
                found = min(
                    run_sync(count_brokers(node.admin_server, 5.0))
                    if port_in_use(node.admin_port)
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

    def stop_node(self, node_id: int, timeout_s: float = 30.0) -> bool:
        """Stop one node cleanly (SIGTERM, controlled shutdown), killing it after a timeout.

        Returns:
            ``True`` when it stopped by itself, ``False`` when it had to be killed.
        """
        self.refresh()
        node = self.node(node_id)
        node.signal(signal.SIGTERM)
        clean = node.wait_stopped(timeout_s)
        if not clean:
            log.warning("Kafka node %s did not stop in %.0fs; killing it", node_id, timeout_s)
            node.signal(signal.SIGKILL)
            node.wait_stopped(10.0)
        node.forget_process()
        self._save_if_kept()
        return clean

    def kill_node(self, node_id: int) -> None:
        """Kill one node at once (SIGKILL), as a crash would."""
        self.refresh()
        node = self.node(node_id)
        node.signal(signal.SIGKILL)
        node.wait_stopped(10.0)
        node.forget_process()
        self._save_if_kept()

    def _stop_nodes(self, nodes: list[BrokerNode], timeout_s: float) -> None:
        """SIGTERM to all of ``nodes`` at once, then wait (bounded), then SIGKILL."""
        for node in nodes:
            node.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for node in nodes:
            if not node.wait_stopped(max(0.0, deadline - time.monotonic())):
                node.signal(signal.SIGKILL)
                node.wait_stopped(10.0)
            node.forget_process()
        self._save_if_kept()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every node: SIGTERM to all at once, then wait (bounded), then SIGKILL."""
        self.refresh()
        self._stop_nodes(self.nodes, timeout_s)

    def _save_if_kept(self) -> None:
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
