import importlib.util
import shutil
import tempfile
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


@pytest.fixture(scope="session")
def secured_cluster():
    """A :class:`kafkaboot.testing.SecuredCluster`: one secured broker for the session (SASL_SSL,
    SSL with client certificates, SASL_PLAINTEXT; SCRAM, PLAIN and OAUTHBEARER users; PEM,
    PKCS12 and JKS stores) and a token server. Started when a test first asks for it (one
    broker start, ~10 s), stopped at the end of the session. A test that stops it starts it
    again before it ends."""
    from kafkaboot.testing import start_secured_cluster

    data_dir = Path(tempfile.mkdtemp(prefix="kafkaboot-secured-"))
    try:
        with start_secured_cluster(data_dir) as secured:
            yield secured
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def pytest_collection_modifyitems(items):
    """Tests on the secured broker need Kafka: they get the ``kafka`` marker, so
    ``make test-unit`` (``-m "not kafka"``) starts no broker."""
    for item in items:
        if "secured_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)
