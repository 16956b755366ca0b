"""Loading configuration: ``application.yml``, profiles, placeholders, environment, arguments.

Precedence, lowest first: the file, profile documents and files, environment variables,
explicit arguments. Every problem is collected and reported at once, each with the file and
line (or environment variable) it came from and what to do about it.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from kafkaboot.config.binding import (
    display_path,
    env_bindings,
    field_type_at,
    normalize_keys,
)
from kafkaboot.config.bundles import SslBundlesProperties
from kafkaboot.config.documents import Document, KeyPath, matches_profiles, read_documents
from kafkaboot.config.kafka import KafkaProperties
from kafkaboot.config.placeholders import resolve_placeholders
from kafkaboot.config.properties import PropertyProblems
from kafkaboot.config.secrets import is_secret_key, looks_secret, masked_url
from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.errors import ConfigProblem, ConfigurationError

__all__ = ["CONFIG_ENV", "ENV_PREFIXES", "PROFILES_ENV", "find_config_file", "load_settings"]

CONFIG_ENV = "KAFKABOOT_CONFIG"
"""Environment variable naming the configuration file."""
PROFILES_ENV = ("KAFKABOOT_PROFILES_ACTIVE", "SPRING_PROFILES_ACTIVE")
"""Environment variables naming the active profiles (comma-separated), first one wins."""
ENV_PREFIXES = {
    "SPRING_KAFKA_": "kafka",
    "KAFKA_": "kafka",
    "SERVER_": "server",
    "MANAGEMENT_": "management",
    "KAFKABOOT_": "kafkaboot",
}
"""Environment variable prefixes and the section each one sets."""
_DEFAULT_NAMES = ("application.yml", "application.yaml")
_SPRING = "\0spring"
"""Marks, in the origins, the keys written as ``spring.kafka.*`` (for messages in the
user's spelling)."""


def find_config_file(
    config: str | os.PathLike[str] | None, environ: Mapping[str, str], cwd: Path
) -> Path | None:
    """The configuration file to read: ``config``, else ``$KAFKABOOT_CONFIG``, else
    ``application.yml`` in ``cwd`` when there is one.

    Raises:
        ConfigurationError: a file that was asked for by name does not exist.
    """
    asked = config if config is not None else environ.get(CONFIG_ENV)
    if asked is not None:
        path = Path(asked)
        path = path if path.is_absolute() else cwd / path
        if not path.is_file():
            how = "--config" if config is not None else f"${CONFIG_ENV}"
            raise ConfigurationError(
                [
                    ConfigProblem(
                        f"configuration file {str(path)!r} (from {how}) does not exist",
                        hint="check the path, or leave it out to use ./application.yml",
                    )
                ]
            )
        return path
    for name in _DEFAULT_NAMES:
        if (cwd / name).is_file():
            return cwd / name
    return None


def _split_profiles(value: Any) -> list[str]:
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _active_profiles(
    profiles: Sequence[str] | str | None, environ: Mapping[str, str], documents: list[Document]
) -> list[str]:
    """The active profiles.

    Raises:
        ConfigurationError: a profile name holds a path separator or a NUL: it names part
            of a file name (``application-<profile>.yml``).
    """
    key, origin = "kafkaboot.profiles.active", "explicit argument"
    active: list[str] = []
    if profiles is not None:
        active = _split_profiles(list(profiles) if not isinstance(profiles, str) else profiles)
    elif variable := next((v for v in PROFILES_ENV if environ.get(v)), None):
        active, origin = _split_profiles(environ[variable]), f"environment variable {variable}"
    else:
        for document in documents:
            if document.on_profile is not None:
                continue
            for section in ("kafkaboot", "spring"):
                node = document.data.get(section)
                node = node.get("profiles") if isinstance(node, dict) else None
                if isinstance(node, dict) and node.get("active") is not None:
                    active = _split_profiles(node["active"])
                    key = f"{section}.profiles.active"
                    origin = document.origin((section, "profiles", "active"))
    bad = [name for name in active if any(c in name for c in ("/", "\\", "\0"))]
    if bad:
        raise ConfigurationError(
            [
                ConfigProblem(
                    f"profile name {name!r} holds a path separator or NUL",
                    key=key,
                    origin=origin,
                    hint="name profiles with letters, digits, '-' and '_' (each one also "
                    "names a file, application-<profile>.yml)",
                )
                for name in bad
            ]
        )
    return active


def _profile_documents(base: Path, active: list[str]) -> list[Document]:
    documents: list[Document] = []
    for profile in active:
        for suffix in (".yml", ".yaml"):
            candidate = base.with_name(f"{base.stem}-{profile}{suffix}")
            if candidate.is_file():
                documents += read_documents(candidate)
    return documents


def _deep_merge(low: dict[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(low)
    for key, value in high.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set_path(tree: dict[str, Any], path: KeyPath, value: Any) -> None:
    node = tree
    for part in path[:-1]:
        node = node.setdefault(str(part), {})
    node[str(path[-1])] = value


_LIFTED: dict[str, type[BaseModel]] = {"kafka": KafkaProperties, "ssl": SslBundlesProperties}
"""``spring.<section>`` keys read as kafkaboot's ``<section>``: ``spring.kafka`` and the SSL
bundles of ``spring.ssl``."""


def _normalize_document(
    data: Mapping[str, Any], origin_of: Any, origins: dict[KeyPath, str]
) -> dict[str, Any]:
    """Lift ``spring.kafka`` to ``kafka`` (and ``spring.ssl`` to ``ssl``) and give every
    known key its field name."""
    data = dict(data)
    paths: dict[KeyPath, KeyPath] = {}
    spring = data.get("spring")
    lifted_sections: dict[str, Any] = {}
    if isinstance(spring, dict) and any(section in spring for section in _LIFTED):
        spring = dict(spring)
        for section in _LIFTED:
            if section not in spring:
                continue
            lifted = spring.pop(section)
            paths[(section,)] = ("spring", section)
            model = _LIFTED[section]
            lifted_sections[section] = (
                normalize_keys(model, lifted, ("spring", section), (section,), paths)
                if isinstance(lifted, Mapping)
                else lifted
            )
        if spring:
            data["spring"] = spring
        else:
            data.pop("spring")
    normalized = normalize_keys(KafkaBootSettings, data, (), (), paths)
    for norm, raw in paths.items():
        origins[norm] = origin_of(raw)
        if raw[0] == "spring" and len(raw) > 1 and raw[1] in _LIFTED:
            origins[(_SPRING, *norm)] = "spring"
    # Both spellings in one document: `kafka:` wins over `spring.kafka:` key by key.
    return _deep_merge(lifted_sections, normalized)


def _origin(origins: Mapping[KeyPath, str], path: KeyPath) -> str | None:
    while path:
        if path in origins:
            return origins[path]
        path = path[:-1]
    return None


def _shown(path: KeyPath, value: Any) -> str:
    # The key itself (a whole section is never shown), or a value that reads like a secret.
    if (path and is_secret_key(str(path[-1]))) or looks_secret(value):
        return "'******'"
    text = repr(masked_url(value) if isinstance(value, str) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def _problems_from_error(error: Any, origins: Mapping[KeyPath, str]) -> list[ConfigProblem]:
    loc: KeyPath = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, PropertyProblems):
        return [
            ConfigProblem(
                message,
                key=f"{display_path(KafkaBootSettings, loc)}.{key}",
                origin=_origin(origins, (*loc, key)),
            )
            for key, message in cause.problems
        ]
    return [_problem_from_error(error, loc, origins)]


def _spelled(origins: Mapping[KeyPath, str], loc: KeyPath, key: str) -> str:
    """``key`` as the user wrote its section: ``spring.kafka.…`` or ``kafka.…``."""
    return f"spring.{key}" if _origin(origins, (_SPRING, *loc)) == "spring" else key


def _problem_from_error(error: Any, loc: KeyPath, origins: Mapping[KeyPath, str]) -> ConfigProblem:
    key = _spelled(origins, loc, display_path(KafkaBootSettings, loc))
    origin = _origin(origins, loc)
    if error["type"] == "extra_forbidden":
        holder = field_type_at(KafkaBootSettings, loc)
        known = [name.replace("_", "-") for name in holder.model_fields] if holder else []
        close = difflib.get_close_matches(str(loc[-1]).replace("_", "-"), known, n=2, cutoff=0.6)
        parent = _spelled(origins, loc[:-1], display_path(KafkaBootSettings, loc[:-1]))
        close = [f"{parent}.{name}" for name in close]
        if parent.startswith("spring.kafka"):
            close = [f"{name} (kafkaboot: {name.removeprefix('spring.')})" for name in close]
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        return ConfigProblem(
            "unknown key",
            key=key,
            origin=origin,
            hint=f"{hint}known keys under {parent}: {', '.join(known)}",
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    return ConfigProblem(f"{message}{_given(loc, error.get('input'))}", key=key, origin=origin)


def _given(loc: KeyPath, value: Any) -> str:
    # A whole section (a model's own check) is not echoed: it may hold secrets, and the
    # message names the keys involved.
    if not loc or isinstance(value, Mapping):
        return ""
    return f" (given: {_shown(loc, value)})"


def load_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    profiles: Sequence[str] | str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> KafkaBootSettings:
    """Read and validate the configuration of a kafkaboot service.

    Args:
        config: the YAML file; default ``$KAFKABOOT_CONFIG``, else ``./application.yml``
            (no file at all is fine: defaults and the environment apply).
        profiles: active profiles; default ``$KAFKABOOT_PROFILES_ACTIVE``,
            ``$SPRING_PROFILES_ACTIVE``, else ``spring.profiles.active`` in the file.
        environ: environment variables (default ``os.environ``).
        overrides: explicit values, highest precedence, e.g. ``{"server": {"port": 0}}``.
        cwd: where to look for ``application.yml`` and resolve relative paths.

    Raises:
        ConfigurationError: listing every problem with its file and line or variable.
    """
    environ = os.environ if environ is None else environ
    base_dir = Path.cwd() if cwd is None else Path(cwd)
    path = find_config_file(config, environ, base_dir)
    documents = read_documents(path) if path is not None else []
    active = _active_profiles(profiles, environ, documents)
    if path is not None:
        documents += _profile_documents(path, active)
    selected = [
        d for d in documents if d.on_profile is None or matches_profiles(d.on_profile, active)
    ]

    origins: dict[KeyPath, str] = {}
    file_layer: dict[str, Any] = {}
    for document in selected:
        file_layer = _deep_merge(
            file_layer, _normalize_document(document.data, document.origin, origins)
        )

    problems: list[ConfigProblem] = []
    file_layer, unresolved = resolve_placeholders(file_layer, environ)
    for failed_path, failure in unresolved:
        problems.append(
            ConfigProblem(
                f"placeholder ${{{failure.name}}} {failure.reason}",
                key=display_path(KafkaBootSettings, failed_path),
                origin=_origin(origins, failed_path),
                hint=f"set the environment variable {failure.name}, or give a default: "
                f"${{{failure.name}:value}}",
            )
        )

    env_layer: dict[str, Any] = {}
    for variable, env_path, value in env_bindings(KafkaBootSettings, environ, ENV_PREFIXES):
        if env_path == ("kafkaboot", "profiles", "active"):
            continue  # Already applied above, as the list of active profiles.
        _set_path(env_layer, env_path, value)
        origins[env_path] = f"environment variable {variable}"

    explicit: dict[str, Any] = {}
    if overrides:
        explicit = normalize_keys(KafkaBootSettings, overrides)
        for key in explicit:
            origins[(key,)] = "explicit argument"
    explicit = _deep_merge(explicit, {"kafkaboot": {"profiles": {"active": active}}})

    try:
        settings = KafkaBootSettings.from_layers(explicit, env_layer, file_layer)
    except ValidationError as exc:
        placeholder_paths = {p for p, _ in unresolved}
        for error in exc.errors():
            if tuple(error["loc"]) not in placeholder_paths:
                problems += _problems_from_error(error, origins)
        raise ConfigurationError(problems) from None
    if problems:
        raise ConfigurationError(problems)
    settings._origins = origins
    loaded = [path] if path is not None else []
    loaded += sorted({d.source for d in documents if d.source != path}, key=str)
    settings._files = tuple(str(p) for p in loaded)
    return settings
