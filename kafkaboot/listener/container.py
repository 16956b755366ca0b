"""ListenerContainer: the consumers of one listener endpoint (Spring's
``ConcurrentMessageListenerContainer``), with start/stop, pause/resume, seeks and status."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafkaboot import clients
from kafkaboot.config.kafka import SeekProperties
from kafkaboot.errors import KafkaBootError
from kafkaboot.interceptors import ListenerInterceptor
from kafkaboot.listener.attempts import DeliveryAttempts
from kafkaboot.listener.binding import Invoker
from kafkaboot.listener.endpoint import ListenerEndpoint, TopicPartitionOffset
from kafkaboot.listener.events import (
    ContainerEvent,
    ContainerFailed,
    ContainerStarted,
    ContainerStopped,
)
from kafkaboot.listener.inflight import InFlight
from kafkaboot.listener.lanes import LaneStatus
from kafkaboot.listener.rebalance import SeekCallback
from kafkaboot.listener.settings import ContainerSettings
from kafkaboot.listener.stored import StoredOffsets
from kafkaboot.listener.worker import ConsumerWorker

__all__ = ["ContainerSettings", "ContainerState", "ContainerStatus", "ListenerContainer"]

log = logging.getLogger("kafkaboot.listener")


class ContainerState(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"


@dataclasses.dataclass(frozen=True, slots=True)
class PartitionStatus:
    topic: str
    partition: int
    position: int | None
    committed: int | None
    end_offset: int | None
    lag: int | None
    paused: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerStatus:
    """What health checks and ``/actuator/kafka/listeners`` show about a container."""

    id: str
    state: str
    group_id: str | None
    topics: tuple[str, ...]
    consumers: int
    partitions: tuple[PartitionStatus, ...]
    last_poll: float | None
    """Epoch seconds of the most recent poll of any of its consumers."""
    last_error: str | None
    failure: str | None = None
    """Why the container stopped on its own (a fatal poll error, or its error handler
    asked), until it is started again."""
    ordering: str = "partition"
    in_flight: int | None = None
    """With ``ordering`` key or none: records taken and not finished..."""
    max_in_flight: int | None = None
    """...at most this many; when reached, fetching pauses (``backpressure``)."""
    backpressure: bool = False
    stuck_lanes: tuple[LaneStatus, ...] = ()
    """Keys whose record failed, or has been handled for more than 10 s."""


class ListenerContainer:
    """Runs ``settings.concurrency`` consumers in one group for one endpoint.

    Extra consumers beyond the partition count sit idle, as in Kafka. Each partition's
    records are handled strictly in order.
    """

    def __init__(
        self,
        endpoint: ListenerEndpoint,
        invoker: Invoker,
        settings: ContainerSettings,
        *,
        error_handler: Any,
        rebalance_listener: Any = None,
        template: Any = None,
        send_to: str | None = None,
        not_before: Callable[[Any], float | None] | None = None,
        initial_seek: SeekProperties | None = None,
        interceptors: tuple[Sequence[ListenerInterceptor], Sequence[ListenerInterceptor]] = (
            (),
            (),
        ),
        publish: Callable[[ContainerEvent], None] | None = None,
        offset_store: StoredOffsets | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.offset_store = offset_store
        """Where the listener's offsets are stored with its results (``None``: in Kafka)."""
        self.template = template
        """The ``KafkaTemplate`` for ``send_to`` replies and transactional producers."""
        self.send_to = send_to
        self.invoker = invoker
        self.settings = settings
        self.error_handler = error_handler
        self.rebalance_listener = rebalance_listener
        self.filter: Callable[[Any], bool] | None = endpoint.filter
        self._interceptors = interceptors
        self._publish = publish or (lambda event: None)
        self.started_at = time.monotonic()
        """When it last started (``time.monotonic()``): idle since, before any record."""
        self.initial_seek = initial_seek
        """``kafka.listeners.<id>.seek``: where assigned partitions start."""
        self.seeked: set[TopicPartition] = set()
        """Partitions the initial seek was applied to (for ``seek.once``)."""
        self.not_before: Callable[[Any], float | None] | None = not_before
        """For retry topics: when a record may be handled (epoch seconds); until then its
        partition is paused."""
        self.paused = False
        self.attempts = DeliveryAttempts()
        """Failed deliveries per record, kept across rebalances and restarts."""
        self.in_flight = InFlight(settings.max_in_flight) if settings.concurrent else None
        """With ``ordering`` key or none: records the consumers took and did not finish."""
        self.last_error: str | None = None
        self._workers: list[ConsumerWorker] = []
        self._state = ContainerState.STOPPED
        self._lock = asyncio.Lock()
        self.failure: str | None = None
        """Why the error handler stopped the container, until it is started again."""
        self._stopper: asyncio.Future[None] | None = None
        self._run = 0
        """Counts starts, so a stop requested by a failed run never stops a later one."""

    @property
    def interceptors(self) -> tuple[ListenerInterceptor, ...]:
        """The registry's interceptors, then this listener's own (taken at each start)."""
        shared, own = self._interceptors
        return (*shared, *own)

    @property
    def listener_id(self) -> str:
        return self.endpoint.listener_id

    @property
    def state(self) -> ContainerState:
        return self._state

    @property
    def is_running(self) -> bool:
        return self._state in (ContainerState.RUNNING, ContainerState.PAUSED)

    @property
    def workers(self) -> Sequence[ConsumerWorker]:
        return tuple(self._workers)

    def partitions_for(self, index: int) -> list[TopicPartitionOffset]:
        """Manually assigned partitions of consumer ``index`` (spread round-robin)."""
        count = self.settings.concurrency
        return [p for i, p in enumerate(self.endpoint.partitions) if i % count == index]

    def record_error(self, error: BaseException) -> None:
        self.last_error = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {type(error).__name__}: {error}"

    def fail(self, reason: str) -> None:
        """Stop the container because its error handler asked to (called from a consumer's
        own task, so the stop runs as a task of its own); ``failure`` keeps the reason."""
        self.failure = reason
        self.last_error = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} stopped: {reason}"
        log.error("listener %s: stopping the container: %s", self.listener_id, reason)
        self._publish(ContainerFailed(self.listener_id, reason=reason))
        if self._stopper is None or self._stopper.done():
            self._stopper = asyncio.ensure_future(self._stop_run(self._run))

    async def _stop_run(self, run: int) -> None:
        """Stop, unless the run that failed was stopped and a new one started meanwhile."""
        if run == self._run:
            await self.stop()

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start every consumer and their poll loops.

        Raises:
            KafkaBootError: the container is already running.
        """
        async with self._lock:
            if self._state is not ContainerState.STOPPED:
                raise KafkaBootError(
                    f"listener container {self.listener_id!r} is already {self._state.value}; "
                    "stop it before starting it again"
                )
            self._state = ContainerState.STARTING
            self.failure = None
            self._run += 1
            if self.settings.log_container_config:
                # Spring's log-container-config; the consumer arguments mask their secrets.
                log.info("listener %s starts with %r", self.listener_id, self.settings)
            if self.settings.missing_topics_fatal and self.endpoint.topics:
                try:
                    await self._check_topics_exist()
                except BaseException:
                    self._state = ContainerState.STOPPED
                    raise
            count = self.settings.concurrency
            if self.endpoint.partitions:
                count = min(count, len(self.endpoint.partitions))
            workers = [ConsumerWorker(self, i, self._new_consumer(i)) for i in range(count)]
            try:
                # Together, so that the group rebalances once rather than once per consumer.
                await asyncio.gather(*(worker.start() for worker in workers))
            except BaseException:
                await asyncio.gather(
                    *(w.stop(self.settings.shutdown_timeout) for w in workers),
                    return_exceptions=True,
                )
                self._state = ContainerState.STOPPED
                raise
            self._workers = workers
            self.started_at = time.monotonic()
            self._state = ContainerState.PAUSED if self.paused else ContainerState.RUNNING
            self._publish(ContainerStarted(self.listener_id))
            if self.settings.consumer_kwargs.get("enable_auto_commit"):
                log.warning(
                    "listener %s: kafka.consumer.enable-auto-commit is true, so aiokafka "
                    "commits fetched positions on a timer, including records not handled yet; "
                    "at-least-once delivery is not guaranteed and ack modes are ignored",
                    self.listener_id,
                )
            log.info(
                "listener %s started: %d consumer(s) in group %s on %s (ack mode %s, "
                "ordering %s%s)",
                self.listener_id,
                count,
                self.settings.group_id,
                self._subscription(),
                self.settings.ack_mode.value,
                self.settings.ordering.value,
                f", max in flight {self.settings.max_in_flight}" if self.in_flight else "",
            )

    async def _check_topics_exist(self) -> None:
        kwargs = {k: v for k, v in self.settings.consumer_kwargs.items() if k != "group_id"}
        probe = clients.consumer(**kwargs, client_id=f"{self.settings.client_id_prefix}-check")
        await probe.start()
        try:
            existing = await probe.topics()
        finally:
            await probe.stop()
        missing = sorted(set(self.endpoint.topics) - set(existing))
        if missing:
            raise KafkaBootError(
                f"listener {self.listener_id}: topic(s) {', '.join(missing)} do not exist and "
                "kafka.listener.missing-topics-fatal is true; create them (kafka.topics in "
                "application.yml) or set missing-topics-fatal: false"
            )

    def _new_consumer(self, index: int) -> AIOKafkaConsumer:
        kwargs = dict(self.settings.consumer_kwargs)
        kwargs["client_id"] = f"{self.settings.client_id_prefix}-{index}"
        if self.settings.group_id is not None:
            kwargs["group_id"] = self.settings.group_id
        return clients.consumer(**kwargs)

    def _subscription(self) -> str:
        endpoint = self.endpoint
        if endpoint.partitions:
            return ", ".join(f"{p.topic}-{p.partition}" for p in endpoint.partitions)
        return endpoint.topic_pattern or ", ".join(endpoint.topics)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop fetching, finish in-flight records within ``timeout`` (default:
        ``kafka.listener.shutdown-timeout``), commit what finished, leave the group.
        Records that did not finish stay uncommitted. Stopping a stopped container is a no-op."""
        async with self._lock:
            if self._state is ContainerState.STOPPED:
                return
            self._state = ContainerState.STOPPING
            timeout = self.settings.shutdown_timeout if timeout is None else timeout
            await asyncio.gather(*(w.stop(timeout) for w in self._workers), return_exceptions=True)
            self._workers = []
            self._state = ContainerState.STOPPED
            log.info("listener %s stopped", self.listener_id)
            self._publish(ContainerStopped(self.listener_id))

    async def __aenter__(self) -> ListenerContainer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- pause, resume, seek ---------------------------------------------------------------

    def pause(self) -> None:
        """Stop delivering records; consumers keep polling, so the group does not rebalance."""
        self.paused = True
        for worker in self._workers:
            worker.pause()
        if self._state is ContainerState.RUNNING:
            self._state = ContainerState.PAUSED

    def resume(self) -> None:
        self.paused = False
        for worker in self._workers:
            worker.resume()
        if self._state is ContainerState.PAUSED:
            self._state = ContainerState.RUNNING

    def pause_partition(self, tp: TopicPartition) -> None:
        for worker in self._workers:
            worker.pause([tp])

    def resume_partition(self, tp: TopicPartition) -> None:
        for worker in self._workers:
            worker.resume([tp])

    def _request(self, build: Callable[[SeekCallback], None]) -> None:
        callback = SeekCallback()
        build(callback)
        for request in callback.requests:
            for worker in self._workers:
                worker.request_seek(request)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Move ``tp`` to ``offset`` at its consumer's next poll."""
        self._request(lambda s: s.seek(tp, offset))

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        """All assigned partitions, or the ones given, from their first record."""
        self._request(lambda s: s.seek_to_beginning(*partitions))

    def seek_to_end(self, *partitions: TopicPartition) -> None:
        self._request(lambda s: s.seek_to_end(*partitions))

    def seek_relative(self, tp: TopicPartition, delta: int) -> None:
        self._request(lambda s: s.seek_relative(tp, delta))

    def seek_to_timestamp(self, when: datetime | int, *partitions: TopicPartition) -> None:
        self._request(lambda s: s.seek_to_timestamp(when, *partitions))

    # -- status -------------------------------------------------------------------------------

    @property
    def assignment(self) -> set[TopicPartition]:
        return {tp for worker in self._workers for tp in worker.assigned}

    async def status(self) -> ContainerStatus:
        """State, assignment, positions, committed offsets and lag of every partition."""
        partitions: list[PartitionStatus] = []
        for worker in self._workers:
            assigned = sorted(worker.assigned)
            ends: dict[TopicPartition, int] = {}
            if assigned:
                try:
                    # Bounded: a health check must answer even when the broker is away.
                    ends = await asyncio.wait_for(worker.consumer.end_offsets(assigned), 2.0)
                except Exception as exc:  # status must not fail because the broker is away
                    self.record_error(exc)
            paused = worker.consumer.paused()
            for tp in assigned:
                position = worker.positions.get(tp)
                committed = worker.committed.get(tp)
                end = ends.get(tp)
                done = position if position is not None else committed
                lag = end - done if end is not None and done is not None else None
                partitions.append(
                    PartitionStatus(
                        tp.topic, tp.partition, position, committed, end, lag, tp in paused
                    )
                )
        polls = [w.last_poll for w in self._workers if w.last_poll is not None]
        state = self._state.value
        if self.failure is not None or (
            self.is_running and not all(worker.alive for worker in self._workers)
        ):
            state = "failed"  # Stopped on its own: health checks must see it.
        in_flight = self.in_flight
        stuck = [lane for w in self._workers if w.lanes is not None for lane in w.lanes.stuck()]
        return ContainerStatus(
            id=self.listener_id,
            state=state,
            group_id=self.settings.group_id,
            topics=self.endpoint.topics,
            consumers=len(self._workers),
            partitions=tuple(partitions),
            last_poll=max(polls) if polls else None,
            last_error=self.last_error,
            failure=self.failure,
            ordering=self.settings.ordering.value,
            in_flight=None if in_flight is None else in_flight.count,
            max_in_flight=None if in_flight is None else in_flight.limit,
            backpressure=any(w.intake is not None and w.intake.pressed for w in self._workers),
            stuck_lanes=tuple(sorted(stuck, key=lambda lane: lane.since)),
        )
