"""``kafkaboot send``: records from the command line, sent as the service sends them.

The records go through the service's own KafkaTemplate, so its acks, idempotence,
security, serializers (and transactions, when it has a transaction-id-prefix) apply. Input
is checked whole before anything is sent: a bad line sends nothing and loses nothing.
``kafkaboot consume`` is in :mod:`kafkaboot.cli.consuming`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Literal

from kafkaboot.cli.cluster import (
    Progress,
    add_cluster_options,
    add_format_option,
    cluster_settings,
    print_json,
    print_table,
)
from kafkaboot.cli.consuming import add_consume_command, topic_partitions
from kafkaboot.config import KafkaBootSettings
from kafkaboot.errors import KafkaBootError, SerializationError
from kafkaboot.records import ProducerRecord, SendResult
from kafkaboot.serialization import (
    AutoSerializer,
    BytesSerializer,
    StringSerializer,
    serializer_for,
)

__all__ = ["add_record_commands"]

InputMode = Literal["text", "bytes", "json"]
"""How a line becomes the value handed to the serializer."""

_IN_FLIGHT = 1000
"""Records queued and not yet confirmed, at most: a large file does not queue whole."""
_BAD_LINES_SHOWN = 5


class _QuietListener:
    """Failures are reported once, in the command's own output, not logged as well."""

    def on_success(self, record: ProducerRecord, result: SendResult) -> None:
        return None

    def on_error(self, record: ProducerRecord, error: Exception) -> None:
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class _Line:
    number: int
    """1-based line of the input (1 for a VALUE argument)."""
    value: Any


def input_mode(serializer_name: str | None) -> InputMode:
    """What a serializer takes from a text line: ``bytes`` the line's bytes; ``text`` a str
    (the type-picking default, ``string`` and serializers of your own); ``json`` the
    parsed JSON (``json``, and the number serializers, whose values are JSON numbers)."""
    if serializer_name is None:
        return "text"
    serializer = serializer_for(serializer_name)
    if isinstance(serializer, BytesSerializer):
        return "bytes"
    if isinstance(serializer, StringSerializer | AutoSerializer) or ":" in serializer_name:
        return "text"
    return "json"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (JSON has no NaN or Infinity)")


def parse_line(raw: bytes, mode: InputMode) -> Any:
    """The value ``raw`` stands for in ``mode``.

    Raises:
        ValueError: the bytes are not UTF-8 text (text, json) or not JSON (json).
    """
    if mode == "bytes":
        return raw
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if mode == "text":
        return text
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not JSON this tool can read (nested too deeply)") from None


def _raw_lines(args: argparse.Namespace) -> tuple[str, list[tuple[int, bytes]]]:
    """Where the input comes from (for messages) and its non-blank lines, numbered."""
    if args.file is not None and args.value is not None:
        args.parser.error("give a VALUE, --file F or - (stdin), not several")
    if args.file is None and args.value is None:
        args.parser.error("give the value to send: VALUE, --file F, or - to read stdin")
    if args.value is not None and args.value != "-":
        return "VALUE", [(1, os.fsencode(args.value))]
    if args.file in (None, "-"):
        source, data = "stdin", sys.stdin.buffer.read()
    else:
        try:
            source, data = args.file, Path(args.file).read_bytes()
        except OSError as exc:
            raise KafkaBootError(f"cannot read {args.file}: {exc.strerror}") from None
    # Blank lines are skipped, not sent: a trailing newline makes no empty record.
    lines = [(n, line) for n, line in enumerate(data.splitlines(), 1) if line.strip()]
    if not lines:
        raise KafkaBootError(f"{source} has no lines to send; nothing was sent")
    return source, lines


def _checked_lines(args: argparse.Namespace, mode: InputMode) -> tuple[str, list[_Line]]:
    """Every line parsed, or an error naming the bad ones before anything is sent.

    Raises:
        SerializationError: a line is not what the serializer takes.
    """
    source, raw_lines = _raw_lines(args)
    lines: list[_Line] = []
    bad: list[str] = []
    for number, raw in raw_lines:
        try:
            lines.append(_Line(number, parse_line(raw, mode)))
        except ValueError as exc:
            bad.append(f"line {number} is {exc}" if source != "VALUE" else f"the VALUE is {exc}")
    if bad:
        shown = "; ".join(bad[:_BAD_LINES_SHOWN])
        more = f"; and {len(bad) - _BAD_LINES_SHOWN} more" if len(bad) > _BAD_LINES_SHOWN else ""
        fix = "as text with --serializer string" if mode == "json" else "with --serializer bytes"
        raise SerializationError(
            f"nothing was sent: {source} has {len(bad)} value(s) that cannot be sent as {mode}: "
            f"{shown}{more}. Fix them, or send them {fix}"
        )
    return source, lines


def _headers(args: argparse.Namespace) -> list[tuple[str, str]]:
    headers = []
    for pair in args.header or ():
        name, equals, value = pair.partition("=")
        if not equals or not name:
            args.parser.error(f"--header {pair!r} is not NAME=VALUE, e.g. --header trace=abc")
        headers.append((name, value))
    return headers


def _key(settings: KafkaBootSettings, key: str | None) -> Any:
    if key is None:
        return None
    mode = input_mode(settings.kafka.producer.key_serializer)
    try:
        return parse_line(os.fsencode(key), mode)
    except ValueError as exc:
        raise SerializationError(
            f"nothing was sent: --key is {exc}, and kafka.producer.key-serializer "
            f"({settings.kafka.producer.key_serializer}) takes {mode}"
        ) from None


