"""Lanes (``ordering="key"`` and ``"none"``) with a stand-in consumer: which records run
at the same time, what may be committed meanwhile, retries, back-pressure, revocation."""

import asyncio
import time
from datetime import timedelta

import pytest

from kafkaboot.errorhandling.backoff import FixedBackOff
from kafkaboot.errorhandling.handler import DefaultErrorHandler
from kafkaboot.listener.acks import AckMode, Acknowledgment
from kafkaboot.listener.lanes import LaneDispatcher
from kafkaboot.listener.settings import Ordering

from .standins import TP, StandInConsumer, records, stand_in_worker

pytestmark = pytest.mark.asyncio


class Gates:
    """A handler whose call for each value waits until the test opens that value's gate,
    and which notes the order calls start and finish in."""

    def __init__(self, fail=()):
        self.gates: dict[bytes, asyncio.Event] = {}
        self.started: list[bytes] = []
        self.finished: list[bytes] = []
        self.fail = set(fail)
        self.running = 0
        self.most_running = 0

    def gate(self, value: bytes) -> asyncio.Event:
        return self.gates.setdefault(value, asyncio.Event())

    def open(self, *values: bytes) -> None:
        for value in values:
            self.gate(value).set()

    async def __call__(self, value: bytes) -> None:
        self.started.append(value)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate(value).wait()
            if value in self.fail:
                raise RuntimeError(f"{value!r} fails")
        finally:
            self.running -= 1
        self.finished.append(value)


async def settle() -> None:
    """Let every lane that can run do so."""
    for _ in range(20):
        await asyncio.sleep(0)


async def assigned_worker(handler, ordering=Ordering.KEY, **options):
    consumer = StandInConsumer({TP})
    worker = stand_in_worker([], consumer, handler=handler, ordering=ordering, **options)
    await worker.assignment.assigned({TP})
    return worker, consumer


async def test_records_of_different_keys_run_at_once_and_one_key_in_order():
    handler = Gates()
    worker, _ = await assigned_worker(handler)
    # Offsets 0..5, keys a b a c b a.
    await worker._dispatch({TP: records(range(6), [b"a", b"b", b"a", b"c", b"b", b"a"])})
    await settle()
    assert handler.started == [b"v0", b"v1", b"v3"]  # The first record of each key.
    handler.open(b"v0")
    await settle()
    assert handler.started[3:] == [b"v2"]  # a's next record, only after a's first.
    handler.open(*(b"v%d" % n for n in range(6)))
    await settle()
    assert handler.finished[:1] == [b"v0"]
    assert sorted(handler.finished) == sorted(b"v%d" % n for n in range(6))
    a = [v for v in handler.started if v in (b"v0", b"v2", b"v5")]
    assert a == [b"v0", b"v2", b"v5"]
    assert worker.book.get(TP).commit_offset() == 6


async def test_a_key_finished_ahead_commits_nothing_past_an_unfinished_record():
    handler = Gates()
    worker, _ = await assigned_worker(handler)
    await worker._dispatch({TP: records(range(4), [b"a", b"b", b"c", b"d"])})
    handler.open(b"v1", b"v2", b"v3")
    await settle()
    assert handler.finished == [b"v1", b"v2", b"v3"]
    state = worker.book.get(TP)
    assert state.commit_offset() is None  # Offset 0 is not finished.
    assert state.resume_offset == 0
    handler.open(b"v0")
    await settle()
    assert state.commit_offset() == 4


async def test_records_without_a_key_share_one_lane_per_partition():
    handler = Gates()
    worker, _ = await assigned_worker(handler)
    await worker._dispatch({TP: records(range(3), [None, None, b"k"])})
    await settle()
    assert handler.started == [b"v0", b"v2"]


async def test_ordering_none_runs_records_of_one_key_at_once():
    handler = Gates()
    worker, _ = await assigned_worker(handler, ordering=Ordering.NONE)
    await worker._dispatch({TP: records(range(3), [b"k", b"k", None])})
    await settle()
    assert handler.started == [b"v0", b"v1", b"v2"]
    handler.open(b"v2", b"v1")
    await settle()
    assert worker.book.get(TP).commit_offset() is None
    handler.open(b"v0")
    await settle()
    assert worker.book.get(TP).commit_offset() == 3


