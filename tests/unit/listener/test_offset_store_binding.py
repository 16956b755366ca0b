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
