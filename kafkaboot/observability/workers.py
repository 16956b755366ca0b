"""One scrape for all the processes of ``kafkaboot run --workers N``.

The workers share the HTTP port, so a scrape lands on any one of them. Each worker also
answers on a Unix socket in a directory the supervisor made (``KAFKABOOT_WORKERS_DIR``)
with its own exposition; the worker that takes the scrape asks its siblings, adds a
``worker`` label to every sample (its index), and merges the families. Unlike
prometheus-client's multiprocess mode, this keeps what is computed at scrape time (lag,
container states) and forgets a partition the moment its worker no longer has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector, CollectorRegistry

from kafkaboot.observability import WORKERS_DIR_ENV
from kafkaboot.transaction import WORKER_INDEX_ENV

__all__ = ["WORKERS_DIR_ENV", "WorkerExposition", "merge"]

log = logging.getLogger("kafkaboot.observability")
_ASK_TIMEOUT_S = 3.0


class WorkerExposition:
    """A worker's socket for its siblings, and the merged scrape.

    Args:
        directory: the supervisor's directory of sockets.
        index: this worker's index (its ``worker`` label).
        own: this worker's exposition (text format).
    """

    def __init__(self, directory: Path, index: str, own: Callable[[], bytes]) -> None:
        self.directory = directory
        self.index = index
        self._own = own
        self._server: asyncio.AbstractServer | None = None

    @property
    def path(self) -> Path:
        return self.directory / f"worker-{self.index}.sock"

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # Left by a worker of this index that was killed.
        self._server = await asyncio.start_unix_server(self._answer, path=str(self.path))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self._own())
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def exposition(self) -> bytes:
        """Every worker's families, each sample labelled with its worker; a sibling that
        does not answer in time is left out (and logged)."""
        siblings = sorted(p for p in self.directory.glob("worker-*.sock") if p != self.path)
        answers = await asyncio.gather(*(_ask(p) for p in siblings))
        texts = {self.index: self._own().decode()}
        for path, answer in zip(siblings, answers, strict=True):
            if answer is not None:
                texts[path.stem.removeprefix("worker-")] = answer
        return merge(texts)


async def _ask(path: Path) -> str | None:
    async def read() -> bytes:
        reader, writer = await asyncio.open_unix_connection(str(path))
        try:
            return await reader.read()
        finally:
            writer.close()

    try:
        return (await _within(read(), _ASK_TIMEOUT_S)).decode()
    except (OSError, TimeoutError) as exc:
        log.warning("metrics of worker %s not available: %r", path.stem, exc)
        return None


async def _within(awaitable: Awaitable[bytes], seconds: float) -> bytes:
    async with asyncio.timeout(seconds):
        return await awaitable


class _Merged(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merge(texts: dict[str, str]) -> bytes:
    """Expositions by worker index, as one: a family per name, samples labelled ``worker``."""
    families: dict[str, Metric] = {}
    for worker, text in texts.items():
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            merged.samples.extend(
                sample._replace(labels={**sample.labels, "worker": worker})
                for sample in family.samples
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(list(families.values())))
    return generate_latest(registry)


def worker_exposition(own: Callable[[], bytes]) -> WorkerExposition | None:
    """This process's part in a ``--workers`` scrape (``None``: not a worker)."""
    directory = os.environ.get(WORKERS_DIR_ENV)
    index = os.environ.get(WORKER_INDEX_ENV)
    if not directory or index is None:
        return None
    return WorkerExposition(Path(directory), index, own)
