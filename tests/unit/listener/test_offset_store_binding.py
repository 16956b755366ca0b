"""Registering listeners with an offset store: where the store comes from, and the
combinations that cannot work, refused with the fix (no broker, no database needed)."""

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from kafkaboot import Acknowledgment, ListenerRegistry, load_settings
from kafkaboot.errors import ListenerDefinitionError

URL = "sqlite+aiosqlite:///central.db"


def _registry(environ=None, **kafka):
    kafka["bootstrap-servers"] = "127.0.0.1:9"
    settings = load_settings(environ={}, overrides={"kafka": kafka})
    return ListenerRegistry(settings, environ=environ or {})


def test_the_store_comes_from_the_listeners_configuration():
    registry = _registry(listeners={"events": {"offset-store": {"url": URL}}})

    @registry.listener("events", id="events", group_id="central")
    async def on_event(value: str, session: AsyncSession) -> None: ...

    stored = registry.get("events").offset_store
    assert stored is not None
    assert stored.group_id == "central"
    assert stored.store.url == URL


def test_the_decorators_store_url_takes_placeholders():
    registry = _registry(environ={"DATABASE_URL": "postgresql://u@db/central"})

    @registry.listener("events", id="events", group_id="g", offset_store="${DATABASE_URL}")
    async def on_event(value: str, session: AsyncSession) -> None: ...

    assert registry.get("events").offset_store.store.url == "postgresql+asyncpg://u@db/central"


def test_listeners_naming_one_url_share_its_store():
    registry = _registry()

    @registry.listener("a", id="a", group_id="g", offset_store=URL)
    async def on_a(value: str) -> None: ...

    @registry.listener("b", id="b", group_id="g", offset_store=URL)
    async def on_b(value: str) -> None: ...

    assert registry.get("a").offset_store.store is registry.get("b").offset_store.store


def test_a_session_parameter_without_a_store_names_the_setting():
    registry = _registry()
    with pytest.raises(ListenerDefinitionError, match=r"no offset store.*offset-store\.url"):

        @registry.listener("events", group_id="g")
        async def on_event(value: str, session: AsyncSession) -> None: ...


def test_a_store_needs_an_async_handler():
    registry = _registry()
    with pytest.raises(ListenerDefinitionError, match="async def"):

        @registry.listener("events", group_id="g", offset_store=URL)
        def on_event(value: str) -> None: ...


async def _plain(value: str) -> None: ...


async def _acknowledging(value: str, ack: Acknowledgment) -> None: ...


@pytest.mark.parametrize(
    ("handler", "options", "problem"),
    [
        (_acknowledging, {"ack_mode": "manual"}, "nothing to acknowledge"),
        (_plain, {"ordering": "key"}, "ordering='key'"),
        (_plain, {"properties": {"enable.auto.commit": "true"}}, "auto-commit"),
    ],
)
def test_combinations_a_store_cannot_work_with_are_refused(handler, options, problem):
    register = _registry().listener("events", group_id="g", offset_store=URL, **options)
    with pytest.raises(ListenerDefinitionError, match=problem):
        register(handler)


def test_manually_assigned_partitions_are_refused():
    from kafkaboot import TopicPartitionOffset

    registry = _registry()
    register = registry.listener(
        partitions=[TopicPartitionOffset("events", 0)], group_id="g", offset_store=URL
    )
    with pytest.raises(ListenerDefinitionError, match="group subscription"):
        register(_plain)


def test_a_record_listener_that_replies_is_refused():
    """Its reply would go after the transaction committed: a failed send would then be
    retried against a store that is past the record, and the reply lost."""
    from kafkaboot import send_to

    registry = _registry()
    registry.template = object()

    @send_to("replies")
    async def replying(value: str) -> str:
        return value

    with pytest.raises(ListenerDefinitionError, match="batch listener"):
        registry.listener("events", group_id="g", offset_store=URL)(replying)


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"ordering": "none"}, "ordering='none'"),
        ({}, "needs a group id"),
    ],
)
def test_more_combinations_are_refused(options, problem):
    registry = _registry()
    register = registry.listener(
        "events", offset_store=URL, **options, **({"group_id": "g"} if options else {})
    )
    with pytest.raises(ListenerDefinitionError, match=problem):
        register(_plain)


def test_kafka_transactions_are_refused():
    from types import SimpleNamespace

    kafka = {"bootstrap-servers": "127.0.0.1:9", "producer": {"transaction-id-prefix": "tx-"}}
    settings = load_settings(environ={}, overrides={"kafka": kafka})
    registry = ListenerRegistry(settings, environ={}, template=SimpleNamespace(transactional=True))
    with pytest.raises(ListenerDefinitionError, match="Kafka transactions"):
        registry.listener("events", group_id="g", offset_store=URL)(_plain)


def test_a_synchronous_session_type_is_refused_by_name():
    from sqlalchemy.orm import Session

    registry = _registry()

    async def on_event(value: str, session: Session) -> None: ...

    with pytest.raises(ListenerDefinitionError, match="AsyncSession"):
        registry.listener("events", group_id="g", offset_store=URL)(on_event)
