"""Dependency injection: extend the ApplicationContainer; listeners and endpoints get
collaborators with @inject and Provide[...]."""

import sys

from dependency_injector import providers
from dependency_injector.wiring import Provide, inject

from kafkaboot import ListenerRegistry, kafka_listener
from kafkaboot.di import ApplicationContainer


class OrderRepository:
    def __init__(self) -> None:
        self.orders: list[dict] = []


class Container(ApplicationContainer):
    repository = providers.Singleton(OrderRepository)


@kafka_listener("${ORDERS_TOPIC:orders}", group_id="billing")
@inject
async def on_order(
    order: dict, repository: OrderRepository = Provide[Container.repository]
) -> None:
    repository.orders.append(order)


def build(container: Container) -> ListenerRegistry:
    """Wire this module, then register its listeners with the container's registry."""
    container.wire(modules=[sys.modules[__name__]])
    registry = container.registry()
    registry.scan(sys.modules[__name__])
    return registry
