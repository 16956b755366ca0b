"""``@kafka_listener``: records a :class:`ListenerEndpoint` on the function, nothing else.

A registry picks the endpoints up with ``registry.scan(module_or_class)`` (or the
application does, for the modules it is given); ``registry.register(ListenerEndpoint(...))``
is the same thing without the decorator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from kafkaboot.listener.endpoint import (
    AckModeName,
    ListenerEndpoint,
    OrderingName,
    TopicPartitionOffset,
)

__all__ = [
    "ENDPOINTS_ATTRIBUTE",
    "SEND_TO_ATTRIBUTE",
    "declared_endpoints",
    "kafka_listener",
    "send_to",
]

ENDPOINTS_ATTRIBUTE = "__kafkaboot_listeners__"
SEND_TO_ATTRIBUTE = "__kafkaboot_send_to__"
F = TypeVar("F", bound=Callable[..., Any])


def kafka_listener(
    *topics: str,
    group_id: str | None = None,
    id: str | None = None,
    topic_pattern: str | None = None,
    partitions: Iterable[TopicPartitionOffset] | None = None,
    concurrency: int | None = None,
    auto_startup: bool | None = None,
    batch: bool | None = None,
    ack_mode: AckModeName | None = None,
    ack_count: int | None = None,
    ack_time: timedelta | None = None,
    filter: Callable[[Any], bool] | None = None,
    properties: Mapping[str, Any] | None = None,
    error_handler: Any = None,
    rebalance_listener: Any = None,
    client_id_prefix: str | None = None,
    ordering: OrderingName | None = None,
    max_in_flight: int | None = None,
    interceptors: Iterable[Any] = (),
    offset_store: str | None = None,
) -> Callable[[F], F]:
    """Declare a listener on a function or method (Spring's ``@KafkaListener``).

    Unset options come from ``kafka.consumer.*`` and ``kafka.listener.*``. Topics and group
    ids may hold ``${...}`` placeholders, resolved from configuration at registration.
    The function is returned unchanged; it can still be called directly.

    ``ordering="key"`` handles records of different keys concurrently (each key's in
    offset order), up to ``max_in_flight`` at once; ``"none"`` any records concurrently;
    ``"partition"`` (the default) one record of a partition at a time.

    ``interceptors``: :class:`~kafkaboot.RecordInterceptor` (or, for a batch listener,
    :class:`~kafkaboot.BatchInterceptor`) objects, run after the registry's, in order.

    ``offset_store``: a database URL (``sqlite+aiosqlite:///central.db``,
    ``postgresql+asyncpg://...``): the handler takes an ``AsyncSession`` and its results
    commit with the offsets in one transaction; partitions start from the stored offsets
    (docs/offset-store.md).

    Raises:
        ConfigurationError: no topics, or topics mixed with a pattern or manual partitions.
    """

    def decorate(handler: F) -> F:
        endpoint = ListenerEndpoint(
            handler=handler,
            topics=tuple(topics),
            id=id,
            group_id=group_id,
            topic_pattern=topic_pattern,
            partitions=tuple(partitions or ()),
            concurrency=concurrency,
            auto_startup=auto_startup,
            batch=batch,
            ack_mode=ack_mode,
            ack_count=ack_count,
            ack_time=ack_time,
            filter=filter,
            properties=dict(properties or {}),
            error_handler=error_handler,
            rebalance_listener=rebalance_listener,
            client_id_prefix=client_id_prefix,
            ordering=ordering,
            max_in_flight=max_in_flight,
            interceptors=tuple(interceptors),
            offset_store=offset_store,
        )
        existing = list(getattr(handler, ENDPOINTS_ATTRIBUTE, ()))
        setattr(handler, ENDPOINTS_ATTRIBUTE, (*existing, endpoint))
        return handler

    return decorate


def send_to(topic: str = "") -> Callable[[F], F]:
    """Send the listener's return value to ``topic`` (Spring's ``@SendTo``), keyed like the
    incoming record. A list, generator or async generator sends one record per element;
    ``None`` sends nothing. Without a topic, the reply goes to the request's reply topic
    (the ``kafka_replyTopic`` header, as ``ReplyingKafkaTemplate`` sets it)."""

    def decorate(handler: F) -> F:
        setattr(handler, SEND_TO_ATTRIBUTE, topic)
        return handler

    return decorate


def declared_endpoints(target: Any) -> list[ListenerEndpoint]:
    """The endpoints declared on a function, on a class's methods, or in a module (only
    functions and classes defined there, not ones it imported)."""
    import inspect

    if inspect.isfunction(target) or inspect.ismethod(target):
        return list(getattr(target, ENDPOINTS_ATTRIBUTE, ()))
    if inspect.isclass(target):
        found = []
        for klass in reversed(target.__mro__):
            for attribute in vars(klass).values():
                function = getattr(attribute, "__func__", attribute)
                for endpoint in getattr(function, ENDPOINTS_ATTRIBUTE, ()):
                    found.append(endpoint.with_changes(owner=target))
        return found
    if inspect.ismodule(target):
        found = []
        for value in vars(target).values():
            if getattr(value, "__module__", None) != target.__name__:
                continue
            if inspect.isfunction(value) or inspect.isclass(value):
                found += declared_endpoints(value)
        return found
    raise TypeError(f"cannot scan {target!r} for listeners: give a module, class or function")
