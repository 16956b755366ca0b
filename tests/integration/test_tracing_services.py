"""One trace across two real processes: an HTTP request to the sample producer, its send,
and the central consumer's handling of the record. Each service runs under `kafkaboot
run` with the OpenTelemetry SDK configured before it starts (tracing_site/sitecustomize.py,
as `opentelemetry-instrument` would), writing its spans to a file."""

import asyncio
import json
import os
import secrets
import time
from pathlib import Path

import httpx
import pytest

from kafkaboot.testing import free_ports

from .kafka_helpers import unique
from .test_run import wait_ready
from .test_samples import run_service, stop, wait_for_stats

SITE = Path(__file__).parent / "tracing_site"

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


def traced(spans_file, service):
    path = os.pathsep.join([str(SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {
        "PYTHONPATH": path,
        "KAFKABOOT_TEST_SPANS": str(spans_file),
        "OTEL_SERVICE_NAME": service,
    }


def read_spans(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_request_send_and_handling_are_one_trace(kafka_bootstrap, tmp_path):
    topic = unique("events")
    consumer_port, producer_port = free_ports(2)
    consumer_spans, producer_spans = tmp_path / "consumer.jsonl", tmp_path / "producer.jsonl"
    processes = [
        run_service(
            "sample_counting_consumer",
            consumer_port,
            kafka_bootstrap,
            EVENTS_TOPIC=topic,
            **traced(consumer_spans, "central-consumer"),
        )
    ]
    try:
        await wait_ready(consumer_port, processes[0])
        processes.append(
            run_service(
                "sample_producer_service",
                producer_port,
                kafka_bootstrap,
                EVENTS_TOPIC=topic,
                INSTANCE_ID="site-7",
                **traced(producer_spans, "site-7"),
            )
        )
        await wait_ready(producer_port, processes[1])
        trace_id, caller = secrets.token_hex(16), secrets.token_hex(8)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{producer_port}") as http:
            answer = await http.post(
                "/messages",
                json={"customer_id": "customer-1", "sequence": 0},
                headers={"traceparent": f"00-{trace_id}-{caller}-01"},
            )
        assert answer.status_code == 202, answer.text
        await wait_for_stats(consumer_port, 1)
        deadline = time.monotonic() + 30
        while True:
            mine = [
                s
                for s in read_spans(producer_spans) + read_spans(consumer_spans)
                if s["context"]["trace_id"] == f"0x{trace_id}"
            ]
            kinds = {s["kind"] for s in mine}
            if {"SpanKind.SERVER", "SpanKind.PRODUCER", "SpanKind.CONSUMER"} <= kinds:
                break
            assert time.monotonic() < deadline, f"spans of the trace so far: {mine}"
            await asyncio.sleep(0.2)
    finally:
        stop(processes)
    by_kind = {s["kind"]: s for s in mine if s["kind"] != "SpanKind.INTERNAL"}
    server, send, process = (
        by_kind["SpanKind.SERVER"],
        by_kind["SpanKind.PRODUCER"],
        by_kind["SpanKind.CONSUMER"],
    )
    assert server["parent_id"] == f"0x{caller}"
    assert server["resource"]["attributes"]["service.name"] == "site-7"
    assert send["name"] == f"send {topic}"
    assert send["attributes"]["messaging.destination.name"] == topic
    assert send["attributes"]["messaging.kafka.message.key"] == "customer-1"
    # The send is inside the request's span (FastAPI's instrumentation may put spans of its
    # own in between); the handling is the send's child, in the other process.
    ancestors, at = [], send
    spans_by_id = {s["context"]["span_id"]: s for s in mine}
    while at.get("parent_id") in spans_by_id:
        at = spans_by_id[at["parent_id"]]
        ancestors.append(at["context"]["span_id"])
    assert server["context"]["span_id"] in ancestors
    assert process["name"] == f"process {topic}"
    assert process["parent_id"] == send["context"]["span_id"]
    assert process["resource"]["attributes"]["service.name"] == "central-consumer"
    assert process["attributes"]["messaging.consumer.group.name"]
    assert (
        process["attributes"]["messaging.kafka.offset"]
        == send["attributes"]["messaging.kafka.offset"]
    )
