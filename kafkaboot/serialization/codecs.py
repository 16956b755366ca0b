"""The serializers and deserializers themselves: the protocols and the built-ins.

Each built-in writes what the Kafka or Spring class of the same name writes, so a kafkaboot
service and a Spring service read each other's records.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Mapping
from typing import Any, Protocol, TypeAlias, runtime_checkable

from pydantic import TypeAdapter
from pydantic_core import to_json

from kafkaboot.errors import SerializationError
from kafkaboot.serialization.type_headers import (
    ADD_TYPE_HEADERS,
    TypeHeaders,
    TypeIds,
    parse_flag,
)

__all__ = [
    "AutoSerializer",
    "BytesDeserializer",
    "BytesSerializer",
    "DeserializationFailure",
    "Deserializer",
    "ErrorHandlingDeserializer",
    "JsonDeserializer",
    "JsonSerializer",
    "Serializer",
    "SerializerArg",
    "StringDeserializer",
    "StringSerializer",
]


@runtime_checkable
class Serializer(Protocol):
    """Turns a value into the bytes of a record's key or value."""

    def serialize(self, topic: str, value: Any) -> bytes | None:
        """Return the bytes for ``value`` (``None`` stays ``None``: a null key or tombstone).

        Raises:
            SerializationError: the value has a type this serializer cannot write.
        """
        ...


SerializerArg: TypeAlias = Serializer | str | None
"""A serializer, the name of one (``serializer_for``), or None for the configured one."""


@runtime_checkable
class Deserializer(Protocol):
    """Turns the bytes of a record's key or value back into a value."""

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        """Return the value for ``data``.

        Raises:
            SerializationError: the bytes cannot be read as this format.
        """
        ...


def _not_encodable(topic: str, encoding: str, exc: UnicodeEncodeError) -> SerializationError:
    return SerializationError(
        f"a str for topic {topic!r} cannot be written as {encoding.upper()}: {exc}. Remove or "
        "replace the character (text from JSON may hold a lone surrogate such as '\\ud800')."
    )


def _type_error(serializer: object, value: Any, accepted: str) -> SerializationError:
    return SerializationError(
        f"{type(serializer).__name__} cannot serialize a {type(value).__name__}; it accepts "
        f"{accepted}. Pass a matching value or choose another serializer (e.g. 'json')."
    )


