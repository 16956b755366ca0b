"""What an error from ``AIOKafkaConsumer.getmany`` means: stop the container, or wait and retry.

aiokafka retries broker trouble inside the consumer (a dead broker, a moved leader, a
coordinator away): ``getmany`` then returns nothing rather than raising. What it does raise
comes from three places, and most of it never heals by polling again:

* the fetcher, per partition: not authorized to read the topic, an offset out of range or no
  committed offset under ``auto_offset_reset="none"``, a record larger than the fetch size;
* decoding a fetched batch: a codec whose library is missing (``UnsupportedCodecError``:
  snappy, lz4 and zstd need ``cramjam``) or a batch failing its CRC. The position does not
  move, so every later poll raises it again;
* the group coordinator: not authorized for the group, an invalid group id or session
  timeout, an inconsistent assignment protocol, or its own task crashing.

Fatal errors stop the container with :func:`describe` as the reason, as Spring's container
stops on authentication and authorization failures and on ``NoOffsetForPartitionException``.
Anything else is polled again after a growing wait (:class:`PollBackOff`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from aiokafka import TopicPartition
from aiokafka import errors as kafka

from kafkaboot.errorhandling.backoff import BackOff, ExponentialBackOff

__all__ = ["POLL_BACK_OFF", "PollBackOff", "describe", "is_auth_failure", "is_fatal"]

_AUTHORIZATION: tuple[type[kafka.KafkaError], ...] = (
    kafka.TopicAuthorizationFailedError,
    kafka.GroupAuthorizationFailedError,
    kafka.ClusterAuthorizationFailedError,
    kafka.TransactionalIdAuthorizationFailed,
    kafka.DelegationTokenAuthorizationFailed,
)
_AUTHENTICATION: tuple[type[kafka.KafkaError], ...] = (
    kafka.AuthenticationFailedError,
    kafka.AuthenticationMethodNotSupported,
    kafka.SaslAuthenticationFailed,
    kafka.UnsupportedSaslMechanismError,
    kafka.IllegalSaslStateError,
)
_UNSUPPORTED: tuple[type[kafka.KafkaError], ...] = (
    kafka.UnsupportedCodecError,
    kafka.UnsupportedVersionError,
    kafka.UnsupportedForMessageFormatError,
    kafka.IncompatibleBrokerVersion,
    kafka.UnrecognizedBrokerVersion,
)
_NO_POSITION: tuple[type[kafka.KafkaError], ...] = (
    kafka.NoOffsetForPartitionError,
    kafka.OffsetOutOfRangeError,  # Raised only under auto_offset_reset="none".
)
_UNREADABLE: tuple[type[kafka.KafkaError], ...] = (
    kafka.RecordTooLargeError,
    kafka.CorruptRecordException,
    kafka.InvalidTopicError,
)
_MISCONFIGURED: tuple[type[kafka.KafkaError], ...] = (
    kafka.InvalidGroupIdError,
    kafka.InvalidSessionTimeoutError,
    kafka.InconsistentGroupProtocolError,
    kafka.KafkaConfigurationError,
)
_FATAL = (
    _AUTHORIZATION + _AUTHENTICATION + _UNSUPPORTED + _NO_POSITION + _UNREADABLE + _MISCONFIGURED
)

POLL_BACK_OFF = ExponentialBackOff(
    initial=timedelta(milliseconds=100),
    multiplier=2.0,
    max_interval=timedelta(seconds=10),
    max_attempts=None,
    jitter=0.1,  # Many consumers losing the same broker should not come back in lockstep.
)
"""The waits between failed polls: 0.1 s doubling up to 10 s, with no limit."""


def is_fatal(error: BaseException) -> bool:
    """Whether the container must stop rather than poll again.

    Fatal: authentication and authorization failures, what the client or broker does not
    support (a compression codec, an API version, a message format), a partition with no
    valid position under ``auto_offset_reset="none"``, records that cannot be read, a group
    the broker rejects, a consumer closed under the loop, a crashed aiokafka background task
    (aiokafka re-raises that one on every poll), and anything that is not an ``Exception``
    (cancellation, ``KeyboardInterrupt``: never swallow those). Everything else, whether
    aiokafka marks it ``retriable`` or does not know (``UnknownError``), is retried.
    """
    if not isinstance(error, Exception):
        return True
    if isinstance(error, (*_FATAL, kafka.ConsumerStoppedError)):
        return True
    return _crashed_task(error)


def is_auth_failure(error: BaseException) -> bool:
    """Whether ``error`` is an authentication or authorization failure: fatal, unless the
    listener retries them (``kafka.listener.auth-exception-retry-interval``)."""
    return isinstance(error, _AUTHORIZATION + _AUTHENTICATION)


def describe(error: BaseException, *, group_id: str | None = None) -> str:
    """One line for ``container.failure`` and the status endpoint: the error, its cause in
    words and, for a fatal error, what to change. ``group_id`` completes the ACLs to grant."""
    cause = _cause(error, group_id)
    name = type(error).__name__
    return f"{name}: {cause}" if cause else f"{name}: {_detail(error)}"


class PollBackOff:
    """Counts consecutive failed polls and says how long to wait before the next one.

    Args:
        policy: the waits; it must not give up (``max_attempts=None``), since only fatal
            errors stop a container.
    """

    def __init__(self, policy: BackOff = POLL_BACK_OFF) -> None:
        if policy.max_attempts is not None:
            raise ValueError(
                f"a poll back-off must not give up, but {policy!r} stops after "
                f"{policy.max_attempts} attempts; pass max_attempts=None"
            )
        self._policy = policy
        self.failures = 0
        """Failed polls since the last one that succeeded."""

    def failed(self) -> float:
        """Count a failed poll; the seconds to wait before polling again."""
        self.failures += 1
        delay = self._policy.delay(self.failures)
        if delay is None:  # A custom policy that gives up anyway: keep its longest wait so far.
            delay = self._policy.delay(1) or timedelta(seconds=1)
        return delay.total_seconds()

    def succeeded(self) -> None:
        """A poll returned (records or none): the next failure waits the shortest time."""
        self.failures = 0


def _crashed_task(error: Exception) -> bool:
    """aiokafka wraps a crash of its coordinator task in a bare ``KafkaError`` raised from the
    original exception, and raises it on every later poll."""
    cause = error.__cause__
    return (
        type(error) is kafka.KafkaError
        and cause is not None
        and not isinstance(cause, kafka.KafkaError)
    )


def _cause(error: BaseException, group_id: str | None) -> str | None:
    """The cause and fix in words, for errors that have a known one."""
    group = f"group {group_id}" if group_id else "the listener's group"
    if isinstance(error, kafka.TopicAuthorizationFailedError):
        topics = _names(error.args[0]) if error.args else "the listener's topics"
        return (
            f"not authorized to read topic {topics}: grant the consumer's principal READ and "
            f"DESCRIBE on topic {topics} and READ on {group} (kafka-acls --add)"
        )
    if isinstance(error, kafka.GroupAuthorizationFailedError):
        if error.args and isinstance(error.args[0], str):
            group = f"group {error.args[0]}"
        return f"not authorized to join {group}: grant the consumer's principal READ on {group}"
    if isinstance(error, _AUTHORIZATION):
        return f"not authorized ({_detail(error)}): grant the consumer's principal the ACL it needs"
    if isinstance(error, _AUTHENTICATION):
        return (
            f"the broker did not authenticate the consumer ({_detail(error)}): check "
            "kafka.security.protocol and the SASL mechanism, username and password"
        )
    if isinstance(error, kafka.UnsupportedCodecError):
        return _codec(error)
    if isinstance(error, _UNSUPPORTED):
        return (
            f"the broker and aiokafka do not share a protocol version or message format "
            f"({_detail(error)}): upgrade aiokafka or the broker, or pin api_version"
        )
    if isinstance(error, kafka.NoOffsetForPartitionError):
        return (
            f"partition {_partitions(error.args)} has no committed offset and "
            "kafka.consumer.auto-offset-reset is none: set it to earliest or latest, or seek "
            "the partition at startup"
        )
    if isinstance(error, kafka.OffsetOutOfRangeError):
        return (
            f"the position {_partitions(error.args)} is no longer in the log (deleted by "
            "retention?) and kafka.consumer.auto-offset-reset is none: set it to earliest or "
            "latest, or seek the partition to a valid offset"
        )
    if isinstance(error, kafka.RecordTooLargeError):
        return (
            f"{_detail(error)}: raise kafka.consumer.max-partition-fetch-bytes above the "
            "broker's message.max.bytes"
        )
    if isinstance(error, kafka.CorruptRecordException):
        return (
            f"a fetched batch is corrupt ({_detail(error)}): check the partition with "
            "kafka-dump-log.sh; the consumer cannot read past it on its own"
        )
    if isinstance(error, _UNREADABLE + _MISCONFIGURED):
        return f"{_detail(error)}: fix the listener's topic, group or consumer settings"
    if isinstance(error, kafka.ConsumerStoppedError):
        return "the consumer was closed while the poll loop was using it"
    if isinstance(error, Exception) and _crashed_task(error):
        return (
            f"aiokafka's background task crashed ({_detail(error)}, caused by "
            f"{type(error.__cause__).__name__}: {error.__cause__}); the consumer cannot recover, "
            "restart the container"
        )
    return None


_CODEC = re.compile(r"for (\w+) compression")
_CRAMJAM_CODECS = ("snappy", "lz4", "zstd")


def _codec(error: kafka.UnsupportedCodecError) -> str:
    found = _CODEC.search(str(error))
    codec = found.group(1) if found else None
    if codec in _CRAMJAM_CODECS:
        return (
            f"records are compressed with {codec}, which aiokafka cannot decompress without "
            f"the cramjam package: install it (pip install 'aiokafka[{codec}]'), or have "
            "producers use gzip or no compression"
        )
    return (
        f"records use a compression aiokafka cannot read ({_detail(error)}): upgrade aiokafka "
        "or have producers use gzip, snappy, lz4, zstd or no compression"
    )


def _detail(error: BaseException) -> str:
    """The message without aiokafka's class-name prefix, with ``%s`` arguments filled in
    (``RecordTooLargeError`` carries its format string and arguments unformatted)."""
    args = error.args
    if len(args) > 1 and isinstance(args[0], str) and args[0].count("%s") == len(args) - 1:
        return args[0] % args[1:]
    if len(args) == 1:
        return str(args[0])
    return str(error) if args else type(error).__name__


def _partitions(args: tuple[object, ...]) -> str:
    """``NoOffsetForPartitionError(tp)`` or ``OffsetOutOfRangeError({tp: offset})``."""
    if not args:
        return "(unknown)"
    value = args[0]
    if isinstance(value, TopicPartition):
        return f"{value.topic}-{value.partition}"
    if isinstance(value, dict):
        return ", ".join(
            f"{tp.topic}-{tp.partition}@{offset}" if isinstance(tp, TopicPartition) else str(tp)
            for tp, offset in value.items()
        )
    return str(value)


def _names(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return ", ".join(sorted(str(item) for item in value))
    return str(value)
