"""Record context in log lines: every line written while a record is handled names the
listener, topic, partition and offset, and the trace it belongs to.

:class:`LogContextInterceptor` notes the record in hand: in an attribute found through
the poll loop's task, or in a ``ContextVar`` for lanes and ``def`` handlers (each lane's
task and each handler's thread sees its own); :class:`RecordContextFilter`, on a logging
handler, copies it onto every ``LogRecord`` as ``kafka_listener``, ``kafka_topic``,
``kafka_partition``, ``kafka_offset``, ``trace_id`` and ``span_id`` (``None`` outside a
record), and ``kafka_context``: the same as one short text for plain formats, empty outside
a record. :class:`JsonFormatter` writes one JSON object per line (``kafkaboot run
--log-format json``).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import json
import logging
import weakref
from typing import Any

from kafkaboot.interceptors import ListenerInfo, Record, RecordInterceptor

__all__ = [
    "TEXT_FORMAT",
    "JsonFormatter",
    "LogContextInterceptor",
    "RecordContextFilter",
    "configure_logging",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(kafka_context)s"
"""``kafkaboot run``'s line format: the record context, when there is one, at the end."""

_record: contextvars.ContextVar[tuple[str, Record] | None] = contextvars.ContextVar(
    "kafkaboot_record", default=None
)
"""Lanes and ``def`` handlers: the record in hand in this task's (or thread's) context."""
_in_hand: weakref.WeakKeyDictionary[asyncio.Task[Any], _InHand] = weakref.WeakKeyDictionary()
"""A partition's poll loop (one record at a time): the task → where its record is noted."""


class LogContextInterceptor(RecordInterceptor):
    """Notes the record in hand (and its listener) for log lines. Per consumer it becomes
    the cheapest form that is right: an attribute found through the poll loop's task when
    one record is in hand at a time, a ``ContextVar`` for lanes and ``def`` handlers."""

    def for_listener(self, listener: ListenerInfo) -> RecordInterceptor:
        if listener.concurrent or listener.threaded:
            return _ContextRecord(listener.listener_id)
        return _InHand(listener.listener_id)


class _ContextRecord(RecordInterceptor):
    def __init__(self, listener_id: str) -> None:
        self._listener_id = listener_id

    def intercept(self, record: Record, consumer: Any) -> Record:
        _record.set((self._listener_id, record))
        return record

    def after_record(self, record: Record, consumer: Any) -> None:
        _record.set(None)


class _InHand(RecordInterceptor):
    """One consumer's record in hand, in an attribute (a write per record, no context
    change); the filter finds it through the task it runs in."""

    def __init__(self, listener_id: str) -> None:
        self.listener_id = listener_id
        self.record: Record | None = None
        self._task: asyncio.Task[Any] | None = None

    def intercept(self, record: Record, consumer: Any) -> Record:
        self.record = record
        if self._task is None:
            self._task = asyncio.current_task()
            if self._task is not None:
                _in_hand[self._task] = self
        return record

    def after_record(self, record: Record, consumer: Any) -> None:
        self.record = None


def _held() -> tuple[str, Record] | None:
    """The listener and record in hand where the log call is made, if any."""
    held = _record.get()
    if held is not None:
        return held
    try:
        task = asyncio.current_task()
    except RuntimeError:  # A thread with no event loop.
        return None
    noted = _in_hand.get(task) if task is not None else None
    if noted is None or noted.record is None:
        return None
    return noted.listener_id, noted.record


def _trace_ids() -> tuple[str | None, str | None]:
    try:
        from opentelemetry import trace
    except ImportError:
        return None, None
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


class RecordContextFilter(logging.Filter):
    """Adds the record context (and the current trace) to every log record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        held = _held()
        trace_id, span_id = _trace_ids()
        record.trace_id, record.span_id = trace_id, span_id
        if held is None:
            record.kafka_listener = record.kafka_topic = None
            record.kafka_partition = record.kafka_offset = None
            record.kafka_context = f" [trace={trace_id}]" if trace_id else ""
            return True
        listener, handled = held
        topic, partition, offset = handled.topic, handled.partition, handled.offset
        record.kafka_listener, record.kafka_topic = listener, topic
        record.kafka_partition, record.kafka_offset = partition, offset
        where = f"listener={listener} record={topic}-{partition}@{offset}"
        record.kafka_context = f" [{where}{f' trace={trace_id}' if trace_id else ''}]"
        return True


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "kafka_context",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record context and
    trace ids when there are some, the exception, and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, log_format: str = "text") -> None:
    """The root logger as ``kafkaboot run`` sets it up: one stream handler, with the record
    context filter, writing ``text`` (:data:`TEXT_FORMAT`) or ``json`` lines."""
    handler = logging.StreamHandler()
    handler.addFilter(RecordContextFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
