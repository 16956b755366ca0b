"""What a listener declares: a frozen :class:`ListenerEndpoint`, built once and never mutated.

Unset options (``None``) are filled from ``kafka.consumer.*`` / ``kafka.listener.*`` when
the container is built, so configuration stays the single source of truth.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

from kafkaboot.errors import ConfigurationError

__all__ = ["AckModeName", "ListenerEndpoint", "OrderingName", "TopicPartitionOffset"]

AckModeName = Literal[
    "record", "batch", "time", "count", "count_time", "manual", "manual_immediate"
]
OrderingName = Literal["partition", "key", "none"]


@dataclasses.dataclass(frozen=True, slots=True)
class TopicPartitionOffset:
    """A partition to assign manually, and where to start reading it (Spring's
    ``TopicPartitionOffset``).

    Args:
        offset: an absolute offset; a negative one counts back from the end (``-10``: the
            last ten records). ``None`` starts from the committed offset.
        position: ``"beginning"`` or ``"end"`` instead of an offset.
        relative: ``offset`` is relative to the committed position (``+5`` skips five).
    """

    topic: str
    partition: int
    offset: int | None = None
    position: Literal["beginning", "end"] | None = None
    relative: bool = False

    def __post_init__(self) -> None:
        if self.offset is not None and self.position is not None:
            raise ConfigurationError(
                f"TopicPartitionOffset({self.topic!r}, {self.partition}): give offset= or "
                "position=, not both"
            )


@dataclasses.dataclass(frozen=True, slots=True)
class ListenerEndpoint:
    """Everything one listener declares; ``registry.register(endpoint)`` builds its container.

    ``handler`` is the function to call. For a method, ``owner`` is its class: the registry
    creates one instance (through the DI container when there is one) and binds to it.
    """

    handler: Callable[..., Any]
    topics: tuple[str, ...] = ()
    id: str | None = None
    group_id: str | None = None
    topic_pattern: str | None = None
    partitions: tuple[TopicPartitionOffset, ...] = ()
    concurrency: int | None = None
    auto_startup: bool | None = None
    batch: bool | None = None
    ack_mode: AckModeName | None = None
    ack_count: int | None = None
    ack_time: timedelta | None = None
    filter: Callable[[Any], bool] | None = None
    properties: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    error_handler: Any = None
    rebalance_listener: Any = None
    client_id_prefix: str | None = None
    send_to: str | None = None
    """Send the handler's return value here; ``""`` replies to the request's reply topic."""
    owner: type | None = None
    ordering: OrderingName | None = None
    """``"partition"``: a partition's records one at a time; ``"key"``: one key's records
    one at a time, other keys concurrently; ``"none"``: no order."""
    max_in_flight: int | None = None
    """With ``ordering`` key or none: records handled or waiting at once, at most."""
    interceptors: tuple[Any, ...] = ()
    """Record or batch interceptors of this listener, after the registry's."""
    offset_store: str | None = None
    """A database URL: the listener stores its offsets there, in the transaction its
    handler writes its results in (:mod:`kafkaboot.offset_store`)."""

    def __post_init__(self) -> None:
        sources = sum(bool(x) for x in (self.topics, self.topic_pattern, self.partitions))
        name = self.qualified_name
        if sources == 0:
            raise ConfigurationError(
                f"listener {name} names no topics: give topics, topic_pattern= or partitions="
            )
        if sources > 1:
            raise ConfigurationError(
                f"listener {name}: topics, topic_pattern= and partitions= exclude each other "
                "(partitions= is manual assignment without group subscription); keep one"
            )
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigurationError(f"listener {name}: concurrency must be >= 1")
        if self.ordering not in (None, "partition", "key", "none"):
            raise ConfigurationError(
                f"listener {name}: ordering={self.ordering!r} is not one of 'partition' "
                "(the default), 'key' or 'none'"
            )
        if self.max_in_flight is not None and (
            isinstance(self.max_in_flight, bool)
            or not isinstance(self.max_in_flight, int)
            or self.max_in_flight < 1
        ):
            raise ConfigurationError(
                f"listener {name}: max_in_flight={self.max_in_flight!r} must be a whole number >= 1"
            )

    @property
    def qualified_name(self) -> str:
        """``module.function`` or ``module.Class.method``: the default listener id."""
        handler = self.handler
        if not hasattr(handler, "__qualname__"):  # A callable object: name it by its class.
            handler = type(handler)
        module = getattr(handler, "__module__", None) or "?"
        qualname = getattr(handler, "__qualname__", None) or repr(handler)
        return f"{module}.{qualname}"

    @property
    def listener_id(self) -> str:
        return self.id or self.qualified_name

    def with_changes(self, **changes: Any) -> ListenerEndpoint:
        """A copy with some fields replaced (placeholders resolved, owner bound)."""
        return dataclasses.replace(self, **changes)


def as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
