"""From a handler's signature to an invoker, worked out once at registration.

Each parameter becomes a small extractor chosen from its type hint; per record the invoker
only runs those extractors. The common case, a handler taking just the payload, calls
``handler(decode(record.value))`` with nothing else in between.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from kafkaboot.errors import ListenerDefinitionError
from kafkaboot.injection import injected_parameters, unwired_injections
from kafkaboot.listener.acks import Acknowledgment
from kafkaboot.listener.decoding import (
    Decoder,
    allows_none,
    decoder_for,
    describe,
    model_namespace,
)
from kafkaboot.listener.parameters import (
    Extractor,
    Header,
    Headers,
    Key,
    Offset,
    Partition,
    Timestamp,
    Topic,
    field_extractor,
    header_extractor,
    is_record_type,
    marker_of,
    record_extractor,
    value_extractor,
)
from kafkaboot.offset_store.store import current_transaction
from kafkaboot.serialization import Deserializer, JsonTypes

__all__ = [
    "Header",
    "Headers",
    "Invoker",
    "Key",
    "Offset",
    "Partition",
    "Timestamp",
    "Topic",
    "bind",
]


@dataclasses.dataclass(frozen=True, slots=True)
class ModelCall:
    """An ``async def`` handler whose one parameter is a plain pydantic model.

    The container's hot loop validates with ``namespace["__pydantic_validator__"]`` and
    awaits ``handler`` itself: two Python frames fewer per record than ``Invoker.call``.
    When validation fails (or the value is null) it calls ``decode``, which raises the
    error that names the record (or maps the null), exactly as ``call`` would.
    """

    handler: Callable[[Any], Any]
    namespace: Mapping[str, Any]
    decode: Decoder


@dataclasses.dataclass(frozen=True, slots=True)
class Invoker:
    """A handler with its arguments worked out.

    ``call(record, ack, consumer)`` returns the handler's result (a coroutine for
    ``async def``); ``call_batch(records, ack, consumer)`` does the same for batch listeners.
    """

    name: str
    is_async: bool
    """``call`` returns something to await (a coroutine function, or an async generator)."""
    wants_ack: bool
    batch: bool
    call: Callable[[Any, Any, Any], Any]
    decode_one: Callable[[ConsumerRecord[bytes, bytes]], Any] | None = None
    """Batch listeners: how one record becomes one list element (to isolate bad records)."""
    is_coroutine: bool = False
    """``call`` returns a coroutine: the container's fast path may ``await`` it directly."""
    decode_value: Decoder | None = None
    """Batch listeners of payloads (not records): ``decode_one`` is ``decode_value(r.value,
    r)``, which the batch loop calls itself, a frame fewer per record."""
    model_call: ModelCall | None = None
    """Set when ``call`` is ``handler(decode(r.value, r))`` for a plain model and an
    ``async def`` handler: what the fast path runs inline."""


def _injected(handler: Callable[..., Any], name: str) -> set[str]:
    injected = injected_parameters(handler)
    missing = unwired_injections(handler) if injected else set()
    if missing:
        raise _fail(
            name,
            f"parameter(s) {', '.join(sorted(missing))} wait for the DI container, but "
            "nothing will fill them",
            "decorate the handler with @inject and wire its module before registering "
            "(container.wire(modules=[...]), or list it in kafkaboot.application.modules)",
        )
    return injected


def _is_session(annotation: Any, session_type: type | None, name: str, parameter: str) -> bool:
    """A parameter for the offset store's session: its type. Any other SQLAlchemy session
    type is refused, naming the one it gets (or that the listener has no store)."""
    if not isinstance(annotation, type):
        return False
    if session_type is not None and issubclass(annotation, session_type):
        return True
    if annotation.__module__.startswith("sqlalchemy") and "Session" in annotation.__name__:
        if session_type is None:
            return True  # The caller names the missing store.
        raise _fail(
            name,
            f"parameter {parameter!r} is a {annotation.__name__}, but the offset store gives "
            f"a {session_type.__name__}",
            f"annotate it as {session_type.__name__}",
        )
    return False


