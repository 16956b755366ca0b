"""The batch dispatcher's hold on the cyclic garbage collector always ends."""

from __future__ import annotations

import asyncio
import gc

import pytest

from kafkaboot.listener.collector import CollectorHold

pytestmark = pytest.mark.asyncio


def _fail_while_held(hold: CollectorHold) -> None:
    with hold:
        assert not gc.isenabled()
        raise RuntimeError("handler failed")


async def test_the_collector_is_back_after_the_batch_even_when_it_raises() -> None:
    with pytest.raises(RuntimeError):
        _fail_while_held(CollectorHold())
    assert gc.isenabled()


async def test_a_hold_that_outlasts_its_limit_gives_the_collector_back() -> None:
    hold = CollectorHold(limit=0.01)
    with hold:
        await asyncio.sleep(0.05)
        assert gc.isenabled()  # A slow handler: the process collects again meanwhile.
    assert gc.isenabled()


async def test_a_collector_the_application_turned_off_stays_off() -> None:
    gc.disable()
    try:
        with CollectorHold():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


async def test_a_second_hold_inside_the_first_leaves_it_to_the_first() -> None:
    outer, inner = CollectorHold(), CollectorHold()
    with outer:
        with inner:
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
