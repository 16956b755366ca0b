"""How a consumer with lanes takes records: only as many as ``max_in_flight`` leaves room
for, shared among its partitions, and with its partitions paused while there is none (it
keeps polling, so waiting never costs its place in the group)."""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafkaboot.listener.inflight import InFlight
from kafkaboot.listener.outcomes import Outcomes
from kafkaboot.listener.partition import Record

__all__ = ["Intake"]


class Intake:
    """The poll side of one consumer's lanes.

    Args:
        in_flight: the container's count of records taken and not finished.
        consumer: the consumer.
        outcomes: its partition states and the partitions held paused by the user.
    """

    def __init__(self, in_flight: InFlight, consumer: AIOKafkaConsumer, outcomes: Outcomes) -> None:
        self.in_flight = in_flight
        self.consumer = consumer
        self.outcomes = outcomes
        self.pressed: set[TopicPartition] = set()
        """Partitions paused because ``max_in_flight`` records are in flight."""

    async def room(self, wait: float, *, held: Callable[[], bool] = lambda: False) -> int:
        """How many records the lanes can take now. With little room, wait up to ``wait``
        seconds for more; with none, pause the consumer's partitions until there is some
        (back-pressure; ``held()``: the container is paused, so resume none)."""
        room = await self.in_flight.wait_for_room(wait)
        consumer = self.consumer
        # Only what aiokafka has assigned: a pattern subscription that found a new topic
        # has none until the revocation, while the partition states are still here.
        assigned = self.outcomes.book.partitions & consumer.assignment()
        if room <= 0:
            # Also those resumed meanwhile (the container's resume(), a new assignment).
            running = assigned - consumer.paused()
            if running:
                consumer.pause(*running)
                self.pressed |= running
            return 0
        if self.pressed:
            self._unpress(assigned, hold_all=held())
        return room

    async def take(self, room: int, timeout_ms: int) -> dict[TopicPartition, list[Record]]:
        """Poll up to ``room`` records, shared among the partitions that are fetched:
        aiokafka hands out one partition's buffered records before the next one's, and
        lanes filled from one partition would see only its keys."""
        # Reserved while polling: the container's other consumers poll meanwhile. Given
        # back before the records are dispatched (which counts them), with no await between.
        self.in_flight.take(room)
        try:
            return await self._poll(room, timeout_ms)
        finally:
            self.in_flight.release(room)

    async def _poll(self, room: int, timeout_ms: int) -> dict[TopicPartition, list[Record]]:
        consumer = self.consumer
        fetched = (self.outcomes.book.partitions & consumer.assignment()) - (consumer.paused())
        polled: dict[TopicPartition, list[Record]]
        if len(fetched) <= 1:
            polled = await consumer.getmany(timeout_ms=timeout_ms, max_records=room)
            return polled
        share = max(1, room // len(fetched))
        taken: dict[TopicPartition, list[Record]] = {}
        for tp in fetched:
            taken.update(await consumer.getmany(tp, timeout_ms=0, max_records=share))
        if taken:
            return taken
        polled = await consumer.getmany(*fetched, timeout_ms=timeout_ms, max_records=share)
        return polled

    def _unpress(self, assigned: set[TopicPartition], *, hold_all: bool) -> None:
        pressed, self.pressed = self.pressed, set()
        if hold_all:
            return
        outcomes = self.outcomes
        resume = set()
        for tp in (pressed & assigned) - outcomes.held:
            state = outcomes.book.get(tp)
            if state is not None and state.paused_until is None:
                resume.add(tp)  # Not backing off either.
        if resume:
            self.consumer.resume(*resume)
