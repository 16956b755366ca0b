import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _load_snippet(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "snippets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def round_trip():
    """The docs' round-trip snippet: produce one record and consume it back."""
    return _load_snippet("round_trip").round_trip
