"""Record bytes to the type a handler parameter asks for, worked out once per parameter.

A decoder either returns the value or raises :class:`~kafkaboot.errors.DeserializationError`
naming the record, the part (value, key, header) and the parameter: bad bytes fail the same
way on every delivery, so the error handler does not retry them and the recoverer gets
everything it needs to say what went wrong.
"""

from __future__ import annotations

import functools
import inspect
import types as types_module
import typing
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeAlias

import pydantic_core
from aiokafka import ConsumerRecord
from pydantic import BaseModel, TypeAdapter

from kafkaboot.errors import DeserializationError
from kafkaboot.serialization import (
    DeserializationFailure,
    Deserializer,
    ErrorHandlingDeserializer,
    JsonDeserializer,
    JsonTypes,
)

__all__ = [
    "Decoder",
    "allows_none",
    "decoder_for",
    "describe",
    "header_decoder",
    "model_namespace",
    "unwrap_optional",
    "where",
]

Decoder: TypeAlias = Callable[[bytes | None, ConsumerRecord[bytes, bytes]], Any]
"""``(raw bytes, record) -> value``; the record is for the error message."""

_MODEL_DECODERS: weakref.WeakKeyDictionary[Decoder, Mapping[str, Any]] = weakref.WeakKeyDictionary()
"""Plain-model decoders and the namespace (class ``__dict__``) of the model they validate."""


def model_namespace(decode: Decoder) -> Mapping[str, Any] | None:
    """The class namespace of the plain pydantic model ``decode`` validates (``None``: it
    decodes something else). ``namespace["__pydantic_validator__"].validate_json(data)`` is
    what ``decode`` does for good bytes: a hot loop may do it inline and call ``decode`` only
    to raise its error (or to map a null) when that fails."""
    return _MODEL_DECODERS.get(decode)


def allows_none(annotation: Any) -> bool:
    if annotation is Any or annotation is None or annotation is type(None):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types_module.UnionType):
        return type(None) in typing.get_args(annotation)
    return False


def describe(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types_module.UnionType):
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
    types: JsonTypes | None = None,
) -> Decoder:
    """A function that turns raw bytes into ``annotation``, raising
    :class:`DeserializationError` with the record on failure.

    With ``types`` (the listener's ``spring.json.*`` settings for this part), a union of
    models, a configured default type or a type mapping makes the decoder read the type
    header (``__TypeId__``) to choose the model; otherwise the decoder is the plain one.

    A failure is a ``ValueError`` (a ``UnicodeDecodeError``, pydantic's ``ValidationError``,
    a deserializer's ``SerializationError``) or a :class:`DeserializationFailure` returned by
    an ``ErrorHandlingDeserializer``: bad bytes. Anything else a deserializer raises is left
    as it is, to be retried (a lookup that may work next time).
    """
    target = unwrap_optional(annotation)
    plain = functools.partial(_plain_decoder, annotation, target, fallback, part, parameter)
    if types is not None:
        typed = _typed_decoder(target, types, plain, fallback, part, parameter)
        if typed is not None:
            return typed
    return plain()


