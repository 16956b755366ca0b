"""A bound on repeated log lines: aiokafka logs an ERROR for every failed connection attempt,
metadata refresh and fetch while a broker is away, thousands a minute. A service must not
write megabytes in an outage (a full pipe or disk stalls it; nobody reads the flood).

:class:`RepeatFilter` lets the first warning or error of each (logger, message template)
through, then at most one per interval, which says how many like it were held back;
:func:`install` puts one on every aiokafka logger when an application starts. Distinct
templates never hold each other back, records below WARNING pass untouched, and no lock is
held while a handler writes.
"""

from __future__ import annotations

import logging
import pkgutil
import threading
import time
from collections.abc import Callable, Iterable

import aiokafka

__all__ = ["RepeatFilter", "aiokafka_logger_names", "flush", "install", "release"]

_MAX_KEYS = 1024
"""Pruned past this: templates are code constants, so only a bug could make many."""
_SUMMARY = "kafkaboot_repeat_summary"


class _Window:
    __slots__ = ("last", "started", "suppressed")

    def __init__(self, started: float) -> None:
        self.started = started
        self.suppressed = 0
        self.last: logging.LogRecord | None = None


class RepeatFilter(logging.Filter):
    """At most one line per ``interval`` seconds for each (logger, message template) at
    WARNING or above; the line that ends a window carries the count of those held back.

    Args:
        interval: the window in seconds; 0 lets everything through.
        clock: monotonic seconds (a test drives it).
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._windows: dict[tuple[str, object], _Window] = {}
        self._lock = threading.Lock()  # Handlers may log from other threads.

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or self.interval <= 0:
            return True
        if getattr(record, _SUMMARY, False):
            return True  # Written by flush(): already counted.
        # The template, not the text: one key for every "node %s down". A message that is
        # not a string (an exception object, say) is keyed by its type.
        template = record.msg if isinstance(record.msg, str) else type(record.msg).__name__
        key = (record.name, template)
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) >= _MAX_KEYS:
                    self._prune(now)
                self._windows[key] = _Window(now)
                return True
            if now - window.started < self.interval:
                window.suppressed += 1
                window.last = record
                return False
            held, elapsed = window.suppressed, now - window.started
            window.started, window.suppressed, window.last = now, 0, None
        if held:
            _add_count(record, held, elapsed)
        return True

    def pending(self) -> list[logging.LogRecord]:
        """The last record held back of each window that still has a count to tell, with
        the count added; the windows start again."""
        found = []
        now = self._clock()
        with self._lock:
            for window in self._windows.values():
                if window.suppressed and window.last is not None:
                    record = window.last
                    _add_count(record, window.suppressed - 1, now - window.started)
                    setattr(record, _SUMMARY, True)  # LogRecord declares no such field.
                    found.append(record)
                window.started, window.suppressed, window.last = now, 0, None
        return found

    def _prune(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now - w.started >= self.interval]:
            del self._windows[key]


def _add_count(record: logging.LogRecord, held: int, elapsed: float) -> None:
    """The record's own message, then how many like it were held back."""
    if held:
        record.msg = f"{record.getMessage()} (and {held} more like it in the last {elapsed:.0f}s)"
        record.args = None


def aiokafka_logger_names() -> list[str]:
    """aiokafka logs through ``aiokafka`` and a logger per module: a filter on a parent does
    not see its children's records, so each one needs it."""
    names = {"aiokafka"}
    names.update(
        info.name
        for info in pkgutil.walk_packages(aiokafka.__path__, prefix="aiokafka.")
        if not any(part.startswith("_") for part in info.name.split("."))
    )
    return sorted(names)


_installed: RepeatFilter | None = None
_users = 0
_names: list[str] = []


def install(interval: float, names: Iterable[str] | None = None) -> RepeatFilter:
    """Put the process's one :class:`RepeatFilter` on ``names`` (default: every aiokafka
    logger), with ``interval``. The loggers are process-wide, so one filter serves every
    application of the process (the latest interval wins); each :func:`install` is paired
    with a :func:`release`, and the last release takes the filter off again."""
    global _installed, _users
    if _installed is None:
        _installed = RepeatFilter(interval)
        _names[:] = aiokafka_logger_names() if names is None else list(names)
        for name in _names:
            logging.getLogger(name).addFilter(_installed)
    _installed.interval = interval
    _users += 1
    return _installed


def flush() -> None:
    """Write the counts still held back: each as its logger's last such record, with the
    count (at a stop, so an outage's last window is not left untold)."""
    if _installed is None:
        return
    for record in _installed.pending():
        logging.getLogger(record.name).handle(record)


def release() -> None:
    """An application stopped: write what is held back; the last one removes the filter."""
    global _installed, _users
    if _installed is None:
        return
    flush()
    _users -= 1
    if _users > 0:
        return
    for name in _names:
        logging.getLogger(name).removeFilter(_installed)
    _installed, _users = None, 0
