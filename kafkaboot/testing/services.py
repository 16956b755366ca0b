"""Starting a kafkaboot service the way users do, ``kafkaboot run`` in a process of its own,
for end-to-end tests, demos and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

__all__ = ["start_service"]


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
    added to this process's environment; stdout and stderr go together to ``output``
    (text when piped). Stop it with SIGTERM, as a process manager would."""
    command = [sys.executable, "-m", "kafkaboot", "run", target, "--port", str(port)]
    if config is not None:
        command += ["--config", str(config)]
    command += ["--log-level", log_level, *extra]
    return subprocess.Popen(  # noqa: S603 - the caller's own service.
        command,
        cwd=Path(cwd) if cwd is not None else None,
        env=os.environ | dict(env or {}),
        stdout=output,
        stderr=subprocess.STDOUT,
        text=output is subprocess.PIPE,
    )
