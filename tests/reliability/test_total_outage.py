"""Scenario 7: every broker down for longer than the delivery timeout, under continuous
production and consumption. Sends fail within their bound (promptly once the template
knows), the central consumer stays up and reports not-ready, and both recover without a
restart; nothing acknowledged is lost."""

import asyncio
import signal
import time

import pytest

from ..integration.kafka_helpers import unique
from .central import CentralConsumer, all_handled, cleanup
from .conftest import Row
from .ledger import Ledger, Stopwatch, read_journal
from .load import Load
from .test_slow_handler import stalled_readiness

DELIVERY_TIMEOUT_S = 8
OUTAGE_S = 12  # Longer than the delivery timeout.


@pytest.mark.slow
@pytest.mark.asyncio
async def test_all_brokers_down_longer_than_the_delivery_timeout(
    disposable_broker, tmp_path, report
):
    cluster = disposable_broker
    bootstrap = cluster.bootstrap_servers
    topic, ledger, clock = unique("outage-events"), Ledger(), Stopwatch()
    consumer = CentralConsumer(
        bootstrap, topic, unique("central"), tmp_path / "journal", tmp_path / "consumer.log"
    )
    load = Load(
        bootstrap,
        topic,
        ledger,
        keys=20,
        rate=200,
        producer={"delivery-timeout": f"{DELIVERY_TIMEOUT_S}s"},
    )
    try:
        consumer.start()
        await consumer.ready()
        pid = consumer.pid
        await load.start()
        await load.acknowledged_more(300, timeout=30)
        await asyncio.to_thread(cluster.kill_node, 1)
        went = time.monotonic()
        await stalled_readiness(consumer.port, timeout=15)
        while time.monotonic() - went < OUTAGE_S:
            assert consumer.process.poll() is None, consumer.output()[-3000:]
            await asyncio.sleep(0.5)
        await asyncio.to_thread(cluster.start_node, 1)
        clock.fault()
        await load.acknowledged_more(1, timeout=60)
        clock.recovered()
        await consumer.ready(timeout=60)
        assert consumer.pid == pid, "the consumer was restarted"
        await load.acknowledged_more(300, timeout=30)
        await load.stop()
        await all_handled(ledger, consumer.journal, timeout=60)
        assert consumer.terminate() in (0, -signal.SIGTERM)
    finally:
        cleanup([consumer])
        await load.template.stop()
    verdict = ledger.verdict(read_journal(consumer.journal))
    failures = ", ".join(f"{n} {kind}" for kind, n in sorted(ledger.failed.items()))
    report.append(
        Row(
            "7. Every broker down longer than the delivery timeout",
            f"broker SIGKILLed for {OUTAGE_S} s (delivery timeout {DELIVERY_TIMEOUT_S} s);"
            f" sends failed: {failures}, the slowest in {load.slowest_failure:.1f} s",
            verdict,
            clock.longest,
        )
    )
    verdict.assert_nothing_lost()
    assert verdict.out_of_order == 0
    assert ledger.failed
    assert load.slowest_failure <= DELIVERY_TIMEOUT_S + 2, "a send outlived its bound"
