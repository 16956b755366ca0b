"""An aiokafka admin client whose cluster is an in-memory Kafka: one broker (id 0) that
leads every partition, topics created and grown with Kafka's errors, consumer groups and
their committed offsets described in aiokafka's shapes."""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    InvalidPartitionsError,
    KafkaConnectionError,
    UnknownTopicOrPartitionError,
)
from aiokafka.structs import OffsetAndMetadata

from kafkaboot.inmemory import InMemoryClient
from kafkaboot.testing.memory.cluster import InMemoryKafka, connect
from kafkaboot.testing.memory.errors import NotSupportedInMemory
from kafkaboot.testing.memory.records import TopicExistsError, UnknownTopicError

__all__ = ["MemoryAdmin"]

_NONE, _UNKNOWN_TOPIC, _TOPIC_EXISTS, _BAD_PARTITIONS, _BAD_REPLICATION = 0, 3, 36, 37, 38
_BROKER = 0


class _Response:
    """A protocol response as aiokafka returns it: attributes, and ``to_object()``."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def to_object(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MemoryAdmin(InMemoryClient, AIOKafkaAdminClient):  # type: ignore[misc] # aiokafka is untyped
    """``AIOKafkaAdminClient(bootstrap_servers="memory://<name>", ...)``."""

    def __init__(self, *, bootstrap_servers: str, **ignored: Any) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._cluster: InMemoryKafka | None = None

    async def start(self) -> None:
        self._cluster = connect(self._bootstrap_servers)

    async def close(self) -> None:
        self._cluster = None

    def _running(self) -> InMemoryKafka:
        if self._cluster is None or self._cluster.closed:
            raise KafkaConnectionError("the admin client is not started; await start() first")
        return self._cluster

    # -- the cluster ----------------------------------------------------------------------

    async def describe_cluster(self) -> dict[str, Any]:
        cluster = self._running()
        broker = {"node_id": _BROKER, "host": "memory", "port": 0, "rack": None}
        return {"cluster_id": cluster.name, "controller_id": _BROKER, "brokers": [broker]}

    async def describe_configs(
        self, config_resources: list[ConfigResource], include_synonyms: bool = False
    ) -> list[Any]:
        cluster = self._running()
        resources = []
        for resource in config_resources:
            if resource.resource_type == ConfigResourceType.BROKER:
                known = {
                    "num.partitions": str(cluster.default_partitions),
                    "default.replication.factor": "1",
                    "auto.create.topics.enable": str(cluster.auto_create_topics).lower(),
                }
            else:
                known = cluster.topic_configs(resource.name)
            wanted = resource.configs or known
            resources.append(
                {
                    "error_code": _NONE,
                    "error_message": None,
                    "resource_type": int(resource.resource_type),
                    "resource_name": resource.name,
                    "config_entries": [
                        {"config_names": name, "config_value": known[name]}
                        for name in wanted
                        if name in known
                    ],
                }
            )
        return [_Response(throttle_time_ms=0, resources=resources)]

    async def alter_configs(self, config_resources: list[ConfigResource]) -> list[Any]:
        raise NotSupportedInMemory("altering configs")

    async def find_coordinator(self, group_id: str, coordinator_type: int = 0) -> int:
        self._running()
        return _BROKER

    # -- topics ---------------------------------------------------------------------------

    async def list_topics(self) -> list[str]:
        return sorted(self._running().topics())

    async def describe_topics(self, topics: list[str] | None = None) -> list[Any]:
        cluster = self._running()
        described = []
        for name in topics if topics is not None else sorted(cluster.topics()):
            if name not in cluster.topics():
                described.append(
                    {
                        "error_code": _UNKNOWN_TOPIC,
                        "topic": name,
                        "is_internal": False,
                        "partitions": [],
                    }
                )
                continue
            partitions = [
                {
                    "error_code": _NONE,
                    "partition": p,
                    "leader": _BROKER,
                    "replicas": [_BROKER],
                    "isr": [_BROKER],
                    "offline_replicas": [],
                }
                for p in range(cluster.partitions(name))
            ]
            described.append(
                {"error_code": _NONE, "topic": name, "is_internal": False, "partitions": partitions}
            )
        return described

    async def create_topics(
        self, new_topics: list[Any], timeout_ms: int | None = None, validate_only: bool = False
    ) -> Any:
        cluster = self._running()
        errors: list[tuple[str, int, str | None]] = []
        for topic in new_topics:
            partitions = (
                topic.num_partitions if topic.num_partitions > 0 else cluster.default_partitions
            )
            if topic.replication_factor > 1:
                errors.append(
                    (
                        topic.name,
                        _BAD_REPLICATION,
                        f"Replication factor: {topic.replication_factor} larger than "
                        "available brokers: 1.",
                    )
                )
                continue
            if validate_only:
                code = _TOPIC_EXISTS if topic.name in cluster.topics() else _NONE
                errors.append((topic.name, code, None))
                continue
            try:
                cluster.create_topic(topic.name, partitions, dict(topic.topic_configs or {}))
            except TopicExistsError as exc:
                errors.append((topic.name, _TOPIC_EXISTS, str(exc)))
            else:
                errors.append((topic.name, _NONE, None))
        return _Response(throttle_time_ms=0, topic_errors=errors)

    async def create_partitions(
        self,
        topic_partitions: dict[str, Any],
        timeout_ms: int | None = None,
        validate_only: bool = False,
    ) -> Any:
        cluster = self._running()
        results = []
        for name, change in topic_partitions.items():
            try:
                if not validate_only:
                    cluster.add_partitions(name, change.total_count)
            except UnknownTopicError as exc:
                raise UnknownTopicOrPartitionError(str(exc)) from exc
            except ValueError as exc:
                raise InvalidPartitionsError(str(exc)) from exc
            results.append((name, _NONE, None))
        return _Response(throttle_time_ms=0, topic_errors=results)

    async def delete_topics(self, topics: list[str], timeout_ms: int | None = None) -> Any:
        raise NotSupportedInMemory("deleting topics")

    async def delete_records(
        self, records_to_delete: dict[Any, Any], timeout_ms: int | None = None
    ) -> Any:
        raise NotSupportedInMemory("deleting records")

    # -- consumer groups ------------------------------------------------------------------

    async def list_consumer_groups(
        self, broker_ids: list[int] | None = None
    ) -> list[tuple[Any, ...]]:
        return [(group, "consumer") for group in self._running().groups()]

    async def describe_consumer_groups(
        self,
        group_ids: list[str],
        group_coordinator_id: int | None = None,
        include_authorized_operations: bool = False,
    ) -> list[Any]:
        cluster = self._running()
        groups = []
        for group_id in group_ids:
            group = cluster.group(group_id)
            members = [
                {
                    "member_id": member,
                    "client_id": member.rsplit("-", 1)[0],
                    "client_host": "memory",
                    "member_metadata": b"",
                    "member_assignment": b"",
                }
                for member in group.members
            ]
            groups.append(
                {
                    "error_code": _NONE,
                    "group": group_id,
                    "state": group.state,
                    "protocol_type": "consumer",
                    "protocol": "roundrobin" if members else "",
                    "members": members,
                    "authorized_operations": None,
                }
            )
        return [_Response(throttle_time_ms=0, groups=groups)]

    async def list_consumer_group_offsets(
        self,
        group_id: str,
        group_coordinator_id: int | None = None,
        partitions: list[TopicPartition] | None = None,
    ) -> dict[TopicPartition, OffsetAndMetadata]:
        committed = self._running().committed(group_id)
        if partitions is not None:
            committed = {tp: o for tp, o in committed.items() if tp in set(partitions)}
        return {tp: OffsetAndMetadata(offset, "") for tp, offset in committed.items()}
