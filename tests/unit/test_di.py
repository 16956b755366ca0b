"""Dependency injection: the application container, listener classes and functions,
FastAPI endpoints, and override() in tests."""

from typing import Annotated

import httpx
import pytest
from dependency_injector import containers, providers
from dependency_injector.wiring import Provide, inject
from fastapi import Depends, FastAPI

from kafkaboot import ListenerEndpoint, kafka_listener, load_settings
from kafkaboot.di import ApplicationContainer, container_instance_factory
from kafkaboot.errors import ListenerDefinitionError
from kafkaboot.listener import ListenerRegistry
from kafkaboot.template import KafkaTemplate


class Repository:
    def __init__(self) -> None:
        self.saved: list[object] = []


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


class Container(ApplicationContainer):
    repository = providers.Singleton(Repository)
    billing = providers.Singleton(Billing, repository=repository)


@inject
async def store_order(order: dict, repository: Repository = Provide[Container.repository]) -> None:
    repository.saved.append(order)


async def unwired(order: dict, repository: Repository = Provide[Container.repository]) -> None:
    repository.saved.append(order)


@pytest.fixture
def container():
    container = Container()
    container.settings.override(providers.Object(load_settings(environ={})))
    container.wire(modules=[__name__])
    yield container
    container.unwire()


def test_application_container_provides_one_template_and_registry(container):
    assert container.template() is container.template()
    assert isinstance(container.template(), KafkaTemplate)
    assert container.registry().settings is container.settings()


def test_listener_class_comes_from_its_provider(container):
    registry = container.registry()
    registry.scan(Billing)
    assert registry.instance(Billing) is container.billing()
    assert registry.instance(Billing).repository is container.repository()


def test_class_without_provider_is_created_with_wired_injections(container):
    registry = container.registry()
    registry.scan(Audit)
    assert registry.instance(Audit).repository is container.repository()


@pytest.mark.asyncio
async def test_function_listener_receives_injected_collaborators(container):
    registry = container.registry()
    listener = registry.register(ListenerEndpoint(handler=store_order, topics=("o",), group_id="g"))
    await listener.invoker.call(_record(b'{"id": 1}'), None, None)
    assert container.repository().saved == [{"id": 1}]


def test_unwired_injection_is_a_clear_registration_error():
    registry = ListenerRegistry(load_settings(environ={}))
    with pytest.raises(ListenerDefinitionError, match=r"repository wait for the DI container"):
        registry.register(ListenerEndpoint(handler=unwired, topics=("o",), group_id="g"))


def test_two_providers_of_one_class_is_an_error():
    class Twice(containers.DeclarativeContainer):
        a = providers.Factory(Repository)
        b = providers.Singleton(Repository)

    with pytest.raises(LookupError, match="2 providers"):
        container_instance_factory(Twice())(Repository)


class RecordingTemplate:
    """A stand-in for tests of a service's own code (not for kafkaboot's own tests)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []

    async def send_and_wait(self, topic: str, value: object) -> None:
        self.sent.append((topic, value))


app = FastAPI()


@app.post("/orders")
@inject
async def post_order(
    order: dict, template: Annotated[KafkaTemplate, Depends(Provide[Container.template])]
) -> dict:
    await template.send_and_wait("orders", order)
    return {"queued": True}


@pytest.mark.asyncio
async def test_fastapi_endpoint_receives_the_template_and_tests_can_override_it(container):
    fake = RecordingTemplate()
    transport = httpx.ASGITransport(app=app)
    with container.template.override(providers.Object(fake)):
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post("/orders", json={"id": 7})
    assert response.json() == {"queued": True}
    assert fake.sent == [("orders", {"id": 7})]


def _record(value):
    from aiokafka import ConsumerRecord

    return ConsumerRecord("o", 0, 0, 0, 0, None, value, None, 0, len(value), [])


def test_overriding_a_listener_class_provider_in_a_test_is_not_a_duplicate(container):
    other = Repository()
    with container.billing.override(providers.Singleton(Billing, repository=other)):
        registry = container.registry()
        registry.scan(Billing)
        assert registry.instance(Billing).repository is other
