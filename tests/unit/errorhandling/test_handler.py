"""DefaultErrorHandler decisions and the dead-letter header format, without a broker."""

import struct
from datetime import timedelta

import pytest
from aiokafka import ConsumerRecord

from kafkaboot import BatchListenerFailedError, DefaultErrorHandler, FailedRecord, FixedBackOff
from kafkaboot.errorhandling import DeadLetterRecord, dead_letter_headers
from kafkaboot.errors import DeserializationError


def record(offset=7, value=b"\xff not json", headers=(("trace", b"abc"),)):
    return ConsumerRecord(
        "orders", 2, offset, 1_700_000_000_123, 0, b"k-1", value, None, 3, len(value), headers
    )


def failure(error, attempt=1, batch=()):
    return FailedRecord(record(), error, attempt, "billing", "billing-group", batch)


class Recorder:
    def __init__(self, fail_times=0):
        self.recovered = []
        self.fail_times = fail_times

    async def __call__(self, failure):
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("dead-letter topic not writable")
        self.recovered += [r.offset for r in failure.records]


@pytest.mark.asyncio
async def test_retries_as_the_backoff_says_then_recovers():
    recoverer = Recorder()
    handler = DefaultErrorHandler(FixedBackOff(0.25, max_attempts=3), recoverer)
    first = await handler.handle(failure(ValueError("boom"), attempt=1))
    second = await handler.handle(failure(ValueError("boom"), attempt=2))
    assert (first.retry, first.delay) == (True, timedelta(seconds=0.25))
    assert (second.retry, second.delay) == (True, timedelta(seconds=0.25))
    assert recoverer.recovered == []
    last = await handler.handle(failure(ValueError("boom"), attempt=3))
    assert (last.retry, last.stop_reason) == (False, None)
    assert recoverer.recovered == [7]


@pytest.mark.asyncio
async def test_not_retryable_errors_go_to_the_recoverer_at_once():
    recoverer = Recorder()
    handler = DefaultErrorHandler(FixedBackOff(1, max_attempts=10), recoverer)
    action = await handler.handle(failure(DeserializationError("not JSON", record()), attempt=1))
    assert not action.retry
    assert recoverer.recovered == [7]


@pytest.mark.asyncio
async def test_custom_not_retryable_types():
    handler = DefaultErrorHandler(
        FixedBackOff(1, max_attempts=10), Recorder(), not_retryable=(KeyError,)
    )
    assert not (await handler.handle(failure(KeyError("x")))).retry
    assert (await handler.handle(failure(DeserializationError("x", record())))).retry


@pytest.mark.asyncio
async def test_a_failing_recoverer_keeps_the_record_then_stops_the_container():
    recoverer = Recorder(fail_times=5)
    handler = DefaultErrorHandler(FixedBackOff(0, max_attempts=1), recoverer, recovery_attempts=3)
    actions = [await handler.handle(failure(ValueError("boom"), attempt=n)) for n in (1, 2, 3)]
    assert [a.retry for a in actions] == [True, True, True]  # Never committed.
    assert [a.stop_reason is None for a in actions] == [True, True, False]
    assert "could not recover record orders-2@7 after 3 tries" in actions[2].stop_reason
    assert "dead-letter topic not writable" in actions[2].stop_reason


@pytest.mark.asyncio
async def test_recovery_that_succeeds_on_a_later_try_resets_the_count():
    recoverer = Recorder(fail_times=1)
    handler = DefaultErrorHandler(FixedBackOff(0, max_attempts=1), recoverer, recovery_attempts=2)
    assert (await handler.handle(failure(ValueError("x"), attempt=1))).retry
    assert not (await handler.handle(failure(ValueError("x"), attempt=2))).retry
    assert recoverer.recovered == [7]


@pytest.mark.asyncio
async def test_a_whole_failed_batch_is_recovered_record_by_record():
    recoverer = Recorder()
    handler = DefaultErrorHandler(FixedBackOff(0, max_attempts=1), recoverer)
    batch = (record(7), record(8), record(9))
    await handler.handle(failure(ValueError("batch"), batch=batch))
    assert recoverer.recovered == [7, 8, 9]


def test_dead_letter_headers_use_springs_names_and_binary_encodings():
    try:
        try:
            raise KeyError("customer")
        except KeyError as cause:
            raise ValueError("no such customer") from cause
    except ValueError as error:
        headers = dead_letter_headers(record(), error, "billing-group")
    found = dict(headers)
    assert headers[0] == ("trace", b"abc")  # The original headers come first, untouched.
    assert found["kafka_dlt-original-topic"] == b"orders"
    assert found["kafka_dlt-original-partition"] == struct.pack(">i", 2)
    assert found["kafka_dlt-original-offset"] == struct.pack(">q", 7)
    assert found["kafka_dlt-original-timestamp"] == struct.pack(">q", 1_700_000_000_123)
    assert found["kafka_dlt-original-timestamp-type"] == b"CreateTime"
    assert found["kafka_dlt-original-consumer-group"] == b"billing-group"
    # As Spring's container wraps a listener's exception (more in test_spring_headers.py).
    assert found["kafka_dlt-exception-fqcn"] == (
        b"org.springframework.kafka.listener.ListenerExecutionFailedException"
    )
    assert found["kafka_dlt-exception-cause-fqcn"] == b"builtins.ValueError"
    assert found["kafka_dlt-exception-message"] == b"Listener failed; no such customer"
    assert b"raise ValueError" in found["kafka_dlt-exception-stacktrace"]


def test_a_dead_letter_reads_back():
    headers = dead_letter_headers(record(), ValueError("boom"), None)
    letter = DeadLetterRecord(
        ConsumerRecord("orders-dlt", 2, 0, 0, 0, b"k-1", b"v", None, 3, 1, tuple(headers))
    )
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        "orders",
        2,
        7,
    )
    assert letter.original_consumer_group is None
    assert letter.exception_cause_fqcn == "builtins.ValueError"
    assert letter.original_headers == [("trace", b"abc")]


def test_batch_listener_failed_error_names_one_record():
    assert BatchListenerFailedError(index=5).index == 5
    with pytest.raises(TypeError, match="index= or record="):
        BatchListenerFailedError("which one?")
    cause = ValueError("bad")
    assert BatchListenerFailedError(index=0, cause=cause).failure is cause


def test_null_header_values_survive_dead_lettering():
    with_null = record(headers=(("empty", None), ("t", b"1")))
    headers = dead_letter_headers(with_null, ValueError("x"), None)
    assert headers[:2] == [("empty", None), ("t", b"1")]


def test_a_long_error_message_is_capped():
    headers = dict(dead_letter_headers(record(), ValueError("x" * 100_000), None))
    assert len(headers["kafka_dlt-exception-message"]) == len("Listener failed; ") + 4_000


@pytest.mark.asyncio
async def test_recovery_failures_are_counted_per_listener():
    recoverer = Recorder(fail_times=2)
    handler = DefaultErrorHandler(FixedBackOff(0, max_attempts=1), recoverer, recovery_attempts=2)
    first = FailedRecord(record(), ValueError("x"), 1, "billing", "g1")
    other = FailedRecord(record(), ValueError("x"), 1, "audit", "g2")
    assert (await handler.handle(first)).stop_reason is None
    assert (await handler.handle(other)).stop_reason is None  # Not billing's second failure.
    assert not (await handler.handle(first)).retry
