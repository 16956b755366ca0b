"""Scenario 4: a handler slower than max.poll.interval.ms. The consumer is put out of its
group meanwhile; readiness reports the stall, and afterwards the consumer rejoins and
goes on — nothing lost, the slow record redelivered at most once."""

import asyncio
import signal
import time

import httpx
import pytest

from kafkaboot import load_settings
from kafkaboot.template import KafkaTemplate

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, all_handled, cleanup, service_config
from .conftest import Row
from .ledger import Ledger, Stopwatch, read_journal
from .test_graceful_shutdown import send, started


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_handler_slower_than_max_poll_interval(kafka_bootstrap, tmp_path, report):
    topic, ledger, clock = unique("stall"), Ledger(), Stopwatch()
    config = service_config(
        tmp_path / "application.yml",
        kafka_bootstrap,
        topic=topic,
        consumer={"max-poll-interval": "3s", "session-timeout": "6s", "heartbeat-interval": "1s"},
    )
    starts = tmp_path / "starts"
    consumer = CentralConsumer(
        kafka_bootstrap,
        topic,
        unique("stall"),
        tmp_path / "journal",
        tmp_path / "consumer.log",
        target="tests.reliability.services.slow_consumer",
        config=config,
        env={"STARTS_JOURNAL": str(starts), "SLOW_ONCE": "1"},
    )
    settings = load_settings(
        environ={}, overrides={"kafka": {"bootstrap-servers": kafka_bootstrap}}
    )
    try:
        async with KafkaTemplate(settings) as template:
            consumer.start()
            await consumer.ready()
            await send(template, topic, ledger, range(10), slow=(3, 8.0))
            await started(starts, 3)
            clock.fault()
            readiness = await stalled_readiness(consumer.port, timeout=8)
            assert readiness["details"]["listeners"]["slow-events"]["recent_poll"] is False
            await all_handled(ledger, consumer.journal, timeout=60)
            await send(template, topic, ledger, range(10, 20))
            await all_handled(ledger, consumer.journal, timeout=60)
            await consumer.ready(timeout=30)
            clock.recovered()
            assert consumer.terminate() in (0, -signal.SIGTERM)
    finally:
        cleanup([consumer])
    verdict = ledger.verdict(read_journal(consumer.journal))
    report.append(
        Row(
            "4. Handler slower than max.poll.interval.ms",
            "an 8 s handler, max.poll.interval 3 s",
            verdict,
            clock.longest,
        )
    )
    verdict.assert_nothing_lost()
    assert verdict.out_of_order == 0
    # The group took the partition away during the slow record: it may be handled again
    # (its commit was refused), and nothing else may be.
    handled_twice = {h.id for h in read_journal(consumer.journal)}
    assert verdict.duplicates <= 1, handled_twice
    assert "Traceback" not in consumer.output()


async def stalled_readiness(port: int, timeout: float) -> dict:
    """The readiness answer once it reports the stall (503)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=3) as http:
        while True:
            answer = await http.get("/actuator/health/readiness")
            if answer.status_code == 503:
                return answer.json()
            assert time.monotonic() < deadline, f"readiness never reported the stall: {answer.text}"
            await asyncio.sleep(0.2)
