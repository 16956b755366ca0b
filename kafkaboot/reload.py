"""``kafkaboot run --reload``: run the service in a child process and start it afresh when
its Python files or its YAML configuration change.

The child is the same ``kafkaboot run`` without ``--reload``, in a session of its own so
that a Ctrl-C in the terminal reaches only this process: a change, a Ctrl-C or a SIGTERM
stops the child with exactly one SIGTERM (not SIGINT: uvicorn takes a second SIGINT as
"exit now", and a shell starts background jobs with SIGINT ignored), which is its graceful
stop — HTTP intake ends, listeners finish the record in hand and commit, the template
delivers what is queued — and it gets ``_STOP_GRACE_S`` for it. So a reload loses nothing
and redelivers nothing that was committed.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from kafkaboot.errors import ConfigurationError

__all__ = ["run_with_reload"]

log = logging.getLogger("kafkaboot.run")

_STOP_GRACE_S = 30
"""How long a stopping child may take (listeners' shutdown timeout, then the template's
close) before it is killed."""


def run_with_reload(child_args: Sequence[str], watch: Sequence[str | os.PathLike[str]]) -> int:
    """Run ``kafkaboot run <child_args>`` and restart it on every change under ``watch``
    (``*.py``, ``*.yml``, ``*.yaml``) until interrupted; returns 0.

    Raises:
        ConfigurationError: watchfiles is not installed.
    """
    try:
        import watchfiles
    except ImportError as exc:
        raise ConfigurationError(
            "--reload needs watchfiles: pip install 'kafkaboot[reload]'"
        ) from exc
    paths = [Path(p).resolve() for p in watch]
    command = [sys.executable, "-m", "kafkaboot", "run", *child_args]
    log.info("watching %s for changes to *.py and *.yml", ", ".join(map(str, paths)))
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = signal.signal(signal.SIGTERM, stop)
    child = _start(command)
    try:
        for changes in watchfiles.watch(
            *paths,
            watch_filter=watchfiles.PythonFilter(extra_extensions=(".yml", ".yaml")),
            stop_event=stopping,
            raise_interrupt=False,  # Ctrl-C ends the loop; the child is stopped below.
        ):
            names = sorted({os.path.relpath(path) for _, path in changes})
            log.warning("%s changed: restarting the service", ", ".join(names[:5]))
            _stop(child)
            child = _start(command)
    finally:
        _stop(child)
        signal.signal(signal.SIGTERM, previous)
    return 0


def _start(command: list[str]) -> subprocess.Popen[bytes]:
    # A session of its own: the terminal's Ctrl-C is ours to pass on, once.
    return subprocess.Popen(command, start_new_session=True)  # noqa: S603 - our own command


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        log.warning("the service did not stop within %ds: killing it", _STOP_GRACE_S)
        child.kill()
        child.wait()
