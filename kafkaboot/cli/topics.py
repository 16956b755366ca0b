"""``kafkaboot topics list|describe|create|delete``: the topics of the cluster that the
service's configuration names, seen and changed with the service's own client settings
(security included), so no Kafka distribution is needed to operate it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin import NewTopic as _AdminNewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, for_code

from kafkaboot.cli.cluster import (
    EXIT_REFUSED,
    RefusedError,
    add_cluster_options,
    add_format_option,
    cluster_settings,
    consumer_kwargs,
    positive_int,
    print_json,
    print_table,
    started_admin,
    started_consumer,
)
from kafkaboot.config import KafkaBootSettings
from kafkaboot.errors import KafkaBootError

__all__ = ["add_topic_commands"]

_T = TypeVar("_T")

_UNKNOWN_TOPIC, _TOPIC_DELETION_DISABLED = 3, 73
_TOPIC_CONFIG_SOURCE = 1
"""DescribeConfigs v1+ ``config_source`` of a value set on the topic itself
(DYNAMIC_TOPIC_CONFIG); every other source is a broker's default, static or dynamic."""
_SETTLE_POLL_S = 0.1


def _bootstrap(settings: KafkaBootSettings) -> str:
    return ",".join(settings.kafka.bootstrap_servers)


def _kafka_error(code: int) -> str:
    # aiokafka knows only some of Kafka's error codes by name: keep the number too.
    return f"{for_code(code).__name__} (Kafka error code {code})"


def _run(settings: KafkaBootSettings, operation: Coroutine[Any, Any, _T]) -> _T:
    """Run one command's coroutine; a refusal from Kafka becomes a KafkaBootError."""
    try:
        return asyncio.run(operation)
    except (KafkaError, TimeoutError) as exc:
        raise KafkaBootError(
            f"Kafka at {_bootstrap(settings)} failed the request: {exc!r}"
        ) from exc


def _topic_json(topic: dict[str, Any]) -> dict[str, Any]:
    """A metadata entry of ``describe_topics`` as this command group shows it. A topic is
    internal when the broker says so, or when its name starts with ``__``, as Kafka's own
    topics' names do (``__consumer_offsets``, ``__transaction_state``, and
    ``__remote_log_metadata``, which brokers do not flag)."""
    partitions = [
        {
            "partition": p["partition"],
            "leader": p["leader"] if p["leader"] >= 0 else None,
            "replicas": list(p["replicas"]),
            "isr": list(p["isr"]),
            "offline_replicas": list(p.get("offline_replicas") or ()),
        }
        for p in sorted(topic["partitions"], key=lambda p: int(p["partition"]))
    ]
    return {
        "topic": topic["topic"],
        "internal": bool(topic.get("is_internal")) or _kafkas_own_name(topic["topic"]),
        "partitions": partitions,
        "replication_factor": max((len(p["replicas"]) for p in partitions), default=0),
    }


def _kafkas_own_name(name: str) -> bool:
    return name.startswith("__")


def _internal_refusal(name: str) -> RefusedError:
    return RefusedError(
        f"{name} is one of Kafka's internal topics (its own bookkeeping: committed offsets, "
        "transactions...); deleting it loses that state for the whole cluster, so this "
        "command never does, even with --yes"
    )


async def _all_topics(admin: AIOKafkaAdminClient) -> dict[str, dict[str, Any]]:
    # Always all topics, never a list of names: a metadata request that names a topic
    # creates it on a broker with auto.create.topics.enable (the default).
    return {
        t["topic"]: _topic_json(t) for t in await admin.describe_topics() if t["error_code"] == 0
    }


async def _existing_topic(
    admin: AIOKafkaAdminClient, settings: KafkaBootSettings, name: str
) -> dict[str, Any]:
    """Raises: KafkaBootError: no topic ``name``."""
    topic = (await _all_topics(admin)).get(name)
    if topic is None:
        raise KafkaBootError(
            f"topic {name!r} does not exist at {_bootstrap(settings)}; `kafkaboot topics list` "
            f"shows the topics there, `kafkaboot topics create {name}` creates it"
        )
    return topic


async def _settled(admin: AIOKafkaAdminClient, name: str, *, present: bool, timeout: float) -> bool:
    """Whether the metadata shows ``name`` created (``present``) or deleted within
    ``timeout``: the brokers learn of it a moment after the controller answered, and a
    command that returns before then makes the next command in a script fail."""
    deadline = time.monotonic() + timeout
    while True:
        topic = (await _all_topics(admin)).get(name)
        if (topic is not None and bool(topic["partitions"])) == present:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(_SETTLE_POLL_S)


async def _list(settings: KafkaBootSettings, internal: bool) -> list[dict[str, Any]]:
    async with started_admin(settings) as admin:
        topics = await _all_topics(admin)
    return [
        {key: topic[key] for key in ("topic", "internal", "replication_factor")}
        | {"partitions": len(topic["partitions"])}
        for _, topic in sorted(topics.items())
        if internal or not topic["internal"]
    ]


