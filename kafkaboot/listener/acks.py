"""Ack modes, and the ``Acknowledgment`` a manual-ack handler receives.

What the acknowledgments allow to be committed is decided in
:mod:`kafkaboot.listener.partition`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import timedelta

from kafkaboot.errors import AcknowledgmentError

__all__ = ["AckMode", "Acknowledgment"]


class AckMode(enum.Enum):
    """When the container commits (Spring Kafka's ``ContainerProperties.AckMode``)."""

    RECORD = "record"
    """After each record is handled."""
    BATCH = "batch"
    """After all records of a poll are handled (the default)."""
    TIME = "time"
    """After a poll's records are handled, if ``ack-time`` passed since the last commit."""
    COUNT = "count"
    """After a poll's records are handled, if ``ack-count`` records were handled since."""
    COUNT_TIME = "count_time"
    """``TIME`` or ``COUNT``, whichever comes first."""
    MANUAL = "manual"
    """The handler calls ``ack.acknowledge()``; acknowledged offsets commit after the poll."""
    MANUAL_IMMEDIATE = "manual_immediate"
    """The handler calls ``ack.acknowledge()``; the commit happens right away."""

    @property
    def is_manual(self) -> bool:
        return self in (AckMode.MANUAL, AckMode.MANUAL_IMMEDIATE)


class Acknowledgment:
    """Handed to a handler in a manual ack mode; ``acknowledge()`` marks the record (or the
    whole batch, for a batch listener) as handled. It may be called later, from another task
    or thread: the record stays uncommitted, and its partition's commits wait, until then.

    ``nack(sleep)`` instead has the record (and what follows it in its partition) delivered
    again after ``sleep``, while other partitions go on; what came before it is committed.
    """

    __slots__ = ("_on_acknowledge", "_returned", "acknowledged", "nack_sleep", "nacked")

    def __init__(self, on_acknowledge: Callable[[], None] | None = None) -> None:
        self._on_acknowledge = on_acknowledge
        self._returned = False
        self.acknowledged = False
        self.nacked = False
        self.nack_sleep = timedelta(0)

    def acknowledge(self) -> None:
        if not self.acknowledged and not self.nacked:
            self.acknowledged = True
            self._report()

    def _report(self) -> None:
        if self._on_acknowledge is not None:
            self._on_acknowledge()

    def nack(self, sleep: timedelta | float = 0.0) -> None:
        """Redeliver this record after ``sleep`` (seconds, or a timedelta). Only while the
        handler runs: the container acts on it when the handler returns.

        Raises:
            AcknowledgmentError: the record was already acknowledged, or the handler has
                returned (acknowledge later instead, or nack before returning).
        """
        if self._returned:
            raise AcknowledgmentError(
                "nack() after the handler returned cannot take effect (the container has "
                "moved on); call nack() before the handler returns, or acknowledge() later"
            )
        if self.acknowledged:
            raise AcknowledgmentError("cannot nack a record that was already acknowledged")
        self.nacked = True
        self.nack_sleep = sleep if isinstance(sleep, timedelta) else timedelta(seconds=sleep)

    def handler_returned(self) -> None:
        """Called by the container when the handler returned or raised."""
        self._returned = True
