"""The docs site's generated reference pages cover the real command and the real settings."""

import argparse
import importlib.util
import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from kafkaboot.cli import _parser
from kafkaboot.config import KafkaBootSettings

SCRIPT = Path(__file__).parents[2] / "scripts" / "docs_reference.py"


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("docs_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    names = [parser.prog]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names += _commands(sub)
    return names


def test_the_cli_reference_has_a_section_with_the_help_of_every_command(reference):
    page = reference.cli_reference()
    commands = _commands(_parser())
    assert "kafkaboot groups reset-offsets" in commands
    for command in commands:
        assert f"`{command}` {{ #" in page, f"no section for {command}"
        assert f"usage: {command} [-h]" in page, f"no --help of {command}"


def test_the_cli_reference_keeps_its_width_whatever_the_terminal(reference, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    wide = reference.cli_reference()
    monkeypatch.setenv("COLUMNS", "40")
    assert reference.cli_reference() == wide


def test_the_configuration_reference_gives_each_key_its_yaml_path_type_and_default(reference):
    page = reference.configuration_reference()
    assert "| `kafka.bootstrap-servers` | list (or comma-separated) | `localhost:9092` |" in page
    assert "| `kafka.consumer.max-poll-records` | integer (≥ 1) | `500` |" in page
    assert "| `kafka.producer.delivery-timeout` | duration | `2m` | How long a send may" in page
    assert "| `server.port` | integer (≥ 0, ≤ 65535) | `8080` |" in page
    assert "| `kafka.listeners.<id>.seek.to` | one of `committed`, `beginning`," in page
    assert "| `kafka.topics[].name` | string | required |" in page


def _models(annotation, found):
    """Every settings model reachable from ``annotation`` (fields, list items, map values)."""
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    if is_model and annotation not in found:
        found.add(annotation)
        for field in annotation.model_fields.values():
            _models(field.annotation, found)
    for arg in typing.get_args(annotation):
        _models(arg, found)
    return found


def test_the_configuration_reference_names_every_settings_field(reference):
    page = reference.configuration_reference()
    models = _models(KafkaBootSettings, set())
    assert len(models) > 30
    for model in models:
        for name in model.model_fields:
            key = re.escape(name.replace("_", "-"))
            assert re.search(rf"[`.]{key}[`.\[]", page), f"{model.__name__}.{name} missing"
    assert "`spring.kafka.*` is the same as `kafka.*`" in page


def test_a_spring_only_key_says_it_has_no_effect_and_why(reference):
    page = reference.configuration_reference()
    assert (
        "| `kafka.admin.close-timeout` | duration | — | Accepted for Spring Boot files, "
        "**no effect**: aiokafka's admin client closes at once" in page
    )


def test_a_section_met_again_points_at_its_first_table(reference):
    page = reference.configuration_reference()
    assert "The same keys as [`kafka.ssl`](#kafka-ssl)." in page
    assert page.count("| `kafka.consumer.ssl.trust-store-location`") == 0


def test_attribute_docstrings_are_the_descriptions_inherited_ones_included(reference):
    from kafkaboot.config import ProducerProperties

    docs = reference.attribute_docs(ProducerProperties)
    assert docs["bootstrap_servers"].startswith("This client's brokers")  # From ClientSection.
    assert docs["delivery_timeout"].startswith("How long a send may take")