def _list_command(args: argparse.Namespace) -> int:
    settings = cluster_settings(args)
    topics = _run(settings, _list(settings, args.internal))
    if args.format == "json":
        print_json({"bootstrap_servers": _bootstrap(settings), "topics": topics})
    else:
        columns = ["topic", "partitions", "replication_factor"]
        print_table(topics, [*columns, "internal"] if args.internal else columns)
    return 0


def _set_on_topic(entry: dict[str, Any]) -> bool:
    # DescribeConfigs v0 says is_default; v1+ (what brokers since 1.1 answer) says the source;
    # the in-memory Kafka says neither and lists only the configs given at creation.
    if "config_source" in entry:
        return bool(entry["config_source"] == _TOPIC_CONFIG_SOURCE)
    return not entry.get("is_default", False)


async def _describe(settings: KafkaBootSettings, name: str) -> dict[str, Any]:
    async with started_admin(settings) as admin:
        topic = await _existing_topic(admin, settings, name)
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    [resource] = response.to_object()["resources"]
    if resource["error_code"]:  # E.g. deleted since the metadata was read.
        error = resource["error_message"] or _kafka_error(resource["error_code"])
        raise KafkaBootError(f"cannot read the configs of topic {name!r}: {error}")
    topic["configs"] = {
        entry["config_names"]: None if entry.get("is_sensitive") else entry["config_value"]
        for entry in sorted(resource["config_entries"], key=lambda e: str(e["config_names"]))
        if _set_on_topic(entry)
    }
    return topic


def _describe_command(args: argparse.Namespace) -> int:
    settings = cluster_settings(args)
    topic = _run(settings, _describe(settings, args.name))
    if args.format == "json":
        print_json(topic)
        return 0
    internal = " (internal)" if topic["internal"] else ""
    print(f"topic:              {topic['topic']}{internal}")
    print(f"partitions:         {len(topic['partitions'])}")
    print(f"replication factor: {topic['replication_factor']}")
    if topic["configs"]:
        print("configs set on the topic (all others are the broker's defaults):")
        for key, value in topic["configs"].items():
            print(f"  {key}={'(sensitive)' if value is None else value}")
    else:
        print("configs: the broker's defaults (none set on the topic)")
    print()
    columns = ["partition", "leader", "replicas", "isr"]
    if any(p["offline_replicas"] for p in topic["partitions"]):
        columns.append("offline_replicas")
    print_table(topic["partitions"], columns)
    return 0


def _config_pair(text: str) -> tuple[str, str]:
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE, e.g. retention.ms=3600000")
    return key, value


async def _broker_defaults(admin: AIOKafkaAdminClient, broker: int) -> dict[str, int]:
    """``num.partitions`` and ``default.replication.factor`` of ``broker``, which a new
    topic gets when the command does not say (as kafkaboot.admin does for declared topics)."""
    wanted: dict[str, Any] = {"num.partitions": None, "default.replication.factor": None}
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.BROKER, str(broker), configs=wanted)]
    )
    entries = response.to_object()["resources"][0]["config_entries"]
    return {e["config_names"]: int(e["config_value"]) for e in entries}


async def _create(
    settings: KafkaBootSettings,
    name: str,
    given_partitions: int | None,
    given_replicas: int | None,
    configs: dict[str, str],
) -> tuple[int, int, bool]:
    """The partitions and replication factor it was created with, and whether the brokers
    list it already.

    Raises:
        KafkaBootError: it exists, there are too few brokers, or the broker refused it.
    """
    where = _bootstrap(settings)
    async with started_admin(settings) as admin:
        existing = (await _all_topics(admin)).get(name)
        if existing is not None:
            raise KafkaBootError(
                f"topic {name!r} already exists at {where} ({len(existing['partitions'])} "
                f"partition(s)); `kafkaboot topics describe {name}` shows it, "
                f"`kafkaboot topics delete {name}` deletes it"
            )
        brokers = [b["node_id"] for b in (await admin.describe_cluster())["brokers"]]
        defaults = await _broker_defaults(admin, brokers[0])
        partitions = given_partitions or defaults.get("num.partitions", 1)
        replicas = given_replicas or defaults.get("default.replication.factor", 1)
        if replicas > len(brokers):
            source = "" if given_replicas else " (the broker's default.replication.factor)"
            raise KafkaBootError(
                f"replication factor {replicas}{source} is more than the {len(brokers)} "
                f"broker(s) at {where}; give --replication-factor {len(brokers)} or less"
            )
        request = _AdminNewTopic(name, partitions, replicas, topic_configs=configs)
        response = await admin.create_topics([request])
        [(_, code, message)] = response.topic_errors
        if code:  # The broker's message names the problem: a bad config, a race...
            error = message or _kafka_error(code)
            raise KafkaBootError(f"could not create topic {name!r} at {where}: {error}")
        timeout = settings.kafka.admin.operation_timeout.total_seconds()
        visible = await _settled(admin, name, present=True, timeout=timeout)
    return partitions, replicas, visible


