"""The producer service's own tests, in memory: its HTTP endpoints publish to the events
topic (no broker, no Java). ``kafkaboot_app`` starts the service as ``kafkaboot run``
would; swap ``memory_kafka.bootstrap_servers`` for ``kafka_bootstrap`` to run them on a
real broker."""

import json
from pathlib import Path

import pytest

from kafkaboot.testing import get_records, get_single_record

CONFIG = str(Path(__file__).parents[1] / "application.yml")

pytestmark = pytest.mark.asyncio


async def test_a_posted_message_lands_on_the_events_topic_keyed_by_customer(
    memory_kafka, kafkaboot_app
):
    service = await kafkaboot_app(
        "sample_producer_service.endpoints",
        bootstrap=memory_kafka.bootstrap_servers,
        config=CONFIG,
    )
    body = {"customer_id": "acme", "sequence": 0, "payload": {"n": 1}}
    response = await service.client.post("/messages", json=body)
    assert response.status_code == 202, response.text
    record = await get_single_record(memory_kafka.bootstrap_servers, "events", timeout=5)
    assert record.key == b"acme"
    assert json.loads(record.value) | {"timestamp": None} == body | {"timestamp": None}
    assert (record.partition, record.offset) == (
        response.json()["partition"],
        response.json()["offset"],
    )
    assert dict(record.headers)["instance-id"]  # $INSTANCE_ID, else the host's name.


async def test_a_batch_is_published_in_order_and_a_bad_message_publishes_nothing(
    memory_kafka, kafkaboot_app
):
    service = await kafkaboot_app(
        "sample_producer_service.endpoints", bootstrap=memory_kafka.bootstrap_servers, config=CONFIG
    )
    batch = [{"customer_id": "acme", "sequence": n} for n in range(5)]
    response = await service.client.post("/messages/batch", json=batch)
    assert response.status_code == 202, response.text
    bad = await service.client.post("/messages", json={"customer_id": "", "sequence": -1})
    assert bad.status_code == 422
    records = await get_records(memory_kafka.bootstrap_servers, "events", count=5, timeout=5)
    assert [json.loads(r.value)["sequence"] for r in records] == [0, 1, 2, 3, 4]
    assert (await service.client.get("/actuator/health")).json()["status"] == "UP"
