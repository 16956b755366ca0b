"""The listener guide's snippets run as written."""

import importlib.util
import sys
from pathlib import Path

import pytest

from .kafka_helpers import create_topic, produce, registry_for

SNIPPETS = Path(__file__).parents[2] / "docs" / "snippets"
pytestmark = pytest.mark.asyncio


def load(name, monkeypatch):
    spec = importlib.util.spec_from_file_location(f"snippet_{name}", SNIPPETS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


async def test_listener_quickstart(kafka_bootstrap, monkeypatch):
    topic = await create_topic(kafka_bootstrap)
    monkeypatch.setenv("ORDERS_TOPIC", topic)
    orders = [b'{"id": 1, "item": "tea"}', b'{"id": 2, "item": "jam"}']
    await produce(kafka_bootstrap, topic, orders)
    snippet = load("listener_quickstart", monkeypatch)
    orders = await snippet.run(kafka_bootstrap, expected=2)
    assert [(o.id, o.item) for o in orders] == [(1, "tea"), (2, "jam")]


async def test_listener_manual_ack(kafka_bootstrap, monkeypatch):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"a", b"b", b"c"])
    snippet = load("listener_manual_ack", monkeypatch)
    stored = await snippet.run(registry_for(kafka_bootstrap), topic, expected=3)
    assert stored == ["a", "b", "c"]
    assert all(count == 2 for count in snippet.attempts.values())
