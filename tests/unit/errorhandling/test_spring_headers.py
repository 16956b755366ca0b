"""Dead-letter and retry-topic headers exactly as spring-kafka 3.3 writes them, without a
broker. The expected names, order and encodings are those of records written by spring-kafka
3.3.16's own ``DeadLetterPublishingRecoverer`` and ``@RetryableTopic`` chain
(tests/integration/java/SpringDeadLetters.java, compared on a broker in
tests/integration/test_spring_dead_letters.py)."""

import re
import struct
from pathlib import Path

from aiokafka import ConsumerRecord

from kafkaboot.errorhandling import (
    DeadLetterPublishingRecoverer,
    DeadLetterRecord,
    dead_letter_headers,
)
from kafkaboot.errorhandling.headers import java_big_integer
from kafkaboot.errorhandling.retry_topics import forwarded_headers, main_topic
from kafkaboot.errors import DeserializationError

LEFE = b"org.springframework.kafka.listener.ListenerExecutionFailedException"
DESER = b"org.springframework.kafka.support.serializer.DeserializationException"
TIMESTAMP = 1_700_000_000_123
DLT_ORIGINALS = [
    "kafka_dlt-original-topic",
    "kafka_dlt-original-partition",
    "kafka_dlt-original-offset",
    "kafka_dlt-original-timestamp",
    "kafka_dlt-original-timestamp-type",
    "kafka_dlt-original-consumer-group",
]
DLT_EXCEPTION = [
    "kafka_dlt-exception-fqcn",
    "kafka_dlt-exception-cause-fqcn",
    "kafka_dlt-exception-message",
    "kafka_dlt-exception-stacktrace",
]
RETRY_ORIGINALS = [
    "kafka_original-topic",
    "kafka_original-partition",
    "kafka_original-offset",
    "kafka_original-timestamp",
    "kafka_original-timestamp-type",
    "kafka_dlt-original-consumer-group",  # Spring's KafkaHeaders.ORIGINAL_CONSUMER_GROUP.
]
RETRY_EXCEPTION = [
    "kafka_exception-fqcn",
    "kafka_exception-cause-fqcn",
    "kafka_exception-message",
    "kafka_exception-stacktrace",
]
RETRY_HOP = [
    "retry_topic-original-timestamp",
    "retry_topic-attempts",
    "retry_topic-backoff-timestamp",
]


def record(topic="orders", offset=7, headers=(("trace", b"abc"),), value=b"\xff not json"):
    return ConsumerRecord(
        topic, 2, offset, TIMESTAMP, 0, b"k-1", value, None, 3, len(value), tuple(headers)
    )


def raised(error, cause=None):
    """``error`` as a handler raises it: with a traceback (and ``__cause__``)."""
    try:
        raise error from cause
    except BaseException as caught:
        return caught


def names(headers):
    return [name for name, _ in headers]


def test_a_handler_error_is_wrapped_as_springs_container_wraps_it():
    headers = dead_letter_headers(record(), raised(RuntimeError("boom")), "billing-group")
    assert names(headers) == ["trace", *DLT_EXCEPTION, *DLT_ORIGINALS]
    found = dict(headers)
    assert found["trace"] == b"abc"
    assert found["kafka_dlt-exception-fqcn"] == LEFE
    assert found["kafka_dlt-exception-cause-fqcn"] == b"builtins.RuntimeError"
    assert found["kafka_dlt-exception-message"] == b"Listener failed; boom"
    stack = found["kafka_dlt-exception-stacktrace"]
    assert stack.startswith(LEFE + b": Listener failed\nCaused by: builtins.RuntimeError: boom\n")
    assert b"raise error from cause" in stack  # The Python traceback follows.
    assert found["kafka_dlt-original-topic"] == b"orders"
    assert found["kafka_dlt-original-partition"] == struct.pack(">i", 2)
    assert found["kafka_dlt-original-offset"] == struct.pack(">q", 7)
    assert found["kafka_dlt-original-timestamp"] == struct.pack(">q", TIMESTAMP)
    assert found["kafka_dlt-original-timestamp-type"] == b"CreateTime"
    assert found["kafka_dlt-original-consumer-group"] == b"billing-group"


