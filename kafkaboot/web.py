"""FastAPI integration: the application's lifespan and Spring Boot's actuator endpoints.

``app = kafkaboot_app(application)`` (or ``FastAPI(lifespan=lifespan(application))`` plus
``app.include_router(actuator_router(application))``) lets ``uvicorn module:app`` run a
kafkaboot service too. The application starts in the background, so HTTP answers at once
and readiness reports false until Kafka is reachable and every listener consumer has joined
its group and polled (holding partitions or not).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response

from kafkaboot.application import KafkaBootApplication
from kafkaboot.observability.status import page

__all__ = ["actuator_router", "kafkaboot_app", "lifespan"]

log = logging.getLogger("kafkaboot.web")


def lifespan(
    application: KafkaBootApplication,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """A FastAPI lifespan that starts ``application`` with the app and stops it after HTTP
    intake has stopped. If startup fails for good, the process is asked to exit (SIGTERM to
    itself, so the server shuts down as for any stop) and ``application.failure`` says why."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        app.state.kafkaboot = application
        starting = asyncio.create_task(_start(application), name="kafkaboot:start")
        try:
            yield
        finally:
            if not starting.done():
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
            await application.stop()

    return run


async def _start(application: KafkaBootApplication) -> None:
    try:
        await application.start()
    except Exception as exc:
        application.failure = exc
        log.error("kafkaboot could not start: %s", exc)
        if application.request_shutdown is not None:
            application.request_shutdown()  # `kafkaboot run` stops its server, exit code 1.
        else:
            os.kill(os.getpid(), signal.SIGTERM)  # Under plain uvicorn: stop as a stop would.


def actuator_router(application: KafkaBootApplication) -> APIRouter:
    """``/actuator/health``, ``/actuator/health/readiness``, ``/actuator/prometheus``,
    ``/actuator/kafka/listeners``."""
    router = APIRouter(prefix="/actuator", tags=["actuator"])

    @router.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness: the process and its event loop answer (always 200 ``UP``: a restart
        does not cure a broker outage or a slow downstream); ``components.kafka`` says
        whether a partition is stalled."""
        return {"status": "UP", "components": {"kafka": application.health.kafka_component()}}

    @router.get("/health/readiness")
    async def readiness() -> JSONResponse:
        ready, details = await application.readiness()
        body = {"status": "UP" if ready else "OUT_OF_SERVICE", "details": details}
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/prometheus", response_class=Response)
    async def prometheus() -> Response:
        """Metrics in Prometheus's text format (``kafkaboot[metrics]``)."""
        metrics = application.metrics
        if metrics is None:
            return JSONResponse(
                {
                    "error": "metrics are off: set management.metrics.enabled to true and "
                    "install prometheus-client (pip install 'kafkaboot[metrics]')"
                },
                status_code=404,
            )
        from kafkaboot.observability.prometheus import CONTENT_TYPE

        return Response(await metrics.scrape(), media_type=CONTENT_TYPE)

    @router.get("/kafka", response_class=HTMLResponse)
    async def status_page() -> HTMLResponse:
        """The status page: listeners, partitions, lag, rates; it refreshes itself."""
        return HTMLResponse(page())

    @router.get("/kafka/status")
    async def status() -> dict[str, Any]:
        """What the status page shows, as JSON."""
        return application.status.snapshot()

    @router.get("/kafka/listeners")
    async def listeners() -> list[dict[str, Any]]:
        statuses = [await container.status() for container in application.registry]
        return [dataclasses.asdict(status) for status in statuses]

    return router


def kafkaboot_app(
    application: KafkaBootApplication, app: FastAPI | None = None, **fastapi_options: Any
) -> FastAPI:
    """A FastAPI app (new, or ``app`` given) that runs ``application`` and serves the
    actuator endpoints; an existing app keeps its own lifespan, run around kafkaboot's."""
    if app is None:
        app = FastAPI(lifespan=lifespan(application), **fastapi_options)
    else:
        own = app.router.lifespan_context
        ours = lifespan(application)

        @contextlib.asynccontextmanager
        async def both(inner: FastAPI) -> AsyncIterator[Any]:
            async with ours(inner), own(inner) as state:
                yield state

        app.router.lifespan_context = both
    app.include_router(actuator_router(application))
    if application.settings.kafkaboot.asyncapi.enabled:
        app.include_router(asyncapi_router(application))
    if application.settings.management.tracing.enabled:
        _instrument(app)
    app.state.kafkaboot_installed = True  # Its lifespan starts ``application``,
    app.state.kafkaboot = application  # this one (set again by the lifespan).
    return app


def asyncapi_router(application: KafkaBootApplication) -> APIRouter:
    """``/asyncapi.json`` (the service's AsyncAPI 3.0 document) and ``/asyncapi`` (the same
    as a page, no external assets); built once, on the first request."""
    from kafkaboot.asyncapi import asyncapi_document
    from kafkaboot.asyncapi.page import render_page

    router = APIRouter(tags=["asyncapi"])
    built: list[dict[str, Any]] = []

    def document() -> dict[str, Any]:
        if not built:
            built.append(
                asyncapi_document(application, application.settings.kafkaboot.asyncapi.version)
            )
        return built[0]

    @router.get("/asyncapi.json")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(document())

    @router.get("/asyncapi", response_class=HTMLResponse)
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(render_page(document()))

    return router


def _instrument(app: FastAPI) -> None:
    """A SERVER span per HTTP request (opentelemetry-instrumentation-fastapi), when a tracer
    provider is set: a request, the sends it makes and their handling form one trace."""
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        from kafkaboot.observability.tracing import tracing_configured
    except ImportError:
        return
    if tracing_configured():
        FastAPIInstrumentor.instrument_app(app)
