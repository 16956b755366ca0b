"""Lanes under any keys and any finishing order (hypothesis): one record of a key at a
time, in offset order, and the committed offset never passes an unfinished record."""

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from kafkaboot.listener.settings import Ordering

from .standins import TP, records
from .test_lanes import Gates, assigned_worker, settle


@settings(max_examples=150, deadline=None)
@given(
    keys=st.lists(st.sampled_from([b"a", b"b", b"c", None]), min_size=1, max_size=30),
    picks=st.lists(st.integers(min_value=0, max_value=1_000), min_size=30, max_size=30),
    by_key=st.booleans(),
)
def test_any_finishing_order_keeps_key_order_and_never_commits_past_an_unfinished_record(
    keys, picks, by_key
):
    asyncio.run(_finish_in_any_order(keys, picks, Ordering.KEY if by_key else Ordering.NONE))


async def _finish_in_any_order(keys, picks, ordering):
    handler = Gates()
    worker, _ = await assigned_worker(handler, ordering=ordering)
    state = worker.book.get(TP)
    offset_of = {b"v%d" % n: n for n in range(len(keys))}
    await worker._dispatch({TP: records(range(len(keys)), keys)})
    picks = iter(picks)
    while len(handler.finished) < len(keys):
        await settle()
        running = [v for v in handler.started if v not in handler.finished]
        if ordering is Ordering.KEY:
            for value in running:  # One record per key at a time, in offset order.
                offset = offset_of[value]
                before = [o for o in range(offset) if keys[o] == keys[offset]]
                assert all(b"v%d" % o in handler.finished for o in before)
        pick = next(picks, 0) % len(running)
        handler.open(running[pick])
        await settle()
        done = {offset_of[v] for v in handler.finished}
        first_unfinished = min(set(range(len(keys))) - done, default=len(keys))
        committable = state.commit_offset()
        assert committable is None or committable <= first_unfinished
        assert state.resume_offset <= first_unfinished
    assert state.commit_offset() == len(keys)
    assert worker.container.in_flight.count == 0
