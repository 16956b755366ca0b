"""Which parameters of a handler dependency-injector fills (``= Provide[...]``).

This is all the listener layer needs to know about DI, so it lives apart from
:mod:`kafkaboot.di`: that module is the application's container and builds the listener
registry, so the listener package importing it would be an import cycle.

Nothing here imports dependency-injector. Its wiring module imports FastAPI when installed,
which ``import kafkaboot`` should not pay for; and a default can only be a ``Provide[...]``
marker once the application has imported that module, so when it has not, there is nothing
to find.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["injected_parameters", "unwired_injections"]

_WIRING = "dependency_injector.wiring"


def _wiring() -> ModuleType | None:
    return sys.modules.get(_WIRING)


def injected_parameters(function: Callable[..., Any]) -> set[str]:
    """Parameters whose default is a ``Provide[...]``-style marker: filled by the DI
    container, not by kafkaboot."""
    wiring = _wiring()
    if wiring is None:
        return set()
    markers = (wiring.Provide, wiring.Provider, wiring.Closing)
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set()
    return {p.name for p in parameters if isinstance(p.default, markers)}


def unwired_injections(function: Callable[..., Any]) -> set[str]:
    """Injected parameters of ``function`` that no container would fill, because its
    module is not wired (or it lacks ``@inject``)."""
    wanted = injected_parameters(function)
    if not wanted:
        return set()
    target = getattr(function, "__func__", function)
    # dependency-injector keeps what @inject patched here; it has no public lookup.
    registry = getattr(_wiring(), "_patched_registry", None)
    patched = registry.get_callable(target) if registry is not None else None
    if patched is None:
        return wanted  # No @inject: the markers would be passed as they are.
    return wanted - set(patched.injections) - set(patched.closing)
