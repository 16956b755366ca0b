"""``kafkaboot run``: one command starts a service (listeners plus HTTP) in one event loop.

TARGET is ``module`` or ``module:attr`` naming a ``KafkaBootApplication``, a FastAPI app,
or a module whose import declares listeners. HTTP is served by uvicorn on ``server.port``
with the actuator endpoints; uvicorn's signal handling gives the shutdown order: the first
SIGTERM/SIGINT stops HTTP intake, then the listeners finish and commit, then the producer
flushes and closes; a second SIGINT forces the exit.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from kafkaboot.application import KafkaBootApplication
from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.di import ApplicationContainer
from kafkaboot.errors import ConfigurationError
from kafkaboot.observability import WORKERS_DIR_ENV
from kafkaboot.observability.logcontext import configure_logging
from kafkaboot.transaction import WORKER_INDEX_ENV
from kafkaboot.web import kafkaboot_app

if TYPE_CHECKING:
    from kafkaboot.testing.memory import InMemoryKafka

__all__ = ["find_application", "resolve_target", "run"]

log = logging.getLogger("kafkaboot.run")
_REUSE_PORT_ENV = "KAFKABOOT_REUSE_PORT"


def _find(module: ModuleType, kind: type) -> Any:
    found = [value for value in vars(module).values() if isinstance(value, kind)]
    return found[0] if len(found) == 1 else None


def resolve_target(
    target: str, settings: KafkaBootSettings
) -> tuple[FastAPI, KafkaBootApplication]:
    """The FastAPI app to serve and the application it runs, from ``module[:attr]``: the
    module's app, with kafkaboot installed in it (its lifespan and endpoints).

    Raises:
        ConfigurationError: the module or attribute does not exist, or has the wrong type.
    """
    app, application = find_application(target, settings)
    if app is None or not getattr(app.state, "kafkaboot_installed", False):
        app = kafkaboot_app(application, app=app)
        # Installed here, not in the module: a later look at the module builds afresh.
        app.state.kafkaboot_installed_by_run = True
    return app, application


def find_application(
    target: str, settings: KafkaBootSettings
) -> tuple[FastAPI | None, KafkaBootApplication]:
    """The module's FastAPI app (if any) and its application, as ``resolve_target`` finds
    them, leaving the app as it is: for commands that describe a service without serving it.

    Raises:
        ConfigurationError: the module or attribute does not exist, or has the wrong type.
    """
    module_name, _, attr = target.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # As `python -m` does: run from the project root.
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import {module_name!r} ({exc}); run from the project root, or fix the "
            "target (module or module:attr)"
        ) from exc
    chosen: Any = None
    if attr:
        if not hasattr(module, attr):
            raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}")
        chosen = getattr(module, attr)
        if not isinstance(chosen, KafkaBootApplication | FastAPI):
            raise ConfigurationError(
                f"{target} is a {type(chosen).__name__}; name a KafkaBootApplication or a "
                "FastAPI app, or just the module"
            )
    application = chosen if isinstance(chosen, KafkaBootApplication) else None
    app = chosen if isinstance(chosen, FastAPI) else None
    app = app or _find(module, FastAPI)
    state = app.state if app is not None else None
    if getattr(state, "kafkaboot_installed", False) and not getattr(
        state, "kafkaboot_installed_by_run", False
    ):
        # Made with kafkaboot_app(...) in the module: the application its lifespan starts.
        application = application or app.state.kafkaboot
    application = application or _find(module, KafkaBootApplication)
    if application is None:
        container = _find(module, ApplicationContainer)
        application = KafkaBootApplication(settings=settings, modules=[module], container=container)
    return app, application


def _reload(
    target: str | None,
    config: str | None,
    profile: str | None,
    host: str | None,
    port: int | None,
    workers: int,
    log_level: str,
    log_format: str,
    broker: str | None,
) -> int:
    """``run`` in a child process, restarted when the project's files change."""
    if workers > 1:
        raise ConfigurationError(
            "--reload runs one process: drop --workers (reloading is for development)"
        )
    from kafkaboot.reload import run_with_reload

    child = [target] if target else []
    child += ["--log-level", log_level, "--log-format", log_format]
    for flag, value in (("--config", config), ("--profile", profile), ("--host", host)):
        child += [flag, value] if value is not None else []
    child += ["--port", str(port)] if port is not None else []
    child += ["--broker", broker] if broker is not None else []
    watch = [os.getcwd()]
    if config is not None:
        watch.append(os.path.dirname(os.path.abspath(config)))
    return run_with_reload(child, watch)


def _in_memory_broker(broker: str | None, workers: int) -> InMemoryKafka | None:
    """The in-memory Kafka ``--broker memory`` asks for, made before any application reads
    its configuration (services may build theirs at import time: the environment variable
    reaches them too).

    Raises:
        ConfigurationError: an unknown ``--broker``, or ``--workers`` above 1.
    """
    if broker is None:
        return None
    if broker != "memory":
        raise ConfigurationError(
            f"--broker {broker!r} is not known: use --broker memory, or leave it out and set "
            "kafka.bootstrap-servers"
        )
    if workers > 1:
        raise ConfigurationError(
            "--broker memory runs in one process: an in-memory Kafka cannot be shared by "
            f"--workers {workers} processes; drop --workers, or run a real broker "
            "(`kafkaboot broker start`)"
        )
    from kafkaboot.testing.memory import InMemoryKafka

    memory = InMemoryKafka("run")
    for client in ("", "CONSUMER_", "PRODUCER_", "ADMIN_"):  # No client may reach a broker.
        os.environ[f"KAFKA_{client}BOOTSTRAP_SERVERS"] = memory.bootstrap_servers
    log.warning(
        "running on an in-memory Kafka (%s): for local play and tests; nothing survives the "
        "process, and no other process can connect to it",
        memory.bootstrap_servers,
    )
    return memory


