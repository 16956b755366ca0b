"""Which errors from ``getmany`` stop a container, what its failure reason says, and the waits
between failed polls. Errors are built with the arguments aiokafka 0.14 raises them with."""

import asyncio
import inspect
from datetime import timedelta

import pytest
from aiokafka import TopicPartition
from aiokafka import errors as kafka

from kafkaboot import ExponentialBackOff, FixedBackOff
from kafkaboot.listener.poll_errors import POLL_BACK_OFF, PollBackOff, describe, is_fatal

TP = TopicPartition("orders", 3)


def coordinator_crash():
    """As ``GroupCoordinator._coordination_routine`` wraps an unexpected exception."""
    try:
        try:
            raise ValueError("boom")
        except ValueError as exc:
            raise kafka.KafkaError(f"Unexpected error during coordination {exc!r}") from exc
    except kafka.KafkaError as wrapped:
        return wrapped


FATAL = {
    "topic authorization (fetcher)": kafka.TopicAuthorizationFailedError("orders"),
    "topic authorization (commit)": kafka.TopicAuthorizationFailedError({"b", "a"}),
    "group authorization": kafka.GroupAuthorizationFailedError("billing"),
    "cluster authorization": kafka.ClusterAuthorizationFailedError(),
    "transactional id authorization": kafka.TransactionalIdAuthorizationFailed(),
    "sasl authentication": kafka.SaslAuthenticationFailed("Authentication failed"),
    "authentication": kafka.AuthenticationFailedError(),
    "sasl mechanism": kafka.UnsupportedSaslMechanismError("PLAIN not enabled"),
    "sasl state": kafka.IllegalSaslStateError(),
    "authentication method": kafka.AuthenticationMethodNotSupported(),
    "missing codec library": kafka.UnsupportedCodecError(
        "Libraries for zstd compression codec not found"
    ),
    "unknown codec": kafka.UnsupportedCodecError("Unknown compression codec 0x05"),
    "unsupported version": kafka.UnsupportedVersionError(),
    "unsupported message format": kafka.UnsupportedForMessageFormatError(),
    "incompatible broker": kafka.IncompatibleBrokerVersion(),
    "no committed offset, reset none": kafka.NoOffsetForPartitionError(TP),
    "offset out of range, reset none": kafka.OffsetOutOfRangeError({TP: 42}),
    "record too large": kafka.RecordTooLargeError(
        "There are some messages at [Partition=Offset]: %s=%s whose size is larger than the "
        "fetch size %s and hence cannot be ever returned.",
        TP,
        7,
        1024,
    ),
    "corrupt batch": kafka.CorruptRecordException(f"Invalid CRC - {TP}"),
    "invalid topic": kafka.InvalidTopicError(),
    "invalid group id": kafka.InvalidGroupIdError(),
    "invalid session timeout": kafka.InvalidSessionTimeoutError(),
    "inconsistent group protocol": kafka.InconsistentGroupProtocolError(),
    "coordinator task crashed": coordinator_crash(),
    "consumer closed": kafka.ConsumerStoppedError(),
    "cancelled": asyncio.CancelledError(),
    "keyboard interrupt": KeyboardInterrupt(),
}

RETRIABLE = {
    "connection": kafka.KafkaConnectionError("Connection at 127.0.0.1:9092 closed"),
    "node not ready": kafka.NodeNotReadyError(1),
    "request timed out": kafka.RequestTimedOutError(),
    "client timeout": kafka.KafkaTimeoutError(),
    "no brokers": kafka.NoBrokersAvailable(),
    "unknown topic": kafka.UnknownTopicOrPartitionError(),
    "leader moved": kafka.NotLeaderForPartitionError(),
    "coordinator away": kafka.GroupCoordinatorNotAvailableError(),
    "rebalancing": kafka.RebalanceInProgressError(),
    "unknown broker error": kafka.UnknownError(),
    "unexpected join response": kafka.KafkaError("GroupMaxSizeReachedError()"),
    "os error": ConnectionResetError(104, "Connection reset by peer"),
    "some bug": RuntimeError("unexpected"),
}


@pytest.mark.parametrize("error", FATAL.values(), ids=FATAL.keys())
def test_errors_that_polling_again_cannot_heal_are_fatal(error):
    assert is_fatal(error)


@pytest.mark.parametrize("error", RETRIABLE.values(), ids=RETRIABLE.keys())
def test_transient_and_unknown_errors_are_retried(error):
    assert not is_fatal(error)


def test_a_kafka_error_raised_from_another_kafka_error_is_not_a_crashed_task():
    wrapped = kafka.KafkaError("send failed")
    wrapped.__cause__ = kafka.NodeNotReadyError(1)
    assert not is_fatal(wrapped)


