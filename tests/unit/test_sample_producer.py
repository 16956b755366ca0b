"""The sample producer's HTTP contract: 202, 207, 422, 413, 503 and 504, without a broker."""

import json

import httpx
import pytest
from dependency_injector import providers

import sample_producer_service.endpoints as service
from kafkaboot import load_settings
from kafkaboot.di import ApplicationContainer
from kafkaboot.errors import (
    KafkaSendError,
    SendBatchError,
    SendOutcomeUnknownError,
    SerializationError,
)
from kafkaboot.template import KafkaTemplate, SendResult

pytestmark = pytest.mark.asyncio


class Result:
    partition, offset = 0, 7


class RecordingTemplate:
    """A stand-in template, as a user's unit tests would use."""

    def __init__(self):
        self.sent = []

    async def send_and_wait(self, topic, value, **options):
        self.sent.append((topic, value, options))
        return Result()

    async def send_batch(self, records):
        self.sent += records
        return [Result() for _ in records]


@pytest.fixture
def container():
    container = ApplicationContainer()
    container.settings.override(providers.Object(load_settings(environ={})))
    container.wire(modules=[service])
    yield container
    container.unwire()


def client():
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=service.app), base_url="http://t")


MESSAGE = {"customer_id": "c-1", "sequence": 3, "payload": {"kwh": 1.5}}


async def test_message_is_published_keyed_by_customer(container):
    fake = RecordingTemplate()
    with container.template.override(providers.Object(fake)):
        async with client() as http:
            response = await http.post("/messages", json=MESSAGE)
    assert response.status_code == 202
    assert response.json() == {"partition": 0, "offset": 7}
    [(topic, message, options)] = fake.sent
    assert (topic, message.customer_id, options["key"]) == ("events", "c-1", "c-1")
    assert options["headers"] == {"instance-id": service.INSTANCE_ID}


async def test_batch_and_test_endpoint(container):
    fake = RecordingTemplate()
    with container.template.override(providers.Object(fake)):
        async with client() as http:
            batch = await http.post("/messages/batch", json=[MESSAGE, MESSAGE | {"sequence": 4}])
            text = await http.get("/test")
    assert batch.json() == {"sent": 2}
    assert text.status_code == 200
    assert fake.sent[-1] == ("test-topic", "Spring Message Test", {})


async def test_invalid_body_is_422_with_field_errors(container):
    async with client() as http:
        response = await http.post("/messages", json={"customer_id": "", "sequence": -1})
    assert response.status_code == 422
    fields = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert fields == {("body", "customer_id"), ("body", "sequence")}


async def test_oversized_body_is_413(container, monkeypatch):
    monkeypatch.setattr(service, "MAX_BODY_BYTES", 100)
    async with client() as http:
        response = await http.post("/messages", json=MESSAGE | {"payload": "x" * 500})
    assert response.status_code == 413
    assert "over the limit of 100" in response.json()["error"]


