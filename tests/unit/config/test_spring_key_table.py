"""docs/configuration.md's table of Spring Boot keys is the one the models give."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[3] / "scripts" / "spring_key_table.py"


def load_script():
    spec = importlib.util.spec_from_file_location("spring_key_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_holds_the_generated_table():
    table = load_script()
    assert table.main(["--check"]) == 0, "run: python scripts/spring_key_table.py"


def test_the_table_says_why_a_warned_key_has_no_effect():
    rendered = load_script().render()
    assert "| `spring.kafka.streams.state-dir` | `kafka.streams.state-dir` | warned: Kafka" in (
        rendered
    )
    assert (
        "| `spring.kafka.ssl.trust-store-location` | `kafka.ssl.trust-store-location` | honoured |"
        in (rendered)
    )