def _plain_decoder(
    annotation: Any,
    target: Any,
    fallback: Deserializer | None,
    part: str,
    parameter: str | None,
) -> Decoder:
    optional = allows_none(annotation)

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
    if _plain_model(target):
        namespace = vars(target)

        def decode_model(data: bytes | None, record: ConsumerRecord[bytes, bytes]) -> Any:
            if data is None:
                return none_or_fail(record)
            try:
                # What model_validate_json does without arguments, without its frame.
                return namespace["__pydantic_validator__"].validate_json(data)
            except ValueError as exc:  # pydantic's ValidationError is a ValueError.
                raise _undecodable(record, data, target, exc, part, parameter) from exc

        _MODEL_DECODERS[decode_model] = namespace
        return decode_model
    if isinstance(target, type) and issubclass(target, BaseModel):
        validate: Callable[[bytes], Any] = target.model_validate_json
    else:
        validate = _plain_json(target) or TypeAdapter(target).validate_json

    def decode_json(data: bytes | None, record: ConsumerRecord[bytes, bytes]) -> Any:
        if data is None:
            return none_or_fail(record)
        try:
            return validate(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError.
            raise _undecodable(record, data, target, exc, part, parameter) from exc

    return decode_json


def _plain_model(target: Any) -> bool:
    """A pydantic model that keeps ``BaseModel.model_validate_json``: its decoder calls the
    model's validator directly, one Python frame and six keyword arguments fewer per record.
    The validator is read per record from the class's own namespace, so a rebuilt model is
    validated by its new validator; ``target.__pydantic_validator__`` would go through
    pydantic's metaclass ``__getattr__`` hook, a few hundred instructions per record."""
    if not (isinstance(target, type) and issubclass(target, BaseModel)):
        return False
    if "__pydantic_validator__" not in vars(target):
        return False
    own = getattr(target.model_validate_json, "__func__", None)
    return own is getattr(BaseModel.model_validate_json, "__func__", None)


_PLAIN = {dict: dict, dict[str, Any]: dict, list: list, list[Any]: list}
"""Targets that take any JSON object or array: parsed, and only their kind checked."""


def _plain_json(target: Any) -> Callable[[bytes], Any] | None:
    """A parser for ``dict``/``list`` targets of any values: pydantic-core's ``from_json``
    and a type check, instead of validating every value against ``Any`` (about 1 µs less
    per record for the sample envelope)."""
    try:
        kind = _PLAIN.get(target)
    except TypeError:  # An unhashable annotation.
        return None
    if kind is None:
        return None
    name = "an object" if kind is dict else "an array"

    def parse(data: bytes) -> Any:
        value = pydantic_core.from_json(data)
        if type(value) is not kind:
            raise ValueError(f"expected JSON {name}, got {type(value).__name__}")
        return value

    return parse


def _validator(model: Any) -> Callable[[bytes], Any]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return model.model_validate_json
    return TypeAdapter(model).validate_json


def _reads_json(fallback: Deserializer | None) -> bool:
    """The configured deserializer is JSON without a target: Spring's typeless one."""
    if isinstance(fallback, ErrorHandlingDeserializer):
        fallback = fallback.delegate
    return isinstance(fallback, JsonDeserializer) and fallback.target is None


_UNKNOWN = object()


def _typed_decoder(
    target: Any,
    types: JsonTypes,
    plain: Callable[[], Decoder],
    fallback: Deserializer | None,
    part: str,
    parameter: str | None,
) -> Decoder | None:
    """A decoder that lets the type header (``__TypeId__``) choose the model, or None when
    nothing would use it (a single type and no mapping): then the plain decoder runs and
    records pay nothing for type headers.

    Candidates are the parameter's models (the union's members, or with ``Any`` and a JSON
    deserializer every mapped model and the default type) and mapped subclasses of them.
    A header names one by mapping token or qualified name. A header naming another mapped
    model fails; an unknown header fails for a union (it has no single answer) and is
    ignored otherwise (a Spring producer's Java class name, say). No header: the default
    type when the parameter accepts it, else the declared type.
    """
    untyped = target is Any or target is inspect.Parameter.empty or target is object
    default = types.default_type
    if untyped:
        if not _reads_json(fallback):
            return None
        members: list[Any] = list(dict.fromkeys([*types.mapping.values(), default]))
        members = [m for m in members if m is not None]
    elif typing.get_origin(target) in (typing.Union, types_module.UnionType):
        members = [m for m in typing.get_args(target) if m is not type(None)]
    else:
        members = [target]
    if not members or not all(isinstance(m, type) for m in members):
        return None  # list[int] | dict[str, int] and the like: pydantic's union decides.
    union = len(members) > 1 and not untyped
    if default is not None and default not in members:
        default = None  # Another parameter's type; this one decodes as it declares.
    reads_header = types.use_headers and (union or bool(types.mapping) or untyped)
    if not reads_header and default is None:
        return None
    candidates = list(members)
    candidates += [
        m
        for m in types.mapping.values()
        if m not in candidates and any(issubclass(m, member) for member in members)
    ]
    validators = {model: _validator(model) for model in candidates}
    choices: dict[bytes, tuple[Any, Callable[[bytes], Any]] | None] = {}
    for model in candidates:
        for name in types.names(model):
            choices.setdefault(name.encode(), (model, validators[model]))
    for token in types.mapping:
        choices.setdefault(token.encode(), None)  # A mapped model this parameter refuses.
    header = types.header
    plain_decode = plain()
    default_choice = None if default is None else (default, validators[default])
    accepted = ", ".join(f"{describe(m)} ({' or '.join(types.names(m))})" for m in candidates)

    def refuse(record: ConsumerRecord[bytes, bytes], type_id: bytes, known: bool) -> NoReturn:
        why = (
            "a mapped model that this parameter does not accept"
            if known
            else "neither a spring.json.type.mapping token nor one of the accepted models"
        )
        into = f"parameter {parameter!r}" if parameter else "the listener"
        raise DeserializationError(
            f"the {part} of record {where(record)} has type header {header}="
            f"{type_id.decode(errors='replace')!r}, {why}; {into} accepts {accepted}. Map "
            "the header's value to one of them in spring.json.type.mapping "
            "(token:python.module.Model) or add its model to the parameter's type",
            record,
            part,
            parameter,
        )

    def decode(data: bytes | None, record: ConsumerRecord[bytes, bytes]) -> Any:
        if data is None:
            return plain_decode(data, record)
        chosen: Any = default_choice
        if reads_header:
            type_id = None
            for key, raw in record.headers:
                if key == header:
                    type_id = raw  # The last one wins, as Kafka's lastHeader().
            if type_id is not None:
                found = choices.get(type_id, _UNKNOWN)
                if found is None or (found is _UNKNOWN and union):
                    refuse(record, type_id, found is None)
                if found is not _UNKNOWN:
                    chosen = found
        if chosen is None:
            return plain_decode(data, record)
        model, validate = chosen
        try:
            return validate(data)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError.
            raise _undecodable(record, data, model, exc, part, parameter) from exc

    return decode


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
