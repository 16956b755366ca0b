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
from kafkaboot.errors import ConfigurationError, KafkaAuthenticationError, KafkaBootError
from kafkaboot.health import Health
from kafkaboot.listener.registry import ListenerRegistry
from kafkaboot.observability.lag import LagProbe
from kafkaboot.observability.logcontext import LogContextInterceptor
from kafkaboot.observability.metrics import Counts
from kafkaboot.observability.status import StatusBoard
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


def _trace(
    registry: ListenerRegistry, template: KafkaTemplate, *, records: bool = True, sends: bool = True
) -> bool:
    """Install the tracing interceptors, if a tracer provider is set (``kafkaboot[otel]``):
    for records unless ``records`` is off, for sends unless ``sends`` is off (Spring Boot's
    ``listener.observation-enabled`` and ``template.observation-enabled`` set to false)."""
    try:
        from kafkaboot.observability.tracing import (
            TracingBatchInterceptor,
            TracingProducerInterceptor,
            TracingRecordInterceptor,
            tracing_configured,
        )
    except ImportError:
        return False  # No opentelemetry-api: nothing could record spans anyway.
    if not tracing_configured():
        log.debug("tracing is off: no OpenTelemetry tracer provider is set")
        return False
    if records:
        registry.add_interceptor(TracingBatchInterceptor(), first=True)
        registry.add_interceptor(TracingRecordInterceptor(), first=True)
    if sends:
        # Last: the headers it adds are the ones sent, after other interceptors' changes.
        template.add_interceptor(TracingProducerInterceptor())
    log.info("tracing: spans for sends and handled records, context in record headers")
    return True


def _prometheus(
    registry: ListenerRegistry, template: KafkaTemplate, lag: LagProbe, counts: Counts
) -> Metrics | None:
    try:
        from kafkaboot.observability.prometheus import Metrics
    except ImportError:
        log.info(
            "Prometheus metrics are off: prometheus-client is not installed (pip install "
            "'kafkaboot[metrics]'); /actuator/prometheus answers 404"
        )
        return None
    return Metrics(registry, template, lag, counts)


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
        self.health = Health(self)
        """Readiness and stalled partitions."""
        self.status = StatusBoard(self)
        """What the status page at ``/actuator/kafka`` shows."""
        self._traced = False
        self._log_context = False
        self.counts: Counts | None = None
        """What the listeners and the template did (``management.metrics.enabled``)."""
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
        for notice in self.settings.kafka.notices():
            log.warning("configuration: %s", notice)  # Set, accepted, and with no effect.
        if not self._log_context and self.settings.kafkaboot.logging.record_context:
            self.registry.add_interceptor(LogContextInterceptor(), first=True)
            self._log_context = True
        if not self._traced and self.settings.management.tracing.enabled:
            kafka = self.settings.kafka
            self._traced = _trace(
                self.registry,
                self.template,
                records=kafka.listener.observation_enabled is not False,
                sends=kafka.template.observation_enabled is not False,
            )
        if self.counts is None and self.settings.management.metrics.enabled:
            self.counts = Counts().install(self.registry, self.template)
            self.metrics = _prometheus(self.registry, self.template, self.health.lag, self.counts)
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
        await self.health.start()
        await self.status.start()
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
                await self._refused(exc)
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

    async def _refused(self, failure: KafkaBootError) -> None:
        """Fail at once when the brokers refuse our credentials or certificate: a retry
        cannot help, and aiokafka words it as brokers that cannot be reached.

        Raises:
            KafkaAuthenticationError: what was refused, and the setting to fix.
        """
        from kafkaboot.security.probe import authentication_failure

        refused = await authentication_failure(self.settings.kafka.producer_kwargs())
        if refused is not None:
            raise KafkaAuthenticationError(f"cannot start: {refused}") from failure

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
            await self.health.stop()
            await self.status.stop()
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
        """Whether the service can do its work (see :meth:`Health.readiness`)."""
        return await self.health.readiness()
