"""While no broker answers (issue 13, scenario 7): once the template knows it, sends fail
promptly with an error that says nothing was written; the application stays up and
recovers by itself; a shutdown during the outage stays within its bound."""

import asyncio
import json
import signal
import time

import httpx
import pytest

from kafkaboot import load_settings
from kafkaboot.application import KafkaBootApplication
from kafkaboot.errors import KafkaSendError, SendOutcomeUnknownError
from kafkaboot.testing import free_ports, start_service

from .kafka_helpers import create_topic, read_all
from .test_run import ROOT, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

DELIVERY_TIMEOUT = "30s"  # As the sample producer service: far above the bound tested.
PROMPT_S = 5.0


@pytest.fixture
def kafka_node(disposable_broker):
    return disposable_broker


async def _until(condition, timeout, message):
    """Await ``condition()`` (a coroutine function) until it is true, within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {message}"
        await asyncio.sleep(0.1)


async def _not_ready(app):
    ready, _ = await app.readiness()
    return not ready


def _application(bootstrap):
    settings = load_settings(
        environ={},
        overrides={
            "kafka": {
                "bootstrap-servers": bootstrap,
                "producer": {"delivery-timeout": DELIVERY_TIMEOUT},
            }
        },
    )
    return KafkaBootApplication(settings=settings)


async def _refused_promptly(template, topic, key):
    started = time.monotonic()
    with pytest.raises(KafkaSendError) as refused:
        await asyncio.wait_for(template.send_and_wait(topic, key, key=key), PROMPT_S * 2)
    elapsed = time.monotonic() - started
    assert elapsed < PROMPT_S, f"refused only after {elapsed:.1f}s"
    return refused.value


async def _send_until_accepted(template, topic, within):
    """Send until a send is accepted (Kafka back); its key, and the errors before it."""
    deadline = time.monotonic() + within
    refusals = []
    while time.monotonic() < deadline:
        key = f"after-{len(refusals)}"
        try:
            await asyncio.wait_for(template.send_and_wait(topic, key, key=key), 20)
        except KafkaSendError as exc:
            refusals.append(exc)
            await asyncio.sleep(0.2)
            continue
        return key, refusals
    raise AssertionError(f"sends still refused after {within}s: {refusals[-1:]}")


@pytest.mark.asyncio
async def test_once_readiness_is_false_sends_fail_promptly_and_recover_without_restart(kafka_node):
    cluster = kafka_node
    app = _application(cluster.bootstrap_servers)
    try:
        topic = await create_topic(cluster.bootstrap_servers)
        await app.start()
        template = app.template
        reported_sent = [b"before"]
        await template.send_and_wait(topic, "before", key="before")

        await asyncio.to_thread(cluster.stop_node, 1)
        await _until(lambda: _not_ready(app), 15, "readiness to turn false")

        error = await _refused_promptly(template, topic, "during")
        assert not isinstance(error, SendOutcomeUnknownError)
        assert error.retriable
        assert "nothing was written" in str(error)
        assert cluster.bootstrap_servers in str(error)
        assert app.started

        await asyncio.to_thread(cluster.start_node, 1)
        await asyncio.to_thread(cluster.wait_ready, 60)
        key, refusals = await _send_until_accepted(template, topic, within=30)
        assert not [e for e in refusals if isinstance(e, SendOutcomeUnknownError)]
        reported_sent.append(key.encode())
        assert (await app.readiness())[0]

        written = [
            r.value
            for r in await read_all(
                cluster.bootstrap_servers, topic, len(reported_sent) + 1, wait=2
            )
        ]
        assert sorted(written) == sorted(reported_sent)  # Nothing refused was written.
    finally:
        await app.stop()


@pytest.mark.asyncio
async def test_the_template_notices_by_itself_that_no_broker_answers(kafka_node):
    """No readiness check and no send needed: the producer's own failed metadata refresh
    tells the template, so the first send after the outage is already refused."""
    cluster = kafka_node
    app = _application(cluster.bootstrap_servers)
    try:
        topic = await create_topic(cluster.bootstrap_servers)
        await app.start()
        template = app.template
        await template.send_and_wait(topic, "before", key="before")

        await asyncio.to_thread(cluster.stop_node, 1)
        deadline = time.monotonic() + PROMPT_S
        while template.kafka_available:
            assert time.monotonic() < deadline, "the template did not notice the outage"
            await asyncio.sleep(0.05)
        error = await _refused_promptly(template, topic, "during")
        assert not isinstance(error, SendOutcomeUnknownError)

        started = time.monotonic()
        await asyncio.wait_for(app.stop(), 30)
        stopped_in = time.monotonic() - started
        assert stopped_in < 12, f"the application took {stopped_in:.1f}s to stop"
    finally:
        await app.stop()


@pytest.mark.asyncio
async def test_the_sample_answers_503_promptly_during_the_outage_and_202_after(
    kafka_node, tmp_path
):
    """The sample producer service (delivery timeout 30 s): POST /messages answers 503 at
    once while no broker answers, 202 again once one does, without a restart; every
    message answered 202 is in the topic and no message answered 503 is."""
    cluster = kafka_node
    [port] = free_ports(1)
    service = None
    try:
        topic = await create_topic(cluster.bootstrap_servers)
        # A file, not a pipe nobody reads: aiokafka logs every failed connect while the
        # broker is away, and a full pipe would block the service.
        with (tmp_path / "service.log").open("w") as output:
            service = start_service(
                "sample_producer_service",
                port=port,
                config="sample_producer_service/application.yml",
                env={"KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers, "EVENTS_TOPIC": topic},
                cwd=ROOT,
                output=output,
            )
        await wait_ready(port, service)
        answers = {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:

            async def post(sequence):
                body = {"customer_id": "site-1", "sequence": sequence}
                started = time.monotonic()
                response = await http.post("/messages", json=body)
                answers[sequence] = response.status_code
                return response, time.monotonic() - started

            assert (await post(0))[0].status_code == 202
            await asyncio.to_thread(cluster.stop_node, 1)
            deadline = time.monotonic() + 15
            while (await http.get("/actuator/health/readiness")).status_code != 503:
                assert time.monotonic() < deadline, "readiness never turned false"
                await asyncio.sleep(0.1)

            response, elapsed = await post(1)
            assert response.status_code == 503, response.text
            assert elapsed < PROMPT_S, f"503 only after {elapsed:.1f}s"
            assert "nothing was written" in response.json()["error"]

            await asyncio.to_thread(cluster.start_node, 1)
            await asyncio.to_thread(cluster.wait_ready, 60)
            deadline = time.monotonic() + 30
            sequence = 2
            while (await post(sequence))[0].status_code != 202:
                assert answers[sequence] == 503, answers  # Never "outcome unknown" here.
                assert time.monotonic() < deadline, "POST /messages still refused after 30s"
                sequence += 1
                await asyncio.sleep(0.2)
        records = await read_all(cluster.bootstrap_servers, topic, len(answers), wait=2)
        written = sorted(json.loads(r.value)["sequence"] for r in records)
        assert written == sorted(s for s, status in answers.items() if status == 202)
    finally:
        if service is not None:
            service.send_signal(signal.SIGTERM)
            service.wait(30)
