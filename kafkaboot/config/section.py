"""The base of every configuration section, and the field types that sections share."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from kafkaboot.config.properties import validate_properties
from kafkaboot.config.secrets import MaskedDict

__all__ = [
    "MaskedDict",
    "RawProperties",
    "SecretMap",
    "Section",
    "lowercase",
    "uppercase",
]


class Section(BaseModel):
    """Base of every configuration section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, value: Any) -> Any:
        # A YAML section whose keys are all commented out reads as null: it means "defaults".
        return {} if value is None else value


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the unset ones: what a section passes on is what was set."""
    return {key: value for key, value in values.items() if value is not None}


def lowercase(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def uppercase(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


RawProperties = Annotated[
    dict[str, Any], AfterValidator(validate_properties), AfterValidator(MaskedDict)
]
"""Java client properties (``linger.ms: 5``); see :mod:`kafkaboot.config.properties`."""
SecretMap = Annotated[dict[str, Annotated[str, BeforeValidator(str)]], AfterValidator(MaskedDict)]
"""A map of options some of which are secrets (``jaas.options``)."""
