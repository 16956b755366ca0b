"""Value types that configuration files write the Spring Boot way.

Durations accept ``500ms``, ``5s``, ``1m``, ``2h``, ``1d``, ISO-8601 ``PT5S`` and plain
milliseconds; data sizes accept ``16KB``, ``1MB`` and plain bytes, as Spring Boot does.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

__all__ = [
    "DataSize",
    "Duration",
    "ImportPaths",
    "ServerList",
    "parse_data_size",
    "parse_duration",
    "to_ms",
]

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIMPLE_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_DURATION_HELP = "write a duration such as 500ms, 5s, 1m, 2h, 1d, PT5S, or plain milliseconds"


def parse_duration(value: Any) -> timedelta:
    """Parse a Spring Boot style duration; a bare number means milliseconds.

    Raises:
        ValueError: the value is not a duration (the message shows accepted forms).
    """
    if isinstance(value, timedelta):
        return value
    try:
        duration = _duration(value)
    except OverflowError:  # timedelta stops at 999999999 days; .inf and 1e300 go past it.
        raise ValueError(f"{value!r} is too long for a duration (at most 999999999 days)") from None
    if duration is None:
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HELP}")
    return duration


def _duration(value: Any) -> timedelta | None:
    """The duration ``value`` spells, or ``None`` when it spells none.

    Raises:
        OverflowError: it spells one too long for ``timedelta``.
    """
    if isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, int | float):
        return timedelta(milliseconds=value)
    if isinstance(value, str):
        simple = _SIMPLE_DURATION.match(value)
        if simple:
            amount, unit = simple.groups()
            return timedelta(milliseconds=float(amount) * _UNIT_MS[(unit or "ms").lower()])
        iso = _ISO_DURATION.match(value.strip())
        if iso and any(iso.groupdict().values()):
            parts = {k: float(v) for k, v in iso.groupdict().items() if v}
            return timedelta(
                days=parts.get("d", 0),
                hours=parts.get("h", 0),
                minutes=parts.get("m", 0),
                seconds=parts.get("s", 0),
            )
    return None


def to_ms(duration: timedelta) -> int:
    """Whole milliseconds, the unit every Kafka client setting uses."""
    return round(duration.total_seconds() * 1000)


_SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb|tb)?\s*$", re.IGNORECASE)


def parse_data_size(value: Any) -> int:
    """Parse a Spring Boot ``DataSize`` (``16KB``, ``1MB``; binary units) into bytes.

    Raises:
        ValueError: the value is not a size.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            amount, unit = match.groups()
            return int(amount) * _SIZE_UNITS[(unit or "b").lower()]
    raise ValueError(f"{value!r} is not a data size; write bytes such as 16384, 16KB or 1MB")


def _split_servers(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _join_servers(value: list[str]) -> str:
    return ",".join(value)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: f"{to_ms(d)}ms", return_type=str),
]
"""A duration read the Spring Boot way; shown back as milliseconds."""

DataSize = Annotated[int, BeforeValidator(parse_data_size)]
"""A size in bytes, read from ``16384``, ``16KB`` or ``1MB``."""

ServerList = Annotated[
    list[str],
    BeforeValidator(_split_servers),
    PlainSerializer(_join_servers, return_type=str),
]
"""``host:port`` addresses from a comma-separated string or a YAML list."""

ImportPaths = Annotated[
    list[str],
    BeforeValidator(_split_servers),
    PlainSerializer(_join_servers, return_type=str),
]
"""``package.module:Name`` import paths from a comma-separated string or a YAML list."""