def test_nothing_aiokafka_marks_retriable_is_fatal():
    retriable = [
        cls
        for _, cls in inspect.getmembers(kafka, inspect.isclass)
        if issubclass(cls, kafka.KafkaError) and cls.retriable
    ]
    assert len(retriable) > 10  # The module was read, not an empty list.
    fatal = [cls.__name__ for cls in retriable if is_fatal(cls.__new__(cls))]
    assert fatal == []


def test_missing_codec_library_names_the_codec_and_the_package_to_install():
    reason = describe(FATAL["missing codec library"])
    assert reason.startswith("UnsupportedCodecError: records are compressed with zstd")
    assert "pip install 'aiokafka[zstd]'" in reason
    assert "cramjam" in reason


def test_unknown_codec_says_what_aiokafka_reported():
    reason = describe(FATAL["unknown codec"])
    assert "Unknown compression codec 0x05" in reason
    assert "upgrade aiokafka" in reason


def test_topic_authorization_names_the_topic_and_the_group_to_grant():
    reason = describe(FATAL["topic authorization (fetcher)"], group_id="billing")
    assert reason.startswith("TopicAuthorizationFailedError: not authorized to read topic orders")
    assert "READ and DESCRIBE on topic orders and READ on group billing" in reason


def test_topic_authorization_from_a_commit_names_every_topic():
    assert "topic a, b:" in describe(FATAL["topic authorization (commit)"])


def test_group_authorization_names_the_group_it_carries():
    reason = describe(FATAL["group authorization"], group_id="ignored")
    assert "not authorized to join group billing: grant" in reason
    assert "READ on group billing" in reason


def test_authentication_failure_points_at_the_security_settings():
    reason = describe(FATAL["sasl authentication"])
    assert "(Authentication failed)" in reason
    assert "kafka.security.protocol" in reason


def test_no_committed_offset_names_the_partition_and_the_reset_policy():
    reason = describe(FATAL["no committed offset, reset none"])
    assert "partition orders-3 has no committed offset" in reason
    assert "auto-offset-reset is none: set it to earliest or latest" in reason


def test_offset_out_of_range_names_partition_and_offset():
    assert "position orders-3@42 is no longer in the log" in describe(
        FATAL["offset out of range, reset none"]
    )


def test_record_too_large_fills_in_aiokafkas_unformatted_arguments():
    reason = describe(FATAL["record too large"])
    assert "TopicPartition(topic='orders', partition=3)=7" in reason
    assert "fetch size 1024" in reason
    assert "%s" not in reason
    assert "max-partition-fetch-bytes" in reason


def test_unsupported_version_suggests_upgrading():
    reason = describe(FATAL["unsupported version"])
    assert reason.startswith("UnsupportedVersionError: the broker and aiokafka do not share")


def test_crashed_coordinator_task_names_the_original_exception():
    reason = describe(FATAL["coordinator task crashed"])
    assert "caused by ValueError: boom" in reason
    assert "restart the container" in reason


@pytest.mark.parametrize("error", [*FATAL.values(), *RETRIABLE.values()])
def test_every_description_is_one_line_starting_with_the_error_type(error):
    reason = describe(error)
    assert reason.startswith(f"{type(error).__name__}: ")
    assert "\n" not in reason
    assert reason != f"{type(error).__name__}: "


def test_a_retriable_error_is_described_by_its_message():
    assert describe(RETRIABLE["connection"]) == (
        "KafkaConnectionError: Connection at 127.0.0.1:9092 closed"
    )


def test_poll_back_off_doubles_from_100ms_to_10s():
    policy = ExponentialBackOff(initial=0.1, max_interval=10, max_attempts=None)
    backoff = PollBackOff(policy)
    waits = [backoff.failed() for _ in range(10)]
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10, 10, 10])
    assert backoff.failures == 10


def test_a_successful_poll_resets_the_wait():
    backoff = PollBackOff(ExponentialBackOff(initial=0.1, max_interval=10, max_attempts=None))
    for _ in range(5):
        backoff.failed()
    backoff.succeeded()
    assert backoff.failures == 0
    assert backoff.failed() == pytest.approx(0.1)


def test_the_default_poll_back_off_jitters_around_its_doubling_waits():
    backoff = PollBackOff()
    waits = [backoff.failed() for _ in range(12)]
    assert 0.09 <= waits[0] <= 0.11
    assert 0.18 <= waits[1] <= 0.22
    assert all(9 <= wait <= 11 for wait in waits[8:])
    assert POLL_BACK_OFF.max_attempts is None


def test_a_poll_back_off_that_would_give_up_is_refused():
    with pytest.raises(ValueError, match=r"must not give up.*max_attempts=None"):
        PollBackOff(FixedBackOff(timedelta(seconds=1), max_attempts=3))