def test_the_cause_header_names_the_raised_error_also_when_it_has_a_cause():
    # Spring unwraps only its own wrapper: the cause header is the listener's exception,
    # whatever that exception's own cause; the chain is in the stack trace.
    error = raised(ValueError("no such customer"), KeyError("customer"))
    found = dict(dead_letter_headers(record(), error, "billing-group"))
    assert found["kafka_dlt-exception-fqcn"] == LEFE
    assert found["kafka_dlt-exception-cause-fqcn"] == b"builtins.ValueError"
    assert found["kafka_dlt-exception-message"] == b"Listener failed; no such customer"
    assert b"KeyError: 'customer'" in found["kafka_dlt-exception-stacktrace"]


def test_an_error_without_a_message_still_gets_springs_separator():
    found = dict(dead_letter_headers(record(), raised(RuntimeError()), None))
    assert found["kafka_dlt-exception-message"] == b"Listener failed; "
    assert "kafka_dlt-original-consumer-group" not in found  # No group: no header.


def test_an_undecodable_value_is_a_spring_deserialization_exception():
    error = raised(DeserializationError("cannot read the value as Order", record(), "value"))
    headers = dead_letter_headers(record(), error, "billing-group")
    assert names(headers) == ["trace", *DLT_EXCEPTION, *DLT_ORIGINALS]
    found = dict(headers)
    assert found["kafka_dlt-exception-fqcn"] == DESER
    assert found["kafka_dlt-exception-cause-fqcn"] == b"kafkaboot.errors.DeserializationError"
    assert found["kafka_dlt-exception-message"] == (
        b"failed to deserialize; cannot read the value as Order"
    )
    assert found["kafka_dlt-exception-stacktrace"].startswith(DESER + b": failed to deserialize\n")


def test_an_undecodable_key_gets_springs_key_exception_headers():
    error = raised(DeserializationError("cannot read the key", record(), "key"))
    headers = dead_letter_headers(record(), error, "billing-group")
    assert names(headers) == [
        "trace",
        "kafka_dlt-key-exception-fqcn",
        "kafka_dlt-exception-cause-fqcn",  # Spring has one cause header for key and value.
        "kafka_dlt-key-exception-message",
        "kafka_dlt-key-exception-stacktrace",
        *DLT_ORIGINALS,
    ]
    assert dict(headers)["kafka_dlt-key-exception-fqcn"] == DESER


def test_an_undecodable_header_is_a_listener_failure():
    error = raised(DeserializationError("header 'n' is not UTF-8", record(), "header 'n'"))
    found = dict(dead_letter_headers(record(), error, None))
    assert found["kafka_dlt-exception-fqcn"] == LEFE


def test_dead_lettering_a_dead_letter_replaces_the_exception_and_appends_the_originals():
    # Spring's recoverer strips previous exception headers and appends original ones.
    first = dead_letter_headers(record(), raised(RuntimeError("one")), "g1")
    again = dead_letter_headers(record("orders-dlt", 0, first), raised(ValueError("two")), "g2")
    assert names(again) == ["trace", *DLT_ORIGINALS, *DLT_EXCEPTION, *DLT_ORIGINALS]
    letter = DeadLetterRecord(record("orders-dlt-dlt", 0, again))
    assert (letter.original_topic, letter.original_offset) == ("orders-dlt", 0)
    assert letter.exception_message == "Listener failed; two"


def test_java_big_integer_bytes():
    # BigInteger.valueOf(n).toByteArray(): Spring's retry_topic-*-timestamp encoding.
    assert java_big_integer(0) == b"\x00"
    assert java_big_integer(127) == b"\x7f"
    assert java_big_integer(128) == b"\x00\x80"
    assert java_big_integer(-1) == b"\xff"
    assert java_big_integer(-128) == b"\x80"
    assert java_big_integer(-129) == b"\xff\x7f"
    # A value spring-kafka 3.3.16 wrote as retry_topic-original-timestamp on the dev broker.
    assert java_big_integer(0x01A2370BE8E1) == b"\x01\xa27\x0b\xe8\xe1"


