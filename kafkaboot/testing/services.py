"""Starting a kafkaboot service the way users do, ``kafkaboot run`` in a process of its own,
for end-to-end tests, demos and benchmarks.

A piped child whose output nobody reads stops once the pipe's 64 KB buffer is full: its
next log line blocks the event loop, and it answers nothing. So the output of a service
started with ``output=PIPE`` is read as it comes by a thread, into a bounded buffer that
``process.stdout.read()``, ``process.communicate()`` and ``process.output()`` return.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["ServiceOutput", "ServiceProcess", "start_service"]

_HEAD_CHARS = 256 * 1024
_TAIL_CHARS = 1024 * 1024
_EOF_WAIT_S = 10.0
"""How long a read waits for the end of output after the process ended (its own children,
``--workers``, hold the pipe open until they end too)."""


class ServiceOutput:
    """What a service wrote, read from its pipe by a thread as it comes: the first 256 KB
    and the last 1 MB (characters), with a note of how much was left out between them."""

    def __init__(self, pipe: IO[str]) -> None:
        self._pipe = pipe
        self._head: list[str] = []
        self._head_size = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_size = 0
        self._dropped = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, name="service-output", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            for line in self._pipe:
                self._keep(line)
        finally:
            self._pipe.close()

    def _keep(self, line: str) -> None:
        with self._lock:
            if self._head_size < _HEAD_CHARS:
                self._head.append(line)
                self._head_size += len(line)
                return
            self._tail.append(line)
            self._tail_size += len(line)
            while self._tail_size > _TAIL_CHARS:
                dropped = self._tail.popleft()
                self._tail_size -= len(dropped)
                self._dropped += len(dropped)

    def text(self) -> str:
        """Everything kept so far (the process may still be writing)."""
        with self._lock:
            gap = [f"[... {self._dropped} characters left out ...]\n"] if self._dropped else []
            return "".join([*self._head, *gap, *self._tail])

    def read(self) -> str:
        """Everything kept, once the output ended (as reading a pipe to its end does)."""
        self._thread.join(_EOF_WAIT_S)
        return self.text()

    def close(self) -> None:
        """Nothing to do (``Popen`` calls it on exit): the thread closes the pipe when the
        output ends, and what it kept stays readable."""

    def wait(self, timeout: float | None) -> None:
        self._thread.join(timeout)


class ServiceProcess(subprocess.Popen[str]):
    """A service whose piped output is drained as it comes (see the module docstring):
    ``stdout`` is a :class:`ServiceOutput`, ``communicate()`` waits and returns it."""

    def __init__(self, command: list[str], **kwargs: Any) -> None:
        super().__init__(command, stdout=subprocess.PIPE, text=True, **kwargs)
        if self.stdout is None:  # pragma: no cover - PIPE always gives one.
            raise RuntimeError("no pipe for the service's output")
        self.captured = ServiceOutput(self.stdout)
        # Popen types stdout as a file; this answers read() and close() as a pipe's would.
        self.stdout = self.captured  # type: ignore[assignment]

    def output(self) -> str:
        """What the service wrote so far."""
        return self.captured.text()

    def communicate(  # type: ignore[override]  # stderr is in stdout: None, as Popen gives.
        self, input: str | None = None, timeout: float | None = None
    ) -> tuple[str, None]:
        """Wait for the process to end (``TimeoutExpired`` after ``timeout``); its output."""
        if input is not None:
            raise ValueError("a service started by start_service has no stdin to write to")
        self.wait(timeout)
        self.captured.wait(_EOF_WAIT_S)
        return self.captured.text(), None


def start_service(
    target: str,
    *,
    port: int,
    config: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    extra: Sequence[str] = (),
    output: int | IO[Any] | None = subprocess.PIPE,
    log_level: str = "warning",
) -> subprocess.Popen[Any]:
    """``python -m kafkaboot run TARGET --port PORT [--config CONFIG] ...`` with ``env``
    added to this process's environment; stdout and stderr go together to ``output``.

    With ``output=PIPE`` (the default) a :class:`ServiceProcess` is returned: its output is
    drained as it comes, so a chatty service never blocks on a full pipe. Stop it with
    SIGTERM, as a process manager would."""
    command = [sys.executable, "-m", "kafkaboot", "run", target, "--port", str(port)]
    if config is not None:
        command += ["--config", str(config)]
    command += ["--log-level", log_level, *extra]
    options: dict[str, Any] = {
        "cwd": Path(cwd) if cwd is not None else None,
        "env": os.environ | dict(env or {}),
        "stderr": subprocess.STDOUT,
    }
    if output == subprocess.PIPE:
        return ServiceProcess(command, **options)
    return subprocess.Popen(command, stdout=output, **options)  # noqa: S603 - the caller's own service.
