"""Record and batch interceptors with a stand-in consumer: which hooks run, in which order,
for handled, failed, skipped and recovered records, in each dispatch style."""

import asyncio
from datetime import timedelta

import pytest

from kafkaboot.errorhandling.backoff import FixedBackOff
from kafkaboot.errorhandling.handler import DefaultErrorHandler, Recovery
from kafkaboot.interceptors import BatchInterceptor, RecordInterceptor
from kafkaboot.listener.settings import Ordering

from .standins import TP, StandInConsumer, records, stand_in_worker

pytestmark = pytest.mark.asyncio


class Journal(RecordInterceptor):
    """Notes every hook call as (name, hook, offset)."""

    def __init__(self, name="i", skip=(), raise_on=()):
        self.name = name
        self.calls = []
        self.skip = set(skip)
        self.raise_on = set(raise_on)

    def intercept(self, record, consumer):
        self.calls.append((self.name, "intercept", record.offset))
        if record.offset in self.raise_on:
            raise RuntimeError("intercept refuses")
        return None if record.offset in self.skip else record

    def success(self, record, consumer):
        self.calls.append((self.name, "success", record.offset))

    def failure(self, record, exception, consumer):
        self.calls.append((self.name, "failure", record.offset))

    def after_record(self, record, consumer):
        self.calls.append((self.name, "after", record.offset))

    def filtered(self, record, consumer):
        self.calls.append((self.name, "filtered", record.offset))

    def retrying(self, record, exception, attempt):
        self.calls.append((self.name, f"retrying#{attempt}", record.offset))

    def recovered(self, record, exception, recovery):
        self.calls.append((self.name, f"recovered:{recovery}", record.offset))


async def assigned(handled, **options):
    consumer = StandInConsumer({TP})
    worker = stand_in_worker(handled, consumer, **options)
    await worker.assignment.assigned({TP})
    return worker


async def test_hooks_run_in_order_around_each_record_and_chain_across_interceptors():
    handled = []
    first, second = Journal("a"), Journal("b")
    shared = []
    first.calls = second.calls = shared
    worker = await assigned(handled, interceptors=[first, second])
    await worker._dispatch({TP: records([0])})
    assert handled == [b"v0"]
    assert shared == [
        ("a", "intercept", 0),
        ("b", "intercept", 0),
        ("a", "success", 0),
        ("b", "success", 0),
        ("a", "after", 0),
        ("b", "after", 0),
    ]


async def test_a_skipped_record_is_not_handled_and_is_committed():
    handled = []
    journal = Journal(skip={1})
    worker = await assigned(handled, interceptors=[journal])
    await worker._dispatch({TP: records([0, 1, 2])})
    assert handled == [b"v0", b"v2"]
    assert ("i", "filtered", 1) in journal.calls
    assert ("i", "after", 1) in journal.calls
    assert ("i", "success", 1) not in journal.calls
    assert worker.book.get(TP).commit_offset() == 3


async def test_the_listener_filter_counts_as_filtered_for_interceptors():
    handled = []
    journal = Journal()
    worker = await assigned(handled, interceptors=[journal], filter=lambda r: r.offset != 0)
    await worker._dispatch({TP: records([0, 1])})
    assert handled == [b"v1"]
    assert [c for c in journal.calls if c[2] == 0] == [
        ("i", "intercept", 0),
        ("i", "filtered", 0),
        ("i", "after", 0),
    ]


async def test_an_intercept_that_raises_fails_the_record_which_is_retried_not_lost():
    handled = []
    journal = Journal(raise_on={0})
    handler = DefaultErrorHandler(FixedBackOff(timedelta(0), max_attempts=3))
    worker = await assigned(handled, interceptors=[journal], error_handler=handler)
    await worker._dispatch({TP: records([0, 1])})
    assert handled == []
    assert journal.calls == [
        ("i", "intercept", 0),
        ("i", "failure", 0),
        ("i", "after", 0),
        ("i", "retrying#1", 0),
    ]
    state = worker.book.get(TP)
    assert state.commit_offset() is None
    assert state.resume_offset == 0


