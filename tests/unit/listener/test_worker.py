"""ConsumerWorker's poll loop, with a stand-in consumer: what it does with records that
arrive at awkward moments."""

import asyncio
import time

import pytest

from kafkaboot.listener.acks import AckMode, Acknowledgment
from kafkaboot.listener.transactions import TransactionalDispatcher

from .standins import TP, StandInConsumer, records, stand_in_worker

pytestmark = pytest.mark.asyncio


def _worker(handled, consumer, **options):
    return stand_in_worker(handled, consumer, **options)


def _records(offsets):
    return records(list(offsets))


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
    assert consumer.paused_partitions == set()  # Paused during the callback, resumed after it.
    await worker._dispatch({TP: _records([3, 4])})
    assert handled == [b"v3", b"v4"]


async def test_a_revocation_that_cannot_wait_commits_the_records_finished_before():
    """The handler hangs on record 5 past the shutdown timeout: records 0-4 are committed
    when the partition is revoked, not delivered again."""
    consumer = StandInConsumer({TP})
    stuck, release = asyncio.Event(), asyncio.Event()

    async def handler(value: bytes) -> None:
        if value == b"v5":
            stuck.set()
            await release.wait()

    worker = _worker([], consumer, handler=handler, shutdown_timeout=0.2)
    await worker.assignment.assigned({TP})
    loop = asyncio.create_task(worker._dispatch({TP: _records(range(10))}))
    await stuck.wait()
    worker._idle.clear()  # As the poll loop does while it dispatches.
    await worker.assignment.revoked({TP})
    assert consumer.commits == [{TP: 5}]
    release.set()
    await loop
    assert worker.book.offsets_to_commit() == {}


async def test_a_failed_poll_keeps_records_waiting_for_their_acknowledgment():
    """A retriable poll error reads each partition again from where it was, and takes
    back no delivery: a later acknowledgment still counts."""
    consumer, acks = StandInConsumer({TP}), []

    async def keep(value: bytes, ack: Acknowledgment) -> None:
        acks.append(ack)  # Acknowledged later, from elsewhere.

    worker = _worker([], consumer, handler=keep, ack_mode=AckMode.MANUAL)
    await worker.assignment.assigned({TP})
    await worker._dispatch({TP: _records([0, 1])})
    worker._poll_backoff.failed = lambda: 0.0
    assert await worker._poll_failed(RuntimeError("decoding went wrong"))
    assert consumer.seeks == [(TP, 2)]
    acks[0].acknowledge()
    assert worker.book.get(TP).commit_offset() == 1


async def test_an_assignment_whose_seek_back_fails_still_resumes_its_partitions():
    consumer = StandInConsumer({TP})

    def refuse(tp, offset):
        raise RuntimeError("not assigned any more")

    worker = _worker([], consumer)

    class Fetching:
        async def on_partitions_assigned(self, partitions, consumer_):
            await worker._dispatch({TP: _records([3])})
            consumer.seek = refuse

    worker.container.rebalance_listener = Fetching()
    await worker.assignment.assigned({TP})
    assert consumer.paused_partitions == set()
    assert worker.book.get(TP).ready


async def test_a_batch_whose_first_record_is_still_backing_off_waits_for_it():
    """A back-off under way when the partition was revoked still runs out before the
    batch comes again (the failed delivery count lives in the container)."""
    consumer, handled = StandInConsumer({TP}), []

    async def on_batch(values: list[bytes]) -> None:
        handled.extend(values)

    worker = _worker(handled, consumer, handler=on_batch, batch=True)
    await worker.assignment.assigned({TP})
    worker.container.attempts.failed(TP, 0)
    worker.container.attempts.wait_until(TP, 0, 30.0)
    await worker._dispatch({TP: _records([0, 1, 2])})
    assert handled == []
    assert consumer.seeks == [(TP, 0)]
    assert TP in consumer.paused_partitions


async def test_a_transactional_retry_topic_record_waits_until_it_is_due():
    consumer = StandInConsumer({TP})

    class NoProducers:
        timeout = 1.0

        async def for_partition(self, tp):
            raise AssertionError("a record that is not due must not start a transaction")

    worker = _worker([], consumer)
    worker._handling.not_before = lambda record: time.time() + 30
    dispatcher = TransactionalDispatcher(worker._handling, NoProducers(), "g")
    state = worker.book.assign(TP)
    await dispatcher.dispatch(state, _records([4, 5]))
    assert consumer.seeks == [(TP, 4)]
    assert TP in consumer.paused_partitions
