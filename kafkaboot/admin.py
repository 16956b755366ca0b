"""Topic administration: declared topics are created at startup, idempotently.

Topics come from ``kafka.topics`` in ``application.yml`` and from :class:`NewTopic`
declarations in code. Existing topics are left alone, except that a topic with fewer
partitions than declared gets more (never fewer: Kafka cannot shrink a topic).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from aiokafka.admin import NewTopic as _AdminNewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from kafkaboot import clients
from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.errors import ConfigProblem, ConfigurationError, KafkaBootError

__all__ = ["KafkaAdmin", "NewTopic", "TopicReport"]

log = logging.getLogger("kafkaboot.admin")
_TOPIC_ALREADY_EXISTS = 36
_DESCRIBE_ATTEMPTS = 5


@dataclasses.dataclass(frozen=True, slots=True)
class NewTopic:
    """A topic to create at startup (Spring's ``NewTopic`` / ``TopicBuilder``).

    ``None`` partitions or replication factor take the broker's defaults.
    """

    name: str
    partitions: int | None = None
    replication_factor: int | None = None
    configs: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class TopicReport:
    """What :meth:`KafkaAdmin.ensure_topics` did."""

    created: tuple[str, ...] = ()
    extended: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()


class KafkaAdmin:
    """Creates the declared topics (``kafka.admin.*`` as in Spring Boot: ``auto-create``
    turns it on, ``fail-fast`` makes an unreachable broker stop the startup)."""

    def __init__(
        self, settings: KafkaBootSettings | None = None, topics: Iterable[NewTopic] = ()
    ) -> None:
        self.settings = settings or KafkaBootSettings()
        declared = {
            t.name: NewTopic(t.name, t.partitions, t.replication_factor, dict(t.configs))
            for t in self.settings.kafka.topics
        }
        declared |= {t.name: t for t in topics}  # Code declarations win over YAML ones.
        self.topics: list[NewTopic] = list(declared.values())

    def declare(self, *topics: NewTopic) -> None:
        """Add declarations; a later one for the same name replaces the earlier."""
        declared = {t.name: t for t in self.topics} | {t.name: t for t in topics}
        self.topics = list(declared.values())

    def client(self) -> AIOKafkaAdminClient:
        """A new aiokafka admin client configured from ``kafka.admin.*``."""
        return clients.admin(**self.settings.kafka.admin_kwargs())

    async def start(self) -> TopicReport:
        """Create the declared topics, if ``kafka.admin.auto-create`` is on.

        Raises:
            ConfigurationError: a declaration cannot work (replication factor too large).
            KafkaBootError: Kafka cannot be reached and ``kafka.admin.fail-fast`` is on.
        """
        admin = self.settings.kafka.admin
        if not admin.auto_create or not self.topics:
            return TopicReport()
        try:
            return await self.ensure_topics()
        except ConfigurationError:
            raise
        except (KafkaError, OSError, TimeoutError) as exc:
            message = (
                f"could not create topics {', '.join(t.name for t in self.topics)} at "
                f"{','.join(self.settings.kafka.bootstrap_servers)}: {exc!r}"
            )
            if admin.fail_fast:
                raise KafkaBootError(
                    f"{message}; kafka.admin.fail-fast is true, so startup stops here"
                ) from exc
            log.warning("%s; going on (kafka.admin.fail-fast is false)", message)
            return TopicReport()

    async def stop(self) -> None:
        """Nothing to release: each operation uses its own short-lived client."""

    async def ensure_topics(self, *, grow: bool = True) -> TopicReport:
        """Create missing topics and (``grow``) add partitions where fewer exist than
        declared.

        Raises:
            ConfigurationError: a replication factor exceeds the number of brokers.
            KafkaError: the broker refused an operation.
        """
        timeout = self.settings.kafka.admin.operation_timeout.total_seconds()
        client = self.client()
        try:
            await asyncio.wait_for(client.start(), timeout)
            return await asyncio.wait_for(self._ensure(client, grow), timeout)
        finally:
            await client.close()

    async def _ensure(self, client: AIOKafkaAdminClient, grow_topics: bool) -> TopicReport:
        cluster = await client.describe_cluster()
        brokers = [b["node_id"] for b in cluster["brokers"]]
        defaults = await self._broker_defaults(client, brokers[0])
        problems = [
            ConfigProblem(
                f"topic {t.name!r} asks for replication factor {t.replication_factor} but the "
                f"cluster has {len(brokers)} broker(s)",
                key="kafka.topics[].replication-factor",
                hint="lower the replication factor, or add brokers",
            )
            for t in self.topics
            if (t.replication_factor or 0) > len(brokers)
        ]
        if problems:
            raise ConfigurationError(problems)
        # Asking about missing topics by name could auto-create them with the broker's
        # defaults (auto.create.topics.enable), so list all names first.
        names = set(await client.list_topics())
        present = [t.name for t in self.topics if t.name in names]
        existing = {
            t["topic"]: len(t["partitions"])
            for t in (await client.describe_topics(present) if present else [])
            if t["error_code"] == 0
        }
        missing = [t for t in self.topics if t.name not in existing]
        created = await self._create(client, missing, defaults) if missing else []
        raced = [t.name for t in missing if t.name not in created]
        for attempt in range(_DESCRIBE_ATTEMPTS):
            # Created meanwhile by another instance, or too new to be listed yet: look again
            # (a topic's metadata reaches every broker a moment after its creation).
            for topic in await client.describe_topics(raced) if raced else []:
                if topic["error_code"] == 0 and topic["partitions"]:
                    existing[topic["topic"]] = len(topic["partitions"])
            raced = [name for name in raced if name not in existing]
            if not raced:
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        grow = {
            t.name: NewPartitions(t.partitions)
            for t in self.topics
            if grow_topics
            and t.name in existing
            and t.partitions
            and t.partitions > existing[t.name]
        }
        for name, change in grow.items():
            try:
                await client.create_partitions({name: change})
            except KafkaError as exc:
                # Another instance may have grown it first; what counts is the result.
                [now] = await client.describe_topics([name])
                if len(now["partitions"]) < change.total_count:
                    raise
                log.info("topic %s already grown by someone else (%r)", name, exc)
            else:
                log.info("topic %s: %d -> %d partitions", name, existing[name], change.total_count)
        shrink = [
            t.name
            for t in self.topics
            if grow_topics
            and t.partitions
            and t.name in existing
            and t.partitions < existing[t.name]
        ]
        for name in shrink:
            log.warning(
                "topic %s has %d partitions, more than the %d declared; Kafka cannot remove "
                "partitions, so it is left as it is",
                name,
                existing[name],
                next(t.partitions for t in self.topics if t.name == name),
            )
        unchanged = [t.name for t in self.topics if t.name in existing and t.name not in grow]
        return TopicReport(tuple(created), tuple(grow), tuple(unchanged))

    async def _broker_defaults(self, client: AIOKafkaAdminClient, broker: int) -> dict[str, int]:
        wanted: dict[str, Any] = {"num.partitions": None, "default.replication.factor": None}
        response = await client.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, str(broker), configs=wanted)]
        )
        entries = response[0].to_object()["resources"][0]["config_entries"]
        return {e["config_names"]: int(e["config_value"]) for e in entries}

    async def _create(
        self, client: AIOKafkaAdminClient, topics: list[NewTopic], defaults: Mapping[str, int]
    ) -> list[str]:
        requests = [
            _AdminNewTopic(
                t.name,
                t.partitions or defaults.get("num.partitions", 1),
                t.replication_factor or defaults.get("default.replication.factor", 1),
                topic_configs=dict(t.configs),
            )
            for t in topics
        ]
        response = await client.create_topics(requests)
        created = []
        for name, code, message in response.topic_errors:
            if code == 0:
                created.append(name)
                log.info("created topic %s", name)
            elif code != _TOPIC_ALREADY_EXISTS:  # Another instance was quicker: fine.
                raise for_code(code)(f"could not create topic {name!r}: {message}")
        return created
