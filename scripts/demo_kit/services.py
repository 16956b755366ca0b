"""Starting the demo's broker and services all at once: the broker's JVM and the Python
services' imports are both CPU-bound starts, so on 2 cores they overlap instead of queueing
(a service that is up before the broker retries its connection, as it would in production)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx

from kafkaboot.testing import KafkaCluster, start_service
from kafkaboot.testing.launch import JVM_OPTS_ENV

__all__ = ["local_broker", "start", "stop_all", "wait_ready"]

ROOT = Path(__file__).resolve().parents[2]


BROKER_JVM = "-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true -XX:TieredStopAtLevel=1"
"""kafkaboot's broker JVM options plus C1 only: in a run of a minute, C2 compiling the hot
paths cost the broker more CPU than it saved (measured 0.33-0.39 ms per message with C2,
0.15 without; 5.4-5.9 CPU seconds to start, 3.2 without). $KAFKABOOT_BROKER_JVM_OPTS wins."""


@contextlib.asynccontextmanager
async def local_broker() -> AsyncIterator[tuple[KafkaCluster, asyncio.Task[KafkaCluster]]]:
    """A one-node Apache Kafka in a temporary directory, its address known at once, and the
    task of its start (await it before relying on the broker); stopped on leaving."""
    os.environ.setdefault(JVM_OPTS_ENV, BROKER_JVM)
    with tempfile.TemporaryDirectory(prefix="kafkaboot-demo-broker-") as data:
        cluster = KafkaCluster(data)
        starting = asyncio.create_task(asyncio.to_thread(cluster.start))
        try:
            yield cluster, starting
        finally:
            with contextlib.suppress(BaseException):
                await starting
            await asyncio.to_thread(cluster.stop)


def start(service: str, port: int, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``kafkaboot run SERVICE`` with the service's own application.yml, output to ``log``."""
    with log.open("wb") as out:
        return start_service(
            service,
            port=port,
            config=f"{service}/application.yml",
            env=env,
            cwd=ROOT,
            output=out,
        )


async def wait_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> float:
    """Poll readiness until the service answers 200; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"a service on port {port} exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/actuator/health/readiness")).status_code == 200:
                    return time.monotonic()
            await asyncio.sleep(0.25)
    raise RuntimeError(f"the service on port {port} was not ready within {timeout:.0f}s")


def stop_all(processes: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM to all at once (each drains and flushes), then wait for each."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
