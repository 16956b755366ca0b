"""A poll that can never succeed stops the container and says why, instead of retrying forever.

The real fatal poll error: records compressed with zstd by the Java client, which aiokafka
cannot decompress without ``cramjam``; every ``getmany`` then raises ``UnsupportedCodecError``.
"""

import asyncio
import importlib.util
import subprocess
from pathlib import Path

import pytest

from kafkaboot.testing.distribution import kafka_classpath

from .kafka_helpers import committed, create_topic, produce, registry_for, unique, wait_for

pytestmark = pytest.mark.asyncio

PRODUCE_JAVA = Path(__file__).parent / "java" / "Produce.java"
JARS = ("kafka-clients", "zstd-jni", "lz4-java", "snappy-java", "slf4j-api")


async def produce_compressed(bootstrap, topic, codec, values):
    """Send ``values`` to partition 0 in one batch compressed by the Java client."""
    classpath = ":".join(str(p) for p in kafka_classpath() if p.name.startswith(JARS))
    await asyncio.to_thread(
        subprocess.run,
        ["java", "-cp", classpath, str(PRODUCE_JAVA), bootstrap, topic, codec, *values],
        capture_output=True,
        check=True,
        timeout=120,
    )


@pytest.mark.skipif(
    importlib.util.find_spec("cramjam") is not None,
    reason="cramjam is installed, so aiokafka reads zstd and no poll fails",
)
async def test_a_codec_aiokafka_cannot_read_fails_the_container_and_names_the_codec(
    kafka_bootstrap,
):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"plain-0", b"plain-1", b"plain-2"])
    group = unique("codec")
    registry = registry_for(kafka_bootstrap)
    seen = []

    @registry.listener(topic, group_id=group, id="unreadable")
    async def on_value(value: str) -> None:
        seen.append(value)

    await registry.start()
    container = registry.get("unreadable")
    try:
        # Handled before the zstd batch exists: records fetched together with an unreadable
        # batch are never returned by aiokafka, whatever the fix.
        await wait_for(lambda: len(seen) == 3, message="the three uncompressed records")
        await produce_compressed(kafka_bootstrap, topic, "zstd", ["zstd-3", "zstd-4"])
        try:
            await wait_for(
                lambda: container.failure is not None, timeout=20, message="the container to fail"
            )
        except AssertionError as exc:
            status = await container.status()
            raise AssertionError(
                f"{exc}; it is still {status.state!r}, last error {status.last_error!r}"
            ) from None
        await wait_for(lambda: not container.is_running, message="the container to stop")
        status = await container.status()
    finally:
        await registry.stop()

    assert "UnsupportedCodecError" in container.failure
    assert "zstd" in container.failure
    assert "cramjam" in container.failure
    assert status.state != "running"
    assert "UnsupportedCodecError" in (status.last_error or "")
    assert seen == ["plain-0", "plain-1", "plain-2"]
    # The unreadable records stay uncommitted, for a consumer that can read them.
    assert await committed(kafka_bootstrap, group, topic) == {0: 3}