async def test_a_failing_record_is_retried_in_its_lane_while_other_keys_go_on():
    handler = Gates(fail={b"v0"})
    recovered = []
    error_handler = DefaultErrorHandler(
        FixedBackOff(timedelta(seconds=0.05), max_attempts=3),
        recoverer=lambda failure: recovered.append(failure.record.offset),
    )
    worker, consumer = await assigned_worker(handler, error_handler=error_handler)
    await worker._dispatch({TP: records(range(4), [b"bad", b"bad", b"ok", b"ok"])})
    handler.open(b"v0", b"v2", b"v3")
    await settle()
    # The bad key's first record failed and waits for its retry; the other key is done.
    assert handler.finished == [b"v2", b"v3"]
    assert b"v1" not in handler.started
    assert consumer.seeks == []  # No rewind of the partition: the retry is in the lane.
    assert consumer.paused_partitions == set()
    for _ in range(200):
        if recovered:
            break
        await asyncio.sleep(0.01)
    assert recovered == [0]
    assert handler.started.count(b"v0") == 3
    handler.open(b"v1")
    await settle()
    assert handler.finished[-1] == b"v1"
    assert worker.book.get(TP).commit_offset() == 4


async def test_a_stuck_lane_shows_its_key_offset_and_attempts():
    handler = Gates(fail={b"v0"})
    error_handler = DefaultErrorHandler(FixedBackOff(timedelta(seconds=30), max_attempts=5))
    worker, _ = await assigned_worker(handler, error_handler=error_handler)
    await worker._dispatch({TP: records(range(2), [b"site-7", b"site-7"])})
    handler.open(b"v0")
    await settle()
    [stuck] = worker.lanes.stuck()
    assert (stuck.key, stuck.offset, stuck.attempts, stuck.queued) == ("site-7", 0, 1, 1)
    await worker.lanes.drain(None, 0)


async def test_a_full_container_pauses_its_partitions_and_resumes_as_lanes_drain():
    handler = Gates()
    worker, consumer = await assigned_worker(handler, max_in_flight=2)
    intake = worker.intake
    assert await intake.room(0.01) == 2
    await worker._dispatch({TP: records(range(2), [b"a", b"b"])})
    assert await intake.room(0.01) == 0
    assert consumer.paused_partitions == {TP}
    worker.resume()  # The container's resume() while still full: paused again.
    assert consumer.paused_partitions == set()
    assert await intake.room(0.01) == 0
    assert consumer.paused_partitions == {TP}
    handler.open(b"v0")
    await settle()
    assert await intake.room(0.01) == 1
    assert consumer.paused_partitions == set()


async def test_records_polled_without_room_are_read_again_later():
    handler = Gates()
    worker, consumer = await assigned_worker(handler, max_in_flight=1)
    await worker._dispatch({TP: records([0], [b"a"])})
    # A rebalance let records of a resumed partition through while the lanes were full.
    await worker._dispatch({TP: records([1, 2], [b"b", b"c"])}, hold=True)
    await settle()
    assert consumer.seeks[-1] == (TP, 1)
    assert handler.started == [b"v0"]
    assert worker.container.in_flight.count == 1


async def test_a_revocation_waits_for_records_in_hand_and_drops_the_queued_ones():
    """Within the shutdown timeout: the record in hand finishes and is committed; the
    queued record of the same key is not started (the new owner reads it)."""
    handler = Gates()
    worker, consumer = await assigned_worker(handler, shutdown_timeout=5.0)
    await worker._dispatch({TP: records(range(3), [b"a", b"a", b"b"])})
    handler.open(b"v2")
    await settle()
    revoking = asyncio.create_task(worker.assignment.revoked({TP}))
    await settle()
    assert not revoking.done()
    handler.open(b"v0", b"v1")
    await revoking
    assert handler.started == [b"v0", b"v2"]
    assert consumer.commits == [{TP: 1}]
    assert worker.container.in_flight.count == 0


async def test_a_revocation_that_cannot_wait_gives_up_the_record_in_hand():
    handler = Gates()
    worker, consumer = await assigned_worker(handler, shutdown_timeout=0.05)
    await worker._dispatch({TP: records(range(3), [b"a", b"b", b"c"])})
    handler.open(b"v1", b"v2")
    await settle()
    await worker.assignment.revoked({TP})
    assert consumer.commits == []  # Offset 0 never finished: nothing may be committed.
    assert handler.running == 0  # Cancelled, not left running for the new owner to race.
    assert worker.container.in_flight.count == 0


async def test_a_manual_acknowledgment_finishes_the_record_whenever_it_comes():
    acks: dict[bytes, Acknowledgment] = {}

    async def keep(value: bytes, ack: Acknowledgment) -> None:
        acks[value] = ack

    worker, _ = await assigned_worker(keep, ack_mode=AckMode.MANUAL)
    await worker._dispatch({TP: records(range(2), [b"a", b"a"])})
    await settle()
    assert set(acks) == {b"v0", b"v1"}  # The lane moves on once the handler returns.
    state = worker.book.get(TP)
    acks[b"v1"].acknowledge()
    assert state.commit_offset() is None
    acks[b"v0"].acknowledge()
    assert state.commit_offset() == 2
    assert worker.container.in_flight.count == 0


