"""``kafkaboot groups list|describe|reset-offsets``: consumer groups as Kafka's
``kafka-consumer-groups.sh`` shows and moves them, without a Kafka distribution, on the
cluster (and with the security settings) of the service's own configuration.

``reset-offsets`` prints its plan and commits nothing without ``--execute``. With
``--execute`` it refuses (exit 3) while the group has active members, as Kafka's tool does:
a running member would commit over the new offsets. A dry run shows the plan even then (with
a note), so the plan can be checked before the service is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import CommitFailedError, for_code

from kafkaboot.cli.cluster import (
    RefusedError,
    add_cluster_options,
    add_format_option,
    cluster_settings,
    consumer_kwargs,
    describe_group,
    print_json,
    print_table,
    started_admin,
    started_consumer,
    timestamp_ms,
)
from kafkaboot.config import KafkaBootSettings
from kafkaboot.errors import KafkaBootError

__all__ = ["GroupBusyError", "add_group_commands"]

_IDLE_STATES = frozenset({"Empty", "Dead"})
"""Group states without active members: the only ones whose offsets may be reset."""
_DESCRIBED_AT_ONCE = 32
"""Groups ``groups list`` describes concurrently, one per request: aiokafka 0.14 decodes a
DescribeGroups v3 response with the v2 schema (no per-group ``authorized_operations``), which
only reads a response about one group correctly."""
_PROBE_FETCH_BYTES = 64 * 1024
"""Per partition, what the lag probe fetches: it needs one record, not a megabyte."""


class GroupBusyError(RefusedError):
    """The group has active members, so its offsets cannot be reset now (exit 3)."""


def _consumer(
    settings: KafkaBootSettings, group: str | None = None
) -> contextlib.AbstractAsyncContextManager[Any]:
    """A short-lived consumer with the service's settings that never joins a group: it reads
    offsets and records of partitions it assigns itself, and in ``group`` only commits."""
    kwargs = consumer_kwargs(settings, "kafkaboot-groups", group) | {
        "auto_offset_reset": "earliest",  # A committed offset below the log start: read it.
        "max_partition_fetch_bytes": _PROBE_FETCH_BYTES,
    }
    return started_consumer(settings, **kwargs)


async def _committed(admin: Any, group: str) -> dict[Any, int]:
    found = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}


def _members(described: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The members, each with the partitions its assignment bytes name (only consumers':
    Kafka Connect encodes its own; empty while a rebalance is in progress)."""
    decode = described["protocol_type"] == "consumer"
    members = []
    for member in described["members"]:
        raw = member["member_assignment"]
        assigned = (
            ConsumerProtocolMemberAssignment.decode(raw).partitions() if decode and raw else []
        )
        members.append(
            {"member_id": member["member_id"], "client_id": member["client_id"]}
            | {"host": member["client_host"].lstrip("/")}
            | {"partitions": [{"topic": t, "partition": p} for t, p in sorted(assigned)]}
        )
    return members


def _partitions_text(partitions: Iterable[Mapping[str, Any]]) -> str:
    """``orders[0,2] payments[1]``."""
    grouped: dict[str, list[int]] = defaultdict(list)
    for p in partitions:
        grouped[p["topic"]].append(p["partition"])
    return " ".join(f"{t}[{','.join(map(str, sorted(ps)))}]" for t, ps in sorted(grouped.items()))


def _state(described: Mapping[str, Any]) -> str:
    code = described["error_code"]
    return str(described["state"]) if not code else f"error: {for_code(code).__name__}"


async def _oldest_unconsumed_ages(
    consumer: Any, starts: Mapping[Any, int], timeout_s: float
) -> dict[Any, float]:
    """Per partition, the seconds since the first record at or after ``starts[tp]`` was
    written (its timestamp). Partitions whose record did not arrive within ``timeout_s``
    (or that carry no timestamp) are left out."""
    if not starts:
        return {}
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        consumer.seek(tp, offset)
    ages: dict[Any, float] = {}
    pending = set(starts)
    deadline = time.monotonic() + timeout_s
    while pending and (left := deadline - time.monotonic()) > 0:
        batches = await consumer.getmany(*pending, timeout_ms=int(min(left, 0.5) * 1000))
        now_ms = time.time() * 1000
        for tp, records in batches.items():
            if records and tp in pending:
                pending.discard(tp)
                consumer.pause(tp)  # Its one record is in hand: fetch no more of it.
                if records[0].timestamp is not None and records[0].timestamp >= 0:
                    ages[tp] = round(max(0.0, (now_ms - records[0].timestamp) / 1000), 1)
    return ages


