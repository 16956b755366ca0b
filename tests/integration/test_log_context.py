"""Log lines written while a record is handled carry the listener, the record and its
trace, under `kafkaboot run` in text and with --log-format json."""

import asyncio
import json
import secrets
import time

import pytest
from aiokafka import AIOKafkaProducer

from kafkaboot.testing import free_ports, start_service

from .kafka_helpers import create_topic, unique
from .test_prometheus_scrape import ROOT, wait_ready, write_service_config
from .test_tracing_services import traced

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


async def send(bootstrap, topic, value, trace_id):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        parent = f"00-{trace_id}-{secrets.token_hex(8)}-01".encode()
        return await producer.send_and_wait(topic, value, headers=[("traceparent", parent)])
    finally:
        await producer.stop()


async def line_with(service, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in service.output().splitlines():
            if text in line:
                return line
        await asyncio.sleep(0.2)
    raise AssertionError(f"no line with {text!r} in:\n{service.output()[-3000:]}")


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_a_handlers_log_line_names_the_record_and_its_trace(
    kafka_bootstrap, tmp_path, log_format
):
    topic = await create_topic(kafka_bootstrap, prefix="logged")
    config = tmp_path / "application.yml"
    write_service_config(config, kafka_bootstrap, topic)
    (port,) = free_ports(1)
    service = start_service(
        "tests.integration.services.observed_service",
        port=port,
        config=config,
        env={"SERVICE_TOPIC": topic, "SERVICE_GROUP": unique("g")}
        | traced(tmp_path / "spans.jsonl", "observed"),
        cwd=ROOT,
        extra=("--log-format", log_format),
        log_level="info",
    )
    try:
        await wait_ready(port, service)
        trace_id = secrets.token_hex(16)
        sent = await send(kafka_bootstrap, topic, b"log-me", trace_id)
        line = await line_with(service, "asked to log log-me")
    finally:
        service.terminate()
        service.wait(timeout=30)
    if log_format == "json":
        entry = json.loads(line)
        assert entry["level"] == "WARNING"
        assert entry["logger"] == "observed"
        assert entry["message"] == "asked to log log-me"
        assert entry["kafka_listener"] == "observed"
        assert (entry["kafka_topic"], entry["kafka_partition"]) == (topic, 0)
        assert entry["kafka_offset"] == sent.offset
        assert entry["trace_id"] == trace_id
        assert len(entry["span_id"]) == 16
        # Lines outside a record have no record fields.
        other = json.loads(await line_with(service, "kafkaboot application started"))
        assert "kafka_topic" not in other
    else:
        assert line.endswith(
            f"[listener=observed record={topic}-0@{sent.offset} trace={trace_id}]"
        ), line
