"""The root application.yml documents every key, and its active values are the real defaults."""

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from kafkaboot.config import KafkaBootSettings, load_settings

EXAMPLE = Path(__file__).parents[2] / "application.yml"


def _models_in(annotation):
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def leaf_paths(model, prefix=()):
    """Every key path of the settings models, list items (``topics[]``) included."""
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        nested = _models_in(field.annotation)
        if nested:
            yield from leaf_paths(nested[0], path)
        else:
            yield path


def test_example_loads_without_problems_and_equals_the_defaults():
    settings = load_settings(EXAMPLE, environ={})
    assert settings.model_dump() == KafkaBootSettings().model_dump()


def test_every_key_is_shown_either_active_or_commented_out():
    settings = load_settings(EXAMPLE, environ={})
    text = EXAMPLE.read_text()
    missing = []
    for path in leaf_paths(KafkaBootSettings):
        kebab = path[-1].replace("_", "-")
        commented = re.search(rf"^\s*#\s+-?\s*{re.escape(kebab)}:", text, re.MULTILINE)
        if path not in settings.origins and not commented:
            missing.append(".".join(path))
    assert not missing, f"keys missing from application.yml: {missing}"


def test_a_section_with_every_key_commented_out_means_defaults(tmp_path):
    path = tmp_path / "application.yml"
    path.write_text("kafka:\n  template:\n  #  default-topic: events\n")
    assert load_settings(path, environ={}).kafka.template.default_topic is None
