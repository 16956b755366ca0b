"""What a `kafkaboot run` service writes while its only broker is away: a bounded number of
lines, the first error of each kind, and counts of the ones held back."""

import asyncio
import re
import signal
import textwrap
import time

import pytest

from kafkaboot.testing import free_ports

from .kafka_helpers import unique
from .test_run import get, start, wait_ready

OUTAGE_S = 15.0


def write_config(path, bootstrap, topic, repeat_interval):
    path.write_text(
        textwrap.dedent(
            f"""\
            server:
              host: 127.0.0.1
            kafkaboot:
              logging:
                repeat-interval: {repeat_interval}
            kafka:
              bootstrap-servers: {bootstrap}
              listener:
                shutdown-timeout: 2s
              topics:
                - name: {topic}
                  partitions: 1
            """
        )
    )


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_broker_outage_writes_a_bounded_number_of_lines(disposable_broker, tmp_path):
    """Unthrottled, aiokafka wrote about 80 ERROR lines a second here (issue 13); with a
    5 s repeat interval, 15 s of outage give each kind of line a few times, with counts."""
    cluster = disposable_broker
    topic, log_file = unique("outage-log"), tmp_path / "service.log"
    config = tmp_path / "application.yml"
    write_config(config, cluster.bootstrap_servers, topic, "5s")
    [port] = free_ports(1)
    with log_file.open("w") as output:
        process = start(
            config, port, SERVICE_TOPIC=topic, HANDLED_FILE=str(tmp_path / "h.txt"), output=output
        )
        try:
            await wait_ready(port, process)
            before = len(log_file.read_text().splitlines())
            await asyncio.to_thread(cluster.stop_node, 1)
            stopped = time.monotonic()
            while time.monotonic() - stopped < OUTAGE_S:
                assert (await get(port, "/actuator/health")).status_code == 200
                await asyncio.sleep(0.5)
            outage = log_file.read_text().splitlines()[before:]
            await asyncio.to_thread(cluster.start_node, 1)
            await asyncio.to_thread(cluster.wait_ready, 120)
            await wait_ready(port, process, timeout=90)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    errors = [line for line in outage if " ERROR aiokafka" in line]
    assert errors, "\n".join(outage)  # The first error of each kind is still written.
    assert len(outage) < 50, f"{len(outage)} lines in {OUTAGE_S:g}s:\n" + "\n".join(outage[:80])
    counted = [line for line in outage if re.search(r"\(and \d+ more like it in the last", line)]
    assert counted, "no line said how many were held back:\n" + "\n".join(outage)
