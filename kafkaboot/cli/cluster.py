"""What every operations command shares: how it reaches the cluster (the service's own
configuration, as the service would: bootstrap servers, security, serializers) and how it
prints (aligned text for people, ``--format json`` for scripts).

Exit codes, the same for every command: 0 done; 1 a kafkaboot error (its message on
stderr: the cluster cannot be reached, a topic does not exist...); 2 bad usage (argparse);
3 refused (the command would be unsafe now, e.g. resetting the offsets of a group with
active members); 130 interrupted; 141 the reader of stdout went away.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from kafkaboot import clients
from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.errors import KafkaBootError

__all__ = [
    "EXIT_REFUSED",
    "Progress",
    "RefusedError",
    "add_cluster_options",
    "add_config_options",
    "add_format_option",
    "cluster_settings",
    "consumer_kwargs",
    "describe_group",
    "positive_int",
    "print_json",
    "print_table",
    "started_admin",
    "started_consumer",
    "timestamp_ms",
]

EXIT_REFUSED = 3
"""The command would be unsafe now and did nothing (see the message)."""
_PROGRESS_INTERVAL_S = 0.1


class RefusedError(KafkaBootError):
    """The command would be unsafe now and did nothing: printed as ``refused: ...``, exit 3."""


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config`` and ``--profile``: the configuration, as ``kafkaboot run`` reads it."""
    parser.add_argument(
        "--config", help="YAML file (default: $KAFKABOOT_CONFIG, ./application.yml)"
    )
    parser.add_argument("--profile", help="active profiles, comma-separated")


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--profile`` and ``--bootstrap-servers``, as on every command that
    reaches the cluster."""
    add_config_options(parser)
    parser.add_argument(
        "--bootstrap-servers",
        help="host:port[,host:port...] instead of kafka.bootstrap-servers",
    )


def add_format_option(
    parser: argparse.ArgumentParser,
    help: str = "text: aligned tables for people; json: one document for scripts",
) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text", help=help)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def timestamp_ms(text: str) -> int:
    """An ISO 8601 date-time as epoch milliseconds; without a zone it is UTC, as in Kafka's
    own tools (``Utils.getDateTime`` appends ``Z``) and as the commands print timestamps.

    Raises:
        argparse.ArgumentTypeError: not an ISO 8601 date-time.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z (UTC when no "
            "zone is given) or 2026-01-31T13:00:00+01:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def cluster_settings(args: argparse.Namespace) -> KafkaBootSettings:
    """The service's settings, with ``--bootstrap-servers`` over its own when given."""
    overrides: dict[str, Any] = {}
    if getattr(args, "bootstrap_servers", None):
        overrides["kafka"] = {"bootstrap-servers": args.bootstrap_servers}
    return load_settings(args.config, profiles=args.profile, overrides=overrides)


def consumer_kwargs(
    settings: KafkaBootSettings, client_id: str, group: str | None = None
) -> dict[str, Any]:
    """The service's consumer settings (security, isolation level...) for a command's own
    consumer: in ``group`` if given (to read or commit its offsets, never to join it), and
    never committing by itself. The service's ``group.instance.id`` is dropped: a static
    member id on the command's consumer would fence the service's own member."""
    kwargs = settings.kafka.consumer_kwargs()
    for key in ("group_id", "group_instance_id", "auto_commit_interval_ms"):
        kwargs.pop(key, None)
    return kwargs | {"group_id": group, "enable_auto_commit": False, "client_id": client_id}


def _unreachable(settings: KafkaBootSettings, exc: Exception) -> KafkaBootError:
    return KafkaBootError(
        f"cannot reach Kafka at {','.join(settings.kafka.bootstrap_servers)}: {exc}; check "
        "kafka.bootstrap-servers in the configuration, or give --bootstrap-servers"
    )


@contextlib.asynccontextmanager
async def started_admin(settings: KafkaBootSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client with the service's settings, started, and closed whatever happens.

    Raises:
        KafkaBootError: the cluster cannot be reached.
    """
    client = clients.admin(**settings.kafka.admin_kwargs())
    async with _started(settings, client, client.close):
        yield client


@contextlib.asynccontextmanager
async def started_consumer(
    settings: KafkaBootSettings, **kwargs: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer made with ``kwargs`` (see :func:`consumer_kwargs`), started, and stopped
    whatever happens.

    Raises:
        KafkaBootError: the cluster cannot be reached.
    """
    client = clients.consumer(**kwargs)
    async with _started(settings, client, client.stop):
        yield client


@contextlib.asynccontextmanager
async def _started(
    settings: KafkaBootSettings, client: Any, close: Callable[[], Awaitable[object]]
) -> AsyncIterator[None]:
    """Start ``client`` (an unreachable cluster said in the configuration's terms), and
    ``close`` it whatever happens, a failed start included."""
    try:
        try:
            await client.start()
        except (KafkaError, OSError) as exc:
            raise _unreachable(settings, exc) from exc
        yield
    finally:
        await close()


class Progress:
    """A counter on stderr, rewritten in place (``sent 1200/5000``) at most ten times a
    second, and only when stderr is a terminal: a log or a pipe gets the summary alone."""

    def __init__(self, template: str, shown: bool = True) -> None:
        """``template`` takes ``{done}`` and ``{total}``; ``shown=False`` turns it off."""
        self.template = template
        self.shown = shown and sys.stderr.isatty()
        self._last = 0.0
        self._printed = False

    def update(self, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        if not self.shown or (now - self._last < _PROGRESS_INTERVAL_S and done != total):
            return
        self._last, self._printed = now, True
        line = self.template.format(done=done, total=total)
        print(f"\r{line}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        """End the counter's line, so what follows starts on a line of its own."""
        if self._printed:
            print(file=sys.stderr)


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
