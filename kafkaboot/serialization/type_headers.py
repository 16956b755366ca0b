"""Spring's JSON type headers: ``__TypeId__`` names the class of a record's value.

Spring's ``JsonSerializer`` writes the value's class (or its ``spring.json.type.mapping``
token) in ``__TypeId__`` (``__Key_TypeId__`` for keys), and its ``JsonDeserializer`` reads
it to choose the class, so one topic can carry several types. kafkaboot writes a model's
token or its qualified Python name, and a listener picks among the models it declares.

Nothing is ever imported because a header names it: a header can only choose a model that
``spring.json.type.mapping`` lists or that the listener's parameter declares. That is what
Spring's ``spring.json.trusted.packages`` protects; here it holds by construction.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from kafkaboot.errors import ConfigurationError

log = logging.getLogger("kafkaboot.serialization")

__all__ = [
    "ADD_TYPE_HEADERS",
    "KEY_DEFAULT_TYPE",
    "KEY_TYPE_HEADERS",
    "KEY_TYPE_ID",
    "REMOVE_TYPE_HEADERS",
    "TRUSTED_PACKAGES",
    "TYPE_HEADERS",
    "TYPE_ID",
    "TYPE_MAPPING",
    "USE_TYPE_HEADERS",
    "VALUE_DEFAULT_TYPE",
    "JsonTypes",
    "TypeHeaders",
    "TypeIds",
    "is_model",
    "parse_flag",
    "parse_type_mapping",
    "qualified_name",
]

# Header names: spring-kafka's AbstractJavaTypeMapper.
TYPE_ID = "__TypeId__"
KEY_TYPE_ID = "__Key_TypeId__"
TYPE_HEADERS = frozenset({TYPE_ID, "__ContentTypeId__", "__KeyTypeId__"})
"""What Spring writes for a value: the class, and a container's element and map key types."""
KEY_TYPE_HEADERS = frozenset({KEY_TYPE_ID, "__Key_ContentTypeId__", "__Key_KeyTypeId__"})

# Property names: spring-kafka's JsonSerializer / JsonDeserializer.
ADD_TYPE_HEADERS = "spring.json.add.type.headers"
USE_TYPE_HEADERS = "spring.json.use.type.headers"
REMOVE_TYPE_HEADERS = "spring.json.remove.type.headers"
TYPE_MAPPING = "spring.json.type.mapping"
TRUSTED_PACKAGES = "spring.json.trusted.packages"
KEY_DEFAULT_TYPE = "spring.json.key.default.type"
VALUE_DEFAULT_TYPE = "spring.json.value.default.type"


def parse_flag(properties: Mapping[str, Any], key: str, default: bool) -> bool:
    """A boolean property: YAML's ``true``/``false`` or the strings Java's properties hold.

    Raises:
        ConfigurationError: the value is neither.
    """
    value = properties.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "false"}:
        return text == "true"
    raise ConfigurationError(f"{key}: {value!r} is not a boolean; write true or false")


def parse_type_mapping(text: Any) -> dict[str, str]:
    """``token:path,token2:path2`` (Spring's format) as ``{token: path}``.

    The path is a Python model (``orders.models.Order`` or ``orders.models:Order``), so
    only the first ``:`` separates the token.

    Raises:
        ValueError: an entry has no ``:``, or an empty token or path.
    """
    mapping: dict[str, str] = {}
    for entry in str(text).split(","):
        if not entry.strip():
            continue
        token, sep, path = entry.partition(":")
        if not sep or not token.strip() or not path.strip():
            raise ValueError(
                f"entry {entry.strip()!r} is not token:python.module.Model; write e.g. "
                "'order:orders.models.Order,refund:orders.models.Refund'"
            )
        mapping[token.strip()] = path.strip()
    return mapping


def qualified_name(cls: type) -> str:
    """``module.QualName``: what kafkaboot writes for a model without a mapping token."""
    return f"{cls.__module__}.{cls.__qualname__}"


def is_model(cls: Any) -> bool:
    """A class whose instances get a type header: a pydantic model or a dataclass."""
    return isinstance(cls, type) and (issubclass(cls, BaseModel) or dataclasses.is_dataclass(cls))


def _java_name(path: str) -> bool:
    """A Java class name from a Spring file (``com.example.Order``): no ``:`` and not even
    its first package is a Python module."""
    if ":" in path or "." not in path:
        return False
    try:
        importlib.import_module(path.split(".")[0])
    except ImportError:
        return True
    return False


def _import_foreign(path: str, key: str) -> type | None:
    """Like :func:`_import_type`, but a Java class name (a Spring file's, which means
    nothing here) is skipped with a warning: the listener's declared type decides instead."""
    if _java_name(path):
        log.warning(
            "%s: %r is a Java class, not a Python model; it is ignored (the listener's "
            "declared type decides); to use it here, map the token to a Python model",
            key,
            path,
        )
        return None
    return _import_type(path, key)


