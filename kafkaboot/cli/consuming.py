"""``kafkaboot consume``: a topic's records, read as the service's consumer reads them (its
security, isolation level and deserializers), without disturbing any consumer group.

Partitions are assigned, never subscribed to: no group is joined, so a running service is
not rebalanced. Without ``--group`` there is no group at all; with it, reading starts where
the group has committed, and offsets are committed only with ``--commit``.

How a record is shown is in :mod:`kafkaboot.cli.rendering`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from kafkaboot.cli.cluster import (
    RefusedError,
    add_cluster_options,
    add_format_option,
    cluster_settings,
    consumer_kwargs,
    describe_group,
    positive_int,
    started_admin,
    started_consumer,
    timestamp_ms,
)
from kafkaboot.cli.rendering import (
    Deserializers,
    configured_deserializers,
    record_view,
    text_line,
)
from kafkaboot.config import KafkaBootSettings
from kafkaboot.config.types import parse_duration
from kafkaboot.errors import KafkaBootError

__all__ = ["StartAt", "add_consume_command", "attach_start_values", "start_at", "topic_partitions"]

_FETCH_MS = 500
_STALL_S = 30.0
"""Without --follow, give up when the end is not reached and nothing came for this long."""


@dataclasses.dataclass(frozen=True, slots=True)
class StartAt:
    """Where ``--from`` starts each partition: ``beginning``, ``end``, ``offset`` (number),
    ``last`` (number of records before the end) or ``timestamp`` (epoch ms)."""

    where: str
    number: int = 0


def start_at(text: str) -> StartAt:
    """``--from``'s value: beginning, end, an offset, -N (the last N records), an ISO
    timestamp (UTC unless it has a zone: :func:`~kafkaboot.cli.cluster.timestamp_ms`) or a
    duration before now (-1h, -30m, -PT15M).

    Raises:
        argparse.ArgumentTypeError: none of those.
    """
    word = text.strip().lower()
    if word in ("beginning", "earliest"):
        return StartAt("beginning")
    if word in ("end", "latest"):
        return StartAt("end")
    if re.fullmatch(r"\d+", word):
        return StartAt("offset", int(word))
    if re.fullmatch(r"-\d+", word):
        return StartAt("last", -int(word))
    if word.startswith("-"):
        with contextlib.suppress(ValueError):
            ago = parse_duration(word[1:])
            return StartAt("timestamp", int((datetime.now(UTC) - ago).timestamp() * 1000))
    with contextlib.suppress(argparse.ArgumentTypeError):
        return StartAt("timestamp", timestamp_ms(text))
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a start: give beginning, end, an offset (1200), -N for the last N "
        "records, an ISO timestamp (2026-01-31T12:00:00Z) or a time ago (-1h, -30m)"
    )


def attach_start_values(argv: Sequence[str]) -> list[str]:
    """``consume``'s arguments with ``--from -1h`` written ``--from=-1h``: argparse takes
    ``-1h`` (anything starting with ``-`` but a plain negative number) for an option, and
    would say that ``--from`` has no value. Other commands' arguments are left as given."""
    args = list(argv)
    if args[:1] != ["consume"]:
        return args
    joined: list[str] = []
    index = 0
    while index < len(args):
        arg, following = args[index], args[index + 1 : index + 2]
        if arg == "--":  # What follows is positional, whatever it looks like.
            return joined + args[index:]
        if arg == "--from" and following and re.fullmatch(r"-[^-].*", following[0]):
            joined.append(f"--from={following[0]}")
            index += 2
            continue
        joined.append(arg)
        index += 1
    return joined


async def topic_partitions(settings: KafkaBootSettings, topic: str) -> list[int]:
    """The partition numbers of ``topic``, asked of the admin API (a producer's or
    consumer's metadata request could auto-create a mistyped topic).

    Raises:
        KafkaBootError: the topic does not exist, or Kafka cannot be reached.
    """
    async with started_admin(settings) as admin:
        if topic not in await admin.list_topics():
            servers = ",".join(settings.kafka.bootstrap_servers)
            raise KafkaBootError(f"topic {topic!r} does not exist on {servers}; create it first")
        [described] = await admin.describe_topics([topic])
    return sorted(p["partition"] for p in described["partitions"])


async def _active_members(settings: KafkaBootSettings, group: str) -> int:
    async with started_admin(settings) as admin:
        described = await describe_group(admin, group)
    return 0 if described["state"] in ("Empty", "Dead") else len(described["members"])


