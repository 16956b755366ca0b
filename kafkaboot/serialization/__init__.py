"""Serializers and deserializers, looked up by short name or by Java class name.

A Spring Boot ``application.yml`` names Java classes
(``org.apache.kafka.common.serialization.StringSerializer``); kafkaboot maps those names to
Python built-ins with the same wire format, so a kafkaboot service and a Spring service
read each other's records. ``package.module:Class`` loads a serializer of your own.

The parts: :mod:`~kafkaboot.serialization.codecs` (the protocols and built-ins),
:mod:`~kafkaboot.serialization.lookup` (by name), :mod:`~kafkaboot.serialization.headers`
(record headers) and :mod:`~kafkaboot.serialization.type_headers` (Spring's ``__TypeId__``).
"""

from kafkaboot.serialization.codecs import (
    AutoSerializer,
    BytesDeserializer,
    BytesSerializer,
    DeserializationFailure,
    Deserializer,
    ErrorHandlingDeserializer,
    JsonDeserializer,
    JsonSerializer,
    Serializer,
    SerializerArg,
    StringDeserializer,
    StringSerializer,
)
from kafkaboot.serialization.headers import encode_headers, record_headers, writes_type_headers
from kafkaboot.serialization.lookup import configured, deserializer_for, serializer_for
from kafkaboot.serialization.type_headers import JsonTypes, TypeIds

__all__ = [
    "AutoSerializer",
    "BytesDeserializer",
    "BytesSerializer",
    "DeserializationFailure",
    "Deserializer",
    "ErrorHandlingDeserializer",
    "JsonDeserializer",
    "JsonSerializer",
    "JsonTypes",
    "Serializer",
    "SerializerArg",
    "StringDeserializer",
    "StringSerializer",
    "TypeIds",
    "configured",
    "deserializer_for",
    "encode_headers",
    "record_headers",
    "serializer_for",
    "writes_type_headers",
]
