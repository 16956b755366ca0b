"""What a handler says about its messages, read from its signature the way the listener
binding reads it: the payload type (the one parameter that is not the acknowledgment, the
consumer, a DI injection or a marked record field), the key's and headers' types where
marked, and the return type that ``@send_to`` sends on. Turned into JSON Schema by
pydantic, with every model's schema under ``components.schemas``."""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
)
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pydantic import TypeAdapter

from kafkaboot.injection import injected_parameters
from kafkaboot.listener.acks import Acknowledgment
from kafkaboot.listener.parameters import Header, Key, marker_of

__all__ = ["Schemas", "Signature", "read_signature"]

_REF = "#/components/schemas/{model}"

_PER_ELEMENT = {
    list,
    tuple,
    set,
    frozenset,
    Iterator,
    Iterable,
    Generator,
    AsyncIterator,
    AsyncIterable,
    AsyncGenerator,
}


@dataclasses.dataclass(frozen=True)
class Signature:
    """A handler's message types (``None``: not declared)."""

    payload: Any = None
    key: Any = None
    headers: dict[str, Any] = dataclasses.field(default_factory=dict)
    returns: Any = None


def read_signature(handler: Callable[..., Any], batch: bool) -> Signature:
    """The message types ``handler`` declares (best effort: a hint that cannot be resolved
    counts as undeclared, since the binding has reported it already)."""
    target: Any = handler
    if inspect.ismethod(handler):
        target = handler.__func__
    elif not inspect.isfunction(handler) and callable(handler):
        target = type(handler).__call__
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except (NameError, TypeError):
        return Signature()
    injected = injected_parameters(handler)
    payload = key = None
    headers: dict[str, Any] = {}
    for param in inspect.signature(handler).parameters.values():
        annotation = hints.get(param.name, Any)
        metadata: tuple[Any, ...] = ()
        if typing.get_origin(annotation) is typing.Annotated:
            annotation, *rest = typing.get_args(annotation)
            metadata = tuple(rest)
        marker = marker_of(metadata)
        if param.name in injected or annotation in (Acknowledgment, AIOKafkaConsumer):
            continue
        if isinstance(marker, Header):
            headers[marker.name] = annotation
        elif isinstance(marker, Key):
            key = annotation
        elif marker is None and payload is None:
            payload = annotation
    if batch and typing.get_origin(payload) is list:
        [payload] = typing.get_args(payload) or (Any,)
    if payload is ConsumerRecord or typing.get_origin(payload) is ConsumerRecord:
        key_type, value_type = typing.get_args(payload) or (Any, Any)
        payload, key = value_type, key or key_type
    return Signature(payload, key, headers, _returned(hints.get("return")))


def _returned(annotation: Any) -> Any:
    """What a ``@send_to`` handler's result sends per record: the element of a list or of
    an (async) iterator, else the annotation; ``None`` when it returns nothing."""
    if annotation is None or annotation is type(None):
        return None
    origin = typing.get_origin(annotation)
    if origin in _PER_ELEMENT:  # As the reply sender sends them: one record per element.
        args = typing.get_args(annotation)
        return args[0] if args else Any
    if origin in (typing.Union, getattr(typing, "UnionType", None)):
        kept = [a for a in typing.get_args(annotation) if a is not type(None)]
        return kept[0] if len(kept) == 1 else annotation
    return annotation


class Schemas:
    """JSON Schemas of the document's types, models shared under ``components.schemas``."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, annotation: Any) -> dict[str, Any]:
        """The schema of ``annotation`` (``{}``: anything, for ``Any`` or an unknown hint)."""
        if annotation is None or annotation is Any or annotation is inspect.Parameter.empty:
            return {}
        try:
            schema = TypeAdapter(annotation).json_schema(ref_template=_REF)
        except Exception:  # A type pydantic cannot describe: say nothing rather than lie.
            return {}
        self.components.update(schema.pop("$defs", {}))
        title = schema.get("title")
        if schema.get("type") == "object" and isinstance(title, str) and "properties" in schema:
            name = self._name_for(re.sub(r"[^\w.\-]", "_", title), schema)
            self.components[name] = schema  # A model: shared, referenced.
            return {"$ref": _REF.format(model=name)}
        return schema

    def _name_for(self, wanted: str, schema: dict[str, Any]) -> str:
        """``wanted``, or ``wanted_2``... when another schema has that name already."""
        name, number = wanted, 1
        while name in self.components and self.components[name] != schema:
            number += 1
            name = f"{wanted}_{number}"
        return name
