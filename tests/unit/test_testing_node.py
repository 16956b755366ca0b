"""A Kafka node's state from its saved pid: ``kafkaboot.testing.node``."""

import subprocess
import sys

import pytest

from kafkaboot.testing.node import BrokerNode


def _started(*arguments: str) -> subprocess.Popen[str]:
    """A sleeping Python child, returned once it runs: until its ``exec`` is over, the
    child's command line reads empty (``state`` then cannot tell it from a Kafka node)."""
    sleeper = "import time; print('up', flush=True); time.sleep(30)"
    process = subprocess.Popen(
        [sys.executable, "-c", sleeper, *arguments], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "up\n"
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate()


def test_node_state_from_a_saved_pid_checks_the_process_and_its_command_line(tmp_path):
    node = BrokerNode(1, 1, 2, tmp_path / "node-1")
    process = _started(str(node.config_file))  # Kafka-like: its config file on the line.
    try:
        node.pid = process.pid  # As loaded from cluster.json: no Popen object to ask.
        assert node.state() == "running"
    finally:
        _stop(process)
    assert node.state() == "dead-pid"
    process = _started()
    try:
        node.pid = process.pid
        assert node.state() == "dead-pid"
    finally:
        _stop(process)
    node.pid = None
    assert node.state() == "stopped"


def test_a_damaged_state_file_is_a_broker_error_that_says_what_to_do(tmp_path):
    from kafkaboot.errors import BrokerError
    from kafkaboot.testing import KafkaCluster

    (tmp_path / "cluster.json").write_text('{"nodes": [')
    with pytest.raises(BrokerError, match=r"cluster\.json is not valid JSON.*--purge"):
        KafkaCluster.load(tmp_path)
