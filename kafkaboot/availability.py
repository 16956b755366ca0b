"""Availability: whether any broker answers, known to the template without a round trip
per send.

While no broker answers, the template refuses a send at once (nothing written, safe to
retry) instead of handing it to aiokafka, which would hold it until the delivery timeout
and leave its outcome unknown. What closes and opens that gate comes from off the send
path: aiokafka's own metadata refreshes (it refreshes as soon as a broker connection
breaks), the readiness check, and sends that stay unconfirmed or run into trouble, which
make the template ask the brokers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.client import ConnectionGroup
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from kafkaboot.errors import KafkaSendError

__all__ = ["Availability", "ask_brokers"]

log = logging.getLogger("kafkaboot.template")

FetchMetadata = Callable[[], Awaitable[Any]]
"""Asks every known broker for metadata until one answers; raises if none does."""


async def ask_brokers(client: Any) -> None:
    """Ask every broker aiokafka's ``client`` knows for metadata at once; return when one
    answers.

    Each question goes over a connection of its own (aiokafka's coordination group), not
    the producer's: there it would wait behind produce requests that a broker holds for
    ``acks=all`` (up to the request timeout when too few replicas are in sync), and a broker
    that is busy that way still answers.

    Raises:
        KafkaConnectionError: no broker answered.
    """
    nodes = [broker.nodeId for broker in client.cluster.brokers()]
    questions = [
        asyncio.ensure_future(
            client.send(node, MetadataRequest([]), group=ConnectionGroup.COORDINATION)
        )
        for node in nodes
    ]
    try:
        for answer in asyncio.as_completed(questions):
            with contextlib.suppress(KafkaError, OSError):
                await answer
                return
    finally:
        for question in questions:
            question.cancel()
    raise KafkaConnectionError(f"none of the brokers {nodes} answered a metadata request")


class Availability:
    """The template's view of whether Kafka answers, and the error for a refused send.

    Args:
        timeout: seconds a broker has to answer a metadata request before it counts as
            not answering (``kafka.template.unavailable-timeout``).
        bootstrap_servers: named in every message.
    """

    __slots__ = (
        "_bootstrap_servers",
        "_fetch",
        "_on_refresh",
        "_verdict_asked_at",
        "probing",
        "timeout",
        "unreachable_since",
    )

    def __init__(self, timeout: float, bootstrap_servers: str) -> None:
        self.timeout = timeout
        self._bootstrap_servers = bootstrap_servers
        # Read by every send: while set, sends are refused at once.
        self.unreachable_since: float | None = None
        self.probing: asyncio.Task[None] | None = None
        self._fetch: FetchMetadata | None = None
        self._on_refresh: Callable[[], None] | None = None
        # When the question behind the latest verdict was asked: an answer to an older
        # question (a slow failing probe outlived by a readiness check that got through)
        # must not overturn a newer verdict.
        self._verdict_asked_at = 0.0

    def start(
        self,
        fetch: FetchMetadata,
        cluster: ClusterMetadata | None,
        on_refresh: Callable[[], None] | None = None,
    ) -> None:
        """Watch ``cluster`` (the producer's metadata) and ask through ``fetch``;
        ``on_refresh`` hears of every refresh. The only watcher: a second one would break
        aiokafka's ``request_update`` (it reads ``is_done`` of a concurrent Future, which
        has none, whenever an earlier caller's future is still pending)."""
        self.unreachable_since = None
        self._fetch = fetch
        self._on_refresh = on_refresh
        if cluster is not None:  # None: no metadata to watch (an in-memory Kafka).
            self._watch(cluster)

    async def stop(self) -> None:
        self._fetch = None
        probing, self.probing = self.probing, None
        if probing is not None:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing

    def check(self) -> None:
        """Ask the brokers now, in the background, unless a question is already out."""
        if self._fetch is not None and (self.probing is None or self.probing.done()):
            self.probing = asyncio.create_task(self._probe(), name="kafkaboot:template-probe")

    async def _probe(self) -> None:
        await self.ask(self.timeout)

    async def ask(self, timeout: float) -> bool:
        """Whether a broker answers a metadata request within ``timeout``; the answer
        opens or closes the gate. A timeout shorter than the unavailable timeout (a
        readiness check) that passes is not a verdict: a full question follows."""
        fetch = self._fetch
        if fetch is None:
            return False
        asked = time.monotonic()
        try:
            await asyncio.wait_for(fetch(), timeout)
        except TimeoutError:
            if timeout < self.timeout:
                self.check()
            else:
                self._unanswered(asked)
            return False
        except (KafkaError, OSError):  # aiokafka tried every broker it knows.
            self._unanswered(asked)
            return False
        self._answered(asked)
        return True

    def _newer(self, asked: float) -> bool:
        if asked < self._verdict_asked_at:
            return False
        self._verdict_asked_at = asked
        return True

    def _answered(self, asked: float) -> None:
        if not self._newer(asked):
            return
        if self.unreachable_since is not None:
            log.info("Kafka at %s answers again; sends are accepted", self._bootstrap_servers)
        self.unreachable_since = None

    def _unanswered(self, asked: float) -> None:
        if not self._newer(asked):
            return
        if self.unreachable_since is None:
            self.unreachable_since = time.monotonic()
            log.warning(
                "no broker of %s answers; sends are refused until one does",
                self._bootstrap_servers,
            )

    def _watch(self, cluster: ClusterMetadata) -> None:
        cluster.request_update().add_done_callback(functools.partial(self._refreshed, cluster))

    def _refreshed(self, cluster: ClusterMetadata, outcome: concurrent.futures.Future[Any]) -> None:
        """After each refresh of the producer's metadata (aiokafka settles the future of
        ``request_update`` with the metadata when a broker answered, with None when none
        did), in the event loop's thread."""
        if self._fetch is None:
            return  # Stopped: this producer's metadata no longer matters.
        if self._on_refresh is not None:
            self._on_refresh()
        if outcome.exception() is None and outcome.result() is not None:
            self._answered(time.monotonic())
        elif self.unreachable_since is None:
            # Confirmed by a question of our own before sends are refused. Not while refused
            # already: that question's failed connects make aiokafka refresh again, and the
            # two would chase each other without pause (the sweeper asks once a second).
            self.check()
        self._watch(cluster)

    def refused(self, topic: str, key: Any) -> KafkaSendError:
        """Why a send is not even queued while no broker answers."""
        since = time.monotonic() - (self.unreachable_since or time.monotonic())
        return KafkaSendError(
            f"not sent to topic {topic!r} (key {key!r}): no broker of "
            f"{self._bootstrap_servers} has answered for {since:.0f}s, so nothing was written; "
            "retry later (the template accepts sends as soon as a broker answers)",
            topic=topic,
            key=key,
            retriable=True,
        )