def _create_command(args: argparse.Namespace) -> int:
    settings = cluster_settings(args)
    configs = dict(args.topic_configs or ())
    given = {"partitions": args.partitions, "replication factor": args.replication_factor}
    partitions, replicas, visible = _run(
        settings, _create(settings, args.name, args.partitions, args.replication_factor, configs)
    )
    defaulted = " and ".join(flag for flag, value in given.items() if value is None)
    print(
        f"created topic {args.name}: {partitions} partition(s), replication factor {replicas}"
        + (f" ({defaulted}: the broker's default)" if defaulted else "")
    )
    for key, value in configs.items():
        print(f"  {key}={value}")
    if not visible:
        print(
            "note: the brokers do not list it yet; it may take a moment to be usable",
            file=sys.stderr,
        )
    return 0


async def _delete_preview(settings: KafkaBootSettings, name: str) -> str:
    """What deleting ``name`` would remove: its partitions, and its records as end minus
    beginning offsets (transaction markers and compacted-away offsets count too).

    Raises:
        RefusedError: ``name`` is one of Kafka's internal topics.
        KafkaBootError: no topic ``name``.
    """
    if _kafkas_own_name(name):  # Refused before anything is asked of the cluster.
        raise _internal_refusal(name)
    async with started_admin(settings) as admin:
        topic = await _existing_topic(admin, settings, name)
    if topic["internal"]:
        raise _internal_refusal(name)
    partitions = [TopicPartition(name, p["partition"]) for p in topic["partitions"]]
    kwargs = consumer_kwargs(settings, "kafkaboot-topics")
    kwargs.pop("isolation_level", None)  # The high watermark: every record counts.
    async with started_consumer(settings, **kwargs) as consumer:
        beginnings = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
    records = sum(ends[tp] - beginnings[tp] for tp in partitions)
    return f"topic {name}: {len(partitions)} partition(s), {records} record(s)"


async def _delete(settings: KafkaBootSettings, name: str) -> bool:
    """Delete ``name``; whether the brokers stopped listing it within the operation timeout."""
    where = _bootstrap(settings)
    async with started_admin(settings) as admin:
        response = await admin.delete_topics([name])
        [(_, code)] = response.topic_error_codes
        if code == _UNKNOWN_TOPIC:
            raise KafkaBootError(f"topic {name!r} no longer exists at {where}: deleted meanwhile")
        if code == _TOPIC_DELETION_DISABLED:
            raise KafkaBootError(
                f"the brokers at {where} do not delete topics: delete.topic.enable is false"
            )
        if code:
            raise KafkaBootError(
                f"could not delete topic {name!r} at {where}: {_kafka_error(code)}"
            )
        timeout = settings.kafka.admin.operation_timeout.total_seconds()
        return await _settled(admin, name, present=False, timeout=timeout)


def _delete_command(args: argparse.Namespace) -> int:
    settings = cluster_settings(args)
    what = _run(settings, _delete_preview(settings, args.name))
    if not args.yes:
        print(f"would delete {what}")
        if not sys.stdin.isatty():
            print(
                f"refused: topic {args.name} not deleted; stdin is not a terminal, so nobody "
                "can confirm: add --yes to delete it",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        try:
            answer = input(f"delete {args.name} and all its records? it cannot be undone [y/N] ")
        except EOFError:  # Ctrl-D: no.
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            print(f"topic {args.name} not deleted", file=sys.stderr)
            return EXIT_REFUSED
    gone = _run(settings, _delete(settings, args.name))
    print(f"deleted {what}")
    if not gone:
        print(
            "note: the brokers still list it; deletion finishes in the background",
            file=sys.stderr,
        )
    return 0


def add_topic_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``topics list|describe|create|delete`` to the ``kafkaboot`` subcommands."""
    topics = commands.add_parser("topics", help="list, describe, create and delete topics")
    actions = topics.add_subparsers(dest="action", required=True)

    listing = actions.add_parser("list", help="topics, their partitions and replication")
    listing.add_argument(
        "--internal", action="store_true", help="also Kafka's own topics (__consumer_offsets...)"
    )
    listing.set_defaults(handler=_list_command)

    describe = actions.add_parser("describe", help="partitions, replicas and configs set")
    describe.set_defaults(handler=_describe_command)

    create = actions.add_parser("create", help="create a topic; exit 1 if it exists")
    create.add_argument(
        "--partitions", type=positive_int, help="default: the broker's num.partitions"
    )
    create.add_argument(
        "--replication-factor", type=positive_int, help="default: default.replication.factor"
    )
    create.add_argument(
        "--topic-config",
        dest="topic_configs",
        metavar="KEY=VALUE",
        type=_config_pair,
        action="append",
        help="a topic config, e.g. retention.ms=3600000 (repeatable; --config is the YAML file)",
    )
    create.set_defaults(handler=_create_command)

    delete = actions.add_parser(
        "delete",
        help="delete a topic; asks, or needs --yes; never one of Kafka's internal topics",
    )
    delete.add_argument("--yes", action="store_true", help="delete without asking")
    delete.set_defaults(handler=_delete_command)

    for sub in (describe, create, delete):
        sub.add_argument("name", help="the topic")
    for sub in (listing, describe):
        add_format_option(sub)
    for sub in (listing, describe, create, delete):
        add_cluster_options(sub)
