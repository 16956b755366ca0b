"""The status page at /actuator/kafka, rendered by a real browser (Debian's headless
Chromium): it shows the listener, its rate charts, and the lag of a paused listener. With
KAFKABOOT_SCREENSHOT=path the test also saves the screenshot that docs/observability.md
shows (docs/images/status-page.png)."""

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from kafkaboot.testing import free_ports, start_service

from .kafka_helpers import create_topic, produce, unique
from .test_prometheus_scrape import ROOT, post, wait_ready, write_service_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (apt-get install chromium; .ci/run does)",
    ),
]


def chromium(tmp_path, *arguments):
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


async def status(port):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        answer = await client.get("/actuator/kafka/status")
    answer.raise_for_status()
    return answer.json()


async def test_the_page_shows_the_listener_and_a_paused_listeners_lag(kafka_bootstrap, tmp_path):
    topic = await create_topic(kafka_bootstrap, partitions=2, prefix="status")
    await produce(kafka_bootstrap, topic, [b"ok-%d" % n for n in range(10)], partitions=2)
    config = tmp_path / "application.yml"
    write_service_config(config, kafka_bootstrap, topic)
    (port,) = free_ports(1)
    service = start_service(
        "tests.integration.services.observed_service",
        port=port,
        config=config,
        env={"SERVICE_TOPIC": topic, "SERVICE_GROUP": unique("g")},
        cwd=ROOT,
    )
    try:
        await wait_ready(port, service)
        # Traffic for two sampling intervals (5 s each), a failing record now and then, so
        # that the charts of handled records and errors have points to draw.
        for n in range(22):
            values = [b"ok-%d-%d" % (n, i) for i in range(25)]
            if n % 4 == 0:
                values.append(b"bad-%d" % n)  # Dead-lettered at once: an error per second.
            await produce(kafka_bootstrap, topic, values, partitions=2)
            await asyncio.sleep(0.5)
        [listener] = (await status(port))["listeners"]
        assert max(listener["handled_per_s"]) > 0, listener
        assert max(listener["errors_per_s"]) > 0, listener
        await post(port, "/pause")
        await produce(kafka_bootstrap, topic, [b"late-%d" % n for n in range(40)])
        deadline = time.monotonic() + 30
        while True:
            [listener] = (await status(port))["listeners"]
            lags = {p["partition"]: p["lag"] for p in listener["partitions"]}
            if lags == {0: 40, 1: 0}:
                break
            assert time.monotonic() < deadline, listener
            await asyncio.sleep(0.5)
        url = f"http://127.0.0.1:{port}/actuator/kafka"
        dom = chromium(tmp_path, "--dump-dom", url)
        assert dom.returncode == 0, dom.stderr[-2000:]
        assert 'data-listener="observed"' in dom.stdout
        assert f'data-partition="{topic}-0"' in dom.stdout
        row = dom.stdout.split(f'data-partition="{topic}-0"', 1)[1].split("</tr>", 1)[0]
        assert '<td class="lag">40</td>' in row
        assert "paused" in row
        assert dom.stdout.count("<polyline") == 2  # The handled and error charts.
        picture = Path(os.environ.get("KAFKABOOT_SCREENSHOT") or tmp_path / "status-page.png")
        shot = chromium(tmp_path, f"--screenshot={picture}", "--window-size=1100,700", url)
        assert shot.returncode == 0, shot.stderr[-2000:]
        assert picture.stat().st_size > 10_000
    finally:
        service.terminate()
        service.wait(timeout=30)
