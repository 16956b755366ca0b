"""The one place kafkaboot reaches into aiokafka's consumer for its group coordinator.

aiokafka has no public accessor for it, yet two things need it: readiness (is the
coordinator known, i.e. is the consumer a member of a live group?) and a commit while a
pattern subscription is being swapped (see ``Outcomes``). Kept here, with a test against
aiokafka's real classes, so an aiokafka upgrade that renames it fails a test rather than
turning readiness silently false."""

from __future__ import annotations

from typing import Any

__all__ = ["group_coordinator", "knows_coordinator"]


def group_coordinator(consumer: Any) -> Any:
    """The consumer's ``GroupCoordinator`` (untyped in aiokafka); ``None`` before start."""
    return getattr(consumer, "_coordinator", None)


def knows_coordinator(consumer: Any) -> bool:
    """Whether the consumer has found its group's coordinator broker (aiokafka forgets it
    within a heartbeat of losing it)."""
    return getattr(group_coordinator(consumer), "coordinator_id", None) is not None
