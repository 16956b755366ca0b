"""``@publishes(topic, Model)``: what a function sends with the template, declared for the
service's AsyncAPI document (a listener's sends are known from ``@send_to``; a FastAPI
endpoint's or a scheduled job's are not, until declared)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["PUBLISHES_ATTRIBUTE", "Publication", "publishes"]

PUBLISHES_ATTRIBUTE = "__kafkaboot_publishes__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Publication:
    topic: str
    payload: Any
    key: Any = None
    description: str | None = None


def publishes(
    topic: str, payload: Any, *, key: Any = None, description: str | None = None
) -> Callable[[F], F]:
    """Declare that the decorated function sends ``payload`` records to ``topic`` (stack
    it for several); the function itself is unchanged."""

    def declare(function: F) -> F:
        declared = [
            *getattr(function, PUBLISHES_ATTRIBUTE, ()),
            Publication(topic, payload, key, description),
        ]
        setattr(function, PUBLISHES_ATTRIBUTE, declared)
        return function

    return declare
