"""Interceptors: the one hook into every record a listener handles and every record the
template sends (Spring's ``RecordInterceptor``, ``BatchInterceptor`` and ``RetryListener``,
and Kafka's ``ProducerInterceptor``). Metrics, tracing and log context are built on them.

Subclass one, override the hooks you need (each default does nothing) and register it in
code (``@kafka_listener(interceptors=[...])``, ``registry.add_interceptor(...)``,
``template.add_interceptor(...)``) or by import path in ``application.yml``
(``kafka.listener.interceptors``, ``kafka.listeners.<id>.interceptors``,
``kafka.template.interceptors``). They run in the order given, on the event loop, so they
must be quick and never block. ``intercept`` and ``on_send`` are part of the record's
handling (one that raises fails the record, which goes to the error handler, or fails the
send); an exception from any other hook is logged and ignored: an observer cannot change an
outcome. With no interceptor registered, none of this costs anything.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from aiokafka import ConsumerRecord

if TYPE_CHECKING:
    from kafkaboot.errorhandling.handler import Recovery
    from kafkaboot.records import ProducerRecord, SendResult

__all__ = [
    "BatchInterceptor",
    "BatchInterceptors",
    "ErrorHandlingHooks",
    "ListenerInfo",
    "ListenerInterceptor",
    "ProducerInterceptor",
    "ProducerInterceptors",
    "RecordHooks",
    "RecordInterceptor",
    "hook_failed",
]

log = logging.getLogger("kafkaboot.interceptors")
Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class ListenerInfo:
    """What an interceptor may want to know of the listener consumer it serves."""

    listener_id: str
    group_id: str | None
    batch: bool
    concurrent: bool
    """Records of this consumer are handled concurrently (``ordering`` key or none), each
    in a task of its own: per-record state belongs in a ``contextvars.ContextVar``. When
    false, one record is in hand at a time and an attribute will do."""
    threaded: bool = False
    """The handler is a ``def`` function: it runs in a worker thread, which sees the
    context (``ContextVar`` values) of the record's task, not its attributes."""


class ListenerInterceptor:
    """What record and batch interceptors share: the error handler's decisions about a
    failed record (Spring's ``RetryListener``)."""

    def for_listener(self, listener: ListenerInfo) -> ListenerInterceptor:
        """The interceptor to use for one consumer of one listener, asked as the consumer
        starts (default: this one). Return a copy of the same kind to keep per-listener
        state, such as metric label values, out of the per-record hooks."""
        return self

    def retrying(self, record: Record, exception: BaseException, attempt: int) -> None:
        """Delivery ``attempt`` of ``record`` failed and it will be delivered again (after
        the back-off)."""

    def recovered(
        self, record: Record, exception: BaseException, recovery: Recovery | None
    ) -> None:
        """The error handler gave up on ``record`` and its recoverer dealt with it: where it
        went (``recovery``: a dead-letter or retry topic; ``None``: logged or a custom
        recoverer). Its offset is committed past it."""


class RecordInterceptor(ListenerInterceptor):
    """Around each delivery of a record to a record listener. The record is the one
    fetched: key and value are still bytes (the handler's parameters are decoded after
    ``intercept``, so a record that cannot be decoded reaches ``failure``)."""

    def intercept(self, record: Record, consumer: Any) -> Record | None:
        """Before the handler: the record to hand on, or ``None`` to skip it (it counts as
        handled and is committed, like one a ``filter`` leaves out). Raising fails it."""
        return record

    def success(self, record: Record, consumer: Any) -> None:
        """The handler returned (and its ``send_to`` reply was sent)."""

    def failure(self, record: Record, exception: BaseException, consumer: Any) -> None:
        """The handler (or the decoding of its parameters, or ``intercept``) raised; the
        error handler decides next."""

    def after_record(self, record: Record, consumer: Any) -> None:
        """Last, after every delivery: handled, failed, skipped or cancelled."""

    def filtered(self, record: Record, consumer: Any) -> None:
        """The listener's ``filter`` (or an ``intercept``) left the record out."""


