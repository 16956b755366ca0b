"""Record headers as Kafka takes them, with the JSON type header a serializer asks for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafkaboot.errors import SerializationError
from kafkaboot.records import HeadersArg

__all__ = ["encode_headers", "record_headers"]


def encode_headers(headers: HeadersArg) -> list[tuple[str, bytes | None]]:
    """Header values as Kafka takes them: str as UTF-8, bytes and None as they are.

    Raises:
        SerializationError: a value that is not str, bytes or None, or not UTF-8 encodable.
    """
    if not headers:
        return []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    encoded: list[tuple[str, bytes | None]] = []
    for name, value in pairs:
        if isinstance(value, str):
            try:
                encoded.append((name, value.encode()))
            except UnicodeEncodeError as exc:
                raise SerializationError(
                    f"header {name!r} cannot be written as UTF-8: {exc}; remove the character "
                    "or pass the header's bytes"
                ) from exc
        elif isinstance(value, bytes) or value is None:  # Kafka allows null header values.
            encoded.append((name, value))
        else:
            raise SerializationError(
                f"header {name!r} has a {type(value).__name__} value; header values must be "
                "str (sent as UTF-8), bytes or None"
            )
    return encoded


def _type_header(serializer: Any, value: Any, given: HeadersArg) -> tuple[str, bytes] | None:
    writer = getattr(serializer, "type_header", None)
    if writer is None or value is None:
        return None
    header: tuple[str, bytes] | None = writer(value)
    if header is None or not given:
        return header
    names = given.keys() if isinstance(given, Mapping) else (name for name, _ in given)
    # A header the caller set wins (Spring would replace it; kafkaboot leaves yours alone).
    return None if header[0] in names else header


def record_headers(
    headers: HeadersArg, key_serializer: Any, key: Any, value_serializer: Any, value: Any
) -> list[tuple[str, bytes | None]] | None:
    """The headers to send: ``headers`` encoded, plus the type headers (``__TypeId__``,
    ``__Key_TypeId__``) the serializers write for this key and value; None when there are none.

    Raises:
        SerializationError: a header value that cannot be encoded.
    """
    value_type = _type_header(value_serializer, value, headers)
    key_type = _type_header(key_serializer, key, headers)
    if value_type is None and key_type is None:
        return encode_headers(headers) if headers else None
    encoded: list[tuple[str, bytes | None]] = encode_headers(headers)
    if value_type is not None:
        encoded.append(value_type)
    if key_type is not None:
        encoded.append(key_type)
    return encoded
