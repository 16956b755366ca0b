"""Re-publishing dead letters to the topic they came from, once the bug that sent them
there is fixed (``kafkaboot dlt replay``).

Reads the dead-letter topic without a consumer group (nothing is committed, the topic is
left as it is), from ``from_offset`` up to the end offsets seen at the start, and sends each
record's key and value bytes, with its original headers, to its original topic (or ``to``),
on its original partition when that topic still has it. The original topic and partition are
Spring's ``kafka_dlt-original-*`` headers (a plain dead letter) or, without those, the
``kafka_original-*`` ones the ``@RetryableTopic`` chain writes (see ``DeadLetterRecord``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition

from kafkaboot import clients
from kafkaboot.admin import KafkaAdmin
from kafkaboot.config import KafkaBootSettings
from kafkaboot.errorhandling.dead_letter import DeadLetterRecord, send_raw
from kafkaboot.errors import KafkaBootError

__all__ = [
    "REPLAYED_FROM_HEADER",
    "ReplayError",
    "ReplayProgress",
    "ReplayReport",
    "replay_dead_letters",
]

log = logging.getLogger("kafkaboot.dlt")

REPLAYED_FROM_HEADER = "kafkaboot_replayed-from"
"""Added to each replayed record: ``<dlt-topic>-<partition>@<offset>`` it was copied from."""
_FETCH_MS = 500

ReplayProgress = Callable[[int, int], None]
"""Called after each dead letter with how many were handled so far (re-published, or
skipped) and at most how many there are (the offsets to read, or ``limit``): a command
shows it, the library prints nothing."""


class ReplayError(KafkaBootError):
    """A replay stopped part-way; ``report`` says what was re-published before."""

    def __init__(self, message: str, report: ReplayReport) -> None:
        where = ", ".join(f"{p}: {o}" for p, o in sorted(report.next_offsets.items()))
        super().__init__(
            f"{message}; {report.total} record(s) were re-published before; continue with "
            f"--from-offset per partition: {where}"
        )
        self.report = report


@dataclasses.dataclass
class ReplayReport:
    """What a replay did."""

    replayed: Counter[str] = dataclasses.field(default_factory=Counter)
    """Records sent, per destination topic."""
    skipped: list[str] = dataclasses.field(default_factory=list)
    """Dead letters that name no original topic (and no ``to`` was given)."""
    next_offsets: dict[int, int] = dataclasses.field(default_factory=dict)
    """Per dead-letter partition, where a later replay would continue."""

    @property
    def total(self) -> int:
        return sum(self.replayed.values())


async def replay_dead_letters(
    settings: KafkaBootSettings,
    dlt_topic: str,
    *,
    to: str | None = None,
    from_offset: int | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    stall_timeout: float = 30.0,
    progress: ReplayProgress | None = None,
) -> ReplayReport:
    """Re-publish the dead letters of ``dlt_topic``; ``progress`` hears of each one.

    Raises:
        KafkaBootError: the topic does not exist, or Kafka cannot be reached.
        ReplayError: a record could not be re-published, or no progress for
            ``stall_timeout`` seconds; it carries the report of what was done until then.
    """
    from kafkaboot.template import KafkaTemplate

    consumer = clients.consumer(**_consumer_kwargs(settings))
    try:
        await consumer.start()
    except Exception as exc:
        raise KafkaBootError(
            f"cannot reach Kafka at {','.join(settings.kafka.bootstrap_servers)}: {exc!r}"
        ) from exc
    # Its own transactional id: a running service's template must not be fenced.
    template = KafkaTemplate(settings, transaction_id_suffix=f"dlt-replay-{uuid.uuid4().hex[:8]}")
    report = ReplayReport()
    try:
        partitions = await _partitions(settings, dlt_topic)
        consumer.assign(partitions)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        starts: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            start = starts[tp] if from_offset is None else max(from_offset, starts[tp])
            consumer.seek(tp, min(start, ends[tp]))
            report.next_offsets[tp.partition] = min(start, ends[tp])
        if not dry_run:
            await template.start()
        pending = {tp for tp in partitions if report.next_offsets[tp.partition] < ends[tp]}
        at_most = sum(ends[tp] - report.next_offsets[tp.partition] for tp in partitions)
        at_most = at_most if limit is None else min(at_most, limit)

        def handled() -> int:
            return report.total + len(report.skipped)

        def full() -> bool:
            return limit is not None and handled() >= limit

        idle_since = time.monotonic()
        while pending and not full():
            if time.monotonic() - idle_since > stall_timeout:
                raise ReplayError(
                    f"no progress on {dlt_topic} for {stall_timeout:g}s (partitions "
                    f"{sorted(tp.partition for tp in pending)} unavailable?)",
                    report,
                )
            batches = await consumer.getmany(*pending, timeout_ms=_FETCH_MS)
            if batches:
                idle_since = time.monotonic()
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp] or full():
                        break
                    try:
                        await _replay_one(template, record, to, dry_run, report)
                    except KafkaBootError as exc:
                        raise ReplayError(
                            f"could not re-publish {tp.topic}-{tp.partition}@{record.offset}: "
                            f"{exc}",
                            report,
                        ) from exc
                    report.next_offsets[tp.partition] = record.offset + 1
                    if progress is not None:
                        progress(handled(), at_most)
            for tp in list(pending):
                # The position skips transaction markers, which no record stands for.
                if min(await consumer.position(tp), ends[tp]) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
        if template.started:
            await template.stop()
    return report


async def _replay_one(
    template: Any,
    record: Any,
    to: str | None,
    dry_run: bool,
    report: ReplayReport,
) -> None:
    letter = DeadLetterRecord(record)
    where = f"{record.topic}-{record.partition}@{record.offset}"
    destination = to or letter.original_topic
    if destination is None:
        report.skipped.append(where)
        log.warning("dead letter %s names no original topic; skipped (use --to)", where)
        return
    partition = letter.original_partition if destination == letter.original_topic else None
    if (
        partition is not None
        and not dry_run
        and partition not in await template.partitions_for(destination)
    ):
        partition = None  # The topic was recreated smaller: partition by key.
    headers = [*letter.original_headers, (REPLAYED_FROM_HEADER, where.encode())]
    if not dry_run:
        await send_raw(template, destination, record, headers, partition)
    report.replayed[destination] += 1


async def _partitions(settings: KafkaBootSettings, topic: str) -> list[TopicPartition]:
    # Asked of the admin API: a consumer's metadata request could auto-create the topic.
    client = KafkaAdmin(settings).client()
    await client.start()
    try:
        if topic not in await client.list_topics():
            raise KafkaBootError(
                f"dead-letter topic {topic!r} does not exist; dead-letter topics are named "
                "<topic>-dlt by default (kafka.listener.error-handler.dead-letter.topic-suffix)"
            )
        [described] = await client.describe_topics([topic])
    finally:
        await client.close()
    numbers = sorted(p["partition"] for p in described["partitions"])
    return [TopicPartition(topic, p) for p in numbers]


def _consumer_kwargs(settings: KafkaBootSettings) -> dict[str, Any]:
    kwargs = settings.kafka.consumer_kwargs()
    for key in ("group_id", "group_instance_id", "enable_auto_commit", "auto_commit_interval_ms"):
        kwargs.pop(key, None)  # No group: the service's static member id is not ours either.
    # Only records of committed transactions: aborted dead letters were never dead letters.
    kwargs["isolation_level"] = "read_committed"
    kwargs["enable_auto_commit"] = False
    kwargs["client_id"] = "kafkaboot-dlt-replay"
    return kwargs
