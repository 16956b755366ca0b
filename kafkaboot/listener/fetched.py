"""A poll's records, sorted out before any is handled: which runs go to the listener,
which are read again later (fetched before the assignment callback, or before its seeks,
or while there is no room), and which are not this consumer's to handle at all."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafkaboot.listener.partition import PartitionBook, PartitionState, Record

__all__ = ["fetched_runs"]

log = logging.getLogger("kafkaboot.listener")


def fetched_runs(
    book: PartitionBook,
    consumer: AIOKafkaConsumer,
    batches: dict[TopicPartition, list[Record]],
    *,
    hold: bool,
    name: str,
) -> dict[PartitionState, list[Record]]:
    """The runs of ``batches`` to hand to listener ``name`` now, each booked as taken by
    its partition state, in partition order. With ``hold`` (no room in the lanes) none is:
    each partition is sought back to be read again."""
    parts: dict[PartitionState, list[Record]] = {}
    for tp in sorted(batches):
        records = batches[tp]
        state = book.get(tp)
        if state is None and records and tp in consumer.assignment():
            # Assigned by aiokafka, whose callback has not told us yet: fetched too
            # early. Read them again once the assignment (and its seeks) is done.
            log.debug(
                "listener %s: %s-%d fetched before its assignment callback; reading "
                "it again from %d",
                name,
                tp.topic,
                tp.partition,
                records[0].offset,
            )
            consumer.seek(tp, records[0].offset)
            continue
        if state is None or state.closing or not records:
            continue  # Not ours (any more): whoever owns it reads it from its commit.
        if state.floor is not None:
            records = state.past_seek(records)
            if not records:
                continue
        if hold:
            consumer.seek(tp, records[0].offset)
            continue
        state.fetched(records[0].offset)
        if state.ready:
            state.position = records[-1].offset + 1
            state.took(records)
            parts[state] = records
        else:  # Fetched before the assignment's seeks were applied: read again after them.
            log.debug(
                "listener %s: %s-%d@%d-%d held back until the assignment's seeks are done",
                name,
                tp.topic,
                tp.partition,
                records[0].offset,
                records[-1].offset,
            )
    return parts
