"""Record bytes to the type a handler parameter asks for, worked out once per parameter.

A decoder either returns the value or raises :class:`~kafkaboot.errors.DeserializationError`
naming the record, the part (value, key, header) and the parameter: bad bytes fail the same
way on every delivery, so the error handler does not retry them and the recoverer gets
everything it needs to say what went wrong.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, TypeAlias

from aiokafka import ConsumerRecord
from pydantic import BaseModel, TypeAdapter

from kafkaboot.errors import DeserializationError
from kafkaboot.serialization import DeserializationFailure, Deserializer

__all__ = [
    "Decoder",
    "allows_none",
    "decoder_for",
    "describe",
    "header_decoder",
    "unwrap_optional",
    "where",
]

Decoder: TypeAlias = Callable[[bytes | None, ConsumerRecord[bytes, bytes]], Any]
"""``(raw bytes, record) -> value``; the record is for the error message."""


def allows_none(annotation: Any) -> bool:
    if annotation is Any or annotation is None or annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return type(None) in typing.get_args(annotation)
    return False


def describe(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def where(record: ConsumerRecord[bytes, bytes]) -> str:
    return f"{record.topic}-{record.partition}@{record.offset}"


def _undecodable(
    record: ConsumerRecord[bytes, bytes],
    data: bytes | None,
    target: Any,
    exc: BaseException,
    part: str,
    parameter: str | None,
) -> DeserializationError:
    """Bytes that cannot become ``target``. Such an error is never retried (the same bytes
    fail the same way on every delivery), so it says which record, part and parameter."""
    what = f"the {part} of record {where(record)}"
    if part != "value" and data is not None:  # Keys and headers are short; the value is not.
        what += f" ({data[:64]!r}{'...' if len(data) > 64 else ''})"
    into = f" for parameter {parameter!r}" if parameter else ""
    fix = (
        ""
        if part == "value"
        else "; fix the producer, or annotate the parameter as bytes to take it as it is"
    )
    return DeserializationError(
        f"cannot read {what} as {describe(target)}{into}: {exc}{fix}", record, part, parameter
    )


def decoder_for(
    annotation: Any,
    fallback: Deserializer | None = None,
    part: str = "value",
    parameter: str | None = None,
) -> Decoder:
    """A function that turns raw bytes into ``annotation``, raising
    :class:`DeserializationError` with the record on failure.

    A failure is a ``ValueError`` (a ``UnicodeDecodeError``, pydantic's ``ValidationError``,
    a deserializer's ``SerializationError``) or a :class:`DeserializationFailure` returned by
    an ``ErrorHandlingDeserializer``: bad bytes. Anything else a deserializer raises is left
    as it is, to be retried (a lookup that may work next time).
    """
    optional = allows_none(annotation)
    target = unwrap_optional(annotation)

    def none_or_fail(record: ConsumerRecord[bytes, bytes]) -> None:
        if optional:
            return None
        into = f" (parameter {parameter!r})" if parameter else ""
        raise DeserializationError(
            f"record {where(record)} has a null {part} (a tombstone?) but the handler "
            f"wants {describe(annotation)}{into}; annotate it as {describe(annotation)} "
            "| None to accept nulls",
            record,
            part,
            parameter,
        )

    if target is bytes:
        return lambda data, record: data
    if target is str:

        def decode_str(data: bytes | None, record: ConsumerRecord[bytes, bytes]) -> Any:
            if data is None:
                return none_or_fail(record)
            try:
                return data.decode()
            except UnicodeDecodeError as exc:
                raise _undecodable(record, data, target, exc, part, parameter) from exc

        return decode_str
    if target is Any or target is inspect.Parameter.empty or target is object:
        if fallback is None:
            return lambda data, record: data

        def decode_fallback(data: bytes | None, record: ConsumerRecord[bytes, bytes]) -> Any:
            try:
                value = fallback.deserialize(record.topic, data)
            except ValueError as exc:
                raise _undecodable(record, data, target, exc, part, parameter) from exc
            if isinstance(value, DeserializationFailure):
                error = value.error
                raise _undecodable(record, data, target, error, part, parameter) from error
            return value

        return decode_fallback
    if isinstance(target, type) and issubclass(target, BaseModel):
        validate: Callable[[bytes], Any] = target.model_validate_json
    else:
        validate = TypeAdapter(target).validate_json

    def decode_json(data: bytes | None, record: ConsumerRecord[bytes, bytes]) -> Any:
        if data is None:
            return none_or_fail(record)
        try:
            return validate(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError.
            raise _undecodable(record, data, target, exc, part, parameter) from exc

    return decode_json


def header_decoder(annotation: Any, name: str, parameter: str | None = None) -> Decoder:
    """Like :func:`decoder_for`, for the value of header ``name``: an ``int`` is read from
    its text (``b"3"``), since headers carry text where JSON would refuse ``+3`` or ``03``."""
    part = f"header {name!r}"
    if unwrap_optional(annotation) is not int:
        return decoder_for(annotation, part=part, parameter=parameter)

    def decode_int(data: bytes | None, record: ConsumerRecord[bytes, bytes]) -> Any:
        try:
            return int(data.decode()) if data is not None else None
        except ValueError as exc:  # UnicodeDecodeError is one too.
            raise _undecodable(record, data, int, exc, part, parameter) from exc

    return decode_int
