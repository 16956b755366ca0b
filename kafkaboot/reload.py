"""``kafkaboot run --reload``: run the service in a child process and start it afresh when
its Python files or its YAML configuration change.

The child is the same ``kafkaboot run`` without ``--reload``; a change stops it as Ctrl-C
would (SIGINT: HTTP intake ends, listeners finish the record in hand and commit, the
template delivers what is queued) and only then starts the new one, so a reload loses
nothing and redelivers nothing that was committed.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    command = shlex.join([sys.executable, "-m", "kafkaboot", "run", *child_args])
    log.info("watching %s for changes to *.py and *.yml", ", ".join(map(str, paths)))

    def changed(changes: set[tuple[Any, str]]) -> None:
        names = sorted({os.path.relpath(path) for _, path in changes})
        log.warning("%s changed: restarting the service", ", ".join(names[:5]))

    watchfiles.run_process(
        *paths,
        target=command,
        target_type="command",
        callback=changed,
        watch_filter=watchfiles.PythonFilter(extra_extensions=(".yml", ".yaml")),
        sigint_timeout=_STOP_GRACE_S,
        sigkill_timeout=5,
    )
    return 0
