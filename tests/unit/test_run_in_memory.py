"""`kafkaboot run --broker memory`: every client of the service, per-client addresses
included, goes to the in-memory Kafka; anything else is refused before it starts."""

import pytest

from kafkaboot.config import load_settings
from kafkaboot.errors import ConfigurationError
from kafkaboot.runner import _in_memory_broker

CLIENT_VARIABLES = [f"KAFKA_{c}BOOTSTRAP_SERVERS" for c in ("", "CONSUMER_", "PRODUCER_", "ADMIN_")]


def test_no_client_of_the_service_reaches_a_real_broker(tmp_path, monkeypatch):
    for name in CLIENT_VARIABLES:
        monkeypatch.setenv(name, "set-by-the-test")  # So that teardown restores them.
    config = tmp_path / "application.yml"
    config.write_text(
        "kafka:\n  bootstrap-servers: real:9092\n  consumer:\n    bootstrap-servers: other:9092\n"
    )
    memory = _in_memory_broker("memory", workers=1)
    try:
        kafka = load_settings(config).kafka
        addresses = {
            kafka.consumer_kwargs()["bootstrap_servers"],
            kafka.producer_kwargs()["bootstrap_servers"],
            kafka.admin_kwargs()["bootstrap_servers"],
        }
        assert addresses == {"memory://run"}
    finally:
        memory.close()


def test_an_unknown_broker_or_more_workers_are_refused():
    assert _in_memory_broker(None, workers=4) is None
    with pytest.raises(ConfigurationError, match="--broker 'docker' is not known"):
        _in_memory_broker("docker", workers=1)
    with pytest.raises(ConfigurationError, match="cannot be shared by --workers 2"):
        _in_memory_broker("memory", workers=2)


def test_run_serves_the_application_an_app_made_with_kafkaboot_app_starts(tmp_path, monkeypatch):
    from kafkaboot.runner import resolve_target

    (tmp_path / "inline_service.py").write_text(
        "from kafkaboot.application import KafkaBootApplication\n"
        "from kafkaboot.web import kafkaboot_app\n"
        "app = kafkaboot_app(KafkaBootApplication(overrides={'kafka': "
        "{'bootstrap-servers': 'memory://x'}}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    served, application = resolve_target("inline_service", load_settings(environ={}))
    # Not a second application that never starts: the one its lifespan starts.
    assert application is served.state.kafkaboot
