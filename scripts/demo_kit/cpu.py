"""CPU seconds per part of the demo (producers, consumer, broker, the driver itself) and of
the whole machine, from /proc: on a shared 2-core machine the wall time alone cannot say
whether the demo or someone else used the cores. Empty where /proc is missing."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

__all__ = ["CpuMeter"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process(pid: int) -> float:
    """User plus system seconds of one process (0 once it is gone); for this process, with
    its children it waited for (the broker's storage-format JVM)."""
    if pid == os.getpid():
        own = os.times()
        return own.user + own.system + own.children_user + own.children_system
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _machine() -> float:
    """Busy seconds of all cores together since boot (everything but idle and iowait)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(n) for n in stat.readline().split()[1:]]
    except OSError:
        return 0.0
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _TICK


class CpuMeter:
    """Readings of the CPU used so far by each role's processes and by the machine."""

    def __init__(self, roles: dict[str, Callable[[], Iterable[int]]]) -> None:
        self.roles = roles
        self.readings: dict[str, dict[str, float]] = {}

    def read(self, name: str) -> None:
        reading = {role: sum(map(_process, pids())) for role, pids in self.roles.items()}
        reading["machine"] = _machine()
        self.readings[name] = reading

    def between(self, first: str, last: str) -> dict[str, float]:
        """CPU seconds per role from reading ``first`` to ``last``, with ``others``: what
        the rest of the machine used meanwhile."""
        a, b = self.readings.get(first), self.readings.get(last)
        if not a or not b or not b["machine"]:
            return {}
        used = {role: b[role] - a.get(role, 0.0) for role in self.roles}
        used["others"] = max(0.0, b["machine"] - a["machine"] - sum(used.values()))
        return used
