"""Relaxed binding: the many spellings of one option, mapped onto its field.

As in Spring Boot, ``bootstrap-servers``, ``bootstrap_servers`` and ``bootstrapServers`` are
one key, and ``KAFKA_CONSUMER_GROUP_ID`` sets ``kafka.consumer.group-id``. Binding follows the
settings models, so a key is never guessed: where a name does not match a field it is left
as written, and validation reports it as unknown with the closest known names.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from kafkaboot.config.documents import KeyPath

__all__ = ["canonical", "display_path", "env_bindings", "field_type_at", "normalize_keys"]


def canonical(name: str) -> str:
    """The comparison form of a key: lower case without ``-`` and ``_``."""
    return name.replace("-", "").replace("_", "").lower()


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` down to the type that decides nesting."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _container(annotation: Any) -> tuple[str, Any] | None:
    """``("list", item)`` or ``("dict", value)`` for list and dict fields, else ``None``."""
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is list:
        return "list", typing.get_args(annotation)[0]
    if origin is dict:
        return "dict", typing.get_args(annotation)[1]
    return None


def _fields_by_canonical(model: type[BaseModel]) -> dict[str, str]:
    return {canonical(name): name for name in model.model_fields}


def _normalize_value(
    annotation: Any, value: Any, raw: KeyPath, norm: KeyPath, paths: dict[KeyPath, KeyPath]
) -> Any:
    model = _model(annotation)
    if model is not None and isinstance(value, Mapping):
        return normalize_keys(model, value, raw, norm, paths)
    container = _container(annotation)
    if container is None:
        return value
    kind, item_type = container
    if kind == "dict" and isinstance(value, Mapping):
        for key in value:  # Keys of plain maps (raw properties) are kept, and located.
            paths[(*norm, key)] = (*raw, key)
    if kind == "list" and isinstance(value, list) and _model(item_type) is not None:
        out = []
        for index, item in enumerate(value):
            paths[(*norm, index)] = (*raw, index)
            out.append(_normalize_value(item_type, item, (*raw, index), (*norm, index), paths))
        return out
    if kind == "dict" and isinstance(value, Mapping) and _model(item_type) is not None:
        result = {}
        for key, item in value.items():
            paths[(*norm, key)] = (*raw, key)
            result[key] = _normalize_value(item_type, item, (*raw, key), (*norm, key), paths)
        return result
    return value


def normalize_keys(
    model: type[BaseModel],
    data: Mapping[str, Any],
    raw: KeyPath = (),
    norm: KeyPath = (),
    paths: dict[KeyPath, KeyPath] | None = None,
) -> dict[str, Any]:
    """Rename every key of ``data`` that matches a field of ``model`` to the field's name.

    Args:
        paths: filled with ``normalized path -> path as written``, to locate errors later.
    """
    paths = {} if paths is None else paths
    fields = _fields_by_canonical(model)
    result: dict[str, Any] = {}
    for key, value in data.items():
        name = fields.get(canonical(str(key)), str(key)) if isinstance(key, str) else key
        paths[(*norm, name)] = (*raw, key)
        annotation = model.model_fields[name].annotation if name in model.model_fields else None
        result[name] = _normalize_value(annotation, value, (*raw, key), (*norm, name), paths)
    return result


def field_type_at(model: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The settings model that holds the last key of ``path`` (for "did you mean")."""
    current: Any = model
    for part in path[:-1]:
        current_model = _model(current)
        if (
            current_model is not None
            and isinstance(part, str)
            and part in current_model.model_fields
        ):
            current = current_model.model_fields[part].annotation
            continue
        container = _container(current)
        if container is None:
            return None
        current = container[1]
    return _model(current)


def display_path(model: type[BaseModel], path: KeyPath) -> str:
    """A key path as users write it: ``kafka.consumer.group-id``, ``kafka.topics[0].name``."""
    out = ""
    for index, part in enumerate(path):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        holder = field_type_at(model, (*path[:index], part))
        text = part.replace("_", "-") if holder and part in holder.model_fields else part
        out += f".{text}" if out else text
    return out


def _match_tokens(annotation: Any, tokens: list[str]) -> Iterator[KeyPath]:
    """Every way ``tokens`` (from an environment variable name) spell a path below
    ``annotation``. Map keys take the remaining tokens joined with dots (``properties``)."""
    if not tokens:
        yield ()
        return
    model = _model(annotation)
    if model is not None:
        for name, info in model.model_fields.items():
            parts = name.split("_")
            if tokens[: len(parts)] == parts:
                for rest in _match_tokens(info.annotation, tokens[len(parts) :]):
                    yield (name, *rest)
        return
    container = _container(annotation)
    if container is None:
        return
    kind, item_type = container
    if kind == "list" and tokens[0].isdigit():
        for rest in _match_tokens(item_type, tokens[1:]):
            yield (int(tokens[0]), *rest)
    elif kind == "dict" and _model(item_type) is None:
        yield (".".join(tokens),)
    elif kind == "dict":
        for split in range(1, len(tokens) + 1):
            for rest in _match_tokens(item_type, tokens[split:]):
                yield ("-".join(tokens[:split]), *rest)


def env_bindings(
    root: type[BaseModel], environ: Mapping[str, str], prefixes: Mapping[str, str]
) -> list[tuple[str, KeyPath, str]]:
    """Environment variables that set a settings field: ``(variable, path, value)``.

    Args:
        prefixes: variable prefix (``SPRING_KAFKA_``) → root field it addresses (``kafka``).
            Longer prefixes are tried first; variables that match no field are ignored, as
            unrelated variables (``KAFKA_HEAP_OPTS``) share these prefixes.
    """
    found = []
    ordered = sorted(prefixes.items(), key=lambda item: -len(item[0]))
    for variable, value in environ.items():
        upper = variable.upper()
        for prefix, section in ordered:
            if not upper.startswith(prefix):
                continue
            tokens = [t for t in upper[len(prefix) :].lower().split("_") if t]
            annotation = root.model_fields[section].annotation
            match = next(iter(_match_tokens(annotation, tokens)), None)
            if match:
                found.append((variable, (section, *match), value))
            break
    return found
