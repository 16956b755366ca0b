"""Exceptions raised by kafkaboot.

Every error derives from :class:`KafkaBootError`, so ``except KafkaBootError`` catches all
of them. Messages name the problem *and* what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kafkaboot.records import ProducerRecord, SendResult

__all__ = [
    "BatchListenerFailedError",
    "BrokerError",
    "ConfigProblem",
    "ConfigurationError",
    "KafkaBootError",
    "KafkaSendError",
    "SendBatchError",
    "SendOutcomeUnknownError",
    "SerializationError",
]


class KafkaBootError(Exception):
    """Root of every exception kafkaboot raises."""

    retriable: bool = False
    """Whether repeating the same operation later may succeed."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in the configuration, located as precisely as possible.

    Attributes:
        message: what is wrong, including what was given.
        key: the dotted key path as the user writes it (``kafka.consumer.group-id``).
        origin: where the value came from (``application.yml:12``, an environment variable).
        hint: what to do about it.
    """

    message: str
    key: str | None = None
    origin: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.origin}: " if self.origin else ""
        key = f"{self.key}: " if self.key else ""
        hint = f"\n    fix: {self.hint}" if self.hint else ""
        return f"{where}{key}{self.message}{hint}"


class ConfigurationError(KafkaBootError, ValueError):
    """The configuration is invalid; startup cannot go on.

    Carries every problem found, not just the first, so that one run of
    ``kafkaboot config check`` shows all of them.
    """

    def __init__(self, problems: Sequence[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem(problems)]
        self.problems: tuple[ConfigProblem, ...] = tuple(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return f"invalid configuration: {self.problems[0]}"
        lines = [f"invalid configuration ({len(self.problems)} problems):"]
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


class SerializationError(KafkaBootError, ValueError):
    """A value could not be serialized, or bytes could not be deserialized."""


class DeserializationError(SerializationError):
    """A record's key, value or header could not be turned into the type the handler asks
    for. Carries the record so an error handler can log or dead-letter its raw bytes.

    Attributes:
        record: the record, with its raw bytes.
        part: ``"value"``, ``"key"`` or ``"header 'name'"``.
        parameter: the handler parameter it was meant for, when known.
    """

    def __init__(
        self, message: str, record: object, part: str = "value", parameter: str | None = None
    ) -> None:
        super().__init__(message)
        self.record = record
        self.part = part
        self.parameter = parameter


class ListenerDefinitionError(ConfigurationError):
    """A listener's signature or options cannot work; raised when it is registered."""

    def _render(self) -> str:
        return "; ".join(str(problem) for problem in self.problems)


class KafkaSendError(KafkaBootError):
    """A record could not be sent (or its delivery could not be confirmed).

    Attributes:
        topic: where it was going.
        key: its key, as given to ``send``.
    """

    def __init__(
        self, message: str, *, topic: str, key: object = None, retriable: bool = False
    ) -> None:
        super().__init__(message)
        self.topic = topic
        self.key = key
        self.retriable = retriable


class SendOutcomeUnknownError(KafkaSendError):
    """A record was handed to the producer but its delivery was not confirmed in time (or
    the template stopped first): it may still be written when the broker answers again.

    Retrying may write it twice; retry only where duplicates are harmless or are removed
    downstream (an idempotency key, a sequence number). Every other ``KafkaSendError``
    means the record was not written.
    """


class PartitionUnavailableError(KafkaSendError):
    """A send refused at once, nothing written, because its partition cannot take writes
    now: its leader is unreachable, or a send to it stayed unconfirmed for
    ``kafka.template.unavailable-timeout``. Safe to retry later; sends to other partitions
    go on.

    Attributes:
        partition: the partition the record would have gone to.
        leader: the partition's leader as last known (None if it has none).
    """

    def __init__(
        self, message: str, *, topic: str, partition: int, leader: int | None, key: object = None
    ) -> None:
        super().__init__(message, topic=topic, key=key, retriable=True)
        self.partition = partition
        self.leader = leader


class SendBatchError(KafkaSendError):
    """Some records of a ``send_batch`` were not delivered; the others were.

    Attributes:
        records: the batch, in the order given.
        outcomes: per record, in the same order, its ``SendResult`` or its ``KafkaSendError``.
    """

    def __init__(
        self,
        records: Sequence[ProducerRecord],
        outcomes: Sequence[SendResult | KafkaSendError],
    ) -> None:
        self.records = tuple(records)
        self.outcomes = tuple(outcomes)
        failed = self.failed
        record, first = failed[0]
        unknown = sum(isinstance(error, SendOutcomeUnknownError) for _, error in failed)
        super().__init__(
            f"{len(failed)} of {len(self.records)} records of the batch were not delivered "
            f"({unknown} of them with an unknown outcome; first: {first}); the other "
            f"{len(self.records) - len(failed)} were: retry only the records in .failed",
            topic=record.topic,
            key=record.key,
            retriable=all(error.retriable for _, error in failed),
        )

    @property
    def delivered(self) -> list[SendResult]:
        """The delivered records' results, in the batch's order."""
        return [o for o in self.outcomes if not isinstance(o, KafkaSendError)]

    @property
    def failed(self) -> list[tuple[ProducerRecord, KafkaSendError]]:
        """The records not delivered, with why; a ``SendOutcomeUnknownError`` may still be
        written, any other error means the record was not."""
        return [
            (record, outcome)
            for record, outcome in zip(self.records, self.outcomes, strict=True)
            if isinstance(outcome, KafkaSendError)
        ]


class KafkaAuthenticationError(KafkaBootError):
    """The brokers refused the client's credentials or certificate: retrying cannot help."""


class BrokerError(KafkaBootError):
    """The local Apache Kafka broker could not be fetched, started, reached or stopped."""


class BatchListenerFailedError(KafkaBootError):
    """Raised by a batch listener to say which record failed (Spring's
    ``BatchListenerFailedError``): the records before it are committed, the error handler
    retries or recovers that record, and the records after it are delivered again.

    Args:
        message: what went wrong; the cause is ``cause=`` or the exception this is raised from.
        index: the failed record's position in the list the listener received.
        record: or the failed record itself (a ``ConsumerRecord`` of the batch).
    """

    def __init__(
        self,
        message: str = "",
        *,
        index: int | None = None,
        record: object = None,
        cause: BaseException | None = None,
    ) -> None:
        if (index is None) == (record is None):
            raise TypeError("BatchListenerFailedError needs index= or record= (one of them)")
        super().__init__(message or f"batch listener failed at index {index}")
        self.index = index
        self.record = record
        self.cause = cause

    @property
    def failure(self) -> BaseException:
        """The error to hand to the error handler: the cause when there is one."""
        return self.cause or self.__cause__ or self


class AcknowledgmentError(KafkaBootError, RuntimeError):
    """An ``Acknowledgment`` was used where it cannot take effect, e.g. ``nack()`` after the
    handler returned: the record would otherwise stay outstanding and stall its partition's
    commits. Call ``nack()`` before the handler returns, or ``acknowledge()`` later."""
