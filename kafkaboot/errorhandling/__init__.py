"""Error handling for listeners: what to do when a handler fails."""

from kafkaboot.errorhandling.backoff import BackOff, ExponentialBackOff, FixedBackOff
from kafkaboot.errorhandling.dead_letter import (
    DeadLetterPublishingRecoverer,
    DeadLetterRecord,
    dead_letter_headers,
)
from kafkaboot.errorhandling.handler import (
    NOT_RETRYABLE,
    DefaultErrorHandler,
    ErrorAction,
    ErrorHandler,
    FailedRecord,
    Recoverer,
    Recovery,
    log_record,
)
from kafkaboot.errorhandling.retry_topics import RetryTopicConfig, dlt_handler, retryable_topic
from kafkaboot.errors import BatchListenerFailedError

__all__ = [
    "NOT_RETRYABLE",
    "BackOff",
    "BatchListenerFailedError",
    "DeadLetterPublishingRecoverer",
    "DeadLetterRecord",
    "DefaultErrorHandler",
    "ErrorAction",
    "ErrorHandler",
    "ExponentialBackOff",
    "FailedRecord",
    "FixedBackOff",
    "Recoverer",
    "Recovery",
    "RetryTopicConfig",
    "dead_letter_headers",
    "dlt_handler",
    "log_record",
    "retryable_topic",
]
