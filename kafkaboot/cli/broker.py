"""``kafkaboot broker start|status|stop``: a local Apache Kafka, the whole cluster or one node.

Per-node control (``--node N``) is for trying failures by hand and for reliability tests:
stop or kill the node that leads a partition (``status --json`` names it), then start it
again and see that nothing was lost.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from kafkaboot.errors import BrokerError, KafkaBootError
from kafkaboot.testing.broker import KafkaCluster
from kafkaboot.testing.distribution import cache_dir
from kafkaboot.testing.metadata import PartitionInfo
from kafkaboot.testing.node import BrokerNode
from kafkaboot.testing.security import client_settings_yaml

__all__ = ["add_broker_commands"]

_TOPICS_SHOWN = 10
"""Per node, the text status names this many topics; ``--json`` has them all."""


def _data_dir(args: argparse.Namespace) -> Path:
    return Path(args.data_dir) if args.data_dir else cache_dir() / "broker"


def _nodes(nodes: Iterable[BrokerNode]) -> str:
    """``node 2`` or ``nodes 1, 3``."""
    ids = [str(node.node_id) for node in nodes]
    return f"node {ids[0]}" if len(ids) == 1 else f"nodes {', '.join(ids)}"


def _saved_cluster(data_dir: Path) -> KafkaCluster:
    cluster = KafkaCluster.load(data_dir)
    if cluster is None:
        raise BrokerError(
            f"no cluster has been started with data dir {data_dir}; start one with "
            f"`kafkaboot broker start --nodes 3 --data-dir {data_dir}`, or give the --data-dir "
            "of a started one"
        )
    return cluster


def _print_client_settings(cluster: KafkaCluster) -> None:
    """For a secured cluster: the client settings, on stderr like the other messages (stdout
    stays the bootstrap servers alone, for scripts), and saved beside the certificates."""
    files = cluster.security_files
    if files is None:
        return
    text = client_settings_yaml(cluster.bootstrap_servers, cluster.security[0], files)
    saved = files.directory / "client-settings.yml"
    saved.write_text(text)
    print(f"\n{text}# (saved as {saved})\n", file=sys.stderr)


def _security_name(cluster: KafkaCluster) -> str:
    return cluster.security[0].lower() if cluster.security else "none"


def _start(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    if args.node is not None:
        return _start_node(args, data_dir)
    cluster = KafkaCluster.load(data_dir)
    if cluster is not None:
        asked = {
            "--nodes": (args.nodes, len(cluster.nodes)),
            "--port": (args.port, cluster.nodes[0].broker_port),
            "--kafka-version": (args.kafka_version, cluster.version),
            "--security": (args.security, _security_name(cluster)),
        }
        for flag, (wanted, saved) in asked.items():
            if wanted is not None and wanted != saved:
                raise KafkaBootError(
                    f"{data_dir} holds a cluster with {flag} {saved}, not {wanted}. Start it "
                    f"as it is, or run `kafkaboot broker stop --purge --data-dir {data_dir}` "
                    "first, or choose another --data-dir."
                )
        stopped = [node for node in cluster.nodes if not node.is_running()]
        if not stopped:
            print(f"Kafka {cluster.version} is already running (data: {data_dir})", file=sys.stderr)
            _print_client_settings(cluster)
            print(cluster.bootstrap_servers)
            return 0
        if len(stopped) < len(cluster.nodes):
            running = [node for node in cluster.nodes if node.is_running()]
            print(
                f"starting {_nodes(stopped)} of Kafka {cluster.version} ({_nodes(running)} "
                f"up, data: {data_dir}) ...",
                file=sys.stderr,
            )
    else:
        cluster = KafkaCluster(
            data_dir,
            nodes=args.nodes or 1,
            port=args.port or 9092,
            version=args.kafka_version,
            security=None if args.security in (None, "none") else args.security,
        )
        stopped = cluster.nodes
    if len(stopped) == len(cluster.nodes):
        secured = f", {cluster.security[0]} listener" if cluster.security else ""
        print(
            f"starting Apache Kafka {cluster.version} ({len(cluster.nodes)} node(s){secured}, "
            f"data: {data_dir}) ...",
            file=sys.stderr,
        )
    started = time.monotonic()
    cluster.start(timeout_s=args.timeout)
    print(f"ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    _print_client_settings(cluster)
    print(cluster.bootstrap_servers)
    return 0


def _start_node(args: argparse.Namespace, data_dir: Path) -> int:
    if (args.nodes, args.port, args.kafka_version, args.security) != (None,) * 4:
        raise KafkaBootError(
            "--node starts one node of an existing cluster as it was created; --nodes, --port, "
            "--kafka-version and --security only apply when `kafkaboot broker start` creates "
            "a cluster"
        )
    cluster = _saved_cluster(data_dir)
    node = cluster.node(args.node)
    if node.is_running():
        raise BrokerError(
            f"node {node.node_id} is already running (pid {node.pid}); stop it first with "
            f"`kafkaboot broker stop --node {node.node_id} --data-dir {data_dir}`"
        )
    print(f"starting node {node.node_id} of Kafka {cluster.version} ...", file=sys.stderr)
    started = time.monotonic()
    cluster.start_node(node.node_id, timeout_s=args.timeout)
    print(
        f"node {node.node_id} (pid {node.pid}) is back in the cluster after "
        f"{time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    print(cluster.bootstrap_servers)
    return 0


def _stop(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    if args.node is not None:
        return _stop_node(args, data_dir)
    if args.kill:
        raise KafkaBootError("--kill needs --node N: it kills one node, as a crash would")
    cluster = KafkaCluster.load(data_dir)
    if cluster is None:
        print(f"no broker has been started with data dir {data_dir}", file=sys.stderr)
        return 0
    cluster.stop(timeout_s=args.timeout)
    print(f"stopped Kafka {cluster.version} ({len(cluster.nodes)} node(s))", file=sys.stderr)
    if args.purge:
        cluster.purge()
        print(f"deleted {data_dir}", file=sys.stderr)
    return 0


def _stop_node(args: argparse.Namespace, data_dir: Path) -> int:
    if args.purge:
        raise KafkaBootError("--purge deletes the whole cluster's data; it does not go with --node")
    cluster = _saved_cluster(data_dir)
    node = cluster.node(args.node)
    state, pid = node.state(), node.pid
    if state != "running":
        why = "stopped" if state == "stopped" else f"its process {pid} is gone"
        raise BrokerError(
            f"node {node.node_id} is not running ({why}); start it with "
            f"`kafkaboot broker start --node {node.node_id} --data-dir {data_dir}`"
        )
    if args.kill:
        cluster.kill_node(node.node_id)
        print(f"killed node {node.node_id} (pid {pid}) with SIGKILL", file=sys.stderr)
    elif cluster.stop_node(node.node_id, timeout_s=args.timeout):
        print(f"stopped node {node.node_id} (pid {pid})", file=sys.stderr)
    else:
        print(
            f"node {node.node_id} (pid {pid}) did not stop within {args.timeout:g}s; killed it",
            file=sys.stderr,
        )
    return 0


def _status_data(
    cluster: KafkaCluster, data_dir: Path, topics: Sequence[str], timeout_s: float
) -> dict[str, Any]:
    """The status as JSON-ready data (the ``--json`` output; the text is made from it)."""
    states = {node.node_id: node.state() for node in cluster.nodes}
    partitions: list[PartitionInfo] | None = None
    error = None
    if "running" in states.values():
        # aiokafka logs each refused connection; the outcome is reported here once instead.
        quiet = logging.getLogger("aiokafka")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            partitions = cluster.partitions(timeout_s)
        except BrokerError as exc:
            error = str(exc)
        finally:
            quiet.setLevel(level)
    if partitions is not None and topics:
        partitions = [p for p in partitions if p.topic in topics]
    leads: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for p in partitions or ():
        if p.leader is not None:
            leads[p.leader].append({"topic": p.topic, "partition": p.partition})
    nodes = [
        {
            "node_id": node.node_id,
            "state": states[node.node_id],
            "pid": node.pid,
            "broker_port": node.broker_port,
            "controller_port": node.controller_port,
            "bootstrap_server": node.bootstrap_server,
            "leads": leads[node.node_id] if partitions is not None else None,
        }
        for node in cluster.nodes
    ]
    return {
        "data_dir": str(data_dir),
        "version": cluster.version,
        "security": _security_name(cluster),
        "bootstrap_servers": cluster.bootstrap_servers,
        "running": sum(state == "running" for state in states.values()),
        "nodes": nodes,
        "partitions": None if partitions is None else [p.to_json() for p in partitions],
        "metadata_error": error,
    }


def _by_topic(partitions: Iterable[dict[str, Any]], limit: int = _TOPICS_SHOWN) -> str:
    """``orders[0, 2] payments[1]``, the first ``limit`` topics by name."""
    grouped: dict[str, list[int]] = defaultdict(list)
    for p in partitions:
        grouped[p["topic"]].append(p["partition"])
    names = sorted(grouped)
    text = " ".join(f"{t}[{', '.join(map(str, sorted(grouped[t])))}]" for t in names[:limit])
    more = len(names) - limit
    return text + (f" … and {more} more topic(s) (--topic T, --json)" if more > 0 else "")


def _print_status(status: dict[str, Any], topics: Sequence[str]) -> None:
    internal = {p["topic"] for p in status["partitions"] or () if p["internal"]} - set(topics)
    for node in status["nodes"]:
        pid = node["pid"] or "-"
        gone = " (gone: crashed or killed outside kafkaboot)" if node["state"] == "dead-pid" else ""
        print(
            f"node {node['node_id']}: {node['state']:<8}  broker {node['bootstrap_server']}  "
            f"controller 127.0.0.1:{node['controller_port']}  pid {pid}{gone}"
        )
        led = [p for p in node["leads"] or () if p["topic"] not in internal]
        if led:
            print(f"  leads {len(led)} partition(s): {_by_topic(led)}")
    if status["metadata_error"]:
        print(f"leaders: unknown ({status['metadata_error']})")
    leaderless = [p for p in status["partitions"] or () if p["leader"] is None]
    if leaderless:
        print(f"no leader: {_by_topic(leaderless)}")
    if internal:
        print(f"(internal topics {', '.join(sorted(internal))} not shown; --json lists them)")
    print(f"Kafka {status['version']}: {status['running']}/{len(status['nodes'])} node(s) running")
    if status["running"]:
        secured = f" ({status['security'].upper()})" if status["security"] != "none" else ""
        print(f"bootstrap servers: {status['bootstrap_servers']}{secured}")


def _status(args: argparse.Namespace) -> int:
    data_dir = _data_dir(args)
    cluster = KafkaCluster.load(data_dir)
    if cluster is None:
        print(
            f"no broker has been started with data dir {data_dir}",
            file=sys.stderr if args.json else sys.stdout,
        )
        return 1
    topics = args.topic or []
    status = _status_data(cluster, data_dir, topics, args.timeout)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        _print_status(status, topics)
    return 0 if status["running"] == len(cluster.nodes) else 1


def add_broker_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``broker start|status|stop`` to the ``kafkaboot`` subcommands."""
    broker = commands.add_parser("broker", help="run a local Apache Kafka (KRaft) for development")
    broker_commands = broker.add_subparsers(dest="action", required=True)
    start = broker_commands.add_parser(
        "start",
        help="start the cluster (or its stopped nodes) and wait until ready; prints bootstrap "
        "servers",
    )
    start.add_argument("--nodes", type=int, choices=(1, 3), help="1 (default) or 3 nodes")
    start.add_argument("--port", type=int, help="first broker port (default 9092)")
    start.add_argument("--kafka-version", help="Apache Kafka version (default: pinned)")
    start.add_argument(
        "--security",
        choices=("none", "ssl", "sasl_plaintext", "sasl_ssl"),
        help="secure the client listener (generated CA and certificates, SCRAM-SHA-512, PLAIN "
        "and OAUTHBEARER users) and print the client settings as YAML; default: none "
        "(PLAINTEXT)",
    )
    start.add_argument(
        "--node", type=int, help="start only this node of the cluster; wait until it is back"
    )
    start.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
    start.set_defaults(handler=_start)
    status = broker_commands.add_parser(
        "status", help="each node's state and the partitions it leads; exit 1 unless all run"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--topic", action="append", help="show leaders of this topic only (repeatable)"
    )
    status.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the cluster's metadata"
    )
    status.set_defaults(handler=_status)
    stop = broker_commands.add_parser("stop", help="stop cleanly (data is kept unless --purge)")
    stop.add_argument("--node", type=int, help="stop only this node")
    stop.add_argument(
        "--kill", action="store_true", help="with --node: SIGKILL at once, as a crash would"
    )
    stop.add_argument("--purge", action="store_true", help="also delete the data directory")
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds before killing")
    stop.set_defaults(handler=_stop)
    for sub in (start, status, stop):
        sub.add_argument("--data-dir", help="cluster data (default: ~/.cache/kafkaboot/broker)")
