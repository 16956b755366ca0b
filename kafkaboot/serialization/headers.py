"""Record headers as Kafka takes them, with the JSON type header a serializer asks for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kafkaboot.errors import SerializationError
from kafkaboot.records import HeadersArg

__all__ = ["encode_headers", "record_headers", "writes_type_headers"]


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


_WRITES_TYPES: dict[type, bool] = {}
"""Serializer class → has ``type_headers``: a getattr that misses costs more than a send's
other header work, so it is asked once per class."""


def writes_type_headers(serializer: Any) -> bool:
    """Whether ``serializer`` may write type headers: it has ``type_headers`` and has not
    turned them off (``add_type_headers``, as Spring's ``spring.json.add.type.headers``)."""
    has = callable(getattr(type(serializer), "type_headers", None))
    return has and getattr(serializer, "add_type_headers", True) is not False


def _type_headers(serializer: Any, value: Any, given: HeadersArg) -> Sequence[tuple[str, bytes]]:
    kind = type(serializer)
    writes = _WRITES_TYPES.get(kind)
    if writes is None:
        writes = _WRITES_TYPES[kind] = callable(getattr(kind, "type_headers", None))
    if not writes or value is None:
        return ()
    headers: Sequence[tuple[str, bytes]] = serializer.type_headers(value)
    if not headers or not given:
        return headers
    names = given.keys() if isinstance(given, Mapping) else (name for name, _ in given)
    # A type header the caller set wins (Spring would replace it; kafkaboot leaves it).
    return () if headers[0][0] in names else headers


def record_headers(
    headers: HeadersArg, key_serializer: Any, key: Any, value_serializer: Any, value: Any
) -> list[tuple[str, bytes | None]] | None:
    """The headers to send: ``headers`` encoded, plus the type headers (``__TypeId__``,
    ``__Key_TypeId__``) the serializers write for this key and value; None when there are none.

    Raises:
        SerializationError: a header value that cannot be encoded.
    """
    value_types = _type_headers(value_serializer, value, headers)
    key_types = _type_headers(key_serializer, key, headers)
    if not value_types and not key_types:
        return encode_headers(headers) if headers else None
    return [*encode_headers(headers), *value_types, *key_types]