async def test_oversized_chunked_body_without_length_is_413_and_sends_nothing(
    container, monkeypatch
):
    monkeypatch.setattr(service, "MAX_BODY_BYTES", 100)
    sent = []
    monkeypatch.setattr(KafkaTemplate, "send_and_wait", lambda *a, **k: sent.append(a))

    async def chunks():
        body = json.dumps(MESSAGE | {"payload": "x" * 500}).encode()
        for start in range(0, len(body), 64):
            yield body[start : start + 64]

    async with client() as http:
        response = await http.post(
            "/messages", content=chunks(), headers={"content-type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "over the limit of 100" in response.json()["error"]
    assert sent == []


async def test_batch_over_the_configured_count_is_413_and_sends_nothing(container, monkeypatch):
    monkeypatch.setattr(service, "MAX_BATCH_MESSAGES", 3)
    fake = RecordingTemplate()
    batch = [MESSAGE | {"sequence": n} for n in range(4)]
    with container.template.override(providers.Object(fake)):
        async with client() as http:
            refused = await http.post("/messages/batch", json=batch)
            accepted = await http.post("/messages/batch", json=batch[:3])
    assert refused.status_code == 413
    assert "batch of 4 messages is over the limit of 3" in refused.json()["error"]
    assert "MAX_BATCH_MESSAGES" in refused.json()["error"]
    assert accepted.json() == {"sent": 3}
    assert len(fake.sent) == 3


async def test_openapi_documents_the_refusals_of_each_endpoint():
    paths = service.app.openapi()["paths"]
    assert set(paths["/messages/batch"]["post"]["responses"]) >= {"202", "207", "413", "503"}
    assert set(paths["/messages"]["post"]["responses"]) >= {"202", "413", "503", "504"}
    assert set(paths["/test"]["get"]["responses"]) >= {"200", "503", "504"}


async def test_kafka_unavailable_is_503_with_a_json_error(container):
    stopped = KafkaTemplate(load_settings(environ={}))  # Never started: as when Kafka is down.
    with container.template.override(providers.Object(stopped)):
        async with client() as http:
            response = await http.post("/messages", json=MESSAGE)
    assert response.status_code == 503
    assert "Kafka is unavailable" in response.json()["error"]


class FailingTemplate:
    """Fails every send with ``error``, as the real template does when Kafka is away."""

    def __init__(self, error):
        self.error = error

    async def send_and_wait(self, topic, value, **options):
        raise self.error


async def test_a_send_with_an_unknown_outcome_is_504_and_a_refused_one_503(container):
    unknown = SendOutcomeUnknownError("outcome unknown: may still be written", topic="events")
    refused = KafkaSendError("not sent: nothing was written", topic="events", retriable=True)
    async with client() as http:
        with container.template.override(providers.Object(FailingTemplate(unknown))):
            timed_out = await http.post("/messages", json=MESSAGE)
        with container.template.override(providers.Object(FailingTemplate(refused))):
            not_sent = await http.post("/messages", json=MESSAGE)
    assert timed_out.status_code == 504
    assert "may still be written" in timed_out.json()["error"]
    assert not_sent.status_code == 503
    assert "nothing was written" in not_sent.json()["error"]


class PartlyFailingTemplate:
    """Delivers the first record, refuses the second, loses track of the third."""

    async def send_batch(self, records):
        outcomes = [
            SendResult(records[0], "events", 4, 17, 0),
            KafkaSendError("not sent: nothing was written", topic="events"),
            SendOutcomeUnknownError("outcome unknown", topic="events"),
        ]
        raise SendBatchError(records, outcomes)


async def test_a_partly_sent_batch_is_207_with_each_record_status(container):
    with container.template.override(providers.Object(PartlyFailingTemplate())):
        async with client() as http:
            response = await http.post(
                "/messages/batch", json=[MESSAGE | {"sequence": n} for n in range(3)]
            )
    assert response.status_code == 207
    body = response.json()
    assert body["sent"] == 1
    assert [r["status"] for r in body["results"]] == [202, 503, 504]
    assert body["results"][0] == {
        "customer_id": "c-1",
        "sequence": 0,
        "status": 202,
        "partition": 4,
        "offset": 17,
    }
    assert [r["sequence"] for r in body["results"]] == [0, 1, 2]
    assert "nothing was written" in body["results"][1]["error"]


async def test_a_customer_id_with_a_lone_surrogate_is_422_not_500(container):
    body = b'{"customer_id": "c-\\ud800", "sequence": 1}'  # Valid JSON; no UTF-8 form.
    async with client() as http:
        response = await http.post(
            "/messages", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["body", "customer_id"], "c-\ud800")


async def test_a_message_that_cannot_be_serialized_is_422_not_503(container):
    error = SerializationError("cannot write a Message as JSON: nested too deeply")
    with container.template.override(providers.Object(FailingTemplate(error))):
        async with client() as http:
            response = await http.post("/messages", json=MESSAGE)
    assert response.status_code == 422
    assert "the message cannot be written: cannot write a Message" in response.json()["error"]


class SerializationFailingTemplate:
    """Delivers the first record; the second cannot be serialized (as send_batch reports it)."""

    async def send_batch(self, records):
        failure = KafkaSendError("record 1 of the batch was not sent: ...", topic="events")
        failure.__cause__ = SerializationError("nested too deeply")
        raise SendBatchError(records, [SendResult(records[0], "events", 0, 3, 0), failure])


async def test_a_batch_line_that_cannot_be_serialized_is_422(container):
    with container.template.override(providers.Object(SerializationFailingTemplate())):
        async with client() as http:
            response = await http.post(
                "/messages/batch", json=[MESSAGE | {"sequence": n} for n in range(2)]
            )
    assert response.status_code == 207
    assert [r["status"] for r in response.json()["results"]] == [202, 422]


async def test_the_template_is_injected_without_a_thread_hop(container, monkeypatch):
    # FastAPI runs a plain callable dependency (dependency-injector's Provide) in its thread
    # pool on every request: a quarter of the service's CPU per message in the demo.
    def no_threads(*args, **kwargs):
        raise AssertionError("a dependency ran in the thread pool")

    monkeypatch.setattr("fastapi.dependencies.utils.run_in_threadpool", no_threads)
    fake = RecordingTemplate()
    with container.template.override(providers.Object(fake)):
        async with client() as http:
            for path, body in (("/messages", MESSAGE), ("/messages/batch", [MESSAGE])):
                assert (await http.post(path, json=body)).status_code == 202
    assert len(fake.sent) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"customer_id": "c-\u0000", "sequence": 1}, "customer_id"),
        ({"customer_id": "c-1", "sequence": 2**63}, "sequence"),
    ],
    ids=["nul-in-customer-id", "sequence-over-64-bits"],
)
async def test_a_message_the_central_database_cannot_store_is_422(container, body, field):
    """Valid JSON that the central consumer's database would refuse (PostgreSQL stores no
    NUL in text; the sequence is a 64-bit column) is refused here, where the site learns
    of it, not there, where it would fail a whole batch."""
    async with client() as http:
        response = await http.post("/messages", json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]


async def test_a_timestamp_without_a_time_zone_is_utc():
    from datetime import UTC, datetime

    from sample_producer_service.models import Message

    message = Message(customer_id="c", sequence=0, timestamp="2026-12-03T10:00:00")
    assert message.timestamp == datetime(2026, 12, 3, 10, tzinfo=UTC)
