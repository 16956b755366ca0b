"""Registering listeners: effective settings, placeholders and definition errors (no broker)."""

import sys
from types import SimpleNamespace

import pytest

from kafkaboot import (
    ConfigurationError,
    ListenerEndpoint,
    ListenerRegistry,
    TopicPartitionOffset,
    kafka_listener,
    load_settings,
)
from kafkaboot.errors import KafkaBootError, ListenerDefinitionError
from kafkaboot.listener.acks import AckMode
from kafkaboot.listener.settings import Ordering


def registry(environ=None, **kafka):
    settings = load_settings(environ={}, overrides={"kafka": kafka} if kafka else None)
    return ListenerRegistry(settings, environ=environ or {})


async def handle(value: str) -> None: ...


def test_options_come_from_configuration_unless_the_listener_sets_them():
    reg = registry(
        consumer={"group-id": "from-config", "max-poll-records": 7},
        listener={"ack-mode": "count", "ack-count": 9, "concurrency": 2, "type": "single"},
    )
    defaults = reg.register(ListenerEndpoint(handler=handle, topics=("a",), id="defaults"))
    own = reg.register(
        ListenerEndpoint(
            handler=handle,
            topics=("a",),
            id="own",
            group_id="mine",
            ack_mode="record",
            concurrency=5,
            properties={"max.poll.records": 3},
        )
    )
    assert (defaults.settings.group_id, own.settings.group_id) == ("from-config", "mine")
    assert (defaults.settings.ack_mode, own.settings.ack_mode) == (AckMode.COUNT, AckMode.RECORD)
    assert (defaults.settings.concurrency, own.settings.concurrency) == (2, 5)
    assert defaults.settings.ack_count == 9
    assert defaults.settings.consumer_kwargs["max_poll_records"] == 7
    assert own.settings.consumer_kwargs["max_poll_records"] == 3
    assert defaults.settings.consumer_kwargs["enable_auto_commit"] is False


def test_placeholders_resolve_from_environment_then_configuration():
    reg = registry(environ={"TOPIC": "env-topic"}, consumer={"group-id": "g"})
    reg.settings = reg.settings.model_copy(update={"app": {"group": "cfg-group"}})
    container = reg.register(
        ListenerEndpoint(handler=handle, topics=("${TOPIC}",), group_id="${app.group}")
    )
    assert container.endpoint.topics == ("env-topic",)
    assert container.settings.group_id == "cfg-group"


def test_unresolved_placeholder_names_the_listener_and_the_fix():
    with pytest.raises(ListenerDefinitionError, match=r"\$\{NOPE\}.*\$\{NOPE:value\}"):
        registry().register(ListenerEndpoint(handler=handle, topics=("${NOPE}",), group_id="g"))


def test_subscription_without_group_id_is_an_error():
    with pytest.raises(ListenerDefinitionError, match=r"kafka\.consumer\.group-id"):
        registry().register(ListenerEndpoint(handler=handle, topics=("a",)))


def test_manual_assignment_needs_no_group():
    container = registry().register(
        ListenerEndpoint(handler=handle, partitions=(TopicPartitionOffset("a", 0),))
    )
    assert not container.settings.commits


def test_duplicate_ids_are_an_error():
    reg = registry(consumer={"group-id": "g"})
    reg.register(ListenerEndpoint(handler=handle, topics=("a",), id="x"))
    with pytest.raises(ListenerDefinitionError, match="'x' is registered twice"):
        reg.register(ListenerEndpoint(handler=handle, topics=("b",), id="x"))


def test_topics_and_partitions_exclude_each_other():
    with pytest.raises(ConfigurationError, match="exclude each other"):
        ListenerEndpoint(handler=handle, topics=("a",), partitions=(TopicPartitionOffset("a", 0),))
    with pytest.raises(ConfigurationError, match="names no topics"):
        ListenerEndpoint(handler=handle)


def test_bad_listener_properties_are_an_error():
    with pytest.raises(ListenerDefinitionError, match=r"lingr\.ms"):
        registry(consumer={"group-id": "g"}).register(
            ListenerEndpoint(handler=handle, topics=("a",), properties={"lingr.ms": 1})
        )


def test_get_unknown_id_lists_the_known_ones():
    reg = registry(consumer={"group-id": "g"})
    reg.register(ListenerEndpoint(handler=handle, topics=("a",), id="known"))
    with pytest.raises(KafkaBootError, match="known ids: known"):
        reg.get("unknown")


@kafka_listener("scanned", group_id="g")
async def module_listener(value: str) -> None: ...


def test_scanning_a_module_finds_its_own_listeners_only():
    containers = registry().scan(sys.modules[__name__])
    assert [c.listener_id for c in containers] == [f"{__name__}.module_listener"]


def test_decorator_returns_the_function_unchanged():
    assert module_listener.__name__ == "module_listener"
    assert callable(module_listener)


def test_ordering_and_max_in_flight_come_from_configuration_unless_the_listener_sets_them():
    reg = registry(
        consumer={"group-id": "g"},
        listener={"ordering": "KEY", "max-in-flight": 64},
        listeners={"tuned": {"ordering": "none", "max-in-flight": 8}},
    )
    defaults = reg.register(ListenerEndpoint(handler=handle, topics=("a",), id="defaults"))
    own = reg.register(
        ListenerEndpoint(
            handler=handle, topics=("a",), id="own", ordering="partition", max_in_flight=3
        )
    )
    tuned = reg.register(
        ListenerEndpoint(handler=handle, topics=("a",), id="tuned", ordering="key")
    )
    assert defaults.settings.ordering is Ordering.KEY
    assert defaults.settings.max_in_flight == 64
    assert (own.settings.ordering, own.settings.max_in_flight) == (Ordering.PARTITION, 3)
    assert (tuned.settings.ordering, tuned.settings.max_in_flight) == (Ordering.NONE, 8)
    assert own.in_flight is None  # Ordering by partition keeps no in-flight count.
    assert defaults.in_flight is not None
    assert defaults.in_flight.limit == 64


def test_ordering_by_key_with_a_batch_listener_is_refused_naming_the_listener():
    reg = registry(consumer={"group-id": "g"})

    async def on_batch(values: list[str]) -> None: ...

    with pytest.raises(ListenerDefinitionError, match="listener keyed-batch: ordering='key'"):
        reg.register(
            ListenerEndpoint(
                handler=on_batch, topics=("a",), id="keyed-batch", batch=True, ordering="key"
            )
        )


def test_ordering_by_key_in_transactions_is_refused_naming_the_listener():
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {"consumer": {"group-id": "g"}, "producer": {"transaction-id-prefix": "tx-"}}
        },
    )
    reg = ListenerRegistry(settings, environ={}, template=SimpleNamespace(transactional=True))
    with pytest.raises(
        ListenerDefinitionError, match="listener keyed: ordering='none' cannot run in transactions"
    ):
        reg.register(ListenerEndpoint(handler=handle, topics=("a",), id="keyed", ordering="none"))


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"ordering": "keys"}, "ordering='keys' is not one of"),
        ({"max_in_flight": 0}, "max_in_flight=0 must be a whole number >= 1"),
    ],
)
def test_a_bad_ordering_option_names_the_listener_and_the_choices(options, problem):
    with pytest.raises(ConfigurationError, match=problem):
        kafka_listener("a", id="bad", **options)(handle)