async def test_a_nack_delivers_the_record_again_in_its_lane():
    calls = []

    async def nack_once(value: bytes, ack: Acknowledgment) -> None:
        calls.append(value)
        if calls.count(value) == 1 and value == b"v0":
            ack.nack(0.01)
        else:
            ack.acknowledge()

    worker, consumer = await assigned_worker(nack_once, ack_mode=AckMode.MANUAL)
    await worker._dispatch({TP: records(range(2), [b"a", b"a"])})
    for _ in range(100):
        if len(calls) == 3:
            break
        await asyncio.sleep(0.01)
    assert calls == [b"v0", b"v0", b"v1"]
    assert consumer.seeks == []
    assert worker.book.get(TP).commit_offset() == 2


async def test_records_taken_back_by_a_rewind_are_not_started():
    handler = Gates()
    worker, _ = await assigned_worker(handler)
    await worker._dispatch({TP: records(range(2), [b"a", b"a"])})
    await settle()
    state = worker.book.get(TP)
    worker.outcomes.rewind(state, 0)  # A loop error took the poll back.
    handler.open(b"v0", b"v1")
    await settle()
    assert handler.started == [b"v0"]
    assert state.commit_offset() is None
    assert worker.container.in_flight.count == 0


async def test_a_stop_lets_records_in_hand_finish_and_commits_them():
    handler = Gates()
    consumer = StandInConsumer({TP})
    worker = stand_in_worker([], consumer, handler=handler, ordering=Ordering.KEY)

    async def stop_consumer():
        pass

    consumer.stop = stop_consumer
    await worker.assignment.assigned({TP})
    await worker._dispatch({TP: records(range(2), [b"a", b"b"])})
    await settle()
    stopping = asyncio.create_task(worker.stop(5.0))
    await settle()
    handler.open(b"v0", b"v1")
    await stopping
    assert consumer.commits == [{TP: 2}]


async def test_an_internal_error_keeps_the_record_and_tries_it_again(monkeypatch, caplog):
    monkeypatch.setattr("kafkaboot.listener.lanes._INTERNAL_ERROR_BACKOFF_S", 0.01)
    handler = Gates(fail={b"v0"})
    worker, _ = await assigned_worker(handler)
    decide = worker.outcomes.decide
    broken = []

    async def decide_once_broken(*args, **kwargs):
        if not broken:
            broken.append(True)
            raise RuntimeError("a bug in the error handling")
        handler.fail.clear()  # The next delivery succeeds.
        return await decide(*args, **kwargs)

    worker.outcomes.decide = decide_once_broken
    await worker._dispatch({TP: records([0], [b"a"])})
    handler.open(b"v0")
    for _ in range(100):
        if handler.finished:
            break
        await asyncio.sleep(0.01)
    assert handler.finished == [b"v0"]
    assert handler.started == [b"v0", b"v0", b"v0"]  # Failed, failed again, handled.
    assert worker.book.get(TP).commit_offset() == 1
    assert "unexpected error while handling t-0@0" in caplog.text


def rebuild_lanes(worker):
    """After changing the worker's handling (filter, send_to, due times): the lanes pick
    their fast path when they are built."""
    worker.lanes = LaneDispatcher(
        worker._handling, Ordering.KEY, worker.container.in_flight, worker.commit_soon
    )


async def test_a_filtered_out_record_is_finished_and_the_key_goes_on():
    handled = []

    async def collect(value: bytes) -> None:
        handled.append(value)

    worker, _ = await assigned_worker(collect)
    worker._handling.filter = lambda record: record.offset != 1

    rebuild_lanes(worker)
    await worker._dispatch({TP: records(range(3), [b"a", b"a", b"a"])})
    await settle()
    assert handled == [b"v0", b"v2"]
    assert worker.book.get(TP).commit_offset() == 3


async def test_a_result_is_sent_on_before_its_record_counts_as_finished():
    sent, confirm = [], asyncio.get_running_loop().create_future()

    class Template:
        async def send(self, topic, value, key=None, headers=None):
            sent.append((topic, value, key))
            return confirm

    async def double(value: bytes) -> bytes:
        return value * 2

    worker, _ = await assigned_worker(double)
    worker._handling.send_to, worker._handling.template = "out", Template()

    rebuild_lanes(worker)
    await worker._dispatch({TP: records([0], [b"a"])})
    await settle()
    assert sent == [("out", b"v0v0", b"a")]
    assert worker.book.get(TP).commit_offset() is None  # Not confirmed yet.
    confirm.set_result(None)
    await settle()
    assert worker.book.get(TP).commit_offset() == 1


