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
    log_record,
)
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
    "dead_letter_headers",
    "log_record",
]