async def test_a_failed_handler_reaches_failure_then_retrying_then_recovered():
    handled = []

    async def failing(value: bytes) -> None:
        raise ValueError("no")

    async def recoverer(failure):
        return Recovery("dead-letter", "t-dlt")

    journal = Journal()
    handler = DefaultErrorHandler(FixedBackOff(timedelta(0), max_attempts=2), recoverer)
    worker = await assigned(handled, handler=failing, interceptors=[journal], error_handler=handler)
    await worker._dispatch({TP: records([0])})
    await worker._dispatch({TP: records([0])})  # Read again after the rewind.
    assert journal.calls == [
        ("i", "intercept", 0),
        ("i", "failure", 0),
        ("i", "after", 0),
        ("i", "retrying#1", 0),
        ("i", "intercept", 0),
        ("i", "failure", 0),
        ("i", "after", 0),
        ("i", "recovered:Recovery(kind='dead-letter', topic='t-dlt')", 0),
    ]
    assert worker.book.get(TP).commit_offset() == 1


async def test_an_observer_hook_that_raises_changes_no_outcome(caplog):
    handled = []

    class Broken(RecordInterceptor):
        def success(self, record, consumer):
            raise RuntimeError("metrics are down")

        def after_record(self, record, consumer):
            raise RuntimeError("and so is this")

    worker = await assigned(handled, interceptors=[Broken()])
    await worker._dispatch({TP: records([0, 1])})
    assert handled == [b"v0", b"v1"]
    assert worker.book.get(TP).commit_offset() == 2
    assert "metrics are down" in caplog.text
    assert "and so is this" in caplog.text


async def test_lanes_call_the_hooks_for_each_record():
    handled = []
    journal = Journal(skip={2})
    worker = await assigned(handled, interceptors=[journal], ordering=Ordering.KEY)
    await worker._dispatch({TP: records(range(3), [b"a", b"b", b"a"])})
    for _ in range(20):
        await asyncio.sleep(0)
    assert sorted(handled) == [b"v0", b"v1"]
    for offset in (0, 1):
        hooks = [hook for _, hook, at in journal.calls if at == offset]
        assert hooks == ["intercept", "success", "after"]
    assert [hook for _, hook, at in journal.calls if at == 2] == [
        "intercept",
        "filtered",
        "after",
    ]
    assert worker.book.get(TP).commit_offset() == 3


class BatchJournal(BatchInterceptor):
    def __init__(self, skip=False):
        self.calls = []
        self.skip = skip

    def intercept(self, records, consumer):
        self.calls.append(("intercept", [r.offset for r in records]))
        return None if self.skip else records

    def success(self, records, consumer):
        self.calls.append(("success", [r.offset for r in records]))

    def failure(self, records, exception, consumer):
        self.calls.append(("failure", [r.offset for r in records]))


async def test_a_batch_interceptor_sees_the_batch_and_its_outcome():
    got = []

    async def handler(values: list[bytes]) -> None:
        got.append(values)

    journal = BatchJournal()
    worker = await assigned([], handler=handler, batch=True, interceptors=[journal])
    await worker._dispatch({TP: records([0, 1, 2])})
    assert got == [[b"v0", b"v1", b"v2"]]
    assert journal.calls == [("intercept", [0, 1, 2]), ("success", [0, 1, 2])]


async def test_a_batch_interceptor_may_skip_a_batch_which_is_then_committed():
    got = []

    async def handler(values: list[bytes]) -> None:
        got.append(values)

    worker = await assigned([], handler=handler, batch=True, interceptors=[BatchJournal(True)])
    await worker._dispatch({TP: records([0, 1])})
    assert got == []
    assert worker.book.get(TP).commit_offset() == 2


async def test_a_batch_interceptor_returning_another_list_fails_the_batch():
    got = []

    async def handler(values: list[bytes]) -> None:
        got.append(values)

    class Shrinks(BatchInterceptor):
        def intercept(self, records, consumer):
            return records[:1]

    handler_policy = DefaultErrorHandler(FixedBackOff(timedelta(0), max_attempts=5))
    worker = await assigned(
        [], handler=handler, batch=True, interceptors=[Shrinks()], error_handler=handler_policy
    )
    await worker._dispatch({TP: records([0, 1])})
    assert got == []
    state = worker.book.get(TP)
    assert state.commit_offset() is None


async def test_only_interceptors_of_the_listeners_kind_observe_its_retries():
    handled = []

    async def failing(value: bytes) -> None:
        raise ValueError("no")

    journal, batch_journal = Journal(), BatchJournal()
    batch_journal.retrying = lambda *args: batch_journal.calls.append(("retrying",))
    handler = DefaultErrorHandler(FixedBackOff(timedelta(0), max_attempts=5))
    worker = await assigned(
        handled, handler=failing, interceptors=[batch_journal, journal], error_handler=handler
    )
    await worker._dispatch({TP: records([0])})
    assert [hook for _, hook, _ in journal.calls].count("retrying#1") == 1
    assert batch_journal.calls == []
