"""The docs site's reference pages, generated when MkDocs builds it (``hooks:`` in mkdocs.yml):
``reference/cli.md`` from the ``kafkaboot`` command's own parser, ``reference/configuration.md``
from the settings models. Nothing generated is committed, so the pages cannot go stale.

``cli_reference()`` and ``configuration_reference()`` are pure (tests call them); ``on_files``
is the MkDocs hook that adds their pages to the site.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import itertools
import re
import textwrap
import types
import typing
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import annotated_types
from pydantic import BaseModel, SecretStr

from kafkaboot.cli import _parser as kafkaboot_parser
from kafkaboot.config import KafkaBootSettings
from kafkaboot.config.ignored import ignored_reason
from kafkaboot.config.section import RawProperties, SecretMap
from kafkaboot.config.security import Location
from kafkaboot.config.types import DataSize, Duration, ImportPaths, ServerList

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

CLI_PAGE = "reference/cli.md"
CONFIGURATION_PAGE = "reference/configuration.md"
HELP_WIDTH = 80
"""Columns of the help text: fixed, so the page does not depend on the building terminal
(and 80 fits the page's text column without scrolling)."""


# The command line.


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[argparse.ArgumentParser, str]]:
    """Each subcommand of ``parser`` with its one-line help, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # An alias names the same parser again.
                    seen.add(id(sub))
                    yield sub, helps.get(name, "")


def _help_text(parser: argparse.ArgumentParser) -> str:
    formatter = parser.formatter_class

    def fixed_width(prog: str) -> argparse.HelpFormatter:
        return formatter(prog, width=HELP_WIDTH)  # type: ignore[call-arg]

    parser.formatter_class = fixed_width
    try:
        return parser.format_help()
    finally:
        parser.formatter_class = formatter


def _command_sections(parser: argparse.ArgumentParser, summary: str, depth: int) -> Iterator[str]:
    anchor = re.sub(r"[^a-z0-9]+", "-", parser.prog.lower()).strip("-")
    yield f"{'#' * (2 if depth <= 1 else 3)} `{parser.prog}` {{ #{anchor} }}\n"
    if summary:
        yield f"{summary[0].upper()}{summary[1:]}.\n"
    yield f"```text\n{_help_text(parser).rstrip()}\n```\n"
    for sub, help_text in _subcommands(parser):
        yield from _command_sections(sub, help_text, depth + 1)


def cli_reference() -> str:
    """The CLI reference page: every command's ``--help``, as ``kafkaboot`` prints it."""
    parser = kafkaboot_parser()
    intro = (
        "# Command line\n\n"
        "Every command and subcommand of `kafkaboot` with its `--help`, generated from the "
        "command's own parser when these pages are built. [Operating services]"
        "(../operations.md) shows the cluster commands at work; [Running a service]"
        "(../running.md) explains `kafkaboot run`.\n"
    )
    return "\n".join([intro, *_command_sections(parser, "", 0)])


# The configuration.