async def test_a_retry_topic_record_not_due_waits_in_its_lane_while_other_keys_go_on():
    handled = []

    async def collect(value: bytes) -> None:
        handled.append(value)

    worker, consumer = await assigned_worker(collect)
    due = {0: 0.2}  # Offset 0 is due in 0.2 s; the others now.
    now = time.time()
    worker._handling.not_before = lambda record: now + due.get(record.offset, 0)

    rebuild_lanes(worker)
    await worker._dispatch({TP: records(range(3), [b"late", b"late", b"now"])})
    await settle()
    assert handled == [b"v2"]
    assert consumer.paused_partitions == set()
    for _ in range(200):
        if len(handled) == 3:
            break
        await asyncio.sleep(0.01)
    assert handled == [b"v2", b"v0", b"v1"]
    assert worker.book.get(TP).commit_offset() == 3


async def test_lanes_cancelled_before_they_ever_ran_give_their_records_back():
    """A partition lost in the same loop turn its records were dispatched: the lane tasks
    are cancelled before their first step, and must not keep the in-flight count or block
    the key's next records."""
    handler = Gates()
    worker, _ = await assigned_worker(handler)
    await worker._dispatch({TP: records(range(2), [b"a", b"b"])})
    await worker.lanes.drain(None, 0)  # No await in between: the tasks never started.
    await settle()
    assert worker.container.in_flight.count == 0
    worker.book.assign(TP)  # Assigned again, read again from the start.
    handler.open(b"v0", b"v1")
    await worker._dispatch({TP: records(range(2), [b"a", b"b"])})
    await settle()
    assert handler.finished == [b"v0", b"v1"]  # Key a's lane was not left blocked.


async def test_a_container_paused_while_waiting_for_room_stays_paused():
    handler = Gates()
    worker, consumer = await assigned_worker(handler, max_in_flight=2)
    intake = worker.intake
    await worker._dispatch({TP: records(range(2), [b"a", b"b"])})
    assert await intake.room(0.01) == 0
    assert consumer.paused_partitions == {TP}
    waiting = asyncio.create_task(intake.room(5, held=lambda: worker.container.paused))
    await settle()
    worker.container.paused = True  # container.pause() while the loop waits for room.
    handler.open(b"v0", b"v1")
    assert await waiting > 0
    assert consumer.paused_partitions == {TP}


async def test_back_pressure_pauses_only_partitions_the_consumer_has_assigned():
    """A pattern subscription that found a new topic: aiokafka has no assignment until the
    revocation, while the partition states are still here; pausing them would raise."""
    handler = Gates()
    worker, consumer = await assigned_worker(handler, max_in_flight=1)
    await worker._dispatch({TP: records([0], [b"a"])})
    consumer.assigned = set()

    def strict_pause(*partitions):
        assert set(partitions) <= consumer.assigned, "paused a partition not assigned"

    consumer.pause = strict_pause
    assert await worker.intake.room(0.01) == 0


async def test_room_is_reserved_while_a_consumer_polls():
    """The container's consumers share max_in_flight: while one polls for N records, the
    others must not count on the same room."""
    handler = Gates()
    worker, consumer = await assigned_worker(handler, max_in_flight=8)
    seen = []

    async def getmany(*partitions, timeout_ms=0, max_records=None):
        seen.append(worker.container.in_flight.room)
        return {}

    consumer.getmany = getmany
    await worker.intake.take(8, 0)
    assert seen == [0]
    assert worker.container.in_flight.count == 0


async def test_an_acknowledgment_given_before_the_handler_raises_does_not_count():
    attempts = []

    async def ack_then_fail(value: bytes, ack: Acknowledgment) -> None:
        attempts.append(value)
        ack.acknowledge()
        raise RuntimeError("failed after acknowledging")

    error_handler = DefaultErrorHandler(FixedBackOff(timedelta(seconds=30), max_attempts=5))
    worker, _ = await assigned_worker(
        ack_then_fail, ack_mode=AckMode.MANUAL, error_handler=error_handler
    )
    await worker._dispatch({TP: records([0], [b"a"])})
    await settle()
    assert attempts == [b"v0"]
    assert worker.book.get(TP).commit_offset() is None  # Waiting for its retry: open.
    await worker.lanes.drain(None, 0)
