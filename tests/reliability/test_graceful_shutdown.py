"""Scenario 2: SIGTERM while a handler is running. A handler that finishes within the
shutdown timeout is waited for and committed, so nothing is handled twice after the
restart; one that runs past it is abandoned uncommitted and redelivered, not lost."""

import asyncio
import signal
import time
from pathlib import Path

import pytest

from kafkaboot import load_settings
from kafkaboot.template import KafkaTemplate
from sample_producer_service.models import Message

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, all_handled, cleanup, service_config
from .conftest import Row
from .ledger import Ledger, Stopwatch, read_journal

KEY = "site-0"


async def send(template: KafkaTemplate, topic: str, ledger: Ledger, sequences, slow=None):
    for sequence in sequences:
        payload = {"sleep": slow[1]} if slow and slow[0] == sequence else {}
        ledger.sent.add((KEY, sequence))
        await template.send_and_wait(
            topic, Message(customer_id=KEY, sequence=sequence, payload=payload), key=KEY
        )
        ledger.acknowledged.add((KEY, sequence))


async def started(path: Path, sequence: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (KEY, sequence) not in {h.id for h in read_journal(path)}:
        assert time.monotonic() < deadline, f"the handler never started {sequence}"
        await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("case", "shutdown_timeout", "handler_seconds"),
    [("within", "10s", 1.0), ("past", "1s", 30.0)],
)
async def test_sigterm_mid_handler(
    kafka_bootstrap, tmp_path, report, case, shutdown_timeout, handler_seconds
):
    topic, ledger, clock = unique("sigterm"), Ledger(), Stopwatch()
    config = service_config(
        tmp_path / "application.yml",
        kafka_bootstrap,
        topic=topic,
        listener={"shutdown-timeout": shutdown_timeout},
    )
    starts = tmp_path / "starts"
    consumer = CentralConsumer(
        kafka_bootstrap,
        topic,
        unique("slow"),
        tmp_path / "journal",
        tmp_path / "consumer.log",
        target="tests.reliability.services.slow_consumer",
        config=config,
        env={"STARTS_JOURNAL": str(starts)},
    )
    settings = load_settings(
        environ={}, overrides={"kafka": {"bootstrap-servers": kafka_bootstrap}}
    )
    try:
        async with KafkaTemplate(settings) as template:
            consumer.start()
            await consumer.ready()
            await send(template, topic, ledger, range(10), slow=(5, handler_seconds))
            await started(starts, 5)
            consumer.process.send_signal(signal.SIGTERM)
            clock.fault()
            stopping = time.monotonic()
            exit_code = await asyncio.to_thread(consumer.process.wait, 60)
            took = time.monotonic() - stopping
            assert exit_code in (0, -signal.SIGTERM), consumer.output()[-3000:]
            first_run = {h.id for h in read_journal(consumer.journal)}
            if case == "within":
                assert (KEY, 5) in first_run, "the running handler was not waited for"
                assert took < 10, f"stop took {took:.1f} s"
            else:
                assert (KEY, 5) not in first_run
                assert took < 8, f"stop took {took:.1f} s past a 1 s shutdown timeout"
            consumer.env["SLEEP_SCALE"] = "0"  # The redelivery is quick.
            consumer.start()
            await send(template, topic, ledger, range(10, 20))
            await all_handled(ledger, consumer.journal)
            clock.recovered()
            consumer.terminate()
    finally:
        cleanup([consumer])
    verdict = ledger.verdict(read_journal(consumer.journal))
    started_twice = sum(1 for h in read_journal(starts) if h.id == (KEY, 5)) > 1
    report.append(
        Row(
            f"2. SIGTERM mid-handler, handler {'within' if case == 'within' else 'past'}"
            " the shutdown timeout",
            f"SIGTERM during a {handler_seconds:g} s handler (timeout {shutdown_timeout})",
            verdict,
            clock.longest,
        )
    )
    verdict.assert_nothing_lost()
    assert verdict.duplicates == 0
    assert verdict.out_of_order == 0
    assert started_twice == (case == "past")
