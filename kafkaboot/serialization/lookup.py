"""Serializers and deserializers by name: short names, Java class names, import paths.

A Spring Boot ``application.yml`` names Java classes
(``org.apache.kafka.common.serialization.StringSerializer``); these map to the built-ins with
the same wire format. ``package.module:Class`` loads a serializer of your own.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from kafkaboot.errors import SerializationError
from kafkaboot.serialization.codecs import (
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
    _FixedWidthNumber,
)

__all__ = ["configured", "deserializer_for", "serializer_for"]


_SERIALIZERS: dict[str, Callable[[], Serializer]] = {
    "auto": AutoSerializer,
    "string": StringSerializer,
    "bytes": BytesSerializer,
    "json": JsonSerializer,
    "pydantic": JsonSerializer,
    "integer": lambda: _FixedWidthNumber(">i", int),
    "long": lambda: _FixedWidthNumber(">q", int),
    "float": lambda: _FixedWidthNumber(">f", float),
    "double": lambda: _FixedWidthNumber(">d", float),
}
_DESERIALIZERS: dict[str, Callable[[], Deserializer]] = {
    "string": StringDeserializer,
    "bytes": BytesDeserializer,
    "json": JsonDeserializer,
    "pydantic": JsonDeserializer,
    "integer": lambda: _FixedWidthNumber(">i", int),
    "long": lambda: _FixedWidthNumber(">q", int),
    "float": lambda: _FixedWidthNumber(">f", float),
    "double": lambda: _FixedWidthNumber(">d", float),
}

# Java class simple names (Kafka's and Spring's) → short names.
_JAVA_NAMES = {
    "StringSerializer": "string",
    "StringDeserializer": "string",
    "ByteArraySerializer": "bytes",
    "ByteArrayDeserializer": "bytes",
    "BytesSerializer": "bytes",
    "BytesDeserializer": "bytes",
    "ByteBufferSerializer": "bytes",
    "ByteBufferDeserializer": "bytes",
    "IntegerSerializer": "integer",
    "IntegerDeserializer": "integer",
    "LongSerializer": "long",
    "LongDeserializer": "long",
    "FloatSerializer": "float",
    "FloatDeserializer": "float",
    "DoubleSerializer": "double",
    "DoubleDeserializer": "double",
    "JsonSerializer": "json",
    "JsonDeserializer": "json",
}
_ERROR_HANDLING = {"ErrorHandlingDeserializer", "ErrorHandlingDeserializer2"}


def _short_name(name: str) -> str:
    simple = name.strip().rsplit(".", 1)[-1]
    return _JAVA_NAMES.get(simple, name.strip().lower())


def _load_custom(path: str, protocol: type, method: str) -> Any:
    module_name, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise SerializationError(f"cannot import {path!r}: {exc}") from exc
    instance = factory() if isinstance(factory, type) else factory
    if not callable(getattr(instance, method, None)):
        raise SerializationError(
            f"{path!r} is not a {protocol.__name__}: it has no {method}(topic, value) method"
        )
    return instance


def _unknown(name: str, known: list[str]) -> SerializationError:
    close = difflib.get_close_matches(name, known, n=2)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return SerializationError(
        f"unknown serializer {name!r}.{hint} Use one of {', '.join(sorted(set(known)))}, "
        "a Kafka/Spring Java class name, or 'package.module:Class'."
    )


def configured(
    serializer: Serializer, properties: Mapping[str, Any] | None, is_key: bool
) -> Serializer:
    """``serializer`` set up from client properties when it can be (Kafka's
    ``configure(configs, isKey)``, called only for serializers built from configuration).

    Raises:
        ConfigurationError: a malformed ``spring.json.*`` value or an unimportable mapping.
    """
    configure = getattr(serializer, "configure", None)
    if properties is None or configure is None:
        return serializer
    # Ours return a configured copy; a Kafka-style configure() sets itself up and returns None.
    result = configure(properties, is_key)
    return serializer if result is None else result


def serializer_for(
    name: str, properties: Mapping[str, Any] | None = None, *, is_key: bool = False
) -> Serializer:
    """The serializer a configuration name stands for, set up from ``properties`` (the
    producer's raw properties: ``spring.json.add.type.headers``...) when they are given.

    Raises:
        SerializationError: the name is unknown or the custom class cannot be loaded.
        ConfigurationError: a malformed ``spring.json.*`` property.
    """
    if ":" in name:
        serializer: Serializer = _load_custom(name, Serializer, "serialize")
    else:
        factory = _SERIALIZERS.get(_short_name(name))
        if factory is None:
            raise _unknown(name, [*_SERIALIZERS, *_JAVA_NAMES])
        serializer = factory()
    return configured(serializer, properties, is_key)


def deserializer_for(name: str, delegate: str | None = None) -> Deserializer:
    """The deserializer a configuration name stands for; ``ErrorHandlingDeserializer``
    wraps ``delegate`` (Spring's ``spring.deserializer.value.delegate.class``).

    Raises:
        SerializationError: the name is unknown, or an error-handling deserializer has no
            delegate.
    """
    if ":" in name:
        return _load_custom(name, Deserializer, "deserialize")  # type: ignore[no-any-return]
    if name.strip().rsplit(".", 1)[-1] in _ERROR_HANDLING:
        if delegate is None:
            raise SerializationError(
                "ErrorHandlingDeserializer needs a delegate: set "
                "spring.deserializer.value.delegate.class (or .key.) in the consumer properties"
            )
        return ErrorHandlingDeserializer(deserializer_for(delegate))
    factory = _DESERIALIZERS.get(_short_name(name))
    if factory is None:
        raise _unknown(name, [*_DESERIALIZERS, *_JAVA_NAMES, *_ERROR_HANDLING])
    return factory()
