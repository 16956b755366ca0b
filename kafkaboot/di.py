"""Dependency injection with dependency-injector: listener classes get their collaborators
from the application's container, Spring style.

A class whose methods are listeners is created once. When the DI container has a provider
for it (``providers.Singleton(Billing, repo=repo)``) that provider creates it; otherwise the
class is called with no arguments, which resolves ``Provide[...]`` markers of an ``@inject``
constructor when the container is wired to the class's module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dependency_injector import containers, providers

__all__ = ["container_instance_factory"]


def container_instance_factory(container: containers.Container) -> Callable[[type], Any]:
    """An ``instance_factory`` for :class:`~kafkaboot.listener.ListenerRegistry` that asks
    ``container`` first.

    Raises (when called):
        LookupError: several providers create the class, so which one is meant is unclear.
    """

    def create(cls: type) -> Any:
        found = [
            provider
            for provider in container.traverse(types=[providers.Factory, providers.Singleton])
            if getattr(provider, "cls", None) is cls
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
