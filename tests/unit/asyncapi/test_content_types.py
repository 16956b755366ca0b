"""A message's contentType says what format its bytes are in as the service reads or
writes them: a typed payload by its type, an unannotated one by the configured value
deserializer, what the service sends by the producer's value serializer."""

import pytest

from tests.unit.asyncapi.test_document import described

CODECS = "tests.unit.asyncapi.custom_codecs"
AVRO = "application/vnd.apache.avro+binary"


def content_type(document, channel_id):
    [message] = document["channels"][channel_id]["messages"].values()
    return message.get("contentType", document["defaultContentType"])


@pytest.mark.parametrize(
    ("deserializer", "expected"),
    [
        (None, "application/octet-stream"),  # The handler gets the bytes as they are.
        ("string", "text/plain"),
        ("org.apache.kafka.common.serialization.StringDeserializer", "text/plain"),
        ("json", "application/json"),
        ("bytes", "application/octet-stream"),
        ("long", "application/octet-stream"),  # Eight big-endian bytes, not text.
        (f"{CODECS}:AvroLikeDeserializer", AVRO),  # It says its own.
        (f"{CODECS}:SilentDeserializer", "application/octet-stream"),  # Not known: bytes.
    ],
)
def test_an_unannotated_payload_is_what_the_configured_deserializer_reads(deserializer, expected):
    consumer = {} if deserializer is None else {"value-deserializer": deserializer}
    document = described(consumer=consumer)
    assert content_type(document, "archive") == expected


def test_an_error_handling_deserializer_reads_as_its_delegate():
    document = described(
        consumer={
            "value-deserializer": "org.springframework.kafka.support.serializer."
            "ErrorHandlingDeserializer",
            "properties": {"spring.deserializer.value.delegate.class": "string"},
        }
    )
    assert content_type(document, "archive") == "text/plain"


def test_a_typed_payload_is_read_by_its_type_whatever_the_deserializer():
    document = described(consumer={"value-deserializer": "string"})
    assert content_type(document, "orders") == "application/json"  # Order: read as JSON.
    assert content_type(document, "archive") == "text/plain"


def test_what_the_service_sends_is_what_the_producers_serializer_writes():
    document = described(producer={"value-serializer": f"{CODECS}:AvroLikeSerializer"})
    assert content_type(document, "invoices") == AVRO  # bill's @send_to reply.
    assert content_type(document, "words") == AVRO
    assert content_type(document, "orders") == "application/json"  # Received, as JSON.
    default = described()
    assert content_type(default, "invoices") == "application/json"  # auto: a model as JSON.


def test_dead_letters_keep_the_content_type_of_what_was_received():
    document = described(
        consumer={"value-deserializer": "string"},
        listener={"error-handler": {"dead-letter": {"enabled": True}}},
    )
    assert content_type(document, "archive-dlt") == "text/plain"
