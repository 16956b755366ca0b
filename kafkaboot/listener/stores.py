"""The registry's offset stores: one per database URL, shared by the listeners that name
it, started before the containers and stopped after them."""

from __future__ import annotations

from kafkaboot.errors import ListenerDefinitionError
from kafkaboot.listener.endpoint import ListenerEndpoint
from kafkaboot.listener.settings import ContainerSettings
from kafkaboot.listener.stored import StoredOffsets
from kafkaboot.offset_store.store import OffsetStore

__all__ = ["OffsetStores"]


class OffsetStores:
    """The registry's offset stores, one per database URL (listeners that name the same
    URL share its connections); started before the containers, stopped after them."""

    def __init__(self) -> None:
        self._stores: dict[str, OffsetStore] = {}
        self._started: set[str] = set()

    def for_listener(
        self, endpoint: ListenerEndpoint, settings: ContainerSettings, replies: bool
    ) -> StoredOffsets | None:
        """The store of a listener whose settings name one (``None`` otherwise).

        Raises:
            ListenerDefinitionError: the listener cannot keep its offsets in a store.
        """
        url = settings.offset_store
        if url is None:
            return None
        name = endpoint.listener_id
        if endpoint.partitions:
            raise ListenerDefinitionError(
                f"listener {name}: an offset store needs a group subscription (topics or "
                "topic_pattern), whose assignments it seeks; manually assigned partitions "
                "would start from the committed offsets"
            )
        if replies and not settings.batch:
            raise ListenerDefinitionError(
                f"listener {name}: a record listener with an offset store cannot reply "
                "(send_to): the reply would go after its transaction committed, and a failed "
                "send could not be retried; use a batch listener (its replies go inside the "
                "transaction) or send with the KafkaTemplate in the handler"
            )
        assert settings.group_id is not None  # noqa: S101 - settings.conflict() saw to it
        from kafkaboot.offset_store.sql import SqlOffsetStore, async_url

        key = async_url(url)
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = SqlOffsetStore(key)
        return StoredOffsets(store, settings.group_id, name)

    async def start(self) -> None:
        """Start every store; if one fails, those started are stopped again."""
        try:
            for url, store in self._stores.items():
                if url not in self._started:
                    await store.start()
                    self._started.add(url)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for url in list(self._started):
            self._started.discard(url)
            await self._stores[url].stop()