async def _settle(line: _Line, delivery: asyncio.Future[SendResult]) -> dict[str, Any]:
    try:
        result = await delivery
    except KafkaBootError as exc:
        return {"line": line.number, "error": str(exc)}
    return {"line": line.number, "partition": result.partition, "offset": result.offset}


async def _send_lines(
    template: Any, args: argparse.Namespace, lines: list[_Line], key: Any
) -> list[dict[str, Any]]:
    """Each line's outcome, in input order: where it landed, or why it failed."""
    headers = _headers(args)
    total = len(lines)
    progress = Progress("sent {done}/{total}", shown=total > 1)
    outcomes: list[dict[str, Any]] = []
    in_flight: deque[tuple[_Line, asyncio.Future[SendResult]]] = deque()
    try:
        for line in lines:
            if len(in_flight) >= _IN_FLIGHT:
                outcomes.append(await _settle(*in_flight.popleft()))
                progress.update(len(outcomes), total)
            try:
                delivery = await template.send(
                    args.topic, line.value, key=key, partition=args.partition, headers=headers
                )
            except KafkaBootError as exc:  # Not queued: too large, a serializer refused it...
                outcomes.append({"line": line.number, "error": str(exc)})
                continue
            in_flight.append((line, delivery))
        while in_flight:
            outcomes.append(await _settle(*in_flight.popleft()))
            progress.update(len(outcomes), total)
    finally:
        progress.close()
    return sorted(outcomes, key=lambda outcome: int(outcome["line"]))


async def send_records(
    settings: KafkaBootSettings, args: argparse.Namespace
) -> list[dict[str, Any]]:
    """Check the input whole, then send it; returns each line's outcome.

    Raises:
        SerializationError: a line (or the key) is not what the serializer takes; nothing sent.
        KafkaBootError: the topic or partition does not exist, or Kafka cannot be reached.
    """
    from kafkaboot.template import KafkaTemplate

    serializer = args.serializer or settings.kafka.producer.value_serializer
    _, lines = _checked_lines(args, input_mode(serializer))
    key = _key(settings, args.key)
    _headers(args)
    partitions = await topic_partitions(settings, args.topic)
    if args.partition is not None and args.partition not in partitions:
        raise KafkaBootError(
            f"topic {args.topic!r} has no partition {args.partition}; it has "
            f"{len(partitions)} (0-{len(partitions) - 1}); nothing was sent"
        )
    template = KafkaTemplate(
        settings,
        value_serializer=args.serializer,
        producer_listener=_QuietListener(),
        # Its own transactional id: a running service's template must not be fenced.
        transaction_id_suffix=f"cli-send-{uuid.uuid4().hex[:8]}",
    )
    await template.start()
    try:
        if not template.transactional:
            return await _send_lines(template, args, lines, key)
        try:
            async with template.transaction():
                outcomes = await _send_lines(template, args, lines, key)
                failed = [outcome for outcome in outcomes if "error" in outcome]
                if failed:
                    raise KafkaBootError(f"line {failed[0]['line']} failed: {failed[0]['error']}")
        except KafkaBootError as exc:  # Aborted: none of them is committed.
            aborted = f"not committed: the transaction was aborted ({exc})"
            return [{"line": line.number, "error": aborted} for line in lines]
        return outcomes
    finally:
        await template.stop()


def _send(args: argparse.Namespace) -> int:
    outcomes = asyncio.run(send_records(cluster_settings(args), args))
    if args.format == "json":
        print_json(outcomes)
    else:
        columns = ["line", "partition", "offset"]
        print_table(
            outcomes, [*columns, "error"] if any("error" in o for o in outcomes) else columns
        )
    failed = [outcome["line"] for outcome in outcomes if "error" in outcome]
    if failed:
        shown = ", ".join(map(str, failed[:_BAD_LINES_SHOWN]))
        more = ", ..." if len(failed) > _BAD_LINES_SHOWN else ""
        others = "none was sent" if len(failed) == len(outcomes) else "the others were sent"
        print(
            f"error: {len(failed)} of {len(outcomes)} record(s) failed (line(s) {shown}{more}); "
            f"{others}",
            file=sys.stderr,
        )
        return 1
    return 0


def add_record_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``send`` and ``consume`` to the ``kafkaboot`` subcommands."""
    send = commands.add_parser(
        "send",
        help="send one record, or one per line of a file or stdin, through the service's "
        "KafkaTemplate",
        description="Send records as the service would (its acks, security and serializers). "
        "Every line is checked before anything is sent; blank lines are skipped. Prints where "
        "each record landed; exit 1 if any failed.",
    )
    send.add_argument("topic", help="the topic to send to (it must exist)")
    send.add_argument("value", nargs="?", help="the value to send; - reads one per line of stdin")
    send.add_argument("--file", help="send one record per line of this file (- for stdin)")
    send.add_argument(
        "--key", help="the key of every record (text; JSON for a json key serializer)"
    )
    send.add_argument(
        "--header",
        action="append",
        metavar="NAME=VALUE",
        help="a header on every record (repeatable); the value is sent as UTF-8",
    )
    send.add_argument("--partition", type=int, help="send to this partition (default: by key)")
    send.add_argument(
        "--serializer",
        choices=("string", "bytes", "json"),
        help="instead of kafka.producer.value-serializer; json: each line must be JSON and is "
        "sent as compact JSON",
    )
    add_cluster_options(send)
    add_format_option(send)
    send.set_defaults(handler=_send, parser=send, late_positional="value")
    add_consume_command(commands)