async def _starts(
    consumer: Any, partitions: list[TopicPartition], args: argparse.Namespace
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Each partition's first offset to read, and its end offset now."""
    firsts = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    start: StartAt = args.start or StartAt("end" if args.follow else "beginning")
    if start.where == "timestamp":
        found = await consumer.offsets_for_times(dict.fromkeys(partitions, start.number))
        at = {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in partitions}
    else:
        at = {
            tp: {
                "beginning": firsts[tp],
                "end": ends[tp],
                "offset": start.number,
                "last": ends[tp] - start.number,
            }[start.where]
            for tp in partitions
        }
    if args.start is None and args.group is not None:  # Its committed offsets, where it has some.
        for tp in partitions:
            committed = await consumer.committed(tp)
            at[tp] = at[tp] if committed is None else committed
    return {tp: min(max(at[tp], firsts[tp]), ends[tp]) for tp in partitions}, ends


class _Output:
    """Writes records to stdout; a closed pipe (``| head``) ends the reading without a
    traceback (exit 141)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json, self.closed = as_json, False

    def write(self, view: dict[str, Any]) -> bool:
        """Whether the line went out (not once the pipe has closed)."""
        if self.closed:
            return False
        line = (
            json.dumps(view, ensure_ascii=False, default=str) if self.as_json else text_line(view)
        )
        try:
            print(line)
        except BrokenPipeError:
            self.closed = True
        return not self.closed

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
        if self.closed:  # Else Python reports the closed pipe again as it exits.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class _Reading:
    """One run of the reading loop, and what it has shown but not yet committed."""

    def __init__(self, consumer: Any, args: argparse.Namespace, decoders: Deserializers) -> None:
        self.consumer, self.args, self.decoders = consumer, args, decoders
        self.output = _Output(args.format == "json")
        self.shown = 0
        self.uncommitted: dict[TopicPartition, int] = {}

    async def run(self, partitions: list[TopicPartition], stop: asyncio.Event) -> None:
        args, consumer = self.args, self.consumer
        consumer.assign(partitions)
        starts, ends = await _starts(consumer, partitions, args)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        pending = {tp for tp in partitions if args.follow or starts[tp] < ends[tp]}
        where = ", ".join(f"{tp.partition}@{starts[tp]}" for tp in partitions)
        doing = "following" if args.follow else "reading"
        until = "; Ctrl-C to stop" if args.follow else " up to the end offsets seen now"
        print(f"{doing} {args.topic} from partition@offset {where}{until}", file=sys.stderr)
        idle_limit = args.timeout if args.timeout is not None or args.follow else _STALL_S
        idle_since = time.monotonic()
        while pending and not (self.output.closed or stop.is_set() or self.shown == args.max):
            if idle_limit is not None and time.monotonic() - idle_since > idle_limit:
                if args.follow:
                    return
                raise KafkaBootError(
                    f"no records for {idle_limit:g}s from partition(s) "
                    f"{sorted(tp.partition for tp in pending)} of {args.topic} before their end "
                    f"offsets ({self.shown} shown); leader unavailable? Raise --timeout to wait"
                )
            batches = await consumer.getmany(*pending, timeout_ms=_FETCH_MS)
            if batches:
                idle_since = time.monotonic()
            for tp, records in sorted(batches.items()):
                for record in records:
                    if (not args.follow and record.offset >= ends[tp]) or self.shown == args.max:
                        break
                    if not self.output.write(record_view(record, self.decoders)):
                        break  # Not shown, so neither counted nor committed.
                    self.shown += 1
                    self.uncommitted[tp] = record.offset + 1
            self.output.flush()
            if self.output.closed:  # Maybe never read: shown again next time, not skipped.
                self.uncommitted = {}
            await self.commit()
            if not args.follow:
                for tp in list(pending):  # The position skips transaction markers.
                    if await consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)

    async def commit(self) -> None:
        """Commit what was shown since the last commit, with --commit.

        Raises:
            KafkaBootError: the commit failed.
        """
        if not (self.args.commit and self.uncommitted):
            return
        try:
            await self.consumer.commit(self.uncommitted)
        except KafkaError as exc:
            raise KafkaBootError(
                f"could not commit for group {self.args.group!r} ({exc!r}); the records above "
                "were shown but their offsets are not committed"
            ) from exc
        self.uncommitted = {}


@contextlib.contextmanager
def _terminated() -> Iterator[asyncio.Event]:
    """Set on SIGTERM (kill <pid>, a container stopping): the reading then ends as at
    --max, committing what it showed, instead of dying in the middle of a batch."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    original = signal.getsignal(signal.SIGTERM)
    try:
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread.
        yield stop
        return
    try:
        yield stop
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, original)


