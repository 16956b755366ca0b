"""StoredOffsets: what a listener with an offset store asks of its store, and when."""

import contextlib
from datetime import timedelta

import pytest
from aiokafka import TopicPartition

from kafkaboot.errorhandling.handler import ErrorAction
from kafkaboot.listener.stored import StoredOffsets
from kafkaboot.offset_store import (
    OffsetStoreError,
    OffsetStoreFenced,
    OffsetStoreUnavailable,
    StoredRange,
    current_transaction,
)

from .standins import TP as SP
from .standins import StandInConsumer, records, stand_in_worker

TP = TopicPartition("events", 0)


class CountingStore:
    """A store in a dict that counts its transactions."""

    session_type = object

    def __init__(self, stored: dict[TopicPartition, int] | None = None) -> None:
        self.stored = dict(stored or {})
        self.advances: list[dict[TopicPartition, int]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def load(self, group_id, partitions):
        return {tp: o for tp, o in self.stored.items() if tp in partitions}

    @contextlib.asynccontextmanager
    async def transaction(self):
        yield "session"

    async def save(self, session, group_id, ranges):
        past = {
            tp: self.stored[tp] for tp, r in ranges.items() if self.stored.get(tp, -1) > r.first
        }
        if past:
            raise OffsetStoreFenced(group_id, past)
        for tp, r in ranges.items():
            self.stored[tp] = r.next_offset

    async def advance(self, group_id, offsets):
        self.advances.append(dict(offsets))
        for tp, offset in offsets.items():
            self.stored[tp] = max(self.stored.get(tp, -1), offset)


@pytest.mark.asyncio
async def test_the_work_sees_its_session_and_the_save_follows_it():
    store = CountingStore()
    stored = StoredOffsets(store, "g", "listener")
    seen = []

    async def work():
        seen.append(current_transaction.get())
        return "done"

    assert await stored.run({TP: StoredRange(0, 5)}, work) == ("done", None)
    assert seen == ["session"]
    assert store.stored == {TP: 5}


@pytest.mark.asyncio
async def test_a_commit_the_transactions_already_saved_costs_no_transaction():
    store = CountingStore()
    stored = StoredOffsets(store, "g", "listener")
    await stored.run({TP: StoredRange(0, 5)}, _nothing)

    await stored.advance({TP: 5})
    assert store.advances == []
    await stored.advance({TP: 7})  # Two filtered records after the stored ones.
    assert store.advances == [{TP: 7}]


@pytest.mark.asyncio
async def test_loaded_offsets_count_as_saved():
    store = CountingStore({TP: 20})
    stored = StoredOffsets(store, "g", "listener")
    assert await stored.positions({TP}) == {TP: 20}
    await stored.advance({TP: 15})
    assert store.advances == []


@pytest.mark.asyncio
async def test_a_refused_save_returns_the_stored_offsets_and_marks_records_below_them():
    store = CountingStore({TP: 8})
    stored = StoredOffsets(store, "g", "listener")

    result, found = await stored.run({TP: StoredRange(3, 6)}, _nothing)

    assert (result, found) == (None, {TP: 8})
    assert stored.already_stored(TP, 7)
    assert not stored.already_stored(TP, 8)


async def _nothing():
    return None


class UnreachableStore(CountingStore):
    @contextlib.asynccontextmanager
    async def transaction(self):
        raise ConnectionRefusedError("the database is down")
        yield  # pragma: no cover


@pytest.mark.asyncio
async def test_a_store_that_cannot_begin_is_unavailable_not_the_records_fault():
    stored = StoredOffsets(UnreachableStore(), "g", "listener")
    with pytest.raises(OffsetStoreUnavailable, match="the database is down"):
        await stored.run({TP: StoredRange(0, 5)}, _nothing)


@pytest.mark.asyncio
async def test_the_handlers_own_error_passes_unchanged():
    stored = StoredOffsets(CountingStore(), "g", "listener")

    async def failing():
        raise ValueError("a bad record")

    with pytest.raises(ValueError, match="a bad record"):
        await stored.run({TP: StoredRange(0, 5)}, failing)


@pytest.mark.asyncio
async def test_a_handler_failure_where_the_store_is_past_is_a_refusal_not_the_records_fault():
    """Another consumer stored these records first, so the handler's insert failed on a
    unique key before the save could be refused: read on from the stored offsets, as for
    a refusal, instead of retrying and recovering records nobody stored."""
    stored = StoredOffsets(CountingStore({TP: 8}), "g", "listener")

    async def duplicate_key():
        raise ValueError("UNIQUE constraint failed: events.offset")

    result, found = await stored.run({TP: StoredRange(3, 6)}, duplicate_key)

    assert (result, found) == (None, {TP: 8})
    assert stored.already_stored(TP, 7)


class UnreadableStore(CountingStore):
    async def load(self, group_id, partitions):
        raise ConnectionRefusedError("the database is down")


@pytest.mark.asyncio
async def test_a_handler_failure_stands_when_the_stored_offsets_cannot_be_read():
    stored = StoredOffsets(UnreadableStore({TP: 8}), "g", "listener")

    async def failing():
        raise ValueError("a bad record")

    with pytest.raises(ValueError, match="a bad record"):
        await stored.run({TP: StoredRange(3, 6)}, failing)


class RecoverAtOnce:
    def handle(self, failure):
        return ErrorAction.recovered()


@pytest.mark.asyncio
async def test_an_unavailable_store_is_retried_and_never_recovered():
    """A database outage is no record's fault: no attempt is counted, and the error
    handler (which would recover at once here) is not asked."""
    worker = stand_in_worker([], StandInConsumer({SP}), error_handler=RecoverAtOnce())
    [record] = records([4])
    unavailable = OffsetStoreUnavailable("down")

    action = await worker.outcomes.decide(record, unavailable)

    assert action.retry
    assert action.delay > timedelta(0)
    assert not worker.outcomes.attempts.of(SP)
    assert not (await worker.outcomes.decide(record, ValueError("bad"))).retry


@pytest.mark.asyncio
async def test_a_handler_that_ended_the_transaction_fails_as_its_record_does():
    class RefusingStore(CountingStore):
        async def save(self, session, group_id, ranges):
            raise OffsetStoreError("the handler rolled back the offset store's transaction")

    stored = StoredOffsets(RefusingStore(), "g", "listener")
    with pytest.raises(OffsetStoreError) as raised:
        await stored.run({TP: StoredRange(0, 5)}, _nothing)
    assert not isinstance(raised.value, OffsetStoreUnavailable)