class BatchInterceptor(ListenerInterceptor):
    """Around each delivery of a batch to a batch listener; the records as fetched."""

    def intercept(self, records: list[Record], consumer: Any) -> list[Record] | None:
        """Before the handler: ``records`` to go on, or ``None`` to skip the whole batch (it
        counts as handled). Raising fails the batch. To leave records out, give the listener
        a ``filter``: a different list is refused (its offsets would not add up)."""
        return records

    def success(self, records: list[Record], consumer: Any) -> None:
        """The handler returned."""

    def failure(self, records: list[Record], exception: BaseException, consumer: Any) -> None:
        """The handler raised (or ``intercept`` did)."""


class ProducerInterceptor:
    """Around every send of the template (Kafka's ``ProducerInterceptor``)."""

    def on_send(self, record: ProducerRecord) -> ProducerRecord:
        """Before serialization: the record to send (e.g. with headers added). Raising
        fails the send; nothing is written."""
        return record

    def on_acknowledgement(
        self,
        record: ProducerRecord,
        result: SendResult | None,
        error: Exception | None,
    ) -> None:
        """The send ended: delivered (``result``) or not (``error``: a ``KafkaSendError``
        when it was not queued, refused, or not confirmed within the delivery timeout; a
        ``SerializationError`` when it could not be serialized)."""


def _guarded(owner: object, hook: str, error: Exception) -> None:
    log.error("interceptor %r failed in %s: %r (ignored)", owner, hook, error, exc_info=error)


_I = TypeVar("_I", bound=ListenerInterceptor)


class ErrorHandlingHooks(Generic[_I]):
    """The error-handling hooks of several interceptors, in order."""

    def __init__(self, interceptors: Sequence[_I]) -> None:
        self.interceptors = tuple(interceptors)

    def retrying(self, record: Record, exception: BaseException, attempt: int) -> None:
        for interceptor in self.interceptors:
            try:
                interceptor.retrying(record, exception, attempt)
            except Exception as exc:
                _guarded(interceptor, "retrying", exc)

    def recovered(
        self, record: Record, exception: BaseException, recovery: Recovery | None
    ) -> None:
        for interceptor in self.interceptors:
            try:
                interceptor.recovered(record, exception, recovery)
            except Exception as exc:
                _guarded(interceptor, "recovered", exc)


class RecordHooks:
    """A listener's record interceptors as the hooks its dispatch calls. Each hook is
    ``None`` when no interceptor overrides it (nothing is called), the one interceptor's
    own method, or a function that calls each in order: a hook costs only what the
    interceptors do. ``intercept`` may raise (the record fails); callers guard the others
    with :func:`hook_failed`."""

    __slots__ = ("after_record", "failure", "filtered", "intercept", "success")

    def __init__(self, interceptors: Sequence[RecordInterceptor]) -> None:
        self.intercept: Callable[[Record, Any], Record | None] | None = None
        chain = _overriding(interceptors, RecordInterceptor, "intercept")
        if len(chain) == 1:
            self.intercept = chain[0].intercept
        elif len(chain) == 2:
            self.intercept = _pair(chain[0].intercept, chain[1].intercept)
        elif chain:
            self.intercept = functools.partial(_chain, tuple(i.intercept for i in chain))
        self.success: Callable[[Record, Any], None] | None = _each(interceptors, "success")
        self.failure: Callable[[Record, BaseException, Any], None] | None = _each(
            interceptors, "failure"
        )
        self.after_record: Callable[[Record, Any], None] | None = _each(
            interceptors, "after_record"
        )
        self.filtered: Callable[[Record, Any], None] | None = _each(interceptors, "filtered")


def _overriding(interceptors: Sequence[Any], base: type, hook: str) -> list[Any]:
    default = getattr(base, hook)
    return [i for i in interceptors if getattr(type(i), hook, default) is not default]


def _pair(
    first: Callable[[Record, Any], Record | None], second: Callable[[Record, Any], Record | None]
) -> Callable[[Record, Any], Record | None]:
    """Two intercepts in a row, without a loop (metrics and log context, the common case)."""

    def both(record: Record, consumer: Any) -> Record | None:
        kept = first(record, consumer)
        return None if kept is None else second(kept, consumer)

    return both


def _chain(
    intercepts: tuple[Callable[[Record, Any], Record | None], ...], record: Record, consumer: Any
) -> Record | None:
    current: Record | None = record
    for intercept in intercepts:
        current = intercept(current, consumer)
        if current is None:
            return None
    return current


