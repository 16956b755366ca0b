"""Listener classes get their collaborators from the dependency-injector container."""

import pytest
from dependency_injector import containers, providers
from dependency_injector.wiring import Provide, inject

from kafkaboot import kafka_listener
from kafkaboot.di import container_instance_factory
from kafkaboot.listener import ListenerRegistry


class Repository:
    pass


class Billing:
    def __init__(self, repository: Repository) -> None:
        self.repository = repository

    @kafka_listener("orders", group_id="billing")
    async def on_order(self, order: dict) -> None: ...


class Audit:
    @inject
    def __init__(self, repository: Repository = Provide["repository"]) -> None:
        self.repository = repository

    @kafka_listener("orders", group_id="audit")
    async def on_order(self, order: dict) -> None: ...


class Application(containers.DeclarativeContainer):
    repository = providers.Singleton(Repository)
    billing = providers.Singleton(Billing, repository=repository)


def test_listener_class_comes_from_its_provider():
    container = Application()
    registry = ListenerRegistry(instance_factory=container_instance_factory(container))
    registry.scan(Billing)  # Registration creates the instance, through the provider.
    assert registry.instance(Billing) is container.billing()
    assert registry.instance(Billing).repository is container.repository()


def test_class_without_provider_is_created_with_wired_injections():
    container = Application()
    container.wire(modules=[__name__])
    try:
        registry = ListenerRegistry(instance_factory=container_instance_factory(container))
        registry.scan(Audit)
        assert registry.instance(Audit).repository is container.repository()
    finally:
        container.unwire()


def test_two_providers_of_one_class_is_an_error():
    class Twice(containers.DeclarativeContainer):
        a = providers.Factory(Repository)
        b = providers.Singleton(Repository)

    with pytest.raises(LookupError, match="2 providers"):
        container_instance_factory(Twice())(Repository)