def _fail(name: str, problem: str, fix: str) -> ListenerDefinitionError:
    return ListenerDefinitionError(f"listener {name}: {problem}; {fix}")


def bind(
    handler: Callable[..., Any],
    *,
    name: str,
    batch: bool,
    manual_ack: bool,
    key_deserializer: Deserializer | None = None,
    value_deserializer: Deserializer | None = None,
    properties: Mapping[str, Any] | None = None,
    session_type: type | None = None,
) -> Invoker:
    """Work out, once, how to call ``handler`` for a record (or a batch).

    ``properties`` are the consumer's raw properties: their ``spring.json.*`` keys say how
    type headers choose a model (:mod:`kafkaboot.serialization.type_headers`).
    ``session_type``: the listener has an offset store whose transactions yield sessions
    of this type; a parameter of that type receives the open one.

    Raises:
        ConfigurationError: a ``spring.json.*`` property is malformed or names a type that
            cannot be imported.
        ListenerDefinitionError: the signature cannot work (two payloads, an
            ``Acknowledgment`` without a manual ack mode, or a manual ack mode without one,
            a batch listener whose payload is not a list, ``*args``), naming the fix.
    """
    target: Any = handler
    if not (inspect.isfunction(handler) or inspect.ismethod(handler)) and callable(handler):
        target = type(handler).__call__  # An object with __call__: its hints are there.
    elif inspect.ismethod(handler):
        target = handler.__func__
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except (NameError, TypeError) as exc:
        raise _fail(
            name,
            f"its type hints cannot be resolved ({exc})",
            "import the types it names at module level",
        ) from exc
    signature = inspect.signature(handler)
    extractors: list[Extractor] = []
    payload_param: str | None = None
    wants_ack = False
    decode_one: Callable[[ConsumerRecord[bytes, bytes]], Any] | None = None
    batch_value_decoder: Decoder | None = None
    payload_decoder: Decoder | None = None
    payload_extractor: Extractor | None = None
    types = (
        JsonTypes.from_properties(properties or {}, is_key=True),
        JsonTypes.from_properties(properties or {}, is_key=False),
    )
    key_types, value_types = types

    injected = _injected(handler, name)
    for param in signature.parameters.values():
        if param.name in injected:
            continue  # Filled by the DI container (``= Provide[...]``), not by us.
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise _fail(
                name,
                f"*{param.name} / **{param.name} cannot be bound",
                "declare each parameter with a type hint",
            )
        annotation = hints.get(param.name, inspect.Parameter.empty)
        metadata: tuple[Any, ...] = ()
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *rest = typing.get_args(annotation)
            metadata = tuple(rest)
        marker = marker_of(metadata)
        if _is_session(annotation, session_type, name, param.name):
            if session_type is None:
                raise _fail(
                    name,
                    f"parameter {param.name!r} takes a database session but the listener has "
                    "no offset store",
                    "set kafka.listeners.<id>.offset-store.url (or offset_store=... on "
                    "@kafka_listener), or remove the parameter",
                )
            extractors.append(lambda r, a, c: current_transaction.get())
        elif annotation is Acknowledgment:
            if not manual_ack:
                raise _fail(
                    name,
                    f"parameter {param.name!r} is an Acknowledgment but the ack mode is automatic",
                    "set ack_mode='manual' (or 'manual_immediate'), or remove the parameter",
                )
            wants_ack = True
            extractors.append(lambda r, a, c: a)
        elif annotation is AIOKafkaConsumer:
            extractors.append(lambda r, a, c: c)
        elif isinstance(marker, Header):
            if batch:
                raise _fail(
                    name,
                    "header parameters are for single-record listeners",
                    "take list[ConsumerRecord] and read record.headers",
                )
            no_default = param.default is inspect.Parameter.empty
            required = no_default and not allows_none(annotation)
            default = None if no_default else param.default
            extractors.append(
                header_extractor(annotation, marker.name, param.name, required, default)
            )
        elif marker is not None:
            if batch:
                raise _fail(
                    name,
                    f"{marker!r} parameters are for single-record listeners",
                    "take list[ConsumerRecord] to see each record's fields",
                )
            extractors.append(
                field_extractor(marker, annotation, key_deserializer, param.name, key_types)
            )
        else:
            if payload_param is not None:
                raise _fail(
                    name,
                    f"parameters {payload_param!r} and {param.name!r} both look like the payload",
                    "mark the extra one, e.g. Annotated[str, Key] "
                    "or Annotated[str, Header('name')], or remove it",
                )
            payload_param = param.name
            if batch:
                if typing.get_origin(annotation) is not list:
                    raise _fail(
                        name,
                        f"batch listener parameter {param.name!r} is "
                        f"{describe(annotation)}, not a list",
                        "annotate it as list[Model] or list[ConsumerRecord[K, V]]",
                    )
                [element] = typing.get_args(annotation) or (bytes,)
                if is_record_type(element):
                    extract_one = record_extractor(
                        element, key_deserializer, value_deserializer, param.name, types
                    )
                    decode_one = lambda r, e=extract_one: e(r, None, None)  # noqa: E731
                else:
                    decode_value = decoder_for(
                        element, value_deserializer, parameter=param.name, types=value_types
                    )
                    decode_one = lambda r, d=decode_value: d(r.value, r)  # noqa: E731
                    batch_value_decoder = decode_value
                extractors.append(lambda r, a, c: r)  # The container passes decoded values.
            elif is_record_type(annotation):
                extractors.append(
                    record_extractor(
                        annotation, key_deserializer, value_deserializer, param.name, types
                    )
                )
            else:
                decode_payload = decoder_for(
                    annotation, value_deserializer, parameter=param.name, types=value_types
                )
                payload_decoder = decode_payload
                payload_extractor = value_extractor(decode_payload)
                extractors.append(payload_extractor)

    if manual_ack and not wants_ack:
        raise _fail(
            name,
            "the ack mode is manual but the handler takes no Acknowledgment, "
            "so nothing would ever be committed",
            "add a parameter "
            "'ack: Acknowledgment' and call ack.acknowledge(), or choose an automatic "
            "ack mode",
        )
    single_payload = payload_decoder if len(extractors) == 1 else None
    if batch and payload_param is None:
        raise _fail(
            name,
            "a batch listener needs a list parameter for the records",
            "add e.g. 'records: list[ConsumerRecord[str, str]]'",
        )

    is_coroutine = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - an object with async __call__.
    )
    is_async = is_coroutine or inspect.isasyncgenfunction(target)
    if session_type is not None and not is_coroutine:
        raise _fail(
            name,
            "it has an offset store, whose transaction is asynchronous, but it is not an "
            "'async def' function",
            "make the handler 'async def' (and await the session's calls)",
        )
    if single_payload is not None:
        # The hot path: one frame between the container and the handler.
        decode_value = single_payload
        call: Callable[[Any, Any, Any], Any] = lambda r, a, c: handler(decode_value(r.value, r))  # noqa: E731
    elif payload_decoder is not None and len(extractors) == 2 and wants_ack:
        # The manual-ack hot path, ``(payload, ack)`` in either order: one frame too.
        decode_value = payload_decoder
        if extractors[0] is payload_extractor:
            call = lambda r, a, c: handler(decode_value(r.value, r), a)  # noqa: E731
        else:
            call = lambda r, a, c: handler(a, decode_value(r.value, r))  # noqa: E731
    elif len(extractors) == 1:
        [only] = extractors
        call = lambda r, a, c: handler(only(r, a, c))  # noqa: E731
    else:
        steps = tuple(extractors)
        call = lambda r, a, c: handler(*[step(r, a, c) for step in steps])  # noqa: E731
    model_call = None
    if single_payload is not None and is_coroutine:
        namespace = model_namespace(single_payload)
        if namespace is not None:
            model_call = ModelCall(handler, namespace, single_payload)
    return Invoker(
        name,
        is_async,
        wants_ack,
        batch,
        call,
        decode_one,
        is_coroutine,
        batch_value_decoder,
        model_call,
    )