async def _list_data(settings: KafkaBootSettings) -> list[dict[str, Any]]:
    async with started_admin(settings) as admin:
        groups = sorted({entry[0] for entry in await admin.list_consumer_groups()})
        limit = asyncio.Semaphore(_DESCRIBED_AT_ONCE)

        async def describe(group: str) -> dict[str, Any]:
            async with limit:
                described = await describe_group(admin, group)
            state = {"group": group, "state": _state(described)}
            return state | {"members": len(described["members"])}

        return list(await asyncio.gather(*(describe(group) for group in groups)))


def _list(args: argparse.Namespace) -> int:
    rows = asyncio.run(_list_data(cluster_settings(args)))
    if args.format == "json":
        print_json({"groups": rows})
    else:
        print_table(rows, ["group", "state", "members"])
    return 0


async def _describe_data(
    settings: KafkaBootSettings, group: str, timeout_s: float
) -> dict[str, Any]:
    """The group, its members and per partition its offsets and lag (the JSON document).

    Raises:
        KafkaBootError: the group does not exist, or the cluster cannot be reached.
    """
    async with started_admin(settings) as admin:
        described = await describe_group(admin, group)
        committed = await _committed(admin, group)
        topics = set(await admin.list_topics())
    if described["error_code"]:
        raise KafkaBootError(f"cannot describe group {group!r}: {_state(described)}")
    if described["state"] == "Dead" and not committed:
        raise KafkaBootError(
            f"consumer group {group!r} does not exist (no members, no committed offsets); "
            "`kafkaboot groups list` shows the groups of the cluster"
        )
    members = _members(described)
    owners = {
        TopicPartition(**p): member["member_id"] for member in members for p in member["partitions"]
    }
    partitions = sorted(set(committed) | set(owners))
    existing = [tp for tp in partitions if tp.topic in topics]  # Offsets outlive a topic.
    async with _consumer(settings) as consumer:
        ends = await consumer.end_offsets(existing) if existing else {}
        lagging = {tp: committed[tp] for tp in existing if committed.get(tp, ends[tp]) < ends[tp]}
        ages = await _oldest_unconsumed_ages(consumer, lagging, timeout_s)
    rows = []
    for tp in partitions:
        current, end = committed.get(tp), ends.get(tp)
        lag = None if current is None or end is None else end - current
        seconds = 0.0 if lag is not None and lag <= 0 else ages.get(tp)
        rows.append(
            {"topic": tp.topic, "partition": tp.partition, "committed": current, "log_end": end}
            | {"lag": lag, "lag_seconds": seconds, "member_id": owners.get(tp)}
        )
    return {"group": group, "state": described["state"], "members": members, "partitions": rows}


def _describe(args: argparse.Namespace) -> int:
    data = asyncio.run(_describe_data(cluster_settings(args), args.group, args.timeout))
    if args.format == "json":
        print_json(data)
        return 0
    members = data["members"]
    active = f"{len(members)} member(s)" if members else "no active members"
    print(f"group {data['group']}: {data['state']}, {active}")
    if members:
        print()
        _table(
            [{**m, "partitions": _partitions_text(m["partitions"])} for m in members],
            ["member_id", "client_id", "host", "partitions"],
        )
    print()
    columns = ["topic", "partition", "committed", "log_end", "lag", "lag_seconds", "member_id"]
    _table(data["partitions"], columns)
    return 0


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """``print_table`` with Kafka's hyphenated headers (``LOG-END``) for snake_case keys."""
    print_table(
        [{key.replace("_", "-"): value for key, value in row.items()} for row in rows],
        [column.replace("_", "-") for column in columns],
    )


def _busy(group: str, described: Mapping[str, Any]) -> str:
    client_ids = sorted({m["client_id"] for m in described["members"]})
    return (
        f"consumer group {group} has active members ({described['state']}, "
        f"{len(described['members'])} member(s): {', '.join(client_ids)}); stop them first: "
        "offsets can only be reset while the group is Empty, or its members would commit "
        "over the new offsets"
    )


async def _targets(
    consumer: Any, args: argparse.Namespace, committed: Mapping[Any, int], starts: Any, ends: Any
) -> dict[Any, int]:
    """The offset each partition (a key of ``starts``) is asked to move to, before clamping."""
    if args.to_earliest or args.to_latest:
        return dict(starts if args.to_earliest else ends)
    if args.to_offset is not None:
        return dict.fromkeys(starts, args.to_offset)
    if args.shift_by is not None:
        missing = [tp.partition for tp in starts if tp not in committed]
        if missing:
            raise KafkaBootError(
                f"group {args.group} has no committed offset on {args.topic} partition(s) "
                f"{missing} to shift from; choose other partitions with --partition, or use "
                "--to-earliest, --to-latest, --to-offset or --to-datetime"
            )
        return {tp: committed[tp] + args.shift_by for tp in starts}
    found = await consumer.offsets_for_times(dict.fromkeys(starts, args.to_datetime))
    # No record at or after that time: the end, as Kafka's tool does.
    return {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in starts}


