"""Serializers of a service's own (``package.module:Class`` in the configuration), one that
says its content type and one that does not."""

from typing import Any


class AvroLikeDeserializer:
    content_type = "application/vnd.apache.avro+binary"

    def deserialize(self, topic: str, data: bytes | None) -> Any:
        return data


class AvroLikeSerializer:
    content_type = "application/vnd.apache.avro+binary"

    def serialize(self, topic: str, value: Any) -> bytes | None:
        return repr(value).encode()


class SilentDeserializer:
    def deserialize(self, topic: str, data: bytes | None) -> Any:
        return data
