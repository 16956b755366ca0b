"""A gate that holds a service process at one point while a file exists: a crash test kills
the process there (inside a transaction, say) whatever the machine's load, instead of
killing it a while after a log line and hoping the point was not passed meanwhile."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from kafkaboot.testing.reading import WaitTimeout

__all__ = ["FaultGate"]

_POLL_S = 0.01


class FaultGate:
    """Both sides of one gate file, shared by a test and the processes it starts.

    The service calls ``await FaultGate(path).hold()`` at the point to be killed at (the
    path from its environment, say). The test closes the gate, waits until the process says
    it holds there, kills it, and opens the gate again::

        gate = FaultGate(tmp_path / "gate")
        gate.close()
        await gate.wait_held(process.pid)
        process.kill()
        gate.open()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def close(self) -> None:
        """From now on a process that reaches :meth:`hold` waits there."""
        self.path.write_bytes(b"")

    def open(self) -> None:
        """Let every waiting process go on (and the next ones pass)."""
        self.path.unlink(missing_ok=True)

    def holders(self) -> list[int]:
        """The process ids that have held at the gate since it was closed, in order."""
        try:
            return [int(line) for line in self.path.read_text().split("\n")[:-1]]
        except FileNotFoundError:
            return []

    async def hold(self) -> None:
        """Service side: while the gate is closed, wait, having added this process's id to
        :meth:`holders`. Returns at once when it is open; never closes it itself."""
        try:  # Without O_CREAT: a gate opened meanwhile stays open.
            gate = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            return
        try:
            os.write(gate, f"{os.getpid()}\n".encode())
        finally:
            os.close(gate)
        while self.path.exists():
            await asyncio.sleep(_POLL_S)

    async def wait_held(self, pid: int, timeout: float = 60.0) -> None:
        """Test side: until process ``pid`` holds at the gate.

        Raises:
            WaitTimeout: it did not within ``timeout`` seconds (or the gate is open).
        """
        deadline = time.monotonic() + timeout
        while pid not in self.holders():
            if time.monotonic() > deadline:
                state = "closed" if self.path.exists() else "open"
                raise WaitTimeout(
                    f"FaultGate {self.path}: process {pid} did not reach it within "
                    f"{timeout:g}s (the gate is {state}; held there: {self.holders()})"
                )
            await asyncio.sleep(_POLL_S)
