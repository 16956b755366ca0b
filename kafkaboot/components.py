"""Components named in configuration by import path (``package.module:Name``): error
handlers, rebalance listeners, interceptors."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from kafkaboot.errors import ConfigurationError

__all__ = ["import_component"]


def import_component(
    path: str,
    key: str,
    kind: str,
    check: Callable[[Any], bool],
    needs: str,
    *,
    instance: Callable[[type], Any] = lambda cls: cls(),
    error: type[Exception] = ConfigurationError,
) -> Any:
    """The object ``path`` names: a class is instantiated (with ``instance``: the DI
    container in an application), a factory called, anything else taken as it is.

    Raises:
        error: with ``key`` (where the path was configured), when the path cannot be
            imported or what it gives fails ``check`` (it should be ``kind``, which ``needs``).
    """
    module_name, colon, attr = path.partition(":")
    if not colon or not module_name or not attr:
        raise error(f"{key}: {path!r} is not an import path; write package.module:ClassOrFactory")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise error(f"{key}: cannot import module {module_name!r} of {path!r}: {exc!r}") from None
    if not hasattr(module, attr):
        raise error(f"{key}: module {module_name!r} has no {attr!r}")
    target = getattr(module, attr)
    try:
        if inspect.isclass(target):
            component = instance(target)
        elif callable(target) and not check(target):
            component = target()  # A factory.
        else:
            component = target
    except Exception as exc:
        raise error(f"{key}: creating {path!r} failed: {exc!r}") from None
    if not check(component):
        raise error(
            f"{key}: {path!r} gives a {type(component).__name__}, which is not {kind}; "
            f"it needs {needs}"
        )
    return component
