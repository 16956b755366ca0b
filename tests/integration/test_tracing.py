"""OpenTelemetry tracing against the real broker: a send's PRODUCER span, the context in the
record's headers, the listener's CONSUMER span as its child (current while the handler
runs), a failure recorded on the span, and a batch span linked to every record."""

from typing import Annotated

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kafkaboot import Headers, ListenerEndpoint, load_settings
from kafkaboot.observability.tracing import (
    TracingBatchInterceptor,
    TracingProducerInterceptor,
    TracingRecordInterceptor,
)
from kafkaboot.template import KafkaTemplate

from .kafka_helpers import create_topic, registry_for, unique, wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def template_for(bootstrap, provider):
    settings = load_settings(environ={}, overrides={"kafka": {"bootstrap-servers": bootstrap}})
    template = KafkaTemplate(settings)
    template.add_interceptor(TracingProducerInterceptor(provider))
    return template


async def test_a_send_and_its_handling_are_one_trace(kafka_bootstrap, spans):
    provider, exporter = spans
    topic = await create_topic(kafka_bootstrap, partitions=2)
    group = unique("g")
    registry = registry_for(kafka_bootstrap)
    registry.add_interceptor(TracingRecordInterceptor(provider))
    seen = []

    async def on_value(value: bytes, headers: Annotated[dict[str, bytes], Headers]) -> None:
        current = trace.get_current_span().get_span_context()
        seen.append((value, current.trace_id, current.span_id, headers))
        if value == b"fails":
            raise RuntimeError("once is enough")

    registry.register(
        ListenerEndpoint(handler=on_value, topics=(topic,), group_id=group, id="traced")
    )
    tracer = provider.get_tracer("test")
    async with template_for(kafka_bootstrap, provider) as template, registry:
        with tracer.start_as_current_span("http request") as request:
            result = await template.send_and_wait(topic, b"hello", key="site-1")
        await template.send_and_wait(topic, b"fails", key="site-2")
        await wait_for(lambda: len(seen) >= 2 and any(v == b"fails" for v, *_ in seen))
    finished = exporter.get_finished_spans()
    [send] = [
        s
        for s in finished
        if s.name == f"send {topic}" and s.attributes["messaging.kafka.message.key"] == "site-1"
    ]
    [process] = [
        s
        for s in finished
        if s.name == f"process {topic}" and s.attributes["messaging.kafka.message.key"] == "site-1"
    ]
    # One trace: the request, the send inside it, the handling as the send's child.
    assert send.kind is SpanKind.PRODUCER
    assert send.parent.span_id == request.get_span_context().span_id
    assert send.context.trace_id == request.get_span_context().trace_id
    assert process.kind is SpanKind.CONSUMER
    assert process.context.trace_id == send.context.trace_id
    assert process.parent.span_id == send.context.span_id
    assert send.attributes["messaging.system"] == "kafka"
    assert send.attributes["messaging.destination.name"] == topic
    assert send.attributes["messaging.kafka.offset"] == result.offset
    assert send.attributes["messaging.destination.partition.id"] == str(result.partition)
    assert process.attributes["messaging.consumer.group.name"] == group
    assert process.attributes["messaging.kafka.offset"] == result.offset
    assert process.attributes["messaging.operation.type"] == "process"
    # The handler ran inside the CONSUMER span, and the record carried the W3C header.
    _, trace_id, span_id, headers = next(s for s in seen if s[0] == b"hello")
    assert (trace_id, span_id) == (process.context.trace_id, process.context.span_id)
    assert headers["traceparent"].startswith(b"00-%032x-" % send.context.trace_id)
    # A failed delivery is an error on its span.
    failed = [
        s
        for s in finished
        if s.name == f"process {topic}" and s.attributes["messaging.kafka.message.key"] == "site-2"
    ]
    assert failed[0].status.status_code is StatusCode.ERROR
    assert failed[0].attributes["error.type"] == "RuntimeError"
    assert any(e.name == "exception" for e in failed[0].events)


async def test_a_batch_span_links_to_each_records_context(kafka_bootstrap, spans):
    provider, exporter = spans
    topic = await create_topic(kafka_bootstrap)
    registry = registry_for(kafka_bootstrap)
    registry.add_interceptor(TracingBatchInterceptor(provider))
    got = []

    async def on_values(values: list[bytes]) -> None:
        got.extend(values)

    registry.register(
        ListenerEndpoint(
            handler=on_values, topics=(topic,), group_id=unique("g"), id="batched", batch=True
        )
    )
    async with template_for(kafka_bootstrap, provider) as template:
        for n in range(5):
            await template.send_and_wait(topic, b"v%d" % n)
    async with registry:
        await wait_for(lambda: len(got) == 5)
    finished = exporter.get_finished_spans()
    sends = {s.context.span_id for s in finished if s.kind is SpanKind.PRODUCER}
    batches = [s for s in finished if s.kind is SpanKind.CONSUMER]
    linked = {link.context.span_id for s in batches for link in s.links}
    assert linked == sends
    assert sum(s.attributes["messaging.batch.message_count"] for s in batches) == 5
