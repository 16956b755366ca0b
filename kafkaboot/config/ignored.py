"""Spring Boot keys that a Python service accepts and cannot apply.

A Spring Boot ``application.yml`` must load unchanged, so every ``spring.kafka.*`` key is
declared; the few that mean nothing here (Kafka Streams, Java threads) are declared with
:func:`spring_only` and a reason. Setting one logs that reason once at startup (and ``kafkaboot
config check`` prints it); a misspelt key stays an error.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ignored_reason",
    "ignored_settings",
    "spring_only",
]


def spring_only(reason: str) -> Any:
    """A field for a Spring key with no effect here; ``reason`` says why, in the warning."""
    return Field(default=None, json_schema_extra={"ignored": reason})


def ignored_reason(model: type[BaseModel], name: str) -> str | None:
    """Why the key ``name`` of ``model`` has no effect, or ``None`` when it is honoured."""
    section_reason: str | None = getattr(model, "ignored_reason", None)
    extra = model.model_fields[name].json_schema_extra
    field_reason = extra.get("ignored") if isinstance(extra, dict) else None
    return str(field_reason) if field_reason else section_reason


def ignored_settings(model: BaseModel, prefix: str) -> list[tuple[str, str]]:
    """The keys set in ``model`` (and its sections) that have no effect, with the reason."""
    found: list[tuple[str, str]] = []
    inherited: str | None = getattr(type(model), "ignored_reason", None)
    if inherited is not None:
        # A whole section that cannot apply: one line for all its keys.
        return [(f"{prefix}.*", inherited)] if model.model_fields_set else []
    for name in type(model).model_fields:
        if name not in model.model_fields_set:
            continue
        key = f"{prefix}.{name.replace('_', '-')}"
        value = getattr(model, name)
        reason = ignored_reason(type(model), name) or inherited
        if isinstance(value, BaseModel):
            nested = ignored_settings(value, key)
            if reason is not None and not nested:
                nested = [(f"{key}.{n.replace('_', '-')}", reason) for n in value.model_fields_set]
            found += nested
        elif (
            isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel)
        ):
            for item, section in value.items():
                found += ignored_settings(section, f"{key}.{item}")
        elif reason is not None and value is not None and value != {}:
            found.append((key, reason))
    return found
