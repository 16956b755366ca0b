"""KafkaBootApplication: configuration, DI container, topics, template and listeners, started
and stopped together, with or without the ``kafkaboot run`` command.

``async with KafkaBootApplication(config="application.yml", modules=[my_service]) as app:``
loads the configuration, builds the container, wires and scans the modules for listeners,
creates declared topics, starts the template and then the listener containers; leaving the
block stops them in reverse order, so listeners commit before the producer closes.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import pkgutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError
from dependency_injector import providers

from kafkaboot import logging_limits
from kafkaboot.config import KafkaBootSettings, load_settings
from kafkaboot.di import ApplicationContainer
from kafkaboot.errors import ConfigurationError, KafkaBootError
from kafkaboot.listener.registry import ListenerRegistry
from kafkaboot.template import KafkaTemplate

if TYPE_CHECKING:
    from kafkaboot.observability.prometheus import Metrics

__all__ = ["KafkaBootApplication"]

log = logging.getLogger("kafkaboot.application")
STARTUP_DEADLINE_ENV = "KAFKABOOT_STARTUP_DEADLINE"
_DEFAULT_STARTUP_DEADLINE_S = 60.0


def _with_submodules(module: ModuleType) -> list[ModuleType]:
    """A module, or a package with all its submodules (as dependency-injector wires
    ``packages=``): naming ``my_service`` covers ``my_service.listeners`` too."""
    found = [module]
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{module.__name__}."):
            found.append(_module(info.name))
    return found


def _module(value: str | ModuleType) -> ModuleType:
    if isinstance(value, ModuleType):
        return value
    try:
        return importlib.import_module(value)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import module {value!r} ({exc}); check kafkaboot.application.module / "
            "the run target, and that the working directory is the project root"
        ) from exc


def _metrics(registry: ListenerRegistry, template: KafkaTemplate) -> Metrics | None:
    try:
        from kafkaboot.observability.prometheus import Metrics
    except ImportError:
        log.info(
            "metrics are off: prometheus-client is not installed (pip install "
            "'kafkaboot[metrics]'); /actuator/prometheus answers 404"
        )
        return None
    return Metrics(registry, template)


class KafkaBootApplication:
    """One kafkaboot service.

    Args:
        config: the YAML file (default ``$KAFKABOOT_CONFIG`` or ``./application.yml``).
        profiles: active profiles.
        modules: modules (or import paths) to wire for DI and scan for listeners.
        container: a container (an ``ApplicationContainer`` subclass instance) to use instead
            of a plain ``ApplicationContainer``.
        settings: ready settings instead of ``config``/``profiles``/``overrides``.
        overrides: explicit configuration values, highest precedence.
        startup_deadline: how long to keep retrying while Kafka cannot be reached (seconds;
            default ``$KAFKABOOT_STARTUP_DEADLINE`` or 60).
    """

    def __init__(
        self,
        config: str | os.PathLike[str] | None = None,
        *,
        profiles: Sequence[str] | str | None = None,
        modules: Iterable[str | ModuleType] = (),
        container: ApplicationContainer | None = None,
        settings: KafkaBootSettings | None = None,
        overrides: Mapping[str, Any] | None = None,
        startup_deadline: float | None = None,
    ) -> None:
        self.settings = settings or load_settings(config, profiles=profiles, overrides=overrides)
        self.container: Any = container or ApplicationContainer()
        self.container.settings.override(providers.Object(self.settings))
        self.modules = [sub for m in modules for sub in _with_submodules(_module(m))]
        deadline = startup_deadline
        if deadline is None:
            deadline = float(os.environ.get(STARTUP_DEADLINE_ENV, _DEFAULT_STARTUP_DEADLINE_S))
        self.startup_deadline = deadline
        self.started = False
        self.failure: BaseException | None = None
        """Why startup failed for good, when it did (``kafkaboot run`` exits non-zero)."""
        self.request_shutdown: Callable[[], None] | None = None
        """How the web integration asks the server to stop after a failed startup."""
        self._prepared = False
        self.metrics: Metrics | None = None
        """Prometheus metrics (``management.metrics.enabled`` and ``kafkaboot[metrics]``
        installed), made by :meth:`prepare`."""

    @property
    def registry(self) -> ListenerRegistry:
        return self.container.registry()  # type: ignore[no-any-return]

    @property
    def template(self) -> KafkaTemplate:
        return self.container.template()  # type: ignore[no-any-return]

    def prepare(self) -> None:
        """Wire the modules and register their listeners (done once, before starting)."""
        if self._prepared:
            return
        if self.modules:
            self.container.wire(modules=self.modules)
        for module in self.modules:
            self.registry.scan(module)
        self.registry.check_overrides()
        if self.metrics is None and self.settings.management.metrics.enabled:
            self.metrics = _metrics(self.registry, self.template)
        self._prepared = True

    async def start(self) -> None:
        """Start everything, retrying with back-off while Kafka cannot be reached.

        Raises:
            KafkaBootError: already started, or Kafka was not reachable before the deadline.
            ConfigurationError: configuration or listener definitions cannot work.
        """
        if self.started:
            raise KafkaBootError("the application is already started")
        # Before the first connection: a broker away at startup floods the log as well.
        logging_limits.install(self.settings.kafkaboot.logging.repeat_interval.total_seconds())
        try:
            await self._start_with_retries()
        except BaseException:
            logging_limits.release()
            raise
        self.started = True
        if self.metrics is not None:
            await self.metrics.start()
        log.info(
            "kafkaboot application started: %d listener(s), Kafka at %s",
            len(self.registry),
            ",".join(self.settings.kafka.bootstrap_servers),
        )

    async def _start_with_retries(self) -> None:
        self.prepare()
        deadline = time.monotonic() + self.startup_deadline
        delay, attempt = 0.5, 1
        while True:
            try:
                await self._start_once()
                break
            except ConfigurationError:
                raise
            except KafkaBootError as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise KafkaBootError(
                        f"gave up starting after {attempt} attempt(s) in "
                        f"{self.startup_deadline:g}s: {exc}"
                    ) from exc
                log.warning(
                    "startup attempt %d failed: %s; retrying in %.1fs (giving up in %.0fs)",
                    attempt,
                    exc,
                    min(delay, left),
                    left,
                )
                await asyncio.sleep(min(delay, left))
                delay, attempt = min(delay * 2, 10.0), attempt + 1

    async def _start_once(self) -> None:
        await self.container.admin().start()
        template = self.template
        if not template.started:
            await template.start()
        try:
            await self.registry.start()
        except KafkaError as exc:
            await template.stop()
            raise KafkaBootError(
                f"listeners cannot reach Kafka at {','.join(self.settings.kafka.bootstrap_servers)}"
                f" ({exc}); check kafka.bootstrap-servers and that the brokers are running"
            ) from exc
        except BaseException:
            await template.stop()
            raise

    async def stop(self) -> None:
        """Stop listeners (they finish in-flight records and commit), then the template."""
        if not self.started:
            return
        self.started = False
        try:
            await self.registry.stop()
        finally:
            await self.template.stop()
            if self.metrics is not None:
                await self.metrics.close()
            if self.modules:
                self.container.unwire()
            self._prepared = False
            logging_limits.release()
        log.info("kafkaboot application stopped")

    async def __aenter__(self) -> KafkaBootApplication:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service can do its work: started, a broker answering, and every
        consumer of every auto-started listener in its group and polling.

        A consumer counts once it has joined its group and completed a poll since, whatever
        it was assigned: with more consumers (or replicas) than partitions some hold none,
        and that is a steady state, not a fault. A consumer still joining, or whose group
        coordinator cannot be reached, does not count.
        """
        reachable = self.started and await self.template.broker_reachable(timeout=1.5)
        details: dict[str, Any] = {
            "started": self.started,
            "broker_reachable": reachable,
            "listeners": {},
        }
        ready = reachable
        limit = self.settings.kafka.consumer.max_poll_interval.total_seconds()
        now = time.monotonic()
        for container in self.registry:
            if not container.settings.auto_startup:
                continue
            # From the container's own state: no broker round trip in a health check.
            workers = container.workers
            fresh = bool(workers) and all(
                w.polled_at is not None and now - w.polled_at < limit for w in workers
            )
            in_group = sum(1 for w in workers if w.alive and w.polled_in_group)
            state = container.state.value
            if container.failure is not None or (
                container.is_running and not all(w.alive for w in workers)
            ):
                state = "failed"
            ok = state == "running" and bool(workers) and in_group == len(workers) and fresh
            listener: dict[str, Any] = {
                "state": state,
                "partitions": len(container.assignment),
                "consumers": len(workers),
                "consumers_in_group": in_group,
                "recent_poll": fresh,
            }
            if container.failure is not None:
                listener["failure"] = container.failure
            details["listeners"][container.listener_id] = listener
            ready = ready and ok
        return ready, details
