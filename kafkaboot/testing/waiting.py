"""Waiting for a running application's listeners: until they hold their partitions, and
until a record sent has been handled and committed.

A test that sends before its listeners have joined their groups races the assignment (with
``auto-offset-reset: latest`` the record is skipped); one that checks a side effect right
after a send races the handler. These helpers wait for the event itself, with a timeout
whose failure says what was seen.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition

from kafkaboot.listener.container import ListenerContainer
from kafkaboot.listener.registry import ListenerRegistry
from kafkaboot.records import SendResult
from kafkaboot.testing.reading import WaitTimeout

__all__ = ["send_and_wait_handled", "wait_for_assignment"]

_CHECK_EVERY_S = 0.01


def _containers(target: Any) -> list[ListenerContainer]:
    """The listener containers of a container, a registry, or an application (anything with
    a ``registry``)."""
    if isinstance(target, ListenerContainer):
        return [target]
    if isinstance(target, ListenerRegistry):
        return target.containers
    registry = getattr(target, "registry", None)
    if isinstance(registry, ListenerRegistry):
        return registry.containers
    raise TypeError(
        f"expected a ListenerContainer, a ListenerRegistry or a KafkaBootApplication, not "
        f"{type(target).__name__}"
    )


def _ready(container: ListenerContainer) -> bool:
    return bool(container.workers) and all(w.polled_in_group for w in container.workers)


def _assignments(containers: Iterable[ListenerContainer]) -> str:
    lines = []
    for c in containers:
        held = ", ".join(f"{tp.topic}-{tp.partition}" for tp in sorted(c.assignment)) or "none"
        joined = sum(w.polled_in_group for w in c.workers)
        lines.append(
            f"{c.listener_id} ({c.state.value}, group {c.settings.group_id}, "
            f"{joined} of {len(c.workers)} consumer(s) in their group and polled; "
            f"partitions: {held})"
        )
    return "; ".join(lines) or "no listener containers"


async def wait_for_assignment(
    target: Any, *, partitions: int | None = None, timeout: float = 10.0
) -> None:
    """Wait until every running listener container of ``target`` (a container, a registry or
    an application) has joined its consumer group and polled since: its consumers hold the
    partitions the group gave them. With ``partitions``, also until they hold that many
    partitions in all.

    Raises:
        WaitTimeout: not within ``timeout`` seconds (the message shows each container's
            state and partitions).
    """
    deadline = time.monotonic() + timeout
    while True:
        running = [c for c in _containers(target) if c.is_running]
        held = sum(len(c.assignment) for c in running)
        if all(_ready(c) for c in running) and (partitions is None or held == partitions):
            return
        if time.monotonic() >= deadline:
            wanted = f" holding {partitions} partition(s) in all" if partitions else ""
            raise WaitTimeout(
                f"wait_for_assignment: the listeners were not in their groups{wanted} within "
                f"{timeout:g}s: {_assignments(_containers(target))}"
            )
        await asyncio.sleep(_CHECK_EVERY_S)


def _reads(container: ListenerContainer, tp: TopicPartition) -> bool:
    endpoint = container.endpoint
    if endpoint.partitions:
        return any((p.topic, p.partition) == (tp.topic, tp.partition) for p in endpoint.partitions)
    if endpoint.topic_pattern:
        return re.fullmatch(endpoint.topic_pattern, tp.topic) is not None
    return tp.topic in endpoint.topics


def _may_read(container: ListenerContainer, topic: str) -> bool:
    endpoint = container.endpoint
    if endpoint.topic_pattern is not None:
        return re.fullmatch(endpoint.topic_pattern, topic) is not None
    return topic in endpoint.topics or any(p.topic == topic for p in endpoint.partitions)


def _committed(container: ListenerContainer, tp: TopicPartition) -> int | None:
    found = [w.committed[tp] for w in container.workers if tp in w.committed]
    return max(found) if found else None


async def send_and_wait_handled(
    app: Any,
    topic: str,
    value: Any = None,
    *,
    key: Any = None,
    headers: Any = None,
    partition: int | None = None,
    timeout: float = 10.0,
) -> SendResult:
    """Send a record with ``app``'s template (an application, or anything with a
    ``template`` and a ``registry``), then wait until every running listener that reads its
    partition has handled it and committed past it: the handler returned (or the error
    handler recovered the record, e.g. to a dead-letter topic) and its offset is committed.
    Returns the send's result.

    With ``ack-mode`` ``time`` or ``count``, the commit comes when that mode says, and the
    wait with it; with a manual ack mode, when the handler acknowledges.

    Raises:
        ValueError: no running listener reads ``topic``.
        WaitTimeout: not handled and committed within ``timeout`` seconds (the message shows
            what each listener committed on the record's partition).
    """
    deadline = time.monotonic() + timeout
    containers = [c for c in _containers(app) if c.is_running]
    if not any(_may_read(c, topic) for c in containers):
        listening = ", ".join(
            f"{c.listener_id} ({', '.join(c.endpoint.topics) or c.endpoint.topic_pattern})"
            for c in containers
        )
        raise ValueError(
            f"send_and_wait_handled: no running listener reads topic {topic!r} (running: "
            f"{listening or 'none'}); start the application first (`async with app:`), or "
            "check the topic's name"
        )
    try:
        async with asyncio.timeout(timeout):
            result: SendResult = await app.template.send_and_wait(
                topic, value, key=key, headers=headers, partition=partition
            )
    except TimeoutError:
        raise WaitTimeout(
            f"send_and_wait_handled: the send to {topic!r} was not acknowledged within {timeout:g}s"
        ) from None
    tp = TopicPartition(topic, result.partition)
    readers = [c for c in containers if _reads(c, tp)]
    while True:
        behind = [c for c in readers if (_committed(c, tp) or 0) <= result.offset]
        if not behind:
            return result
        if time.monotonic() >= deadline:
            seen = "; ".join(
                f"{c.listener_id} (group {c.settings.group_id}): committed "
                f"{_committed(c, tp)}, partitions "
                f"{', '.join(f'{a.topic}-{a.partition}' for a in sorted(c.assignment)) or 'none'}"
                + (f", last error {c.last_error}" if c.last_error else "")
                for c in behind
            )
            raise WaitTimeout(
                f"send_and_wait_handled: the record {topic}-{result.partition}@{result.offset} "
                f"was not handled and committed within {timeout:g}s (a commit past it is "
                f"offset {result.offset + 1}): {seen}"
            )
        await asyncio.sleep(_CHECK_EVERY_S)
