"""Reading YAML configuration files: documents, line numbers and profile activation.

A file may hold several documents (``---``); a document with
``spring.config.activate.on-profile`` (or ``kafkaboot.config.activate.on-profile``) applies
only when its profile expression matches the active profiles, as in Spring Boot.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kafkaboot.errors import ConfigProblem, ConfigurationError

__all__ = ["Document", "KeyPath", "matches_profiles", "read_documents"]

KeyPath = tuple[str | int, ...]
"""A key path into a configuration tree: mapping keys and list indexes."""

_ACTIVATION_SECTIONS = ("spring", "kafkaboot")


@dataclass(slots=True)
class Document:
    """One YAML document: its data, the line of each key, and its profile condition."""

    source: Path
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)
    on_profile: str | list[str] | None = None

    def origin(self, path: KeyPath) -> str:
        """``file:line`` of the key at ``path`` (or of its nearest parent)."""
        while path:
            if path in self.lines:
                return f"{self.source}:{self.lines[path]}"
            path = path[:-1]
        return str(self.source)


def _record_lines(
    source: Path,
    node: yaml.Node,
    path: KeyPath,
    lines: dict[KeyPath, int],
    enclosing: frozenset[int] = frozenset(),
) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    if id(node) in enclosing:
        # An alias inside its own anchor (`a: &x [*x]`): the value would be infinite.
        return [
            ConfigProblem(
                "this value contains itself through a YAML alias (*name inside &name)",
                key=_dotted(path),
                origin=f"{source}:{node.start_mark.line + 1}",
                hint="use the alias outside the anchored value, or write the value out",
            )
        ]
    enclosing = enclosing | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in seen:
                problems.append(
                    ConfigProblem(
                        f"duplicate key {key!r} (the later value would silently win)",
                        key=_dotted((*path, key)),
                        origin=f"{source}:{key_node.start_mark.line + 1}",
                        hint="keep one of the two entries",
                    )
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            problems += _record_lines(source, value_node, (*path, key), lines, enclosing)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            problems += _record_lines(source, item, (*path, index), lines, enclosing)
    return problems


def _dotted(path: KeyPath) -> str | None:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.removeprefix(".") or None


def _text_keys(source: Path, node: yaml.MappingNode) -> list[ConfigProblem]:
    """Top-level keys name sections, so they must be text (``1:`` or ``true:`` is a typo)."""
    return [
        ConfigProblem(
            f"top-level key {key_node.value!r} is not a name (YAML reads it as "
            f"{key_node.tag.rsplit(':', 1)[-1]})",
            key=str(key_node.value),
            origin=f"{source}:{key_node.start_mark.line + 1}",
            hint=f"quote it ('{key_node.value}':) if it is meant as a name, or indent it "
            "under its section",
        )
        for key_node, _ in node.value
        if key_node.tag != "tag:yaml.org,2002:str"
    ]


def _pop_activation(data: dict[str, Any]) -> str | list[str] | None:
    for section in _ACTIVATION_SECTIONS:
        owner = data.get(section)
        config = owner.get("config") if isinstance(owner, dict) else None
        activate = config.get("activate") if isinstance(config, dict) else None
        if isinstance(owner, dict) and isinstance(config, dict) and isinstance(activate, dict):
            if "on-profile" not in activate:
                continue
            condition: str | list[str] = activate.pop("on-profile")
            # Drop the now-empty scaffolding so it does not look like user configuration.
            if not activate:
                config.pop("activate")
            if not config:
                owner.pop("config")
            if not owner:
                data.pop(section)
            return condition
    return None


def read_documents(path: Path) -> list[Document]:
    """Every document of a YAML file, with the line of each key.

    Raises:
        ConfigurationError: the file cannot be read, is not valid YAML (with its line), a
            document is not a mapping, or a key is repeated.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            [ConfigProblem(f"cannot read configuration file: {exc.strerror}", origin=str(path))]
        ) from exc
    documents: list[Document] = []
    problems: list[ConfigProblem] = []
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # Refuses control characters at once.
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            data = loader.construct_document(node)
            if data is None:
                continue
            if not isinstance(data, dict):
                line = node.start_mark.line + 1
                problems.append(
                    ConfigProblem(
                        f"a configuration document must be a mapping of keys, got a "
                        f"{type(data).__name__}",
                        origin=f"{path}:{line}",
                        hint="start the document with a key such as 'kafka:'",
                    )
                )
                continue
            lines: dict[KeyPath, int] = {}
            found = _record_lines(path, node, (), lines)
            if isinstance(node, yaml.MappingNode):
                found += _text_keys(path, node)
            if found:
                problems += found
                continue  # Its data may be infinite or unusable: report, do not read on.
            condition = _pop_activation(data)
            documents.append(Document(path, data, lines, condition))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        problems.append(
            ConfigProblem(
                f"invalid YAML: {what}",
                origin=where,
                hint="check the indentation and quoting on that line (a tab, a missing "
                "space after ':' or an unclosed quote is the usual cause)",
            )
        )
    except yaml.YAMLError as exc:
        problems.append(ConfigProblem(f"invalid YAML: {exc}", origin=str(path)))
    except RecursionError:
        # PyYAML reads nested blocks recursively: about 1000 levels exhaust Python's stack.
        problems.append(
            ConfigProblem(
                "the YAML is nested too deeply to read (hundreds of levels: past Python's "
                f"recursion limit of {sys.getrecursionlimit()} frames)",
                origin=str(path),
                hint="flatten the structure; configuration needs only a few levels",
            )
        )
    finally:
        if loader is not None:
            loader.dispose()
    if problems:
        raise ConfigurationError(problems)
    return documents


def matches_profiles(condition: str | list[str], active: Sequence[str]) -> bool:
    """Whether a Spring profile expression (``dev``, ``!prod``, ``dev | test``,
    ``cloud & eu``, or a list meaning "any of") matches the active profiles."""
    if isinstance(condition, list):
        return any(matches_profiles(item, active) for item in condition)
    alternatives = [part.strip() for part in str(condition).replace(",", "|").split("|")]
    for alternative in alternatives:
        terms = [term.strip() for term in alternative.split("&")]
        if all(
            (term[1:].strip() not in active) if term.startswith("!") else (term in active)
            for term in terms
            if term
        ):
            return True
    return False
