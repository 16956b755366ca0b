"""The live line: requests answered, the rate, and what the central consumer has taken in
and committed, read from Kafka itself (the group's committed offsets against the log end
offsets), once a second."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from demo_kit.load import Tally

__all__ = ["ConsumerLag", "LiveLine"]


class ConsumerLag:
    """Records written to ``topic`` and not yet committed by ``group``."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.topic = topic
        self.group = group
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._ends = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        await self._admin.start()
        await self._ends.start()
        [described] = await self._admin.describe_topics([self.topic])
        found = sorted(p["partition"] for p in described["partitions"])
        if not found:
            raise RuntimeError(f"topic {self.topic} has no partitions: {described}")
        self._partitions = [TopicPartition(self.topic, p) for p in found]

    async def stop(self) -> None:
        await self._ends.stop()
        await self._admin.close()

    async def read(self) -> tuple[int, int]:
        """Records in the topic (log end offsets), and of them not yet committed."""
        # Committed first: read after the log ends, a commit in between made the lag negative.
        committed = await self._admin.list_consumer_group_offsets(
            self.group, partitions=self._partitions
        )
        ends = await self._ends.end_offsets(self._partitions)
        written = sum(ends.values())
        done = sum(max(committed[tp].offset, 0) for tp in self._partitions if tp in committed)
        return written, max(written - done, 0)


class LiveLine:
    """One line a second while the load runs, in place on a terminal, else line by line,
    and a last one when it is over."""

    def __init__(self, tally: Tally, lag: ConsumerLag, consumer_port: int) -> None:
        self.tally = tally
        self.lag = lag
        self.terminal = sys.stdout.isatty()
        self._http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{consumer_port}", timeout=5)
        self._last_sent, self._last_at = 0, time.monotonic()

    async def run(self, every: float = 1.0) -> None:
        """Until cancelled."""
        while True:
            await asyncio.sleep(every)
            await self.show(every)

    async def show(self, timeout: float = 1.0) -> None:
        tally, now = self.tally, time.monotonic()
        rate = (tally.sent - self._last_sent) / max(now - self._last_at, 1e-6)
        self._last_sent, self._last_at = tally.sent, now
        received: Any = "?"
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            received = f"{(await self._http.get('/stats')).json()['received']:,}"
        lagging: Any = "?"
        with contextlib.suppress(Exception):  # A slow admin answer only blanks a field.
            lagging = f"{(await asyncio.wait_for(self.lag.read(), timeout))[1]:,}"
        line = (
            f"[demo] {tally.seconds:5.1f}s  sent {tally.sent:,}/{tally.total:,} "
            f"({100 * tally.sent / max(tally.total, 1):.0f}%)  {rate:,.0f} msg/s  "
            f"errors {tally.failed}  consumer stored {received}, lag {lagging}"
        )
        print(f"\r{line}\033[K" if self.terminal else line, end="", flush=True)
        if not self.terminal:
            print()

    async def close(self) -> None:
        if self.terminal:
            print()
        await self._http.aclose()