def _socket(host: str, port: int) -> socket.socket:
    """A listening socket that several worker processes can share (SO_REUSEPORT)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _serve(target: str, settings: KafkaBootSettings, log_level: str) -> int:
    import uvicorn

    check_uvicorn_options(settings)
    app, application = resolve_target(target, settings)
    host, port = settings.server.host, settings.server.port
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level.lower(),
        lifespan="on",
        # Requests still open after this are dropped, so the listeners' stop comes soon.
        timeout_graceful_shutdown=int(settings.kafka.listener.shutdown_timeout.total_seconds()),
        loop=settings.server.loop,
        http=settings.server.http,
    )
    server = uvicorn.Server(config)
    if settings.server.gc_freeze:
        freeze_after_startup(server)

    def shutdown() -> None:
        server.should_exit = True

    application.request_shutdown = shutdown
    sockets = [_socket(host, port)] if os.environ.get(_REUSE_PORT_ENV) == "1" else None
    server.run(sockets=sockets)
    if application.failure is not None:
        print(f"error: kafkaboot could not start: {application.failure}", file=sys.stderr)
        return 1
    return 0 if server.started else 1


def check_uvicorn_options(settings: KafkaBootSettings) -> None:
    """``server.loop`` and ``server.http`` naming an implementation that is not installed
    is a configuration error here, rather than an ImportError deep in uvicorn.

    Raises:
        ConfigurationError: uvloop or httptools is chosen but not installed.
    """
    for key, value in (("loop", settings.server.loop), ("http", settings.server.http)):
        if value in _OPTIONAL and importlib.util.find_spec(value) is None:
            raise ConfigurationError(
                f"server.{key} is {value}, which is not installed: `pip install {value}`, "
                f"or set server.{key}: auto"
            )


_OPTIONAL = ("uvloop", "httptools")


def freeze_after_startup(server: Any) -> None:
    """Once ``server`` has started, collect and then freeze what startup built (modules,
    the app, the clients): the collector never scans it again. A full collection over
    that heap held the event loop for ~60 ms of CPU every few seconds under load; over
    what is left it takes a few ms (docs/configuration.md#latency)."""
    startup = server.startup

    async def startup_then_freeze(sockets: list[socket.socket] | None = None) -> None:
        await startup(sockets=sockets)
        if server.started:
            gc.collect()
            gc.freeze()

    server.startup = startup_then_freeze


def _supervise(argv: Sequence[str], workers: int) -> int:
    """Run ``workers`` processes of the service sharing the HTTP port; forward stop signals.
    Each knows its index, which keeps the transactional ids of its producers its own."""
    sockets = tempfile.mkdtemp(prefix="kafkaboot-workers-")  # For one scrape of all.
    env = os.environ | {_REUSE_PORT_ENV: "1", WORKERS_DIR_ENV: sockets}
    children = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "kafkaboot", "run", *argv],
            env=env | {WORKER_INDEX_ENV: str(index)},
        )
        for index in range(workers)
    ]

    forwarded: set[int] = set()

    def forward(signum: int, frame: object) -> None:
        forwarded.add(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        codes = [child.wait() for child in children]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        shutil.rmtree(sockets, ignore_errors=True)
    return _exit_code(codes, forwarded)


def _exit_code(codes: Sequence[int], forwarded: set[int]) -> int:
    """The supervisor's exit code from its workers': 0 when each stopped cleanly — uvicorn
    re-raises the stop signal it was sent after its graceful shutdown, so -SIGTERM after
    a forwarded SIGTERM is clean; else the first failure, a worker killed by a signal as
    128 + its number, as a shell reports it."""
    for code in codes:
        if code == 0 or -code in forwarded:
            continue
        return 128 - code if code < 0 else code
    return 0


def run(
    target: str | None,
    *,
    config: str | None = None,
    profile: str | None = None,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    log_level: str = "info",
    log_format: str = "text",
    broker: str | None = None,
    reload: bool = False,
) -> int:
    """Start the service; returns the process exit code (non-zero when startup failed).

    ``broker="memory"`` runs it on an in-memory Kafka of its own (local play: nothing
    survives the process, and nothing outside it can connect)."""
    configure_logging(log_level, log_format)
    if reload:
        return _reload(target, config, profile, host, port, workers, log_level, log_format, broker)
    memory = _in_memory_broker(broker, workers)
    # Modules that build their own application at import time read the same configuration.
    if config is not None:
        os.environ["KAFKABOOT_CONFIG"] = os.path.abspath(config)
    if profile is not None:
        os.environ["KAFKABOOT_PROFILES_ACTIVE"] = profile
    server = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    for key, value in server.items():
        os.environ[f"SERVER_{key.upper()}"] = str(value)
    overrides: dict[str, Any] = {"server": server}
    if memory is not None:
        servers = {"bootstrap-servers": memory.bootstrap_servers}
        # Per-client addresses too: none of them may reach a real broker.
        overrides["kafka"] = servers | dict.fromkeys(("consumer", "producer", "admin"), servers)
    settings = load_settings(config, profiles=profile, overrides=overrides)
    target = target or settings.kafkaboot.application.module
    if not target:
        raise ConfigurationError(
            "nothing to run: give a target (`kafkaboot run my_service` or "
            "`my_service:app`) or set kafkaboot.application.module in application.yml"
        )
    if workers > 1:
        child = [target, "--log-level", log_level, "--log-format", log_format]
        child += ["--config", config] if config is not None else []
        child += ["--profile", profile] if profile is not None else []
        child += ["--host", host] if host is not None else []
        child += ["--port", str(port)] if port is not None else []
        return _supervise(child, workers)
    return _serve(target, settings, log_level)
