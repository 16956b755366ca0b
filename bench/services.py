"""Running the sample services as users do (``kafkaboot run`` in their own processes), and a
small open-loop HTTP client that costs little CPU next to them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kafkaboot.testing import start_service

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def service(
    name: str, port: int, env: dict[str, str], *extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``kafkaboot run <name>`` on ``port``; stopped with SIGTERM when the block ends."""
    log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)  # noqa: SIM115
    process = start_service(
        name,
        port=port,
        config=f"{name}/application.yml",
        env=env,
        cwd=ROOT,
        extra=extra,
        output=log,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def request(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One HTTP/1.1 request on a new connection."""
    connection = Connection(port)
    try:
        return await connection.send(method, path, body)
    finally:
        await connection.close()


class Connection:
    """A keep-alive HTTP/1.1 connection: a few syscalls per request, no parsing library."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._streams
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        payload = await reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), payload

    async def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            with contextlib.suppress(Exception):
                await self._streams[1].wait_closed()


async def wait_ready(
    port: int, process: subprocess.Popen[bytes], timeout: float = 90, interval: float = 0.3
) -> None:
    """Until ``/actuator/health/readiness`` answers 200, asking every ``interval`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError, IndexError, ValueError):
            status, _ = await request(port, "GET", "/actuator/health/readiness")
            if status == 200:
                return
        await asyncio.sleep(interval)
    raise RuntimeError(f"the service on port {port} was not ready within {timeout:.0f}s")


async def get_json(port: int, path: str) -> Any:
    status, body = await request(port, "GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")
    return json.loads(body)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from ``/proc/stat``."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def machine_steal() -> tuple[float, float]:
    """(stolen, total) CPU seconds of the whole machine so far, from ``/proc/stat``: time
    the hypervisor gave to other guests while this one had work (0 on bare metal)."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    stolen = fields[7] if len(fields) > 7 else 0.0
    return stolen / ticks, sum(fields) / ticks


def steal_percent(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The share of the machine's CPU time stolen between two :func:`machine_steal`."""
    total = after[1] - before[1]
    return round(100 * (after[0] - before[0]) / total, 1) if total > 0 else 0.0


def process_tree_cpu(pid: int) -> float:
    """CPU seconds used so far by ``pid`` and its descendants (``/proc``; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            total += (float(fields[11]) + float(fields[12])) / ticks
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def worker_pids(pid: int) -> list[int]:
    """The processes doing the work of ``kafkaboot run`` started as ``pid``: its children
    under ``--workers N`` (the supervisor only waits), else ``pid`` itself."""
    children: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            children += [int(c) for c in (task / "children").read_text().split()]
    except (OSError, ValueError):
        return [pid]
    return sorted(children) or [pid]


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) used so far by the one process ``pid``, from
    ``/proc/<pid>/stat``; 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (float(fields[11]) + float(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def memory_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory figure of ``pid`` from ``/proc/<pid>/status`` in MB: ``VmHWM`` is its peak
    resident set since it started, ``VmRSS`` the current one; NaN when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return int(value.split()[0]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return float("nan")
