"""The sample producer's OpenAPI endpoints fuzzed with schemathesis, against a real broker:
every answer is one the schema documents, and the only 5xx are the documented 503 and 504.

The app runs in-process (ASGI) with its template started on a test-owned event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from dependency_injector import providers
from hypothesis import example, given
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import sample_producer_service.endpoints as service
from kafkaboot import load_settings
from kafkaboot.di import ApplicationContainer
from kafkaboot.template import KafkaTemplate
from tests.integration.kafka_helpers import create_topic
from tests.reliability.bad_input_support import fuzz_settings

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

SCHEMA = schemathesis.openapi.from_dict(service.app.openapi())
CASES = SCHEMA.as_strategy(GenerationMode.POSITIVE) | SCHEMA.as_strategy(GenerationMode.NEGATIVE)
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


class App:
    """The producer app wired to a started template, called on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, template: KafkaTemplate) -> None:
        self.loop = loop
        self.template = template
        self.statuses: list[int] = []

    def call(self, case: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=service.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                kwargs = case.as_transport_kwargs(base_url="http://t")
                cookies = kwargs.pop("cookies", None)
                assert not cookies, "the schema declares no cookies"
                if isinstance(kwargs.get("data"), bytes | str):  # httpx's name for raw bytes.
                    kwargs["content"] = kwargs.pop("data")
                if "json" in kwargs:  # ASCII JSON, as httpx cannot send a lone surrogate.
                    kwargs["content"] = json.dumps(kwargs.pop("json")).encode()
                return await http.request(**kwargs)

        response = self.loop.run_until_complete(send())
        self.statuses.append(response.status_code)
        return response


@pytest.fixture(scope="module")
def app(kafka_bootstrap) -> Iterator[App]:
    loop = asyncio.new_event_loop()
    patch = pytest.MonkeyPatch()
    for name in ("EVENTS_TOPIC", "TEST_TOPIC"):
        patch.setattr(service, name, loop.run_until_complete(create_topic(kafka_bootstrap)))
    settings = load_settings(
        "sample_producer_service/application.yml",
        environ={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
    )
    container = ApplicationContainer()
    container.settings.override(providers.Object(settings))
    template = KafkaTemplate(settings)
    container.template.override(providers.Object(template))
    container.wire(modules=[service])
    loop.run_until_complete(template.start())
    try:
        yield App(loop, template)
    finally:
        loop.run_until_complete(template.stop())
        loop.close()
        container.unwire()
        patch.undo()


MESSAGES = SCHEMA["/messages"]["POST"]
BATCH = SCHEMA["/messages/batch"]["POST"]
DEEP: Any = 1
for _ in range(300):
    DEEP = {"a": DEEP}


@fuzz_settings(150)
@given(case=CASES)
# Found: 500 (UnicodeEncodeError) for a customer_id with a lone surrogate ("\ud800" in JSON).
@example(case=MESSAGES.Case(body={"customer_id": "\ud800", "sequence": 1}))
@example(case=BATCH.Case(body=[{"customer_id": "c-\udfff", "sequence": 1}]))
# Found: 503 "Kafka is unavailable" for a payload that cannot be written as JSON.
@example(case=MESSAGES.Case(body={"customer_id": "c", "sequence": 1, "payload": "\udfff"}))
@example(case=MESSAGES.Case(body={"customer_id": "c", "sequence": 1, "payload": DEEP}))
def test_every_answer_is_documented_and_no_undocumented_5xx(app, case):
    response = app.call(case)
    # The broker is up: a 503 here would blame Kafka for the request's own data.
    assert response.status_code != 503, response.text
    documented = case.operation.definition.raw.get("responses", {})
    if response.status_code >= 500:
        assert str(response.status_code) in documented, response.text
        assert response.status_code in (503, 504), response.text
    case.validate_response(response, checks=CHECKS)
