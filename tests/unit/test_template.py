"""KafkaTemplate without a broker: which transactional id it takes, how headers encode."""

import socket

import pytest

import kafkaboot.runner as runner
from kafkaboot import load_settings
from kafkaboot.errors import SerializationError
from kafkaboot.serialization import encode_headers
from kafkaboot.template import KafkaTemplate


def transactional_id(environ=None, **producer):
    producer.setdefault("transaction-id-prefix", "tx-")
    settings = load_settings(environ={}, overrides={"kafka": {"producer": producer}})
    template = KafkaTemplate(settings)
    return template.transactional_id


def test_the_transactional_id_is_prefix_host_and_worker_index(monkeypatch):
    monkeypatch.setenv("KAFKABOOT_WORKER_INDEX", "2")
    assert transactional_id() == f"tx-{socket.gethostname()}-2"
    monkeypatch.delenv("KAFKABOOT_WORKER_INDEX")
    assert transactional_id() == f"tx-{socket.gethostname()}-0"


def test_a_configured_suffix_replaces_host_and_worker_index(monkeypatch):
    monkeypatch.setenv("KAFKABOOT_WORKER_INDEX", "2")
    assert transactional_id(**{"transaction-id-suffix": "site-7"}) == "tx-site-7"


class Child:
    def __init__(self, env):
        self.env = env

    def wait(self):
        return 0

    def poll(self):
        return 0


def test_each_worker_process_gets_its_own_index(monkeypatch):
    started = []

    def popen(command, env):
        started.append(env)
        return Child(env)

    monkeypatch.setattr(runner.subprocess, "Popen", popen)
    assert runner._supervise(["svc"], 3) == 0
    assert [env["KAFKABOOT_WORKER_INDEX"] for env in started] == ["0", "1", "2"]


def test_a_header_with_a_lone_surrogate_is_a_serialization_error():
    with pytest.raises(SerializationError, match="header 'instance-id'"):
        encode_headers({"instance-id": "site-\udfff"})