@dataclasses.dataclass(frozen=True, slots=True)
class StringSerializer:
    """Text as UTF-8 (Kafka's ``StringSerializer``)."""

    encoding: str = "utf-8"

    def serialize(self, topic: str, value: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return value.encode(self.encoding)
            except UnicodeEncodeError as exc:
                raise _not_encodable(topic, self.encoding, exc) from exc
        raise _type_error(self, value, "str")


@dataclasses.dataclass(frozen=True, slots=True)
class StringDeserializer:
    """UTF-8 bytes to text (Kafka's ``StringDeserializer``)."""

    encoding: str = "utf-8"

    def deserialize(self, topic: str, data: bytes | None) -> str | None:
        if data is None:
            return None
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as exc:
            raise SerializationError(
                f"record from {topic!r} is not valid {self.encoding} text: {exc}"
            ) from exc


@dataclasses.dataclass(frozen=True, slots=True)
class BytesSerializer:
    """Bytes as they are (Kafka's ``ByteArraySerializer``)."""

    def serialize(self, topic: str, value: Any) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        raise _type_error(self, value, "bytes, bytearray or memoryview")


@dataclasses.dataclass(frozen=True, slots=True)
class BytesDeserializer:
    """Bytes as they are (Kafka's ``ByteArrayDeserializer``)."""

    def deserialize(self, topic: str, data: bytes | None) -> bytes | None:
        return data


@dataclasses.dataclass(frozen=True, slots=True)
class JsonSerializer:
    """JSON for dicts, lists, scalars, pydantic models and dataclasses (Spring's
    ``JsonSerializer``); datetimes, UUIDs and decimals are written as pydantic writes them.

    With ``add_type_headers`` (Spring's default) the template adds ``__TypeId__`` naming a
    model's class (see :mod:`kafkaboot.serialization.type_headers`).
    """

    by_alias: bool = True
    add_type_headers: bool = True
    type_ids: TypeIds = dataclasses.field(default_factory=TypeIds)

    def configure(self, properties: Mapping[str, Any], is_key: bool) -> JsonSerializer:
        """This serializer set up from ``spring.json.*`` properties, as Kafka configures
        one it builds from a class name (``spring.json.add.type.headers``, ``.type.mapping``).

        Raises:
            ConfigurationError: a malformed value, or a mapping that cannot be imported.
        """
        return JsonSerializer(
            self.by_alias,
            parse_flag(properties, ADD_TYPE_HEADERS, self.add_type_headers),
            TypeIds.from_properties(properties, is_key),
        )

    def type_headers(self, value: Any) -> TypeHeaders:
        """The type headers the template adds for ``value`` (none for most values)."""
        return self.type_ids.type_headers(value) if self.add_type_headers else ()

    def serialize(self, topic: str, value: Any) -> bytes | None:
        if value is None:
            return None
        try:
            return to_json(value, by_alias=self.by_alias)
        except Exception as exc:  # pydantic_core raises PydanticSerializationError
            raise SerializationError(
                f"cannot write a {type(value).__name__} to topic {topic!r} as JSON: {exc}. "
                "Send a dict, list, pydantic model or dataclass, or choose another serializer."
            ) from exc


@dataclasses.dataclass(frozen=True, slots=True)
class JsonDeserializer:
    """JSON to Python values, or to ``target`` (a pydantic model, dataclass or any type a
    pydantic ``TypeAdapter`` handles) when one is given."""

    target: Any = None
    _adapter: TypeAdapter[Any] | None = dataclasses.field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.target is not None:
            object.__setattr__(self, "_adapter", TypeAdapter(self.target))

    def for_type(self, target: Any) -> JsonDeserializer:
        """A deserializer that validates into ``target``; built once, reused per record."""
        return JsonDeserializer(target)

    def _wanted(self) -> str:
        """What the bytes were to become, for an error message (not on the hot path)."""
        return getattr(self.target, "__name__", None) or "JSON"

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            if self._adapter is not None:
                return self._adapter.validate_json(data)
            return json.loads(data)
        except ValueError as exc:  # json.JSONDecodeError and pydantic.ValidationError
            raise SerializationError(
                f"record from {topic!r} cannot be read as {self._wanted()}: {exc}"
            ) from exc
        except RecursionError as exc:
            # json's parser recurses per level: a few thousand nested arrays exhaust the stack.
            # The same bytes fail on every delivery, so this is bad data, not a crash.
            raise SerializationError(
                f"record from {topic!r} cannot be read as {self._wanted()}: it is nested too"
                f" deeply ({len(data)} bytes)"
            ) from exc


@dataclasses.dataclass(frozen=True, slots=True)
class AutoSerializer:
    """The template's default: picks by type. ``str`` → UTF-8, ``bytes`` as they are,
    anything else (dicts, lists, pydantic models, dataclasses, numbers) → JSON.

    Type headers only when ``spring.json.add.type.headers`` is set to true: this is not
    Spring's ``JsonSerializer``, and records sent without them before stay the same.
    """

    _json: JsonSerializer = dataclasses.field(
        default_factory=lambda: JsonSerializer(add_type_headers=False)
    )

    def configure(self, properties: Mapping[str, Any], is_key: bool) -> AutoSerializer:
        """Set up from ``spring.json.*`` properties, like :meth:`JsonSerializer.configure`.

        Raises:
            ConfigurationError: a malformed value, or a mapping that cannot be imported.
        """
        return AutoSerializer(self._json.configure(properties, is_key))

    @property
    def add_type_headers(self) -> bool:
        """Whether it writes type headers (``spring.json.add.type.headers``; off by default)."""
        return self._json.add_type_headers

    def type_headers(self, value: Any) -> TypeHeaders:
        """The type headers the template adds for ``value`` (a model), if any."""
        return self._json.type_headers(value)

    def serialize(self, topic: str, value: Any) -> bytes | None:
        if value is None or type(value) is bytes:
            return value
        if type(value) is str:
            try:  # Free until it raises: the hot path stays one call.
                return value.encode()
            except UnicodeEncodeError as exc:
                raise _not_encodable(topic, "utf-8", exc) from exc
        if isinstance(value, bytearray | memoryview):
            return bytes(value)
        return self._json.serialize(topic, value)


@dataclasses.dataclass(frozen=True, slots=True)
class _FixedWidthNumber:
    """Big-endian numbers exactly as Java's Integer/Long/Float/Double serializers write them."""

    fmt: str
    kind: type

    def serialize(self, topic: str, value: Any) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(self, value, "int" if self.kind is int else "float")
        try:
            return struct.pack(self.fmt, value)
        except struct.error as exc:
            raise SerializationError(f"{value!r} does not fit {self.fmt!r}: {exc}") from exc

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        if data is None:
            return None
        if len(data) != struct.calcsize(self.fmt):
            raise SerializationError(
                f"record from {topic!r} has {len(data)} bytes; a {self.kind.__name__} "
                f"in format {self.fmt!r} needs {struct.calcsize(self.fmt)}"
            )
        return struct.unpack(self.fmt, data)[0]


@dataclasses.dataclass(frozen=True, slots=True)
class DeserializationFailure:
    """What :class:`ErrorHandlingDeserializer` returns instead of raising: the untouched
    bytes and the error, so the record can be dead-lettered rather than lost."""

    data: bytes | None
    error: Exception


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorHandlingDeserializer:
    """Wraps a delegate so a bad record becomes a :class:`DeserializationFailure`
    (Spring's ``ErrorHandlingDeserializer``) instead of an exception in the poll loop."""

    delegate: Deserializer

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        try:
            return self.delegate.deserialize(topic, data)
        except Exception as exc:  # any delegate failure is handed on, with the bytes
            return DeserializationFailure(data, exc)
