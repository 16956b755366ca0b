"""At-least-once across a crash: SIGKILL a listener service mid-stream and restart it."""

import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from .kafka_helpers import committed, create_topic, produce, unique, wait_for

SERVICE = Path(__file__).parent / "services" / "crash_listener.py"
TOTAL = 3000


def start_service(bootstrap, topic, group, output):
    return subprocess.Popen(
        [sys.executable, str(SERVICE), bootstrap, topic, group, str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def handled(output):
    return output.read_text().split() if output.exists() else []


@pytest.mark.slow
@pytest.mark.asyncio
async def test_sigkill_mid_stream_loses_nothing_and_duplicates_only_the_uncommitted_tail(
    kafka_bootstrap, tmp_path
):
    topic = await create_topic(kafka_bootstrap, partitions=3)
    sent = await produce(kafka_bootstrap, topic, [b"%d" % i for i in range(TOTAL)], partitions=3)
    where = {str(i): (meta.partition, meta.offset) for i, meta in enumerate(sent)}
    group, output = unique("crash"), tmp_path / "handled.txt"

    service = start_service(kafka_bootstrap, topic, group, output)
    try:
        await wait_for(
            lambda: len(handled(output)) >= TOTAL // 3, timeout=60, message="a third of the stream"
        )
        service.send_signal(signal.SIGKILL)
        service.wait(timeout=10)
    finally:
        service.kill()
    first_run = handled(output)
    assert len(first_run) < TOTAL, "the crash came too late to test anything"
    committed_at_crash = await committed(kafka_bootstrap, group, topic, 3)

    service = start_service(kafka_bootstrap, topic, group, output)
    try:
        await wait_for(
            lambda: set(handled(output)) >= set(where),
            timeout=90,
            message="every record after the restart",
        )
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()

    counts = Counter(handled(output))
    assert set(counts) == set(where)  # Nothing lost.
    duplicates = [value for value, count in counts.items() if count > 1]
    for value in duplicates:
        partition, offset = where[value]
        # Only records past the last commit before the crash may be handled twice.
        assert offset >= (committed_at_crash[partition] or 0), (value, partition, offset)
    assert len(duplicates) <= 50 * 3  # At most the polls in flight when it died.
