"""A Kafka node's state from its saved pid: ``kafkaboot.testing.node``."""

import subprocess
import sys

import pytest

from kafkaboot.testing.node import BrokerNode


def test_node_state_from_a_saved_pid_checks_the_process_and_its_command_line(tmp_path):
    node = BrokerNode(1, 1, 2, tmp_path / "node-1")
    kafka_like = [sys.executable, "-c", "import time; time.sleep(30)", str(node.config_file)]
    process = subprocess.Popen(kafka_like)
    try:
        node.pid = process.pid  # As loaded from cluster.json: no Popen object to ask.
        assert node.state() == "running"
    finally:
        process.kill()
        process.wait()
    assert node.state() == "dead-pid"
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        node.pid = process.pid
        assert node.state() == "dead-pid"
    finally:
        process.kill()
        process.wait()
    node.pid = None
    assert node.state() == "stopped"


def test_a_damaged_state_file_is_a_broker_error_that_says_what_to_do(tmp_path):
    from kafkaboot.errors import BrokerError
    from kafkaboot.testing import KafkaCluster

    (tmp_path / "cluster.json").write_text('{"nodes": [')
    with pytest.raises(BrokerError, match=r"cluster\.json is not valid JSON.*--purge"):
        KafkaCluster.load(tmp_path)