async def _reset(args: argparse.Namespace) -> dict[str, Any]:
    """Plan the reset and, with ``--execute``, commit it.

    Raises:
        GroupBusyError: ``--execute`` while the group has active members.
        KafkaBootError: the topic or a partition does not exist, ``--shift-by`` without a
            committed offset, or the cluster cannot be reached.
    """
    settings = cluster_settings(args)
    group, topic = args.group, args.topic
    async with started_admin(settings) as admin:
        described = await describe_group(admin, group)
        if args.execute and described["state"] not in _IDLE_STATES:
            raise GroupBusyError(
                f"{_busy(group, described)}; nothing was committed (without --execute the "
                "plan is shown)"
            )
        if topic not in await admin.list_topics():
            raise KafkaBootError(f"topic {topic!r} does not exist; check --topic")
        [metadata] = await admin.describe_topics([topic])
        committed = await _committed(admin, group)
    numbers = sorted(p["partition"] for p in metadata["partitions"])
    unknown = sorted(set(args.partition or ()) - set(numbers))
    if unknown:
        raise KafkaBootError(
            f"topic {topic} has no partition(s) {unknown}; its partitions are 0..{numbers[-1]}"
        )
    tps = [TopicPartition(topic, n) for n in sorted(set(args.partition or numbers))]
    async with _consumer(settings) as consumer:
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        targets = await _targets(consumer, args, committed, starts, ends)
    plan = {tp: min(max(targets[tp], starts[tp]), ends[tp]) for tp in tps}  # As Kafka clamps.
    if args.execute:
        async with _consumer(settings, group=group) as consumer:
            consumer.assign(tps)
            try:
                await consumer.commit(plan)
            except CommitFailedError as exc:  # A member joined since the check.
                raise GroupBusyError(
                    f"consumer group {group} got active members while the reset was planned; "
                    "stop them first; nothing was committed"
                ) from exc
    elif described["state"] not in _IDLE_STATES:
        print(f"note: {_busy(group, described)}; --execute is refused until then", file=sys.stderr)
    rows = [
        {"topic": topic, "partition": tp.partition, "committed": committed.get(tp)}
        | {"new": plan[tp], "log_start": starts[tp], "log_end": ends[tp]}
        for tp in tps
    ]
    return {"group": group, "topic": topic, "executed": args.execute, "partitions": rows}


def _reset_offsets(args: argparse.Namespace) -> int:
    data = asyncio.run(_reset(args))  # A GroupBusyError is a refusal: exit 3.
    if args.format == "json":
        print_json(data)
    else:
        _table(
            data["partitions"], ["topic", "partition", "committed", "new", "log_start", "log_end"]
        )
    done = f"committed the new offsets of group {args.group}"
    print(done if args.execute else "dry run: nothing committed; add --execute", file=sys.stderr)
    return 0


def add_group_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``groups list|describe|reset-offsets`` to the ``kafkaboot`` subcommands."""
    groups = commands.add_parser(
        "groups", help="list, describe and reset the offsets of consumer groups"
    )
    actions = groups.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every group with its state and member count")
    listing.set_defaults(handler=_list)
    describe = actions.add_parser(
        "describe",
        help="a group's members and, per partition, committed and log-end offsets and lag "
        "(records and seconds); exit 1 for an unknown group",
    )
    describe.add_argument("group")
    describe.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for lag-seconds ('-' after)"
    )
    describe.set_defaults(handler=_describe)
    reset = actions.add_parser(
        "reset-offsets",
        help="plan new committed offsets (clamped to the log) and commit them with --execute; "
        "--execute is refused (exit 3) while the group has active members",
    )
    reset.add_argument("group")
    reset.add_argument("--topic", required=True)
    reset.add_argument(
        "--partition", type=int, action="append", help="only this partition (repeatable)"
    )
    to = reset.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-earliest", action="store_true", help="the log start")
    to.add_argument("--to-latest", action="store_true", help="the log end: skip everything")
    to.add_argument(
        "--to-datetime",
        type=timestamp_ms,
        metavar="ISO",
        help="the first record at or after this time (no zone: UTC, as Kafka's tool)",
    )
    to.add_argument("--shift-by", type=int, metavar="N", help="the committed offset plus N")
    to.add_argument("--to-offset", type=int, metavar="N", help="this offset")
    reset.add_argument(
        "--execute", action="store_true", help="commit the plan (default: only print it)"
    )
    reset.set_defaults(handler=_reset_offsets)
    for sub in (listing, describe, reset):
        add_cluster_options(sub)
        add_format_option(sub)
