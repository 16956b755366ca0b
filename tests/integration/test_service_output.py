"""start_service's output: a service that writes far more than a pipe holds keeps
answering, and what it wrote stays readable."""

import signal

import pytest

from kafkaboot.testing import free_ports, start_service

from .test_run import ROOT, get, post, wait_ready, write_config


@pytest.mark.asyncio
async def test_a_service_writing_megabytes_to_its_pipe_keeps_answering(kafka_bootstrap, tmp_path):
    """Nobody reads the pipe here, as in most tests: 3 MB of log lines (the pipe holds
    64 KB) must not block the service's event loop (issue 13: no answer for 90 s)."""
    config = tmp_path / "application.yml"
    write_config(config, kafka_bootstrap, "unused")
    [port] = free_ports(1)
    process = start_service(
        "tests.integration.services.chatty_service", port=port, config=config, cwd=ROOT
    )
    try:
        await wait_ready(port, process)
        assert (await post(port, "/chatter/3000")).json() == {"lines": 3000}
        assert (await get(port, "/actuator/health")).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert "chatter 0 " in output  # The start...
    assert "chatter 2999 " in output  # ...and the end are kept,
    assert "characters left out ...]" in output  # the middle is not.
    assert len(output) < 2 * 1024 * 1024
