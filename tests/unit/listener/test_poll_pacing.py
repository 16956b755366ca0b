"""Spring's idle-between-polls and auth-exception-retry-interval in the poll loop."""

import asyncio
import dataclasses
import itertools
import time

import pytest
from aiokafka.errors import AuthenticationFailedError, TopicAuthorizationFailedError

from .standins import TP, StandInConsumer, records, stand_in_worker

pytestmark = pytest.mark.asyncio


class PollingConsumer(StandInConsumer):
    """Answers each ``getmany`` with the next of ``answers`` (a dict of records or an error
    to raise), then nothing; notes when each poll came."""

    def __init__(self, answers):
        super().__init__({TP})
        self.answers = list(answers)
        self.polled = []
        self.enough = asyncio.Event()

    async def getmany(self, timeout_ms=0, max_records=None):
        self.polled.append(time.monotonic())
        if not self.answers:
            self.enough.set()
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def running_worker(consumer, **settings):
    worker = stand_in_worker(handled := [], consumer)
    worker.handled = handled
    worker._settings = dataclasses.replace(worker._settings, **settings)
    halted = []
    worker.container.fail = halted.append
    await worker.assignment.assigned({TP})
    task = asyncio.create_task(worker._run())
    return worker, task, halted


async def stop(worker, task):
    worker._stopping = True
    worker._stop_requested.set()
    await asyncio.wait_for(task, 5)


async def test_idle_between_polls_spaces_the_polls():
    consumer = PollingConsumer([{TP: records([0])}, {TP: records([1])}, {TP: records([2])}])
    worker, task, _ = await running_worker(consumer, idle_between_polls=0.2)
    await asyncio.wait_for(consumer.enough.wait(), 5)
    await stop(worker, task)
    polled = consumer.polled
    gaps = [later - earlier for earlier, later in itertools.pairwise(polled)]
    assert len(gaps) >= 3
    assert all(gap >= 0.2 for gap in gaps[:3]), gaps


async def test_a_stop_ends_the_idle_wait_at_once():
    consumer = PollingConsumer([{TP: records([0])}])
    worker, task, _ = await running_worker(consumer, idle_between_polls=60.0)
    while not consumer.commits:  # Handled and committed: the loop is in its idle wait.
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await stop(worker, task)
    assert time.monotonic() - started < 2


async def test_the_idle_wait_never_outlasts_max_poll_interval():
    consumer = PollingConsumer([{TP: records([0])}, {TP: records([1])}])
    worker, task, _ = await running_worker(
        consumer, idle_between_polls=60.0, consumer_kwargs={"max_poll_interval_ms": 5_300}
    )
    await asyncio.wait_for(consumer.enough.wait(), 5)
    await stop(worker, task)
    assert consumer.polled[1] - consumer.polled[0] < 1.0


@pytest.mark.parametrize(
    "failure", [AuthenticationFailedError("bad password"), TopicAuthorizationFailedError()]
)
async def test_an_auth_failure_stops_the_container_by_default(failure):
    consumer = PollingConsumer([failure])
    _, task, halted = await running_worker(consumer)
    await asyncio.wait_for(task, 5)
    assert halted
    assert "cannot poll" in halted[0]
    assert len(consumer.polled) == 1


@pytest.mark.parametrize(
    "failure", [AuthenticationFailedError("bad password"), TopicAuthorizationFailedError()]
)
async def test_auth_exception_retry_interval_polls_again_instead(failure):
    consumer = PollingConsumer([failure, failure, {TP: records([0])}])
    worker, task, halted = await running_worker(consumer, auth_exception_retry_interval=0.1)
    await asyncio.wait_for(consumer.enough.wait(), 5)
    await stop(worker, task)
    assert not halted
    assert worker.handled == [b"v0"]
    assert consumer.polled[1] - consumer.polled[0] >= 0.1
