"""Creating the topics error handling writes to (dead-letter and retry topics) before the
first record goes there, so the broker does not auto-create them with its defaults."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kafkaboot.admin import KafkaAdmin, NewTopic

if TYPE_CHECKING:
    from kafkaboot.template import KafkaTemplate

__all__ = ["TopicCreator"]

log = logging.getLogger("kafkaboot.admin")


class TopicCreator:
    """Creates missing derived topics with their source topic's partition count (so a
    record can keep its partition number); existing topics are left as they are."""

    def __init__(self, template: KafkaTemplate) -> None:
        self.template = template
        self._ensured: set[str] = set()
        self._lock = asyncio.Lock()

    async def ensure_like(self, source: str, names: Sequence[str]) -> None:
        """Make sure ``names`` exist; the first call per name asks the broker. A failure
        is logged, not raised: the topics may exist under ACLs that hide them, and a send
        to a topic that really is missing fails on its own, with its own error."""
        if self._ensured.issuperset(names):
            return
        async with self._lock:
            missing = [name for name in names if name not in self._ensured]
            if not missing:
                return
            try:
                await self._create(source, missing)
            except Exception as exc:
                log.warning(
                    "could not check or create topic(s) %s (like %s): %r; assuming they exist",
                    ", ".join(missing),
                    source,
                    exc,
                )
            self._ensured.update(missing)

    async def _create(self, source: str, names: list[str]) -> None:
        admin = KafkaAdmin(self.template.settings)
        client = admin.client()
        timeout = self.template.settings.kafka.admin.operation_timeout.total_seconds()
        await asyncio.wait_for(client.start(), timeout)
        try:
            existing = set(await asyncio.wait_for(client.list_topics(), timeout))
        finally:
            await client.close()
        missing = [name for name in names if name not in existing]
        if not missing:
            return
        partitions = len(await self.template.partitions_for(source))
        admin.topics = [NewTopic(name, partitions) for name in missing]
        await admin.ensure_topics(grow=False)
