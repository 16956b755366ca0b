"""OpenTelemetry tracing on interceptors (``kafkaboot[otel]``: opentelemetry-api).

The template opens a ``send <topic>`` PRODUCER span for every send (inside the caller's span
when there is one) and injects its context into the record's headers, W3C ``traceparent``
and ``tracestate`` (the configured propagators decide). A record listener opens a
``process <topic>`` CONSUMER span per delivery, a child of the context in the record's
headers, and makes it current while the handler runs, so the handler's own spans and log
lines belong to it; a batch listener opens one span per batch with a link to each record's
context. Attributes follow OpenTelemetry's messaging semantic conventions.

The API alone records nothing: kafkaboot installs these interceptors only when a tracer
provider has been set (by the service's code, or by ``opentelemetry-instrument``) before
the application starts.
"""

from __future__ import annotations

import contextvars
import functools
import importlib.metadata
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from kafkaboot.interceptors import (
    BatchInterceptor,
    ListenerInfo,
    ProducerInterceptor,
    Record,
    RecordInterceptor,
)
from kafkaboot.records import ProducerRecord, SendResult

__all__ = [
    "TracingBatchInterceptor",
    "TracingProducerInterceptor",
    "TracingRecordInterceptor",
    "tracing_configured",
]

_SCOPE = "kafkaboot"
_MAX_PENDING_SENDS = 100_000
_MAX_LINKS = 128
"""A batch span links at most this many records' contexts."""
_current: contextvars.ContextVar[tuple[Any, object] | None] = contextvars.ContextVar(
    "kafkaboot_process_span", default=None
)


def tracing_configured() -> bool:
    """Whether a tracer provider has been set (the API's default records nothing)."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def _tracer(provider: trace.TracerProvider | None) -> trace.Tracer:
    # The installed distribution's version: importing the package root from here would
    # make a cycle (the root offers the application, which installs tracing).
    return trace.get_tracer(_SCOPE, _version(), tracer_provider=provider)


@functools.cache
def _version() -> str:
    try:
        return importlib.metadata.version("kafkaboot")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class _HeaderGetter(Getter[Sequence[tuple[str, bytes | None]]]):
    """Reads propagation fields from a record's headers (the last value of a name wins)."""

    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        found = [v for k, v in carrier if k.lower() == key and v is not None]
        if not found:
            return None
        return [found[-1].decode("utf-8", "replace")]

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [k for k, _ in carrier]


_getter = _HeaderGetter()


def _key(key: Any) -> str | None:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def _attributes(operation: str, destination: str, group_id: str | None = None) -> dict[str, Any]:
    """The messaging attributes every span has (consumer spans: with the group)."""
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": destination,
    }
    if group_id is not None:
        attributes["messaging.consumer.group.name"] = group_id
    return attributes


def _failed(span: Any, error: BaseException) -> None:
    """Mark ``span`` as failed by ``error`` (semantic conventions: ``error.type``)."""
    span.record_exception(error)
    span.set_attribute("error.type", type(error).__qualname__)
    span.set_status(Status(StatusCode.ERROR, str(error)))


def _headers(given: Any) -> list[tuple[str, Any]]:
    if not given:
        return []
    return list(given.items()) if isinstance(given, Mapping) else list(given)


