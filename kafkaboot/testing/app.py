"""A kafkaboot service started inside a test: its listeners, template and FastAPI app
against the test's broker (real or ``memory://``), with an ``httpx.AsyncClient`` bound to
the app.

httpx's ``ASGITransport`` sends no lifespan events, so :func:`start_app` starts and stops
the application itself (and runs the service's own FastAPI lifespan around it), where
``kafkaboot run`` would. Each call builds a fresh application, so two tests never share
listeners, template or configuration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from fastapi import FastAPI

from kafkaboot.application import KafkaBootApplication
from kafkaboot.config import load_settings
from kafkaboot.di import ApplicationContainer
from kafkaboot.testing.waiting import wait_for_assignment
from kafkaboot.web import actuator_router, asyncapi_router

if TYPE_CHECKING:
    from kafkaboot.listener.registry import ListenerRegistry
    from kafkaboot.template import KafkaTemplate

__all__ = ["RunningApp", "start_app"]


@dataclasses.dataclass
class RunningApp:
    """A started service: its application, its FastAPI app and a client bound to it."""

    application: KafkaBootApplication
    app: FastAPI
    client: httpx.AsyncClient
    _exit: contextlib.AsyncExitStack

    @property
    def template(self) -> KafkaTemplate:
        return self.application.template

    @property
    def registry(self) -> ListenerRegistry:
        return self.application.registry

    @property
    def bootstrap_servers(self) -> str:
        return _bootstrap_of(self.application)

    async def stop(self) -> None:
        """Close the client, stop the application (listeners commit), end the lifespan."""
        await self._exit.aclose()


async def start_app(
    target: str | KafkaBootApplication,
    *,
    bootstrap: str,
    config: str | None = None,
    profiles: Sequence[str] | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    app: FastAPI | None = None,
    ready_timeout: float = 30.0,
) -> RunningApp:
    """Start ``target`` against ``bootstrap`` and wait until its listeners hold their
    partitions.

    Args:
        target: ``"module"`` or ``"module:app"`` (as ``kafkaboot run`` takes it: the module's
            listeners are registered and its FastAPI app, if any, is served), or a
            ``KafkaBootApplication`` not started yet (its own settings are used as they are;
            ``bootstrap`` must be what they name).
        bootstrap: the broker, written over ``kafka.bootstrap-servers``.
        config, profiles, overrides: configuration, as for ``load_settings`` (with a
            module path only).
        app: the FastAPI app to serve with an application ``target`` (default: only the
            actuator endpoints).
        ready_timeout: how long the listeners may take to join their groups.

    Raises:
        ValueError: an application whose settings name another broker.
        WaitTimeout: the listeners did not get their partitions in time.
    """
    if isinstance(target, KafkaBootApplication):
        application, user_app = target, app
        named = _bootstrap_of(application)
        if named != bootstrap:
            raise ValueError(
                f"the application's settings name {named!r}, not {bootstrap!r}: build it "
                "with overrides={'kafka': {'bootstrap-servers': bootstrap}}, or pass its "
                "module path instead"
            )
    else:
        if app is not None:
            raise ValueError("app= goes with an application target; a module brings its own")
        application, user_app = _build(target, bootstrap, config, profiles, overrides)
    application.startup_deadline = min(application.startup_deadline, ready_timeout)
    if user_app is not None:
        user_app.state.kafkaboot = application  # What its routes read, as under kafkaboot run.
    served = FastAPI()
    served.state.kafkaboot = application
    served.include_router(actuator_router(application))
    if application.settings.kafkaboot.asyncapi.enabled:
        served.include_router(asyncapi_router(application))
    if user_app is not None:
        served.mount("/", user_app)  # After the actuator routes: those come first.
    async with contextlib.AsyncExitStack() as exit_stack:
        if user_app is not None and not getattr(user_app.state, "kafkaboot_installed", False):
            # Its own lifespan (an app made by kafkaboot_app would start its own application).
            await exit_stack.enter_async_context(user_app.router.lifespan_context(user_app))
        application.prepare()
        exit_stack.push_async_callback(application.stop)
        await application.start()
        await wait_for_assignment(application, timeout=ready_timeout)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://test"
        )
        exit_stack.push_async_callback(client.aclose)
        running = RunningApp(application, served, client, exit_stack.pop_all())
    return running


def _build(
    target: str,
    bootstrap: str,
    config: str | None,
    profiles: Sequence[str] | str | None,
    overrides: Mapping[str, Any] | None,
) -> tuple[KafkaBootApplication, FastAPI | None]:
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    user_app = getattr(module, attr) if attr else _one(module, FastAPI)
    if user_app is not None and not isinstance(user_app, FastAPI):
        raise TypeError(f"{target} is a {type(user_app).__name__}, not a FastAPI app")
    merged = {**(overrides or {})}
    merged["kafka"] = {**merged.get("kafka", {}), "bootstrap-servers": bootstrap}
    settings = load_settings(config, profiles=profiles, overrides=merged)
    container = _one(module, ApplicationContainer)
    application = KafkaBootApplication(settings=settings, modules=[module], container=container)
    return application, user_app


def _bootstrap_of(application: KafkaBootApplication) -> str:
    return str(application.settings.kafka.producer_kwargs()["bootstrap_servers"])


def _one(module: Any, kind: type) -> Any:
    found = [value for value in vars(module).values() if isinstance(value, kind)]
    return found[0] if len(found) == 1 else None
