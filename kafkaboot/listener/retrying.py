"""Retry topics for a listener (Spring's ``@RetryableTopic``): the endpoints that the
registry builds its main, retry and dead-letter containers from.

A failed record is forwarded at once to the next retry topic, whose container holds it
until its due time; after the last attempt it goes to the dead-letter topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from kafkaboot.errorhandling.backoff import FixedBackOff
from kafkaboot.errorhandling.handler import DefaultErrorHandler
from kafkaboot.errorhandling.retry_topics import (
    DLT_HANDLER_ATTRIBUTE,
    RETRYABLE_ATTRIBUTE,
    RetryTopicConfig,
    RetryTopicForwarder,
    due_time,
)
from kafkaboot.errors import ListenerDefinitionError
from kafkaboot.listener.endpoint import ListenerEndpoint

__all__ = ["NotBefore", "retry_config_for", "retrying_endpoints"]

log = logging.getLogger("kafkaboot.listener")
NotBefore = Callable[[Any], float | None]
"""When a record may be handled (``time.time()`` seconds), or None for now."""


def retry_config_for(
    endpoint: ListenerEndpoint, default: RetryTopicConfig | None, batch_default: bool
) -> RetryTopicConfig | None:
    """The retry topics of ``endpoint``: its ``@retryable_topic``'s, else ``default``
    (``kafka.retry.topic.*`` when enabled) where retry topics work (named topics, one
    record at a time), else None.

    Args:
        batch_default: whether listeners that do not say are batch listeners.
    """
    retry: RetryTopicConfig | None = getattr(endpoint.handler, RETRYABLE_ATTRIBUTE, None)
    if retry is None and default is not None:
        batch = endpoint.batch if endpoint.batch is not None else batch_default
        if endpoint.topics and not batch:
            return default
    return retry


def retrying_endpoints(
    endpoint: ListenerEndpoint,
    config: RetryTopicConfig,
    template: Any,
    group: str | None,
    batch_default: bool,
) -> Iterator[tuple[ListenerEndpoint, NotBefore | None]]:
    """The endpoints to register for ``endpoint`` with retry topics, each with when its
    records are due, in registration order: the main one, one per retry topic, then one for
    the dead-letter topic when the listener has a ``@dlt_handler``.

    Args:
        template: the registry's KafkaTemplate, which forwards failed records.
        group: the listener's group id; the retry and dead-letter groups derive from it.
        batch_default: whether listeners that do not say are batch listeners.

    Raises:
        ListenerDefinitionError: retry topics cannot work for this listener (raised before
            the first endpoint is yielded).
    """
    listener_id = endpoint.listener_id
    problem = None
    if template is None:
        problem = "needs the registry's KafkaTemplate: ListenerRegistry(..., template=...)"
    elif not endpoint.topics:
        problem = "works with named topics, not topic_pattern= or partitions="
    elif endpoint.batch if endpoint.batch is not None else batch_default:
        problem = "does not support batch listeners (neither does Spring's @RetryableTopic)"
    if problem is not None:
        raise ListenerDefinitionError(f"listener {listener_id}: @retryable_topic {problem}")
    if endpoint.error_handler is not None:
        log.warning(
            "listener %s: its error_handler is not used; with retry topics, failed "
            "records are forwarded to the retry and dead-letter topics",
            listener_id,
        )
    forwarder = RetryTopicForwarder(config, template)
    # Every failure is "recovered" at once by forwarding it; a failed forward retries.
    handler = DefaultErrorHandler(FixedBackOff(0, max_attempts=1), forwarder, not_retryable=())
    yield endpoint.with_changes(error_handler=handler), None
    for stage in range(config.attempts - 1):
        yield (
            endpoint.with_changes(
                topics=tuple(config.retry_topic(t, stage) for t in endpoint.topics),
                id=f"{listener_id}-retry-{stage}",
                group_id=f"{group}-retry-{stage}",
                error_handler=handler,
            ),
            due_time,
        )
    dead_letters = getattr(endpoint.handler, DLT_HANDLER_ATTRIBUTE, None)
    if config.dlt and dead_letters is not None:
        yield (
            ListenerEndpoint(
                handler=dead_letters,
                topics=tuple(config.dlt_topic(t) for t in endpoint.topics),
                id=f"{listener_id}-dlt",
                group_id=f"{group}-dlt",
                concurrency=endpoint.concurrency,
                auto_startup=endpoint.auto_startup,
                properties=endpoint.properties,
                client_id_prefix=endpoint.client_id_prefix,
                owner=endpoint.owner if _same_class(dead_letters, endpoint.handler) else None,
                # A failing dead-letter handler is logged, never dead-lettered again.
                error_handler=DefaultErrorHandler(FixedBackOff(1.0, max_attempts=3)),
            ),
            None,
        )


def _same_class(function: Any, method: Any) -> bool:
    """Whether two functions were defined in the same class body."""
    owner = getattr(method, "__qualname__", "").rpartition(".")[0]
    return bool(owner) and getattr(function, "__qualname__", "").rpartition(".")[0] == owner
