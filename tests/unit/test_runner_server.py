"""`kafkaboot run`'s uvicorn options (server.loop, server.http) and the collector freeze
after startup (server.gc-freeze)."""

import asyncio
import gc

import pydantic
import pytest

from kafkaboot import runner
from kafkaboot.config import KafkaBootSettings
from kafkaboot.errors import ConfigurationError


def test_server_keys_default_to_uvicorns_choice_and_a_frozen_heap():
    server = KafkaBootSettings().server
    assert (server.loop, server.http, server.gc_freeze) == ("auto", "auto", True)


def test_an_unknown_loop_is_refused():
    with pytest.raises(pydantic.ValidationError, match="loop"):
        KafkaBootSettings(server={"loop": "trio"})


@pytest.mark.parametrize(("key", "value"), [("loop", "uvloop"), ("http", "httptools")])
def test_an_implementation_that_is_not_installed_is_a_configuration_error(monkeypatch, key, value):
    monkeypatch.setattr(runner.importlib.util, "find_spec", lambda name: None)
    settings = KafkaBootSettings(server={key: value})
    with pytest.raises(ConfigurationError, match=f"server.{key} is {value}.*pip install {value}"):
        runner.check_uvicorn_options(settings)


def test_auto_and_the_pure_python_choices_need_nothing_installed(monkeypatch):
    monkeypatch.setattr(runner.importlib.util, "find_spec", lambda name: None)
    for server in ({}, {"loop": "asyncio", "http": "h11"}):
        runner.check_uvicorn_options(KafkaBootSettings(server=server))


class Server:
    def __init__(self, starts):
        self.starts = starts
        self.started = False
        self.sockets = "unset"

    async def startup(self, sockets=None):
        self.sockets = sockets
        self.started = self.starts


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_what_startup_built_is_frozen_once_the_server_has_started(unfrozen):
    server = Server(starts=True)
    runner.freeze_after_startup(server)
    assert gc.get_freeze_count() == 0
    asyncio.run(server.startup(sockets=["s"]))
    assert server.sockets == ["s"]
    assert gc.get_freeze_count() > 0


def test_a_failed_startup_freezes_nothing(unfrozen):
    server = Server(starts=False)
    runner.freeze_after_startup(server)
    asyncio.run(server.startup())
    assert gc.get_freeze_count() == 0
