"""A consumer service whose handler takes as long as the message says: ``payload`` of
``{"sleep": seconds}`` (times $SLEEP_SCALE, 1 by default; with $SLOW_ONCE=1 only at its
first delivery in the process). It journals each record when
it starts ($STARTS_JOURNAL) and when it has handled it ($EVENTS_JOURNAL), in the format
of the central consumer's journal."""

import asyncio
import os
import time
from typing import Annotated

from kafkaboot import Offset, Partition, kafka_listener
from sample_producer_service.models import Message

SCALE = float(os.environ.get("SLEEP_SCALE", "1"))
SLOW_ONCE = os.environ.get("SLOW_ONCE") == "1"
"""Sleep only at a message's first delivery in this process (a redelivery is quick)."""
_started: set[tuple[str, int]] = set()


def _journal(variable: str, message: Message, partition: int, offset: int) -> None:
    fields = (message.customer_id, message.sequence, partition, offset, os.getpid(), time.time())
    line = " ".join(map(str, fields)) + "\n"
    fd = os.open(os.environ[variable], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@kafka_listener("${EVENTS_TOPIC}", id="slow-events", group_id="${EVENTS_GROUP}")
async def on_event(
    message: Message,
    partition: Annotated[int, Partition],
    offset: Annotated[int, Offset],
) -> None:
    _journal("STARTS_JOURNAL", message, partition, offset)
    first = (message.customer_id, message.sequence) not in _started
    _started.add((message.customer_id, message.sequence))
    if isinstance(message.payload, dict) and (first or not SLOW_ONCE):
        await asyncio.sleep(float(message.payload.get("sleep", 0)) * SCALE)
    _journal("EVENTS_JOURNAL", message, partition, offset)
