"""The fan-in drain against a real broker: the central consumer joins its group paused and
handles nothing until every worker is resumed; then nothing is lost or counted twice."""

import pytest

from bench.scenarios import fanin, footprint


@pytest.mark.slow
@pytest.mark.asyncio
async def test_two_workers_drain_only_after_the_resume_and_lose_nothing(kafka_bootstrap):
    total = 32 * fanin.PRODUCERS
    topic = await fanin._fill(kafka_bootstrap, total)
    drained = await fanin._drain(kafka_bootstrap, topic, total, workers=2, work_us=20)
    assert drained["before_resume"] == 0  # Paused until the group had settled.
    assert (drained["lost"], drained["duplicates"]) == (0, 0)
    assert sum(drained["shares"]) == total
    assert all(drained["shares"])  # Both workers had partitions and records.
    assert len(drained["worker_cores"]) == 2
    assert drained["rate"] > 0


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_consumers_footprint_is_read_after_it_drained_everything(kafka_bootstrap):
    rss = await footprint._peak_rss(kafka_bootstrap, 500)
    assert rss["unique"] == 500
    assert rss["peak"] >= rss["at_ready"] > 10
    seconds, cpu = await footprint._start_to_ready(kafka_bootstrap)
    assert 0 < cpu < seconds * 2 < 120
