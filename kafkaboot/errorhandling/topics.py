"""Creating the topics error handling writes to (dead-letter and retry topics) before the
first record goes there, so the broker does not auto-create them with its defaults."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kafkaboot.admin import KafkaAdmin, NewTopic

if TYPE_CHECKING:
    from kafkaboot.template import KafkaTemplate

__all__ = ["TopicCreator"]


class TopicCreator:
    """Creates missing derived topics with their source topic's partition count (so a
    record can keep its partition number); existing topics are left as they are."""

    def __init__(self, template: KafkaTemplate) -> None:
        self.template = template
        self._ensured: set[str] = set()
        self._lock = asyncio.Lock()

    async def ensure_like(self, source: str, names: Sequence[str]) -> None:
        """Make sure ``names`` exist; the first call per name asks the broker.

        Raises:
            KafkaSendError: the source topic's metadata is not available.
            KafkaError: the broker refused to create a topic.
        """
        if self._ensured.issuperset(names):
            return
        async with self._lock:
            missing = [name for name in names if name not in self._ensured]
            if not missing:
                return
            partitions = len(await self.template.partitions_for(source))
            admin = KafkaAdmin(self.template.settings)
            admin.topics = [NewTopic(name, partitions) for name in missing]
            await admin.ensure_topics(grow=False)
            self._ensured.update(missing)
