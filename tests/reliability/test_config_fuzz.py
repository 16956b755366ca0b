"""The configuration loader under random input: the only error it ever raises is
``ConfigurationError``, and the error names the key that is wrong.

Every crash these properties found is kept as an ``@example``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, example, given
from hypothesis import strategies as st
from pydantic import BaseModel

from kafkaboot.config import load_settings
from kafkaboot.config.binding import _container, _model, canonical, display_path
from kafkaboot.config.settings import KafkaBootSettings
from kafkaboot.errors import ConfigurationError
from tests.reliability.bad_input_support import fuzz_settings

pytestmark = pytest.mark.reliability

KeyPath = tuple[str | int, ...]


def _walk(
    model: type[BaseModel], prefix: KeyPath, leaves: list[KeyPath], sections: list[KeyPath]
) -> None:
    """Every settings key as written in YAML (map keys get a sample name, lists index 0),
    and every section that refuses unknown keys (``management.*`` keeps Spring Boot's
    other keys)."""
    if prefix and model.model_config.get("extra") != "allow":
        sections.append(prefix)
    for name, info in model.model_fields.items():
        path = (*prefix, name.replace("_", "-"))
        nested = _model(info.annotation)
        container = _container(info.annotation)
        item = _model(container[1]) if container is not None else None
        if nested is not None:
            _walk(nested, path, leaves, sections)
        elif container is not None and item is not None:
            _walk(item, (*path, 0 if container[0] == "list" else "my-listener"), leaves, sections)
        else:
            leaves.append(path)


LEAVES: list[KeyPath] = []
SECTIONS: list[KeyPath] = []
_walk(KafkaBootSettings, (), LEAVES, SECTIONS)
KEY_WORDS = sorted({str(p) for leaf in LEAVES for p in leaf if isinstance(p, str)})
CANONICAL_WORDS = {canonical(word) for word in KEY_WORDS}

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["${", "${X}", "${X:${Y}}", "${kafka.client-id}", "}", "1e400", ".inf"])
    | st.text(alphabet="0123456789.-+ eEsmhdKMBPT", max_size=12)  # Near-durations and sizes.
    | st.dates()
    | st.binary(max_size=8)
)
keys = st.sampled_from(KEY_WORDS) | st.text(max_size=12) | st.integers() | st.booleans()
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


# Control characters and line separators do not survive a YAML round trip as written.
printable = st.text(st.characters(exclude_categories=("C", "Zl", "Zp")), min_size=1, max_size=12)

REQUIRED = {
    ("kafka", "topics", 0): {"name": "orders"},
    ("kafka", "listeners", "my-listener", "offset-store"): {"url": "sqlite:///central.db"},
}
"""The required keys of list items, so that a test sets only the key it means to."""


def _nest(path: KeyPath, value: Any) -> Any:
    for depth in range(len(path) - 1, -1, -1):
        part = path[depth]
        value = [value] if isinstance(part, int) else {part: value}
        if isinstance(value, dict):
            value = REQUIRED.get(path[:depth], {}) | value
    return value


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "application.yml"
    path.write_text(text, encoding="utf-8")
    return path


def _dump(tree: Any) -> str:
    return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False)


def _error_of(config: Path | None = None, **options: Any) -> ConfigurationError | None:
    """Load; the ``ConfigurationError`` when there is one. Any other exception fails."""
    options.setdefault("environ", {})
    try:
        load_settings(config, **options)
    except ConfigurationError as exc:
        return exc
    return None


def _key_named(error: ConfigurationError, path: KeyPath) -> None:
    """Every problem has a key, on the path of the key that was set (at it, below it, or
    the section holding it, for checks across a section's keys)."""
    written = display_path(KafkaBootSettings, path)
    for problem in error.problems:
        assert problem.key, f"a problem without a key: {problem}"
        assert written.startswith(problem.key) or problem.key.startswith(written), (
            f"set {written}, but the problem names {problem.key}: {problem}"
        )
        assert problem.key in str(error)


@fuzz_settings(150)
@given(text=st.text(max_size=200))
@example(text="a: &x [*x]")  # Found: RecursionError (a value that contains itself).
@example(text="kafka:\n  topics: &t [{name: a, configs: *t}]")
@example(text="[" * 5000)  # Found: RecursionError in PyYAML's composer.
@example(text="1: x")  # Found: TypeError "keywords must be strings" from pydantic-settings.
@example(text="\x08")  # Found: yaml.ReaderError escaping (raised before the first document).
def test_any_text_loads_or_is_a_configuration_error(tmp_path_factory, text):
    path = _write(tmp_path_factory.mktemp("cfg"), text)
    error = _error_of(path)
    assert error is None or str(error).startswith("invalid configuration")


@fuzz_settings(150)
@given(tree=st.dictionaries(keys, trees, max_size=5))
def test_any_yaml_document_loads_or_is_a_configuration_error(tmp_path_factory, tree):
    path = _write(tmp_path_factory.mktemp("cfg"), _dump(tree))
    error = _error_of(path)
    assert error is None or error.problems


@fuzz_settings(300)
@given(path=st.sampled_from(LEAVES), value=trees)
# Found: OverflowError escaping from a duration too long for timedelta.
@example(path=("kafka", "consumer", "max-poll-interval"), value=float("inf"))
@example(path=("kafka", "consumer", "max-poll-interval"), value=1e300)
@example(path=("kafka", "consumer", "max-poll-interval"), value="99999999999999999999d")
@example(path=("kafka", "listener", "ack-time"), value="P99999999999D")
@example(path=("kafka", "consumer", "max-poll-interval"), value=float("nan"))
# Found: OverflowError escaping from a raw property's whole number.
@example(path=("kafka", "properties"), value={"linger.ms": float("inf")})
@example(path=("kafka", "producer", "properties"), value={"linger.ms": -float("inf")})
# Found: ValueError from pathlib for a profile name with a '/'.
@example(path=("kafkaboot", "profiles", "active"), value=["a/b"])
# Found: a duplicate key (false and 'false' read as one) reported without its key.
@example(path=("kafka", "consumer", "properties"), value={False: 1, "false": 2})
def test_a_bad_value_of_a_real_key_names_that_key(tmp_path_factory, path, value):
    config = _write(tmp_path_factory.mktemp("cfg"), _dump(_nest(path, value)))
    error = _error_of(config)
    if error is not None:
        _key_named(error, path)


@fuzz_settings(200)
@given(section=st.sampled_from(SECTIONS), key=printable, value=scalars)
def test_an_unknown_key_is_named(tmp_path_factory, section, key, value):
    assume(canonical(key) not in CANONICAL_WORDS)
    config = _write(tmp_path_factory.mktemp("cfg"), _dump(_nest((*section, key), value)))
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config, environ={})
    _key_named(caught.value, (*section, key))


ENV_NAMES = [
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_CONSUMER_MAX_POLL_INTERVAL",
    "KAFKA_CONSUMER_MAX_POLL_RECORDS",
    "KAFKA_PRODUCER_ACKS",
    "KAFKA_PRODUCER_LINGER",
    "KAFKA_LISTENER_ACK_MODE",
    "KAFKA_LISTENERS_ORDERS_SEEK_TO",
    "SERVER_PORT",
    "SPRING_KAFKA_CONSUMER_AUTO_OFFSET_RESET",
]


@fuzz_settings(200)
@given(variable=st.sampled_from(ENV_NAMES), value=st.text(max_size=30))
@example(variable="KAFKA_CONSUMER_MAX_POLL_INTERVAL", value="99999999999999999999d")
def test_a_bad_environment_value_names_the_variable(variable, value):
    assume("\0" not in value)  # No environment can hold a NUL.
    error = _error_of(environ={variable: value}, cwd="/nonexistent")
    if error is not None:
        assert f"environment variable {variable}" in str(error)
        assert all(problem.key for problem in error.problems)
