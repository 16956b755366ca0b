"""The AsyncAPI page of a running service, rendered by a real browser (Debian's headless
Chromium): the channel, its operations and the message's fields are on the page. The sample
producer's application.yml turns the page on (``kafkaboot.asyncapi.enabled``; off by
default)."""

import shutil
import subprocess

import pytest

from kafkaboot.testing import free_ports, start_service

from .test_run import ROOT, get, wait_ready

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (apt-get install chromium; .ci/run does)",
    ),
]


async def test_a_browser_shows_the_services_channels_and_fields(tmp_path):
    [port] = free_ports(1)
    service = start_service(
        "sample_producer_service.endpoints",
        port=port,
        config=ROOT / "sample_producer_service" / "application.yml",
        cwd=ROOT,
        extra=["--broker", "memory"],
    )
    try:
        await wait_ready(port, service)
        assert (await get(port, "/asyncapi.json")).status_code == 200
        profile = tmp_path / "chromium-profile"
        rendered = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                f"--user-data-dir={profile}",
                "--dump-dom",
                f"http://127.0.0.1:{port}/asyncapi",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        service.terminate()
        service.communicate(timeout=30)
    dom = rendered.stdout
    assert "<code>events</code>" in dom, rendered.stderr[-2000:]
    assert "send-publish-events" in dom  # The endpoint's @publishes declaration.
    assert "<code>customer_id</code>" in dom  # The Message model's fields.
