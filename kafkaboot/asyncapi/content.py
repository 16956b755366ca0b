"""A message's ``contentType``: the format of its bytes as the service reads or writes them.

A listener reads a typed payload by its type whatever deserializer is configured (``str``:
UTF-8 text, ``bytes``: as they are, anything else: JSON), and an unannotated one through
``kafka.consumer.value-deserializer`` (none: the bytes as they are). What the service sends
goes through ``kafka.producer.value-serializer`` (``auto``, the default: by the value's
type). A serializer or deserializer of your own may say its format in a ``content_type``
attribute (``"application/vnd.apache.avro+binary"``); without one its bytes are
``application/octet-stream``: the document's default, JSON, would be a guess."""

from __future__ import annotations

import inspect
from typing import Any

from kafkaboot.listener.decoding import unwrap_optional
from kafkaboot.serialization import (
    AutoSerializer,
    BytesDeserializer,
    BytesSerializer,
    Deserializer,
    ErrorHandlingDeserializer,
    JsonDeserializer,
    JsonSerializer,
    Serializer,
    StringDeserializer,
    StringSerializer,
)

__all__ = ["BINARY", "JSON", "TEXT", "read_as", "written_as"]

JSON = "application/json"
TEXT = "text/plain"
BINARY = "application/octet-stream"

_KNOWN: dict[type, str] = {
    JsonDeserializer: JSON,
    JsonSerializer: JSON,
    StringDeserializer: TEXT,
    StringSerializer: TEXT,
    BytesDeserializer: BINARY,
    BytesSerializer: BINARY,
}


def read_as(payload: Any, deserializer: Deserializer | None) -> str:
    """How a listener whose payload is annotated ``payload`` reads the record's value."""
    if _unannotated(payload):
        if deserializer is None:
            return BINARY  # The handler is given the bytes.
        if isinstance(deserializer, ErrorHandlingDeserializer):
            deserializer = deserializer.delegate
        return _of(deserializer)
    return _by_type(payload)


def written_as(payload: Any, serializer: Serializer | None) -> str:
    """How the template writes a ``payload`` value (``serializer``: the configured one;
    ``None``: the default, ``auto``)."""
    if serializer is None or isinstance(serializer, AutoSerializer):
        return _by_type(payload)
    return _of(serializer)


def _unannotated(payload: Any) -> bool:
    return (
        payload is None or payload is Any or payload is object or payload is inspect.Parameter.empty
    )


def _by_type(payload: Any) -> str:
    target = unwrap_optional(payload)
    if target is str:
        return TEXT
    if target is bytes:
        return BINARY
    return JSON


def _of(codec: Serializer | Deserializer) -> str:
    known = _KNOWN.get(type(codec))
    if known is not None:
        return known
    own = getattr(codec, "content_type", None)  # A serializer of the user's own may say.
    return own if isinstance(own, str) and own else BINARY
