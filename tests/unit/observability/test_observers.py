"""The metrics' interceptors on a stand-in consumer: what each dispatch style counts."""

import asyncio
from datetime import timedelta

import pytest

from kafkaboot.errorhandling.backoff import FixedBackOff
from kafkaboot.errorhandling.handler import DefaultErrorHandler
from kafkaboot.listener.settings import Ordering
from kafkaboot.observability.metrics import BatchListenerMetrics, ListenerMetrics, Series

from ..listener.standins import TP, StandInConsumer, records, stand_in_worker

pytestmark = pytest.mark.asyncio


async def worker_with_metrics(series, **options):
    consumer = StandInConsumer({TP})
    interceptors = [BatchListenerMetrics(series), ListenerMetrics(series)]
    worker = stand_in_worker([], consumer, interceptors=interceptors, **options)
    await worker.assignment.assigned({TP})
    return worker


@pytest.mark.parametrize("ordering", [Ordering.PARTITION, Ordering.KEY])
async def test_successes_and_failures_are_timed_per_topic_and_exception(ordering):
    async def handler(value: bytes) -> None:
        await asyncio.sleep(0)
        if value == b"v3":
            raise KeyError("no")

    series = Series()
    policy = DefaultErrorHandler(FixedBackOff(timedelta(0), max_attempts=1))
    worker = await worker_with_metrics(
        series, handler=handler, ordering=ordering, error_handler=policy
    )
    await worker._dispatch({TP: records(range(5), [b"a", b"b", b"a", b"c", b"b"])})
    for _ in range(50):
        await asyncio.sleep(0)
    stats = series.listeners["h"].topics["t"]
    assert stats.handled == 4
    assert stats.success.count == 4
    assert list(stats.failures) == ["KeyError"]
    assert stats.failures["KeyError"].count == 1
    assert stats.recovered == 1
    assert stats.retried == 0


async def test_a_batch_listener_counts_records_and_times_batches():
    got = []

    async def handler(values: list[bytes]) -> None:
        got.append(values)

    series = Series()
    worker = await worker_with_metrics(series, handler=handler, batch=True)
    await worker._dispatch({TP: records(range(7))})
    stats = series.listeners["h"].topics["t"]
    assert stats.handled == 7
    assert stats.success.count == 1
    assert series.listeners["h"].batch_in_flight == 0
