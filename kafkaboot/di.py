"""Dependency injection with dependency-injector, Spring style.

:class:`ApplicationContainer` provides the settings, the ``KafkaTemplate`` (one per
application), the ``KafkaAdmin`` and the ``ListenerRegistry``. Extend it with your own
providers; listener functions, listener classes and FastAPI endpoints receive them with
``@inject`` and ``Provide[...]``, and tests replace any provider with ``override()``.
Only the modules you name are wired: ``container.wire(modules=[...])``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from dependency_injector import containers, providers

from kafkaboot.admin import KafkaAdmin
from kafkaboot.config import load_settings
from kafkaboot.injection import injected_parameters, unwired_injections
from kafkaboot.listener.registry import ListenerRegistry
from kafkaboot.template import KafkaTemplate

# injected_parameters and unwired_injections live in kafkaboot.injection (the listener layer
# needs them without this module); they stay importable from here as before.
__all__ = [
    "ApplicationContainer",
    "container_instance_factory",
    "injected_parameters",
    "running",
    "unwired_injections",
]


def container_instance_factory(container: containers.Container) -> Callable[[type], Any]:
    """An ``instance_factory`` for :class:`~kafkaboot.listener.ListenerRegistry`.

    A class with a provider in ``container`` (``providers.Singleton(Billing, repo=repo)``) is
    created by it; any other class is called with no arguments, which resolves
    ``Provide[...]`` markers of an ``@inject`` constructor in a wired module.

    Raises (when called):
        LookupError: several providers create the class, so which one is meant is unclear.
    """

    def create(cls: type) -> Any:
        # Only the container's own providers: traverse() would also visit overriding ones
        # (a test's override of the same class), which are not a second definition.
        found = [
            provider
            for provider in container.providers.values()
            if isinstance(provider, providers.Factory | providers.Singleton)
            and getattr(provider, "cls", None) is cls
        ]
        if len(found) > 1:
            raise LookupError(
                f"{len(found)} providers of the DI container create {cls.__qualname__}; keep "
                "one, or register the listener with an explicit instance"
            )
        if found:
            return found[0]()
        return cls()

    return create


class ApplicationContainer(containers.DeclarativeContainer):
    """The application's collaborators. Subclass it to add your own providers::

    class Container(ApplicationContainer):
        repository = providers.Singleton(Repository)
    """

    settings = providers.Singleton(load_settings)
    template = providers.Singleton(KafkaTemplate, settings=settings)
    admin = providers.Singleton(KafkaAdmin, settings=settings)
    registry = providers.Singleton(ListenerRegistry, settings=settings, template=template)

    def __new__(cls, **overriding: Any) -> Any:
        container = super().__new__(cls, **overriding)
        # Listener classes come from this very container (a subclass's providers included);
        # providers.Self would point at the base class's container instead.
        container.registry.add_kwargs(instance_factory=container_instance_factory(container))
        return container


@contextlib.asynccontextmanager
async def running(container: containers.Container) -> AsyncIterator[containers.Container]:
    """Start the container's components in order and stop them in reverse: declared topics
    are created, then the template starts, then the listener containers; on exit the
    listeners stop (committing what they finished) before the template flushes and closes.

    Raises:
        ConfigurationError: a topic declaration cannot work.
        KafkaBootError: Kafka cannot be reached (or fail-fast topic creation failed).
    """
    await container.admin().start()
    template = container.template()
    await template.start()
    try:
        registry = container.registry()
        await registry.start()
        try:
            yield container
        finally:
            await registry.stop()
    finally:
        await template.stop()
