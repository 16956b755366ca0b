"""ConsumerWorker's poll loop, with a stand-in consumer: what it does with records that
arrive at awkward moments."""

from types import SimpleNamespace

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from kafkaboot.errorhandling.handler import DefaultErrorHandler
from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.attempts import DeliveryAttempts
from kafkaboot.listener.binding import bind
from kafkaboot.listener.endpoint import ListenerEndpoint
from kafkaboot.listener.settings import ContainerSettings
from kafkaboot.listener.worker import ConsumerWorker

TP = TopicPartition("t", 0)
pytestmark = pytest.mark.asyncio


class StandInConsumer:
    def __init__(self, assigned):
        self.assigned = set(assigned)
        self.seeks = []
        self.paused = set()

    def assignment(self):
        return set(self.assigned)

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))

    def pause(self, *partitions):
        self.paused |= set(partitions)

    def resume(self, *partitions):
        self.paused -= set(partitions)


def _worker(handled, consumer):
    async def handler(value: bytes) -> None:
        handled.append(value)

    settings = ContainerSettings(
        group_id="g",
        concurrency=1,
        ack_mode=AckMode.BATCH,
        ack_count=1,
        ack_time=1.0,
        poll_timeout=0.1,
        shutdown_timeout=1.0,
        auto_startup=True,
        batch=False,
        consumer_kwargs={},
        client_id_prefix="c",
    )
    container = SimpleNamespace(
        endpoint=ListenerEndpoint(handler=handler, topics=("t",)),
        settings=settings,
        invoker=bind(handler, name="h", batch=False, manual_ack=False),
        template=None,
        send_to=None,
        error_handler=DefaultErrorHandler(),
        rebalance_listener=None,
        initial_seek=None,
        seeked=set(),
        paused=False,
        attempts=DeliveryAttempts(),
        listener_id="h",
        filter=None,
        not_before=None,
        record_error=lambda error: None,
        fail=lambda reason: None,
    )
    return ConsumerWorker(container, 0, consumer)


def _records(offsets):
    return [ConsumerRecord("t", 0, o, 0, 0, None, b"v%d" % o, None, -1, 2, ()) for o in offsets]


async def test_records_fetched_before_the_assignment_callback_are_read_again():
    """aiokafka assigns, fetches, and only then calls on_partitions_assigned: records of a
    partition the worker does not know yet are sought back to, not dropped."""
    consumer, handled = StandInConsumer({TP}), []
    worker = _worker(handled, consumer)
    await worker._dispatch({TP: _records([8, 9])})
    assert handled == []
    assert consumer.seeks == [(TP, 8)]


async def test_records_of_a_partition_no_longer_assigned_are_left_alone():
    consumer, handled = StandInConsumer(set()), []
    worker = _worker(handled, consumer)
    await worker._dispatch({TP: _records([8, 9])})
    assert (handled, consumer.seeks) == ([], [])


async def test_records_fetched_while_the_assignment_callback_runs_are_read_again():
    """The poll loop runs while the assignment's callbacks await: what it fetched then is
    held back, and the partition is read again from there once the callbacks are done."""
    consumer, handled = StandInConsumer({TP}), []
    worker = _worker(handled, consumer)

    class Slow:
        async def on_partitions_assigned(self, partitions, consumer):
            await worker._dispatch({TP: _records([3, 4])})  # The loop, meanwhile.

    worker.container.rebalance_listener = Slow()
    await worker.assignment.assigned({TP})
    assert handled == []
    assert consumer.seeks == [(TP, 3)]
    assert consumer.paused == set()  # Paused during the callback, resumed after it.
    await worker._dispatch({TP: _records([3, 4])})
    assert handled == [b"v3", b"v4"]
