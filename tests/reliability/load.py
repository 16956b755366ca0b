"""Continuous production for the scenarios: many keys (customer sites), each sending its
messages one after another with a sequence number, through kafkaboot's KafkaTemplate with
acks=all, as the sample producer service does. Every outcome goes into the Ledger."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from kafkaboot import load_settings
from kafkaboot.template import KafkaTemplate
from sample_producer_service.models import Message

from .ledger import Ledger


class Load:
    """``keys`` lanes sending to ``topic`` at about ``rate`` messages per second in all.

    A lane waits for each send's outcome before the next (so per-key order is the order
    of the sequence numbers), and after a failed send pauses briefly and goes on with the
    next sequence number: a producer told "not written" does not resend here, so any gap
    in a key's sequence is a failed send, never a loss."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        ledger: Ledger,
        *,
        keys: int = 20,
        rate: float = 200.0,
        producer: Mapping[str, Any] | None = None,
        prefix: str = "site",
    ) -> None:
        settings = load_settings(
            environ={},
            overrides={
                "kafka": {
                    "bootstrap-servers": bootstrap,
                    "producer": {"acks": "all", "linger": "5ms", **(producer or {})},
                }
            },
        )
        self.template = KafkaTemplate(settings)
        self.topic = topic
        self.ledger = ledger
        self.keys = [f"{prefix}-{index}" for index in range(keys)]
        self._interval = keys / rate
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.acknowledged_at = time.monotonic()
        """When the latest acknowledgment came: a scenario's recovery for producers."""
        self.slowest_failure = 0.0
        """The longest a failed send took to fail, in seconds."""

    async def start(self, partitions: int = 15) -> None:
        """Start sending to a topic that must exist already with ``partitions`` (the
        consumer declares it): a send to a missing topic would have the broker create it
        with one partition, and every key would land on it."""
        await self.template.start()
        found = await self.template.partitions_for(self.topic)
        assert len(found) == partitions, f"{self.topic} has {len(found)} partitions"
        self._tasks = [asyncio.create_task(self._lane(key)) for key in self.keys]

    async def acknowledged_more(self, count: int, timeout: float) -> None:
        """Wait until ``count`` more messages than now are acknowledged."""
        target = len(self.ledger.acknowledged) + count
        deadline = time.monotonic() + timeout
        while len(self.ledger.acknowledged) < target:
            assert time.monotonic() < deadline, (
                f"producers got {len(self.ledger.acknowledged)} of {target} acknowledgments"
                f" in {timeout} s; failures so far: {dict(self.ledger.failed)}"
            )
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Stop sending; every send under way gets its outcome first."""
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks)
        await self.template.stop()

    async def _lane(self, key: str) -> None:
        sequence = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            message = Message(customer_id=key, sequence=sequence)
            self.ledger.sent.add((key, sequence))
            sending = time.monotonic()
            try:
                await self.template.send_and_wait(self.topic, message, key=key)
            except Exception as exc:  # Every failure is counted, by type.
                self.ledger.failed[type(exc).__name__] += 1
                self.slowest_failure = max(self.slowest_failure, time.monotonic() - sending)
                await asyncio.sleep(0.2)
            else:
                self.ledger.acknowledged.add((key, sequence))
                self.acknowledged_at = time.monotonic()
            sequence += 1
            next_at += self._interval
            delay = next_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
            else:
                next_at = time.monotonic()
