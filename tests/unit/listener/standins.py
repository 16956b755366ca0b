"""A stand-in consumer and a worker around it, for tests of the poll loop's parts that
need no broker: what they do with records that arrive at awkward moments."""

from types import SimpleNamespace

from aiokafka import ConsumerRecord, TopicPartition

from kafkaboot.errorhandling.handler import DefaultErrorHandler
from kafkaboot.listener.acks import AckMode, Acknowledgment
from kafkaboot.listener.attempts import DeliveryAttempts
from kafkaboot.listener.binding import bind
from kafkaboot.listener.endpoint import ListenerEndpoint
from kafkaboot.listener.inflight import InFlight
from kafkaboot.listener.settings import ContainerSettings, Ordering
from kafkaboot.listener.worker import ConsumerWorker

TP = TopicPartition("t", 0)


class StandInConsumer:
    """Records seeks, pauses and commits; fetches nothing."""

    def __init__(self, assigned):
        self.assigned = set(assigned)
        self.seeks = []
        self.paused_partitions = set()
        self.commits = []

    def assignment(self):
        return set(self.assigned)

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))

    def pause(self, *partitions):
        self.paused_partitions |= set(partitions)

    def resume(self, *partitions):
        self.paused_partitions -= set(partitions)

    def paused(self):
        return set(self.paused_partitions)

    async def commit(self, offsets):
        self.commits.append(dict(offsets))


def stand_in_worker(
    handled,
    consumer,
    *,
    handler=None,
    shutdown_timeout=1.0,
    ack_mode=AckMode.BATCH,
    batch=False,
    ordering=Ordering.PARTITION,
    max_in_flight=256,
    error_handler=None,
    interceptors=(),
    filter=None,
):
    """A worker of a listener on topic ``t`` (group ``g``) whose default handler appends
    each value to ``handled``."""

    async def collect(value: bytes) -> None:
        handled.append(value)

    async def with_ack(value: bytes, ack: Acknowledgment) -> None:
        handled.append(value)

    if handler is None:
        handler = with_ack if ack_mode.is_manual else collect
    settings = ContainerSettings(
        group_id="g",
        concurrency=1,
        ack_mode=ack_mode,
        ack_count=1,
        ack_time=1.0,
        poll_timeout=0.1,
        shutdown_timeout=shutdown_timeout,
        auto_startup=True,
        batch=batch,
        consumer_kwargs={},
        client_id_prefix="c",
        ordering=ordering,
        max_in_flight=max_in_flight,
    )
    container = SimpleNamespace(
        endpoint=ListenerEndpoint(handler=handler, topics=("t",)),
        settings=settings,
        invoker=bind(handler, name="h", batch=batch, manual_ack=ack_mode.is_manual),
        template=None,
        send_to=None,
        error_handler=error_handler or DefaultErrorHandler(),
        rebalance_listener=None,
        initial_seek=None,
        offset_store=None,
        seeked=set(),
        paused=False,
        attempts=DeliveryAttempts(),
        in_flight=InFlight(max_in_flight) if settings.concurrent else None,
        listener_id="h",
        filter=filter,
        not_before=None,
        interceptors=tuple(interceptors),
        record_error=lambda error: None,
        fail=lambda reason: None,
    )
    return ConsumerWorker(container, 0, consumer)


def records(offsets, keys=None, partition=0):
    """Records of ``t``/``partition`` at ``offsets``, value ``v<offset>``, keyed by
    ``keys[i]`` (bytes or None) when given."""
    keys = list(keys) if keys is not None else [None] * len(list(offsets))
    return [
        ConsumerRecord("t", partition, o, 0, 0, k, b"v%d" % o, None, -1, 2, ())
        for o, k in zip(offsets, keys, strict=True)
    ]