class TracingProducerInterceptor(ProducerInterceptor):
    """A PRODUCER span per send, its context injected into the record's headers.

    Args:
        tracer_provider: where spans go (default: the global one).
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = _tracer(tracer_provider)
        self._spans: dict[int, Any] = {}

    def on_send(self, record: ProducerRecord) -> ProducerRecord:
        attributes = _attributes("send", record.topic)
        key = _key(record.key)
        if key is not None:
            attributes["messaging.kafka.message.key"] = key
        if record.partition is not None:
            attributes["messaging.destination.partition.id"] = str(record.partition)
        if record.value is None:
            attributes["messaging.kafka.message.tombstone"] = True
        span = self._tracer.start_span(
            f"send {record.topic}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        if carrier:
            names = {name.lower() for name in carrier}
            kept = [(n, v) for n, v in _headers(record.headers) if n.lower() not in names]
            record = record._replace(
                headers=[*kept, *((n, v.encode()) for n, v in carrier.items())]
            )
        spans = self._spans
        spans[id(record)] = span
        if len(spans) > _MAX_PENDING_SENDS:  # Sends whose caller cancelled them.
            del spans[next(iter(spans))]
        return record

    def on_acknowledgement(
        self, record: ProducerRecord, result: SendResult | None, error: Exception | None
    ) -> None:
        span = self._spans.pop(id(record), None)
        if span is None:
            return
        if result is not None:
            span.set_attribute("messaging.destination.partition.id", str(result.partition))
            span.set_attribute("messaging.kafka.offset", result.offset)
            if result.serialized_size >= 0:
                span.set_attribute("messaging.message.body.size", result.serialized_size)
        if error is not None:
            _failed(span, error)
        span.end()


class TracingRecordInterceptor(RecordInterceptor):
    """A CONSUMER span per delivery of a record, current while its handler runs."""

    def __init__(
        self, tracer_provider: trace.TracerProvider | None = None, group_id: str | None = None
    ) -> None:
        self._provider = tracer_provider
        self._tracer = _tracer(tracer_provider)
        self._group_id = group_id

    def for_listener(self, listener: ListenerInfo) -> RecordInterceptor:
        return TracingRecordInterceptor(self._provider, listener.group_id)

    def intercept(self, record: Record, consumer: Any) -> Record:
        parent = propagate.extract(record.headers or (), getter=_getter)
        attributes = _attributes("process", record.topic, self._group_id)
        attributes |= {
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        }
        key = _key(record.key)
        if key is not None:
            attributes["messaging.kafka.message.key"] = key
        if record.value is None:
            attributes["messaging.kafka.message.tombstone"] = True
        else:
            attributes["messaging.message.body.size"] = len(record.value)
        span = self._tracer.start_span(
            f"process {record.topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        _current.set((span, token))
        return record

    def failure(self, record: Record, exception: BaseException, consumer: Any) -> None:
        held = _current.get()
        if held is not None:
            _failed(held[0], exception)

    def after_record(self, record: Record, consumer: Any) -> None:
        held = _current.get()
        if held is None:
            return
        _current.set(None)
        span, token = held
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]


class TracingBatchInterceptor(BatchInterceptor):
    """A CONSUMER span per delivery of a batch, linked to each record's context."""

    def __init__(
        self, tracer_provider: trace.TracerProvider | None = None, group_id: str | None = None
    ) -> None:
        self._provider = tracer_provider
        self._tracer = _tracer(tracer_provider)
        self._group_id = group_id

    def for_listener(self, listener: ListenerInfo) -> BatchInterceptor:
        return TracingBatchInterceptor(self._provider, listener.group_id)

    def intercept(self, records: list[Record], consumer: Any) -> list[Record]:
        links = []
        for record in records[:_MAX_LINKS]:
            linked = trace.get_current_span(
                propagate.extract(record.headers or (), getter=_getter)
            ).get_span_context()
            if linked.is_valid:
                links.append(Link(linked))
        topics = sorted({r.topic for r in records})
        destination = topics[0] if len(topics) == 1 else ",".join(topics)
        attributes = _attributes("process", destination, self._group_id)
        attributes["messaging.batch.message_count"] = len(records)
        span = self._tracer.start_span(
            f"process {attributes['messaging.destination.name']}",
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        _current.set((span, token))
        return records

    def success(self, records: list[Record], consumer: Any) -> None:
        self._end(None)

    def failure(self, records: list[Record], exception: BaseException, consumer: Any) -> None:
        self._end(exception)

    def _end(self, exception: BaseException | None) -> None:
        held = _current.get()
        if held is None:
            return
        _current.set(None)
        span, token = held
        if exception is not None:
            _failed(span, exception)
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]
