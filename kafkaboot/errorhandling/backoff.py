"""Back-off policies: how long to wait before each new delivery of a failed record, and when
to give up (Spring's ``FixedBackOff`` and ``ExponentialBackOff``).

``max_attempts`` counts deliveries, the first one included, as ``@RetryableTopic(attempts=)``
and Spring Boot's ``retry.topic.attempts`` do: ``FixedBackOff(1s, max_attempts=3)`` means the
first try and two retries. (Spring's ``FixedBackOff(interval, maxAttempts)`` counts retries
only; its ``FixedBackOff(1000, 2)`` is ``FixedBackOff(1s, max_attempts=3)`` here.)
"""

from __future__ import annotations

import dataclasses
import random
from datetime import timedelta
from typing import Protocol, runtime_checkable

__all__ = ["BackOff", "ExponentialBackOff", "FixedBackOff", "as_timedelta"]


def as_timedelta(value: timedelta | float) -> timedelta:
    """A duration given as a ``timedelta`` or as seconds."""
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


@runtime_checkable
class BackOff(Protocol):
    """When a record that failed ``failures`` times may be delivered again."""

    @property
    def max_attempts(self) -> int | None:
        """Deliveries in all, the first included; ``None``: no limit."""
        ...

    def delay(self, failures: int) -> timedelta | None:
        """The wait before delivery ``failures + 1``; ``None`` when there are no more."""
        ...


@dataclasses.dataclass(frozen=True)
class FixedBackOff:
    """The same wait before every retry.

    Args:
        interval: the wait (``timedelta`` or seconds).
        max_attempts: deliveries in all, the first included; ``None``: no limit.
    """

    interval: timedelta | float = timedelta(0)
    max_attempts: int | None = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval", as_timedelta(self.interval))
        _check(self.max_attempts, as_timedelta(self.interval))

    def delay(self, failures: int) -> timedelta | None:
        if self.max_attempts is not None and failures >= self.max_attempts:
            return None
        return as_timedelta(self.interval)


@dataclasses.dataclass(frozen=True)
class ExponentialBackOff:
    """Waits that grow: ``initial``, ``initial * multiplier``, ... up to ``max_interval``.

    Args:
        initial: the first wait (``timedelta`` or seconds).
        multiplier: growth per retry (>= 1).
        max_interval: the longest wait.
        max_attempts: deliveries in all, the first included; ``None``: no limit.
        jitter: spread each wait by up to this fraction either way (``0.1``: ±10 %), so
            that many consumers failing together do not retry in lockstep.
    """

    initial: timedelta | float = timedelta(seconds=1)
    multiplier: float = 2.0
    max_interval: timedelta | float = timedelta(seconds=30)
    max_attempts: int | None = 10
    jitter: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "initial", as_timedelta(self.initial))
        object.__setattr__(self, "max_interval", as_timedelta(self.max_interval))
        _check(self.max_attempts, as_timedelta(self.initial))
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter is a fraction in [0, 1), not {self.jitter}")

    def delay(self, failures: int) -> timedelta | None:
        if self.max_attempts is not None and failures >= self.max_attempts:
            return None
        initial = as_timedelta(self.initial).total_seconds()
        longest = as_timedelta(self.max_interval).total_seconds()
        try:
            seconds = min(initial * self.multiplier ** max(failures - 1, 0), longest)
        except OverflowError:  # Thousands of failures with no attempt limit.
            seconds = longest
        if self.jitter:
            seconds *= 1 + random.uniform(-self.jitter, self.jitter)  # noqa: S311 - not crypto.
        return timedelta(seconds=seconds)


def _check(max_attempts: int | None, interval: timedelta) -> None:
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts counts deliveries and must be at least 1: {max_attempts}")
    if interval < timedelta(0):
        raise ValueError(f"a back-off interval cannot be negative: {interval}")
