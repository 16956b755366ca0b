"""docs/configuration.md names every configuration key of the settings models."""

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from kafkaboot.config import KafkaBootSettings

PAGE = Path(__file__).parents[2] / "docs" / "configuration.md"


def _model_and_marker(annotation):
    """The nested model of a field, with ``[]`` for lists and ``.<id>`` for maps."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0], "[]"
    if origin is dict and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
        return args[-1], ".<id>"
    for arg in args:
        found = _model_and_marker(arg)
        if found[0] is not None:
            return found
    return None, ""


def keys(model, prefix=""):
    for name, field in model.model_fields.items():
        key = f"{prefix}{name.replace('_', '-')}"
        nested, marker = _model_and_marker(field.annotation)
        if nested is None:
            yield key
        else:
            yield from keys(nested, f"{key}{marker}.")


def documented():
    found = set()
    for span in re.findall(r"`([a-z][a-z0-9.\-\[\]<>{}, ]*)`", PAGE.read_text()):
        match = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", span)
        names = (
            [span]
            if match is None
            else [f"{match[1]}{part.strip()}{match[3]}" for part in match[2].split(",")]
        )
        for name in names:
            found.update(n.strip() for n in name.split(" / "))
    return found


def test_every_key_is_in_the_reference():
    missing = [key for key in keys(KafkaBootSettings) if key not in documented()]
    assert not missing, f"docs/configuration.md does not describe: {', '.join(missing)}"
