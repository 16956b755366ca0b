"""What every operations command shares: how it reaches the cluster (the service's own
configuration, as the service would: bootstrap servers, security, serializers) and how it
prints (aligned text for people, ``--format json`` for scripts).

Exit codes, the same for every command: 0 done; 1 a kafkaboot error (its message on
stderr: the cluster cannot be reached, a topic does not exist...); 2 bad usage (argparse);
3 refused (the command would be unsafe now, e.g. resetting the offsets of a group with
active members); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka.errors import KafkaError

from kafkaboot.config import KafkaBootSettings, load_settings

__all__ = [
    "EXIT_REFUSED",
    "add_cluster_options",
    "add_format_option",
    "cluster_settings",
    "describe_group",
    "print_json",
    "print_table",
]

EXIT_REFUSED = 3
"""The command would be unsafe now and did nothing (see the message)."""


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--profile`` and ``--bootstrap-servers``, as on every command."""
    parser.add_argument(
        "--config", help="YAML file (default: $KAFKABOOT_CONFIG, ./application.yml)"
    )
    parser.add_argument("--profile", help="active profiles, comma-separated")
    parser.add_argument(
        "--bootstrap-servers",
        help="host:port[,host:port...] instead of kafka.bootstrap-servers",
    )


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: aligned tables for people; json: one document for scripts",
    )


def cluster_settings(args: argparse.Namespace) -> KafkaBootSettings:
    """The service's settings, with ``--bootstrap-servers`` over its own when given."""
    overrides: dict[str, Any] = {}
    if getattr(args, "bootstrap_servers", None):
        overrides["kafka"] = {"bootstrap-servers": args.bootstrap_servers}
    return load_settings(args.config, profiles=args.profile, overrides=overrides)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """``rows`` as left-aligned columns under their names (``-`` for None); nothing for no
    rows but the header."""
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [
        max([len(column), *(len(line[index]) for line in cells)])
        for index, column in enumerate(columns)
    ]
    header = [column.upper() for column in columns]
    for line in [header, *cells]:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    return str(value)


async def describe_group(admin: Any, group: str, timeout: float = 15.0) -> dict[str, Any]:
    """DescribeGroups' answer for ``group`` (error_code, state, protocol_type, members),
    asked again while the broker answers that the group's coordinator is not ready yet (a
    new cluster creates ``__consumer_offsets`` on the first group request), as Kafka's
    tools do.

    Raises:
        KafkaError: not retriable, or still not ready after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        try:
            [response] = await admin.describe_consumer_groups([group])
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        described: dict[str, Any] = response.to_object()["groups"][0]
        return described