def test_the_first_forward_writes_springs_retry_topic_headers():
    error = raised(RuntimeError("boom"))
    headers = forwarded_headers(record(), error, "billing-group", 1, 1_800_000_000_000)
    assert names(headers) == ["trace", *RETRY_EXCEPTION, *RETRY_ORIGINALS, *RETRY_HOP]
    found = dict(headers)
    assert found["kafka_exception-fqcn"] == LEFE
    assert found["kafka_exception-cause-fqcn"] == b"builtins.RuntimeError"
    assert found["kafka_exception-message"] == b"Listener failed; boom"
    assert found["kafka_original-topic"] == b"orders"
    assert found["kafka_original-partition"] == struct.pack(">i", 2)
    assert found["kafka_original-offset"] == struct.pack(">q", 7)
    assert found["kafka_original-timestamp"] == struct.pack(">q", TIMESTAMP)
    assert found["kafka_original-timestamp-type"] == b"CreateTime"
    assert found["kafka_dlt-original-consumer-group"] == b"billing-group"
    assert found["retry_topic-original-timestamp"] == java_big_integer(TIMESTAMP)
    assert found["retry_topic-attempts"] == struct.pack(">i", 2)
    assert found["retry_topic-backoff-timestamp"] == java_big_integer(1_800_000_000_000)


def test_later_forwards_keep_the_first_originals_and_append_the_retry_headers():
    first = forwarded_headers(record(), raised(RuntimeError("one")), "g", 1, 1_800_000_000_000)
    on_retry = record("orders-retry", 0, first)
    second = forwarded_headers(on_retry, raised(ValueError("two")), "g-retry", 2, 1_800_000_001_000)
    assert names(second) == [
        "trace",
        *RETRY_ORIGINALS,
        *RETRY_HOP,
        *RETRY_EXCEPTION,
        *RETRY_HOP,
    ]
    found = dict(second)  # The last value of each name.
    assert found["kafka_original-topic"] == b"orders"
    assert found["kafka_original-offset"] == struct.pack(">q", 7)
    assert found["kafka_dlt-original-consumer-group"] == b"g"
    assert found["kafka_exception-message"] == b"Listener failed; two"
    assert found["retry_topic-attempts"] == struct.pack(">i", 3)
    assert found["retry_topic-original-timestamp"] == java_big_integer(TIMESTAMP)
    assert not any(name.startswith("kafka_dlt-exception") for name in names(second))
    assert main_topic(on_retry) == "orders"


def test_the_main_topic_of_a_record_kafkaboot_forwarded_before_the_spring_headers():
    old = record("orders-retry-0", 0, [("kafka_dlt-original-topic", b"orders")])
    assert main_topic(old) == "orders"
    assert main_topic(record("orders", 0, ())) == "orders"


def test_a_retry_chain_dead_letter_reads_back_for_replay():
    headers = forwarded_headers(record(), raised(RuntimeError("boom")), "g", 3, 0)
    letter = DeadLetterRecord(record("orders-dlt", 0, headers))
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        "orders",
        2,
        7,
    )
    assert letter.original_timestamp == TIMESTAMP
    assert letter.original_consumer_group == "g"
    assert letter.exception_fqcn == LEFE.decode()
    assert letter.exception_cause_fqcn == "builtins.RuntimeError"
    assert letter.exception_message == "Listener failed; boom"
    assert letter.original_headers == [("trace", b"abc")]


DOCS = Path(__file__).parents[3] / "docs" / "error-handling.md"


def test_the_docs_list_exactly_the_headers_kafkaboot_writes():
    error = raised(RuntimeError("boom"))
    key_error = raised(DeserializationError("bad key", record(), "key"))
    written = {
        *names(dead_letter_headers(record(headers=()), error, "g")),
        *names(dead_letter_headers(record(headers=()), key_error, "g")),
        *names(forwarded_headers(record(headers=()), error, "g", 1, 0)),
        *names(forwarded_headers(record(headers=()), key_error, "g", 1, 0)),
    }
    documented = set(re.findall(r"^\| `((?:kafka_|retry_topic-)[\w-]+)`", DOCS.read_text(), re.M))
    assert documented == written


def test_the_docs_give_springs_default_dead_letter_topic_suffix():
    # spring-kafka 3.3 changed DeadLetterPublishingRecoverer's default from ".DLT" to "-dlt".
    text = DOCS.read_text()
    assert "<topic>.DLT" not in text
    assert "Spring's default `-dlt`" in text
    doc = " ".join((DeadLetterPublishingRecoverer.__doc__ or "").split())
    assert "``-dlt``, the default of Spring's ``DeadLetterPublishingRecoverer``" in doc
    assert "alone uses ``.DLT``" not in doc
