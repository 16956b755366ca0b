"""``${VAR}`` and ``${VAR:default}`` placeholders in configuration values.

A placeholder names an environment variable or another configuration key
(``${server.port}``); the default after the first ``:`` may itself hold placeholders.
Unresolvable placeholders are collected, not raised one by one, so every one is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kafkaboot.config.documents import KeyPath

__all__ = ["UnresolvedPlaceholder", "resolve_placeholders", "resolve_text"]

_MAX_DEPTH = 16


class UnresolvedPlaceholder(Exception):
    """A placeholder has no value and no default."""

    def __init__(self, name: str, reason: str = "is not set") -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"${{{name}}} {reason}")


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text.startswith("${", index):
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise UnresolvedPlaceholder(text[start + 2 :], "has no closing '}'")


def _substitute(text: str, lookup: Callable[[str], str | None], depth: int) -> str:
    if depth > _MAX_DEPTH:
        raise UnresolvedPlaceholder(text, "refers to itself (circular placeholder)")
    out: list[str] = []
    position = 0
    while (start := text.find("${", position)) != -1:
        end = _closing_brace(text, start)
        out.append(text[position:start])
        body = text[start + 2 : end]
        name, has_default, default = body.partition(":")
        value = lookup(name.strip())
        if value is not None:
            out.append(_substitute(value, lookup, depth + 1))
        elif has_default:
            out.append(_substitute(default, lookup, depth + 1))
        else:
            raise UnresolvedPlaceholder(name.strip())
        position = end + 1
    out.append(text[position:])
    return "".join(out)


def _lookup_key(data: Mapping[str, Any], dotted: str) -> str | None:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, Mapping | list) or node is None:
        return None
    return str(node).lower() if isinstance(node, bool) else str(node)


def resolve_placeholders(
    data: Any, environ: Mapping[str, str], *, root: Mapping[str, Any] | None = None
) -> tuple[Any, list[tuple[KeyPath, UnresolvedPlaceholder]]]:
    """Replace placeholders in every string of ``data``.

    Environment variables win over configuration keys, as in Spring Boot.

    Returns:
        the resolved data, and every ``(key path, problem)`` that could not be resolved
        (those values are left as written).
    """
    root = data if root is None else root
    failures: list[tuple[KeyPath, UnresolvedPlaceholder]] = []

    def lookup(name: str) -> str | None:
        if name in environ:
            return environ[name]
        return _lookup_key(root, name)

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, dict):
            return {key: walk(value, (*path, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, (*path, index)) for index, item in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            try:
                return _substitute(node, lookup, 0)
            except UnresolvedPlaceholder as problem:
                failures.append((path, problem))
        return node

    return walk(data, ()), failures


def resolve_text(text: str, environ: Mapping[str, str], root: Mapping[str, Any]) -> str:
    """Resolve the placeholders of one string (a listener's topic or group id).

    Raises:
        UnresolvedPlaceholder: a placeholder has no value and no default.
    """
    if "${" not in text:
        return text

    def lookup(name: str) -> str | None:
        if name in environ:
            return environ[name]
        return _lookup_key(root, name)

    return _substitute(text, lookup, 0)
