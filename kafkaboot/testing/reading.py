"""What a test reads back from Kafka: the records of a topic and a group's committed offsets.

Spring's ``KafkaTestUtils`` in Python: each helper takes the bootstrap servers first and a
``timeout`` as a keyword, and fails with :class:`WaitTimeout`, naming what it waited for
and what it saw, instead of hanging or returning short.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from kafkaboot import clients

__all__ = [
    "WaitTimeout",
    "commit_offsets",
    "committed_offsets",
    "describe_record",
    "get_records",
    "get_single_record",
]

_POLL_MS = 100
_SHOWN = 10  # Records a failure message lists.


class WaitTimeout(AssertionError):
    """A test helper waited its ``timeout`` for something that did not happen. An
    ``AssertionError``, so that pytest reports it as a failed expectation."""


def describe_record(record: ConsumerRecord[Any, Any]) -> str:
    """``topic-partition@offset key=… value=…``, short, for failure messages."""
    return (
        f"{record.topic}-{record.partition}@{record.offset} "
        f"key={_short(record.key)} value={_short(record.value)}"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _listed(records: list[ConsumerRecord[bytes, bytes]]) -> str:
    if not records:
        return "none"
    shown = "; ".join(describe_record(r) for r in records[:_SHOWN])
    more = f"; and {len(records) - _SHOWN} more" if len(records) > _SHOWN else ""
    return f"{len(records)}: {shown}{more}"


async def _read(
    bootstrap: str,
    topic: str,
    *,
    enough: int | None,
    timeout: float,
    isolation_level: str,
    options: dict[str, Any],
) -> list[ConsumerRecord[bytes, bytes]]:
    """Records of ``topic`` from the beginning until ``enough`` came (then also what else is
    there up to the end offsets of that moment) or ``timeout`` passed.

    Raises:
        WaitTimeout: the topic does not exist.
    """
    consumer = clients.consumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
        **options,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        # Wait for the topic before subscribing: a subscription's metadata request would
        # have a broker with auto.create.topics.enable create it.
        while topic not in await consumer.topics():
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"topic {topic!r} does not exist at {bootstrap}")
            await asyncio.sleep(_POLL_MS / 1000)
        consumer.subscribe([topic])  # Without a group: every partition, nothing committed.
        while time.monotonic() < deadline:
            partitions = sorted(consumer.assignment())
            if partitions and enough is not None and len(records) >= enough:
                ends = await consumer.end_offsets(partitions)
                positions = [await consumer.position(tp) for tp in partitions]
                if all(at >= ends[tp] for at, tp in zip(positions, partitions, strict=True)):
                    break
            batches = await consumer.getmany(timeout_ms=_POLL_MS)
            records += [r for rs in batches.values() for r in rs]
    finally:
        await consumer.stop()
    return _ordered(records)


def _ordered(records: list[ConsumerRecord[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def get_records(
    bootstrap: str,
    topic: str,
    *,
    count: int,
    timeout: float = 10.0,
    isolation_level: str = "read_uncommitted",
    **consumer_options: Any,
) -> list[ConsumerRecord[bytes, bytes]]:
    """The first ``count`` records of ``topic`` from its beginning, in (partition, offset)
    order, with raw ``bytes`` keys and values; at least ``count``: every record the topic
    holds once ``count`` came (a test then sees the extras instead of missing them).

    ``consumer_options`` go to the consumer (security settings, for example). Reads
    without a consumer group: nothing is committed.

    Raises:
        WaitTimeout: fewer than ``count`` records within ``timeout`` seconds (the message
            lists the ones that came).
    """
    records = await _read(
        bootstrap,
        topic,
        enough=count,
        timeout=timeout,
        isolation_level=isolation_level,
        options=consumer_options,
    )
    if len(records) < count:
        raise WaitTimeout(
            f"get_records: waited {timeout:g}s for {count} record(s) of topic {topic!r} "
            f"(from the beginning, {isolation_level}); found {_listed(records)}"
        )
    return records


async def get_single_record(
    bootstrap: str,
    topic: str,
    *,
    timeout: float = 10.0,
    isolation_level: str = "read_uncommitted",
    **consumer_options: Any,
) -> ConsumerRecord[bytes, bytes]:
    """The one record of ``topic``, as Spring's ``KafkaTestUtils.getSingleRecord``: waits
    for it, and fails if the topic holds more than one.

    Raises:
        WaitTimeout: no record within ``timeout`` seconds, or more than one (listed).
    """
    records = await _read(
        bootstrap,
        topic,
        enough=1,
        timeout=timeout,
        isolation_level=isolation_level,
        options=consumer_options,
    )
    if len(records) != 1:
        raise WaitTimeout(
            f"get_single_record: expected one record in topic {topic!r} within {timeout:g}s "
            f"({isolation_level}); found {_listed(records)}"
        )
    return records[0]


async def committed_offsets(
    bootstrap: str, group_id: str, *, timeout: float = 10.0, **admin_options: Any
) -> dict[TopicPartition, int]:
    """The offsets consumer group ``group_id`` has committed, per partition (none: ``{}``).

    Raises:
        WaitTimeout: the broker did not answer within ``timeout`` seconds.
    """
    admin = clients.admin(bootstrap_servers=bootstrap, **admin_options)
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            found = await admin.list_consumer_group_offsets(group_id)
    except TimeoutError:
        raise WaitTimeout(
            f"committed_offsets: the broker at {bootstrap} did not answer within {timeout:g}s "
            f"for group {group_id!r}"
        ) from None
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def commit_offsets(
    bootstrap: str,
    group_id: str,
    offsets: Mapping[TopicPartition, int],
    *,
    timeout: float = 10.0,
    **consumer_options: Any,
) -> None:
    """Commit ``offsets`` for consumer group ``group_id``, as if it had read that far: to
    set up a restart (rewind a group, or move it past records). The group must have no
    member, as for ``kafka-consumer-groups --reset-offsets``.

    Raises:
        WaitTimeout: the broker did not answer within ``timeout`` seconds.
    """
    # Never auto-commit: the consumer may learn its positions from the group's old
    # offsets before its own commit goes out, and would commit them back when it stops.
    options = {**consumer_options, "enable_auto_commit": False}
    consumer = clients.consumer(bootstrap_servers=bootstrap, group_id=group_id, **options)
    try:
        async with asyncio.timeout(timeout):
            await consumer.start()
            consumer.assign(list(offsets))
            await consumer.commit(dict(offsets))
    except TimeoutError:
        raise WaitTimeout(
            f"commit_offsets: the broker at {bootstrap} did not answer within {timeout:g}s "
            f"for group {group_id!r}"
        ) from None
    finally:
        await consumer.stop()
