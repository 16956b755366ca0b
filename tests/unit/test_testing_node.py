"""A Kafka node's state from its saved pid: ``kafkaboot.testing.node``."""

import subprocess
import sys

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
