"""The sample services run as users start them: sites publish over HTTP, the central
consumer keeps everything in its database, with nothing lost and nothing stored twice."""

import asyncio
import os
import signal
import subprocess
import sys

import httpx
import pytest

from kafkaboot.testing import commit_offsets, committed_offsets, free_ports, start_service

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
async def test_three_sites_into_one_central_consumer(kafka_bootstrap, tmp_path):
    topic = unique("events")
    database = f"sqlite+aiosqlite:///{tmp_path / 'central.db'}"
    consumer_port, *producer_ports = free_ports(4)

    def central():
        return run_service(
            "sample_consumer_service",
            consumer_port,
            kafka_bootstrap,
            EVENTS_TOPIC=topic,
            DATABASE_URL=database,
        )

    async def sites(sequences):
        async def site(index, port):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                for sequence in sequences:
                    body = {"customer_id": f"customer-{index}", "sequence": sequence}
                    assert (await http.post("/messages", json=body)).status_code == 202

        await asyncio.gather(*(site(i, port) for i, port in enumerate(producer_ports)))

    processes = [central()]
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

        await sites(range(100))
        stats = await wait_for_stats(consumer_port, 300)
        # The central consumer restarts, with Kafka's committed offsets rewound to 0: it
        # goes on from the offsets stored with the events (reading everything again would
        # store nothing twice either, but would show as refused batches in its log), and
        # its statistics, read from the table, start where they were.
        stop(processes[:1])
        committed = await committed_offsets(kafka_bootstrap, "central-consumer")
        rewound = {tp: 0 for tp in committed if tp.topic == topic}
        await commit_offsets(kafka_bootstrap, "central-consumer", rewound)
        processes[0] = central()
        await wait_ready(consumer_port, processes[0])
        assert (await _stats(consumer_port))["stored"] == 300
        await sites(range(100, 110))
        again = await wait_for_stats(consumer_port, 330)
    finally:
        stop(processes)
    assert "WARNING kafkaboot.listener" not in processes[0].output()
    counts = ("stored", "unique", "duplicates", "gaps")
    assert [stats[name] for name in counts] == [300, 300, 0, 0]
    assert stats["per_instance"] == {"site-0": 100, "site-1": 100, "site-2": 100}
    assert [again[name] for name in counts] == [330, 330, 0, 0]


async def _stats(port):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        return (await http.get("/stats")).json()


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
    assert "| stored once | 300 of 300 |" in result.stdout
    assert "| messages sent (HTTP 202) | 300 |" in result.stdout
    assert f"| messages per request | {batch} |" in result.stdout
    assert "consumer stored" in result.stdout  # The live line.
    assert "OK: nothing lost, each message stored once" in result.stdout