async def consume_records(settings: KafkaBootSettings, args: argparse.Namespace) -> int:
    """Print the records ``args`` ask for; returns the exit code.

    Raises:
        RefusedError: --commit while the group has active members (exit 3).
        KafkaBootError: the topic or partition does not exist, Kafka cannot be reached, a
            commit failed, or (without --follow) the end was not reached within --timeout.
    """
    numbers = await topic_partitions(settings, args.topic)
    if args.partition is not None and args.partition not in numbers:
        raise KafkaBootError(
            f"topic {args.topic!r} has no partition {args.partition}; it has {len(numbers)} "
            f"(0-{len(numbers) - 1})"
        )
    if args.commit and (members := await _active_members(settings, args.group)):
        raise RefusedError(
            f"group {args.group!r} has {members} active member(s); offsets committed beside "
            "them would be rejected or move under them. Stop its consumers first, or read "
            "without --commit"
        )
    partitions = [TopicPartition(args.topic, n) for n in numbers if args.partition in (None, n)]
    # Never an automatic commit: only --commit commits, and only what was shown.
    kwargs = consumer_kwargs(settings, "kafkaboot-consume", args.group)
    async with started_consumer(settings, **kwargs) as consumer:
        reading = _Reading(consumer, args, configured_deserializers(settings))
        with _terminated() as stop:
            try:
                await reading.run(partitions, stop)
            finally:
                await reading.commit()  # What was shown before a Ctrl-C or an error.
    committed = f"; committed for group {args.group}" if args.commit and reading.shown else ""
    print(f"{reading.shown} record(s){committed}", file=sys.stderr)
    if reading.output.closed:
        return 128 + signal.SIGPIPE  # The reader went away (`| head`): as a shell reports it.
    return 128 + signal.SIGTERM if stop.is_set() else 0


def _consume(args: argparse.Namespace) -> int:
    if args.commit and args.group is None:
        args.parser.error("--commit needs --group G: without a group there is nothing to commit to")
    if args.commit and args.start is not None:
        # Committing from elsewhere than the group's own offsets would move the group past
        # records its service has not handled.
        args.parser.error(
            "--commit reads from the group's committed offsets, not --from: move the group "
            "with `kafkaboot groups reset-offsets` first, then consume --group G --commit"
        )
    return asyncio.run(consume_records(cluster_settings(args), args))


def add_consume_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``consume`` to the ``kafkaboot`` subcommands."""
    consume = commands.add_parser(
        "consume",
        help="print a topic's records (partition, offset, timestamp, key, headers, value)",
        description="Read a topic as the service's consumer would, by partition assignment: no "
        "group is joined, and nothing is committed without --commit. Without --follow, stops "
        "at the end offsets seen at the start.",
    )
    consume.add_argument("topic", help="the topic to read")
    consume.add_argument(
        "--group",
        help="read as this group, without joining it: start at its committed offsets "
        "(unless --from); commit only with --commit",
    )
    consume.add_argument(
        "--from",
        dest="start",
        type=start_at,
        metavar="WHERE",
        help="beginning, end, an offset, -N (the last N records), an ISO timestamp (UTC "
        "unless zoned) or a time ago (-1h, -30m; --from -1h and --from=-1h both work). "
        "Default: the group's committed offsets, else beginning (end with --follow)",
    )
    consume.add_argument("--partition", type=int, help="read only this partition")
    consume.add_argument("--max", type=positive_int, help="stop after this many records")
    consume.add_argument(
        "--follow", action="store_true", help="keep reading new records until Ctrl-C (or --max)"
    )
    consume.add_argument(
        "--commit",
        action="store_true",
        help="commit the shown records' offsets for --group (refused while it has members)",
    )
    consume.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop when no record came for this long (with --follow: a normal end; without: "
        f"an error, as the end was not reached; default {_STALL_S:g})",
    )
    add_cluster_options(consume)
    add_format_option(
        consume, help="text: one line per record; json: one JSON object per line (JSON Lines)"
    )
    consume.set_defaults(handler=_consume, parser=consume)
