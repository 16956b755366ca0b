"""How one Kafka node's JVM is configured, its storage formatted, and its process started.

:class:`~kafkaboot.testing.broker.KafkaCluster` decides *which* nodes run; this module knows
what a node needs to run: its ``server.properties``, a formatted KRaft storage directory and
the ``java`` command line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from kafkaboot.errors import BrokerError
from kafkaboot.testing.certificates import SecurityFiles
from kafkaboot.testing.distribution import find_java
from kafkaboot.testing.node import BrokerNode, port_in_use
from kafkaboot.testing.security import format_arguments, jvm_options, secured_properties

__all__ = ["JVM_OPTS_ENV", "broker_properties", "launch"]

JVM_OPTS_ENV = "KAFKABOOT_BROKER_JVM_OPTS"
_DEFAULT_JVM_OPTS = ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]
_LOGGING_OPTS = [
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss.SSS",
]


def broker_properties(
    node: BrokerNode,
    nodes: Sequence[BrokerNode],
    extra: Mapping[str, str],
    security: SecurityFiles | None = None,
) -> dict[str, str]:
    """``node``'s ``server.properties``: a combined broker + controller among ``nodes``, with
    secured listeners when it has any (``security`` names their certificates)."""
    count = len(nodes)
    replicas = str(min(3, count))
    min_isr = str(min(2, count))
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in nodes)
    properties = {
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
    }
    if node.secured_ports:
        if security is None:
            raise BrokerError(f"node {node.node_id} has secured listeners but no certificates")
        properties |= secured_properties(node, security)
    return properties | dict(extra)


def _java(classpath: Sequence[Path], main: str, *args: str, jvm: list[str]) -> list[str]:
    joined = os.pathsep.join(str(jar) for jar in classpath)
    return [find_java(), *jvm, "-cp", joined, main, *args]


def _format(node: BrokerNode, cluster_id: str, classpath: Sequence[Path]) -> None:
    # SCRAM users go into the metadata log as the storage is formatted (KRaft has no
    # ZooKeeper to add them to before the broker runs).
    command = _java(
        classpath,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(node.config_file),
        "--ignore-formatted",
        *format_arguments(list(node.secured_ports)),
        jvm=["-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"],
    )
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise BrokerError(f"formatting the storage of node {node.node_id} failed:\n{tail}")


def launch(
    node: BrokerNode,
    properties: Mapping[str, str],
    *,
    cluster_id: str,
    classpath: Sequence[Path],
    security: SecurityFiles | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``node``'s JVM (formatting its storage the first time); does not wait.

    Raises:
        BrokerError: one of its ports is taken, or formatting the storage failed.
    """
    for port in node.ports:
        if port_in_use(port):
            raise BrokerError(
                f"port {port} on 127.0.0.1 is already in use, wanted by node {node.node_id}"
                " (a broker of this cluster still running? `kafkaboot broker status` tells);"
                " stop what holds it, or for a new cluster choose other ports with"
                " `broker start --port`"
            )
    node.directory.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={value}" for key, value in properties.items()]
    node.config_file.write_text("\n".join(lines) + "\n")
    if not (node.directory / "data" / "meta.properties").is_file():
        _format(node, cluster_id, classpath)
    jvm = [*(os.environ.get(JVM_OPTS_ENV, "").split() or _DEFAULT_JVM_OPTS), *_LOGGING_OPTS]
    if security is not None:
        jvm += jvm_options(security)
    command = _java(classpath, "kafka.Kafka", str(node.config_file), jvm=jvm)
    with node.log_file.open("ab") as log_out:
        return subprocess.Popen(  # noqa: S603 - our own java command line.
            command,
            stdout=log_out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Outlives `kafkaboot broker start`; immune to its ^C.
        )