def _each(interceptors: Sequence[RecordInterceptor], hook: str) -> Any:
    """The ``hook`` of the interceptors that override it: ``None``, one bound method, or a
    function calling each in turn (one that raises does not keep the next from running)."""
    chosen = _overriding(interceptors, RecordInterceptor, hook)
    if not chosen:
        return None
    if len(chosen) == 1:
        return getattr(chosen[0], hook)
    methods = tuple(getattr(i, hook) for i in chosen)

    def each(*args: Any) -> None:
        for method in methods:
            try:
                method(*args)
            except Exception as exc:
                hook_failed(method, exc)

    return each


def hook_failed(hook: object, error: Exception) -> None:
    """An interceptor's observer hook raised: logged, and the outcome stands."""
    log.error("interceptor hook %r failed: %r (ignored)", hook, error, exc_info=error)


class BatchInterceptors(ErrorHandlingHooks[BatchInterceptor]):
    """Several batch interceptors as one, in order."""

    def intercept(self, records: list[Record], consumer: Any) -> list[Record] | None:
        for interceptor in self.interceptors:
            kept = interceptor.intercept(records, consumer)
            if kept is None:
                return None
            if kept is not records:
                raise TypeError(
                    f"batch interceptor {interceptor!r} returned a different list of records; "
                    "return the records given, or None to skip the batch (leave records out "
                    "with the listener's filter)"
                )
        return records

    def success(self, records: list[Record], consumer: Any) -> None:
        for interceptor in self.interceptors:
            try:
                interceptor.success(records, consumer)
            except Exception as exc:
                _guarded(interceptor, "success", exc)

    def failure(self, records: list[Record], exception: BaseException, consumer: Any) -> None:
        for interceptor in self.interceptors:
            try:
                interceptor.failure(records, exception, consumer)
            except Exception as exc:
                _guarded(interceptor, "failure", exc)


class ProducerInterceptors:
    """Several producer interceptors as one: ``on_send`` chains them, in order."""

    def __init__(self, interceptors: Sequence[ProducerInterceptor]) -> None:
        self.interceptors = tuple(interceptors)

    def on_send(self, record: ProducerRecord) -> ProducerRecord:
        for interceptor in self.interceptors:
            record = interceptor.on_send(record)
        return record

    def on_acknowledgement(
        self, record: ProducerRecord, result: SendResult | None, error: Exception | None
    ) -> None:
        for interceptor in self.interceptors:
            try:
                interceptor.on_acknowledgement(record, result, error)
            except Exception as exc:
                _guarded(interceptor, "on_acknowledgement", exc)


def listener_hooks(
    interceptors: Sequence[ListenerInterceptor], listener: ListenerInfo
) -> tuple[RecordHooks | None, BatchInterceptors | None, ErrorHandlingHooks[Any] | None]:
    """A listener's interceptors of its kind (record interceptors for a record listener,
    batch interceptors for a batch listener; the others do not apply), each as its
    ``for_listener`` gives it, as the hooks its dispatch calls (``None`` where there are
    none: the fast paths stay)."""
    if listener.batch:
        batches = [
            _bound(i, listener, BatchInterceptor)
            for i in interceptors
            if isinstance(i, BatchInterceptor)
        ]
        return None, BatchInterceptors(batches) if batches else None, _hooks(batches)
    records = [
        _bound(i, listener, RecordInterceptor)
        for i in interceptors
        if isinstance(i, RecordInterceptor)
    ]
    return RecordHooks(records) if records else None, None, _hooks(records)


_K = TypeVar("_K", bound=ListenerInterceptor)


def _bound(interceptor: ListenerInterceptor, listener: ListenerInfo, kind: type[_K]) -> _K:
    bound = interceptor.for_listener(listener)
    if not isinstance(bound, kind):
        raise TypeError(
            f"{interceptor!r}.for_listener gave {bound!r}, which is not a {kind.__name__}"
        )
    return bound


def _hooks(interceptors: Sequence[ListenerInterceptor]) -> ErrorHandlingHooks[Any] | None:
    return ErrorHandlingHooks(interceptors) if interceptors else None
