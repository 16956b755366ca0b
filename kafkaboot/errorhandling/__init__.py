"""Error handling for listeners: what to do when a handler fails."""

from kafkaboot.errorhandling.handler import (
    DefaultErrorHandler,
    ErrorAction,
    ErrorHandler,
    FailedRecord,
)

__all__ = ["DefaultErrorHandler", "ErrorAction", "ErrorHandler", "FailedRecord"]
