"""The ``kafkaboot`` command: ``run``, ``config show|check``, ``dlt replay`` and
``broker start|status|stop``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import yaml
from aiokafka.errors import KafkaError

from kafkaboot.cli.broker import add_broker_commands
from kafkaboot.cli.cluster import (
    EXIT_REFUSED,
    Progress,
    RefusedError,
    add_cluster_options,
    add_config_options,
    cluster_settings,
)
from kafkaboot.cli.consuming import attach_start_values
from kafkaboot.cli.groups import add_group_commands
from kafkaboot.cli.records import add_record_commands
from kafkaboot.cli.topics import add_topic_commands
from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.config.secrets import is_secret_key, masked_url
from kafkaboot.errors import KafkaBootError

__all__ = ["main"]

_MASK = "******"


def _mask(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            k: _MASK if v is not None and is_secret_key(str(k)) else _mask(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_mask(v) for v in data]
    if isinstance(data, str):
        return masked_url(data)  # A database URL's password, whatever its key.
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
    from kafkaboot.runner import find_application

    _, application = find_application(target, settings)
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
    settings.kafka.check_security()  # Reads every store, as startup will.
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
        log_format=args.log_format,
        broker=args.broker,
        reload=args.reload,
    )


def _asyncapi(args: argparse.Namespace) -> int:
    import json

    from kafkaboot.asyncapi import asyncapi_document
    from kafkaboot.runner import find_application

    settings = _load(args)
    target = args.target or settings.kafkaboot.application.module
    if not target:
        raise KafkaBootError(
            "nothing to describe: give a target (`kafkaboot asyncapi my_service`) or set "
            "kafkaboot.application.module in application.yml"
        )
    _, application = find_application(target, settings)
    document = asyncapi_document(application, settings.kafkaboot.asyncapi.version)
    if args.format == "json":
        text = json.dumps(document, indent=2) + "\n"
    else:
        text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"wrote the AsyncAPI document of {target} to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _dlt_replay(args: argparse.Namespace) -> int:
    import asyncio

    from kafkaboot.errorhandling.replay import replay_dead_letters

    progress = Progress("read {done} of at most {total} dead letter(s)")
    try:
        report = asyncio.run(
            replay_dead_letters(
                cluster_settings(args),
                args.topic,
                to=args.to,
                from_offset=args.from_offset,
                limit=args.limit,
                dry_run=args.dry_run,
                progress=progress.update,
            )
        )
    finally:
        progress.close()
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
    run.add_argument(
        "--reload",
        action="store_true",
        help="restart when *.py or *.yml files change (development; needs watchfiles)",
    )
    run.add_argument(
        "--broker",
        choices=("memory",),
        help="memory: run on an in-memory Kafka of this process's own (local play; one worker)",
    )
    run.add_argument("--log-level", default="info", help="debug, info, warning, error")
    run.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text lines, or one JSON object per line (both with the record in hand)",
    )
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
    add_cluster_options(replay)
    replay.set_defaults(handler=_dlt_replay)

    asyncapi = commands.add_parser(
        "asyncapi", help="write the service's AsyncAPI 3.0 document (listeners, replies, sends)"
    )
    asyncapi.add_argument(
        "target", nargs="?", help="module or module:attr (default: kafkaboot.application.module)"
    )
    asyncapi.add_argument("--format", choices=("yaml", "json"), default="yaml")
    asyncapi.add_argument("--output", "-o", help="write to this file instead of stdout")
    # No --bootstrap-servers: a module that builds its own application reads its own
    # configuration, so the override would change the document's servers only sometimes.
    add_config_options(asyncapi)
    asyncapi.set_defaults(handler=_asyncapi)

    add_broker_commands(commands)
    add_topic_commands(commands)
    add_record_commands(commands)
    add_group_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (1 for any kafkaboot error, with its message)."""
    parser = _parser()
    argv = attach_start_values(sys.argv[1:] if argv is None else argv)
    args, extras = parser.parse_known_args(argv)
    late = getattr(args, "late_positional", None)
    if extras:
        # argparse takes an optional positional only before the options (`send TOPIC
        # --key K VALUE` would leave VALUE over): a command may name one to take it later.
        value = extras[0]
        fits = len(extras) == 1 and (value == "-" or not value.startswith("-"))
        if late is None or getattr(args, late) is not None or not fits:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        setattr(args, late, value)
    try:
        return int(args.handler(args))
    except RefusedError as exc:  # Unsafe now; nothing was done.
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except KafkaBootError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:  # What a command did not put in its own words.
        print(f"error: Kafka answered {exc!r}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): no traceback, and none at exit either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # As a shell reports a process ended by SIGPIPE.


if __name__ == "__main__":
    sys.exit(main())
