"""How the kafka_bootstrap fixture chooses its broker."""

import pytest

from kafkaboot.testing.plugin import choose_broker, docker_unavailable_reason


def test_existing_cluster_wins():
    env = {"KAFKABOOT_TEST_BOOTSTRAP": "k:9092", "KAFKABOOT_TEST_BROKER": "testcontainers"}
    assert choose_broker(env) == "existing"


def test_local_broker_by_default():
    assert choose_broker({}) == "local"


def test_testcontainers_on_request():
    assert choose_broker({"KAFKABOOT_TEST_BROKER": "TestContainers"}) == "testcontainers"


def test_unknown_choice_is_a_usage_error():
    with pytest.raises(pytest.UsageError, match=r"'local' .*'testcontainers'"):
        choose_broker({"KAFKABOOT_TEST_BROKER": "docker"})


def test_absent_docker_engine_gives_a_reason_naming_the_socket(tmp_path):
    socket_path = tmp_path / "docker.sock"
    reason = docker_unavailable_reason({"DOCKER_HOST": f"unix://{socket_path}"})
    assert reason is not None
    assert str(socket_path) in reason
    assert "unset KAFKABOOT_TEST_BROKER" in reason
