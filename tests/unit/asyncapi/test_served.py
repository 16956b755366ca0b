"""A running service serves its AsyncAPI document and page when turned on (off by default:
the document names the brokers, topics and groups to whoever reaches the HTTP port)."""

from pathlib import Path

import pytest

from tests.unit.asyncapi.test_document import valid

CONFIG = str(Path(__file__).parents[3] / "sample_producer_service" / "application.yml")
pytestmark = pytest.mark.asyncio


async def test_the_service_serves_its_document_and_page(memory_kafka, kafkaboot_app):
    # The sample's application.yml sets kafkaboot.asyncapi.enabled: true.
    service = await kafkaboot_app(
        "sample_producer_service.endpoints", bootstrap=memory_kafka.bootstrap_servers, config=CONFIG
    )
    document = valid((await service.client.get("/asyncapi.json")).json())
    assert document["servers"]["broker-1"]["host"] == memory_kafka.bootstrap_servers
    page = await service.client.get("/asyncapi")
    assert page.headers["content-type"].startswith("text/html")
    assert "<code>events</code>" in page.text


async def test_turned_off_it_serves_neither(memory_kafka, kafkaboot_app):
    service = await kafkaboot_app(
        "sample_producer_service.endpoints",
        bootstrap=memory_kafka.bootstrap_servers,
        config=CONFIG,
        overrides={"kafkaboot": {"asyncapi": {"enabled": False}}},
    )
    assert (await service.client.get("/asyncapi.json")).status_code == 404
    assert (await service.client.get("/asyncapi")).status_code == 404


async def test_by_default_it_serves_neither(memory_kafka, kafkaboot_app):
    service = await kafkaboot_app(
        "sample_producer_service.endpoints", bootstrap=memory_kafka.bootstrap_servers
    )
    assert (await service.client.get("/asyncapi.json")).status_code == 404
    assert (await service.client.get("/asyncapi")).status_code == 404