_NAMED_TYPES: list[tuple[Any, str]] = [
    (Duration, "duration"),
    (DataSize, "data size"),
    (ServerList, "list (or comma-separated)"),
    (ImportPaths, "list (or comma-separated)"),
    (RawProperties, "map of Java client properties"),
    (SecretMap, "map of strings (secrets masked)"),
    (Location, "file (path or `file:` location)"),
]
_PLAIN_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    timedelta: "duration",
    datetime: "date-time (with a zone)",
    SecretStr: "string (secret)",
    Any: "any",
}
_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"),
    (annotated_types.Lt, "lt", "<"),
)


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    annotation = _without_none(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _type_text(annotation: Any) -> str:
    annotation = _without_none(annotation)
    for alias, name in _NAMED_TYPES:
        if annotation == alias:
            return name
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{_value_text(arg)}`" for arg in args)
    if origin is list:
        return f"list of {_type_text(args[0])}s" if args else "list"
    if origin is dict:
        return f"map of {_type_text(args[0])} → {_type_text(args[1])}" if args else "map"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(arg) for arg in args if arg is not type(None))
    return _PLAIN_TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _duration_text(duration: timedelta) -> str:
    ms = round(duration.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms" if ms else "0s"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return _duration_text(value)
    if isinstance(value, list):
        return ", ".join(map(_value_text, value)) if value else "[]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value_text(v)}" for k, v in value.items()) + "}"
    if value == "":
        return '""'
    return str(value)


def _default_text(field: Any) -> str:
    if field.is_required():
        return "required"
    default = field.get_default(call_default_factory=True)
    return "—" if default is None else f"`{_value_text(default)}`"


def _bounds_text(field: Any) -> str:
    bounds = [
        f"{sign} {getattr(item, attr)}"
        for item in field.metadata
        for kind, attr, sign in _BOUNDS
        if isinstance(item, kind)
    ]
    return f" ({', '.join(bounds)})" if bounds else ""


def _markdown(docstring: str) -> str:
    """A docstring as one line of Markdown: reST literals and roles become code spans."""
    text = " ".join(inspect.cleandoc(docstring).split())
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`").replace("|", "\\|")


def attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """The docstrings written under the fields of ``model`` and its bases (the project
    documents settings that way rather than with ``Field(description=...)``)."""
    docs: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
        for statement, following in itertools.pairwise(body):
            if (
                isinstance(statement, ast.AnnAssign)
                and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                docs[statement.target.id] = following.value.value
    for name, field in model.model_fields.items():
        if field.description:
            docs[name] = field.description
    return docs


def _key(name: str) -> str:
    return name.replace("_", "-")


def _anchor(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


class _Walk:
    """The sections of the settings, depth first in declaration order; a model met again
    (``ssl`` under each client) points at its first table instead of repeating it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.first_path: dict[type[BaseModel], str] = {}
        self.undocumented: list[str] = []

    def section(self, model: type[BaseModel], path: str, intro: list[str], level: int) -> None:
        hints = typing.get_type_hints(model, include_extras=True)
        docs = attribute_docs(model)
        rows, children = [], []
        for name, field in model.model_fields.items():
            annotation = hints.get(name, field.annotation)
            nested = _nested_model(annotation)
            container = typing.get_origin(_without_none(annotation))
            value_model = (
                _nested_model(typing.get_args(_without_none(annotation))[-1])
                if container in (list, dict)
                else None
            )
            doc = _markdown(docs[name]) if name in docs else ""
            if nested is not None:
                children.append((nested, f"{path}.{_key(name)}", doc))
            elif value_model is not None:
                suffix = "[]" if container is list else ".<id>"
                children.append((value_model, f"{path}.{_key(name)}{suffix}", doc))
            else:
                rows.append(self._row(model, name, field, annotation, path, doc))
        section_reason = getattr(model, "ignored_reason", None)
        if section_reason:
            intro = [
                *intro,
                f"**No effect**, whichever of these keys is set: {section_reason}.",
            ]
        if rows or intro or level == 2:
            self.first_path[model] = path
            self.lines.append(f"{'#' * level} `{path}` {{ #{_anchor(path)} }}\n")
            self.lines += [f"{text}\n" for text in intro if text]
        if rows:
            self.lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
            self.lines += [*rows, ""]
        for child, child_path, doc in children:
            self.child(child, child_path, doc)

    def child(self, model: type[BaseModel], path: str, doc: str) -> None:
        if model in self.first_path:
            first = self.first_path[model]
            self.lines.append(f"### `{path}` {{ #{_anchor(path)} }}\n")
            if doc:
                self.lines.append(f"{doc}\n")
            self.lines.append(f"The same keys as [`{first}`](#{_anchor(first)}).\n")
            return
        own = _markdown(model.__doc__) if model.__doc__ else ""
        if re.fullmatch(r"`[^`]+`\.?", own):  # Only the key path, which the heading shows.
            own = ""
        level = 2 if path.count(".") == 0 else 3
        self.section(model, path, [text for text in (doc, own) if text], level)

    def _row(
        self, model: type[BaseModel], name: str, field: Any, annotation: Any, path: str, doc: str
    ) -> str:
        key = f"{path}.{_key(name)}"
        reason = ignored_reason(model, name)
        if reason and not getattr(model, "ignored_reason", None):
            doc = f"Accepted for Spring Boot files, **no effect**: {_markdown(reason)}."
        if not doc:
            self.undocumented.append(key)
        type_text = _type_text(annotation) + _bounds_text(field)
        return f"| `{key}` | {type_text} | {_default_text(field)} | {doc} |"


def configuration_sections() -> tuple[str, list[str]]:
    """The reference's sections as Markdown, and the keys that have no description."""
    walk = _Walk()
    root_docs = attribute_docs(KafkaBootSettings)
    for name, field in KafkaBootSettings.model_fields.items():
        model = _nested_model(field.annotation)
        if model is not None:
            doc = _markdown(root_docs[name]) if name in root_docs else ""
            walk.child(model, _key(name), doc)
    return "\n".join(walk.lines), walk.undocumented


def configuration_reference() -> str:
    """The configuration reference page: every key of ``application.yml`` that kafkaboot
    reads, with its type, default and the description written in the settings models."""
    sections, _ = configuration_sections()
    intro = (
        "# Configuration keys\n\n"
        "Every key kafkaboot reads from `application.yml`, generated from the settings models "
        "when these pages are built. Keys are written as in YAML; `spring.kafka.*` is the same "
        "as `kafka.*` and `spring.ssl.*` the same as `ssl.*`, and `group-id`, `group_id` and "
        "`groupId` are one key. Durations accept `500ms`, `5s`, `1m`, `2h`, `1d`, ISO `PT5S` or "
        "plain milliseconds; data sizes `16384`, `16KB` or `1MB`. [Configuration]"
        "(../configuration.md) explains where values come from, the environment variables, "
        "security and the Spring Boot keys.\n"
    )
    return f"{intro}\n{sections}"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """MkDocs hook: add the generated reference pages to the site."""
    from mkdocs.structure.files import File

    for path, content in (
        (CLI_PAGE, cli_reference()),
        (CONFIGURATION_PAGE, configuration_reference()),
    ):
        files.append(File.generated(config, path, content=content))
    return files
