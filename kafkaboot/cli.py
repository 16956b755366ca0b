"""The ``kafkaboot`` command: ``run``, ``config show|check``, ``dlt replay`` and
``broker start|status|stop``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.errors import KafkaBootError

__all__ = ["main"]

_MASK = "******"
_SECRET_WORDS = ("password", "secret", "jaas", "token")


def _mask(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            k: _MASK
            if v is not None and any(word in str(k).lower() for word in _SECRET_WORDS)
            else _mask(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_mask(v) for v in data]
    return data


def effective_config(settings: KafkaBootSettings) -> dict[str, Any]:
    """The configuration as YAML-ready data: keys as written in YAML, secrets masked."""
    masked: dict[str, Any] = _mask(settings.as_tree())
    return masked


def _load(args: argparse.Namespace) -> KafkaBootSettings:
    return load_settings(args.config, profiles=args.profile)


def _config_show(args: argparse.Namespace) -> int:
    settings = _load(args)
    files = ", ".join(settings.files) or "none (defaults and environment only)"
    print(f"# files: {files}")
    print(f"# active profiles: {', '.join(settings.active_profiles) or 'none'}")
    for notice in settings.kafka.notices():
        print(f"# note: {notice}")
    print(yaml.safe_dump(effective_config(settings), sort_keys=False), end="")
    target = args.target or settings.kafkaboot.application.module
    if not target:
        print(
            "# listeners: none shown; give a module (kafkaboot config show my_service) or set "
            "kafkaboot.application.module"
        )
        return 0
    print(f"---\n# listeners of {target}: effective settings, and where each comes from")
    print(yaml.safe_dump({"listeners": listener_report(target, settings)}, sort_keys=False), end="")
    return 0


def listener_report(target: str, settings: KafkaBootSettings) -> dict[str, Any]:
    """The registered listeners of ``target`` (imported, not started) as YAML-ready data."""
    from kafkaboot.runner import resolve_target

    _, application = resolve_target(target, settings)
    application.prepare()
    return {
        entry["id"]: {
            name: f"{setting['value']}  [{setting['from']}]"
            for name, setting in entry["settings"].items()
        }
        for entry in application.registry.describe()
    }


def _config_check(args: argparse.Namespace) -> int:
    settings = _load(args)
    for notice in settings.kafka.notices():
        print(f"note: {notice}")
    files = ", ".join(settings.files) or "no file (defaults and environment only)"
    profiles = ", ".join(settings.active_profiles) or "none"
    target = args.target or settings.kafkaboot.application.module
    checked = ""
    if target:  # Registering the listeners checks kafka.listeners.* against them.
        checked = f"; {len(listener_report(target, settings))} listener(s) of {target}"
    print(f"configuration OK: {files}; active profiles: {profiles}{checked}")
    return 0


def _data_dir(args: argparse.Namespace) -> Path:
    from kafkaboot.testing.distribution import cache_dir

    return Path(args.data_dir) if args.data_dir else cache_dir() / "broker"


def _broker_start(args: argparse.Namespace) -> int:
    from kafkaboot.testing.broker import KafkaCluster

    data_dir = _data_dir(args)
    cluster = KafkaCluster.load(data_dir)
    if cluster is not None:
        asked = {
            "--nodes": (args.nodes, len(cluster.nodes)),
            "--port": (args.port, cluster.nodes[0].broker_port),
            "--kafka-version": (args.kafka_version, cluster.version),
        }
        for flag, (wanted, saved) in asked.items():
            if wanted is not None and wanted != saved:
                raise KafkaBootError(
                    f"{data_dir} holds a cluster with {flag} {saved}, not {wanted}. Start it "
                    f"as it is, or run `kafkaboot broker stop --purge --data-dir {data_dir}` "
                    "first, or choose another --data-dir."
                )
        if cluster.is_running():
            print(f"Kafka {cluster.version} is already running (data: {data_dir})", file=sys.stderr)
            print(cluster.bootstrap_servers)
            return 0
    else:
        cluster = KafkaCluster(
            data_dir,
            nodes=args.nodes or 1,
            port=args.port or 9092,
            version=args.kafka_version,
        )
    started = time.monotonic()
    print(
        f"starting Apache Kafka {cluster.version} ({len(cluster.nodes)} node(s), data: "
        f"{data_dir}) ...",
        file=sys.stderr,
    )
    cluster.start(timeout_s=args.timeout)
    print(f"ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(cluster.bootstrap_servers)
    return 0


def _broker_status(args: argparse.Namespace) -> int:
    from kafkaboot.testing.broker import KafkaCluster

    cluster = KafkaCluster.load(_data_dir(args))
    if cluster is None:
        print(f"no broker has been started with data dir {_data_dir(args)}")
        return 1
    running = 0
    for node in cluster.nodes:
        state = "running" if node.is_running() else "stopped"
        running += node.is_running()
        print(
            f"node {node.node_id}: {state}  broker 127.0.0.1:{node.broker_port}  "
            f"controller 127.0.0.1:{node.controller_port}  pid {node.pid or '-'}"
        )
    print(f"Kafka {cluster.version}: {running}/{len(cluster.nodes)} node(s) running")
    if running:
        print(f"bootstrap servers: {cluster.bootstrap_servers}")
    return 0 if running == len(cluster.nodes) else 1


def _broker_stop(args: argparse.Namespace) -> int:
    from kafkaboot.testing.broker import KafkaCluster

    data_dir = _data_dir(args)
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


def _run(args: argparse.Namespace) -> int:
    from kafkaboot.runner import run

    return run(
        args.target,
        config=args.config,
        profile=args.profile,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
    )


def _dlt_replay(args: argparse.Namespace) -> int:
    import asyncio

    from kafkaboot.errorhandling.replay import replay_dead_letters

    report = asyncio.run(
        replay_dead_letters(
            _load(args),
            args.topic,
            to=args.to,
            from_offset=args.from_offset,
            limit=args.limit,
            dry_run=args.dry_run,
        )
    )
    verb = "would re-publish" if args.dry_run else "re-published"
    if not report.total and not report.skipped:
        print(f"{args.topic}: no dead letters to replay")
    for topic, count in sorted(report.replayed.items()):
        print(f"{verb} {count} dead letter(s) from {args.topic} to {topic}")
    if report.skipped:
        print(
            f"skipped {len(report.skipped)} dead letter(s) that name no original topic "
            f"({', '.join(report.skipped[:5])}{', ...' if len(report.skipped) > 5 else ''}); "
            "give --to TOPIC"
        )
    where = ", ".join(f"{p}: {o}" for p, o in sorted(report.next_offsets.items()))
    print(f"next offsets per partition (for --from-offset): {where}")
    return 1 if report.skipped else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafkaboot", description="Spring-Kafka-style services on Apache Kafka."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start a service: listeners and HTTP in one process")
    run.add_argument(
        "target", nargs="?", help="module or module:attr (default: kafkaboot.application.module)"
    )
    run.add_argument("--config", help="YAML file (default: $KAFKABOOT_CONFIG, ./application.yml)")
    run.add_argument("--profile", help="active profiles, comma-separated")
    run.add_argument("--host", help="HTTP host (default: server.host)")
    run.add_argument("--port", type=int, help="HTTP port (default: server.port)")
    run.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port and the consumer groups"
    )
    run.add_argument("--log-level", default="info", help="debug, info, warning, error")
    run.set_defaults(handler=_run)

    config = commands.add_parser("config", help="show or check the configuration")
    config_commands = config.add_subparsers(dest="action", required=True)
    for name, handler, text in (
        ("show", _config_show, "print the effective configuration (secrets masked)"),
        ("check", _config_check, "validate; print every problem and exit 1 if any"),
    ):
        sub = config_commands.add_parser(name, help=text)
        sub.add_argument(
            "target",
            nargs="?",
            help="the service module whose listeners to show and check "
            "(default: kafkaboot.application.module)",
        )
        sub.add_argument(
            "--config", help="YAML file (default: $KAFKABOOT_CONFIG, ./application.yml)"
        )
        sub.add_argument("--profile", help="active profiles, comma-separated")
        sub.set_defaults(handler=handler)

    dlt = commands.add_parser("dlt", help="work with dead-letter topics")
    dlt_commands = dlt.add_subparsers(dest="action", required=True)
    replay = dlt_commands.add_parser(
        "replay", help="re-publish dead letters to their original topic"
    )
    replay.add_argument("topic", help="the dead-letter topic, e.g. orders-dlt")
    replay.add_argument("--to", help="send here instead of each record's original topic")
    replay.add_argument(
        "--from-offset", type=int, help="start at this offset in every partition (default: 0)"
    )
    replay.add_argument("--limit", type=int, help="re-publish at most this many records")
    replay.add_argument("--dry-run", action="store_true", help="count, but send nothing")
    replay.add_argument(
        "--config", help="YAML file (default: $KAFKABOOT_CONFIG, ./application.yml)"
    )
    replay.add_argument("--profile", help="active profiles, comma-separated")
    replay.set_defaults(handler=_dlt_replay)

    broker = commands.add_parser("broker", help="run a local Apache Kafka (KRaft) for development")
    broker_commands = broker.add_subparsers(dest="action", required=True)
    start = broker_commands.add_parser(
        "start", help="start and wait until ready; prints bootstrap servers"
    )
    start.add_argument("--nodes", type=int, choices=(1, 3), help="1 (default) or 3 nodes")
    start.add_argument("--port", type=int, help="first broker port (default 9092)")
    start.add_argument("--kafka-version", help="Apache Kafka version (default: pinned)")
    start.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
    start.set_defaults(handler=_broker_start)
    status = broker_commands.add_parser("status", help="show nodes, ports and pids")
    status.set_defaults(handler=_broker_status)
    stop = broker_commands.add_parser("stop", help="stop cleanly (data is kept unless --purge)")
    stop.add_argument("--purge", action="store_true", help="also delete the data directory")
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds before killing")
    stop.set_defaults(handler=_broker_stop)
    for sub in (start, status, stop):
        sub.add_argument("--data-dir", help="cluster data (default: ~/.cache/kafkaboot/broker)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (1 for any kafkaboot error, with its message)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KafkaBootError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
