"""Put on PYTHONPATH of a service under test (as ``opentelemetry-instrument`` does with its
own sitecustomize): with ``KAFKABOOT_TEST_SPANS`` set, the OpenTelemetry SDK is configured
before the service starts, writing every finished span as a JSON line to that file."""

import os

if os.environ.get("KAFKABOOT_TEST_SPANS"):
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class _JsonLines(SpanExporter):
        def __init__(self, path):
            self.path = path

        def export(self, spans):
            with open(self.path, "a") as out:
                for span in spans:
                    out.write(span.to_json(indent=None) + "\n")
            return SpanExportResult.SUCCESS

    _provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "test")})
    )
    _provider.add_span_processor(
        SimpleSpanProcessor(_JsonLines(os.environ["KAFKABOOT_TEST_SPANS"]))
    )
    trace.set_tracer_provider(_provider)
