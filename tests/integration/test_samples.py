"""The sample services run as users start them: sites publish over HTTP, the central
consumer takes in everything, with nothing lost and nothing counted twice."""

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest

from kafkaboot.testing import free_ports, start_service

from .kafka_helpers import unique
from .test_run import ROOT, wait_ready


def run_service(name, port, bootstrap, **env):
    return start_service(
        name,
        port=port,
        config=f"{name}/application.yml",
        env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap} | env,
        cwd=ROOT,
    )


@pytest.mark.slow
@pytest.mark.asyncio
async def test_three_sites_into_one_central_consumer(kafka_bootstrap):
    topic = unique("events")
    consumer_port, *producer_ports = free_ports(4)
    processes = [
        run_service("sample_consumer_service", consumer_port, kafka_bootstrap, EVENTS_TOPIC=topic)
    ]
    try:
        await wait_ready(consumer_port, processes[0])
        for index, port in enumerate(producer_ports):
            processes.append(
                run_service(
                    "sample_producer_service",
                    port,
                    kafka_bootstrap,
                    EVENTS_TOPIC=topic,
                    INSTANCE_ID=f"site-{index}",
                )
            )
        for port, process in zip(producer_ports, processes[1:], strict=True):
            await wait_ready(port, process)

        async def site(index, port):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for sequence in range(100):
                    body = {"customer_id": f"customer-{index}", "sequence": sequence}
                    assert (await http.post("/messages", json=body)).status_code == 202

        await asyncio.gather(*(site(i, port) for i, port in enumerate(producer_ports)))
        stats = await wait_for_stats(consumer_port, 300)
    finally:
        stop(processes)
    assert stats["unique"] == 300
    assert (stats["duplicates"], stats["gaps"]) == (0, 0)
    assert stats["per_instance"] == {"site-0": 100, "site-1": 100, "site-2": 100}

    # A restarted central consumer resumes from its committed offsets; with `replay:
    # beginning` it reads everything again.
    replayer = run_service(
        "sample_consumer_service",
        consumer_port,
        kafka_bootstrap,
        EVENTS_TOPIC=topic,
        REPLAY="beginning",
    )
    try:
        await wait_ready(consumer_port, replayer)
        replayed = await wait_for_stats(consumer_port, 300)
    finally:
        stop([replayer])
    assert (replayed["unique"], replayed["duplicates"], replayed["gaps"]) == (300, 0, 0)


async def wait_for_stats(port, unique):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(150):
            stats = (await http.get("/stats")).json()
            if stats["unique"] == unique:
                break
            await asyncio.sleep(0.2)
    return stats


def stop(processes):
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 25], ids=["per-message", "batches"])
def test_reduced_demo_loses_nothing(kafka_bootstrap, batch):
    result = subprocess.run(
        [
            sys.executable,
            "scripts/demo.py",
            *("--producers", "3", "--messages", "300", "--batch", str(batch)),
        ],
        cwd=ROOT,
        env=os.environ | {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| lost | 0 |" in result.stdout
    assert "| duplicates | 0 |" in result.stdout
    assert "| messages sent (HTTP 202) | 300 |" in result.stdout
    assert f"| messages per request | {batch} |" in result.stdout
    assert "consumer received" in result.stdout  # The live line.
    assert "OK: nothing lost" in result.stdout