def _import_type(path: str, key: str) -> type:
    """``pkg.module:Model`` or ``pkg.module.Model`` (nested: ``pkg.module.Outer.Inner``).

    Raises:
        ConfigurationError: nothing importable has that name, or it is not a class.
    """
    module_name, sep, attr = path.partition(":")
    candidates = [(module_name, attr)] if sep else []
    parts = path.split(".")
    candidates += [(".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)]
    problem = "it has no module part"
    for module_name, attr in candidates:
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError as exc:
            problem = str(exc)
            continue
        try:
            for name in attr.split("."):
                found = getattr(found, name)
        except AttributeError as exc:
            problem = str(exc)
            continue
        if isinstance(found, type):
            return found
        problem = f"it is a {type(found).__name__}, not a class"
    raise ConfigurationError(
        f"{key}: cannot import {path!r} ({problem}); name a Python model as "
        "'package.module:Model' or 'package.module.Model' (a Java class name means nothing "
        "to Python: map its token to your model instead)"
    )


def _mapped_types(properties: Mapping[str, Any]) -> dict[str, type]:
    """``spring.json.type.mapping`` with each path imported.

    Raises:
        ConfigurationError: the mapping is malformed or a path cannot be imported.
    """
    text = properties.get(TYPE_MAPPING)
    if text is None:
        return {}
    try:
        paths = parse_type_mapping(text)
    except ValueError as exc:
        raise ConfigurationError(f"{TYPE_MAPPING}: {exc}") from None
    mapped = {
        token: _import_foreign(path, f"{TYPE_MAPPING} ({token})") for token, path in paths.items()
    }
    return {token: model for token, model in mapped.items() if model is not None}


TypeHeaders = tuple[tuple[str, bytes], ...]
_OBJECT = b"java.lang.Object"


@dataclasses.dataclass(frozen=True, slots=True)
class TypeIds:
    """What a JSON serializer writes in ``__TypeId__`` (or ``__Key_TypeId__``): a mapped
    class's token, else a model's qualified name; nothing for dicts, lists and scalars.

    A mapped ``dict`` or ``list`` also gets the element types Spring writes for a raw Java
    ``Map`` or ``List`` (``__KeyTypeId__``/``__ContentTypeId__`` = ``java.lang.Object``):
    Spring's ``JsonDeserializer`` refuses a container type without them.
    """

    header: str = TYPE_ID
    tokens: Mapping[type, bytes] = dataclasses.field(default_factory=dict)
    _cache: dict[type, TypeHeaders] = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any], is_key: bool) -> TypeIds:
        """Raises:
        ConfigurationError: a malformed or unimportable ``spring.json.type.mapping``.
        """
        tokens = {model: token.encode() for token, model in _mapped_types(properties).items()}
        return cls(KEY_TYPE_ID if is_key else TYPE_ID, tokens)

    def type_headers(self, value: Any) -> TypeHeaders:
        """The headers for ``value`` (none for most), worked out once per class."""
        kind = type(value)
        try:
            return self._cache[kind]
        except KeyError:
            found = self._cache[kind] = self._headers_for(kind)
            return found

    def _headers_for(self, kind: type) -> TypeHeaders:
        type_id = self.tokens.get(kind)
        if type_id is None:
            if not is_model(kind):
                return ()
            type_id = qualified_name(kind).encode()
        prefix = "__Key_" if self.header == KEY_TYPE_ID else "__"
        headers: list[tuple[str, bytes]] = [(self.header, type_id)]
        if issubclass(kind, dict | list | tuple | set | frozenset):
            headers.append((f"{prefix}ContentTypeId__", _OBJECT))
        if issubclass(kind, dict):
            headers.append((f"{prefix}KeyTypeId__", _OBJECT))
        return tuple(headers)


@dataclasses.dataclass(frozen=True, slots=True)
class JsonTypes:
    """How a listener reads type headers for one part (key or value), from the
    ``spring.json.*`` consumer properties; worked out once at registration."""

    header: str = TYPE_ID
    use_headers: bool = True
    default_type: type | None = None
    mapping: Mapping[str, type] = dataclasses.field(default_factory=dict)
    """Token → model."""

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any], is_key: bool) -> JsonTypes:
        """Raises:
        ConfigurationError: a malformed value, or a type or mapping that cannot be imported.
        """
        mapping = _mapped_types(properties)
        key = KEY_DEFAULT_TYPE if is_key else VALUE_DEFAULT_TYPE
        name = properties.get(key)
        default: type | None = None
        if name is not None:
            name = str(name).strip()
            default = mapping[name] if name in mapping else _import_foreign(name, key)
        return cls(
            header=KEY_TYPE_ID if is_key else TYPE_ID,
            use_headers=parse_flag(properties, USE_TYPE_HEADERS, True),
            default_type=default,
            mapping=mapping,
        )

    def names(self, model: type) -> list[str]:
        """The header values that choose ``model``: its tokens, then its qualified name."""
        return [t for t, m in self.mapping.items() if m is model] + [qualified_name(model)]
