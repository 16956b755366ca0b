"""The central consumer as users run it — ``kafkaboot run sample_counting_consumer`` (the
central consumer without a database: at least once, per-key concurrency) or
``sample_consumer_service`` (its events in a database, exactly once) in a process of its
own — with its handled events journaled for counting (EVENTS_JOURNAL)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from kafkaboot.testing import free_ports, start_service

from .ledger import Ledger, read_journal

ROOT = Path(__file__).parents[2]
CONFIG = ROOT / "sample_counting_consumer" / "application.yml"
SAMPLES = ("sample_counting_consumer", "sample_consumer_service")


def service_config(
    path: Path,
    bootstrap: str,
    *,
    topic: str | None = None,
    consumer: Mapping[str, str] | None = None,
    **kafka: Mapping[str, str],
) -> Path:
    """An application.yml for a scenario's own service: loopback HTTP, reading from the
    earliest offset, ``topic`` declared with one partition, plus ``consumer`` keys and
    other ``kafka.*`` sections (``listener={...}``, ``producer={...}``)."""
    settings: dict[str, Any] = {
        "bootstrap-servers": bootstrap,
        "consumer": {"auto-offset-reset": "earliest", **(consumer or {})},
        **{name: dict(section) for name, section in kafka.items()},
    }
    if topic is not None:
        settings["topics"] = [{"name": topic, "partitions": 1}]
    path.write_text(yaml.safe_dump({"server": {"host": "127.0.0.1"}, "kafka": settings}))
    return path


class CentralConsumer:
    """One instance of the central consumer (or of another consumer service of the
    suite's, with ``target`` and ``config``). Its output goes to a file (a pipe nobody
    reads would fill up and block the service), and every instance of a scenario appends
    to the same journal."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        journal: Path,
        logs: Path,
        *,
        env: Mapping[str, str] | None = None,
        extra: tuple[str, ...] = (),
        target: str = "sample_counting_consumer",
        config: Path = CONFIG,
    ) -> None:
        self.target, self.config = target, config
        self.journal = journal
        self.logs = logs
        self.extra = extra
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "EVENTS_TOPIC": topic,
            "EVENTS_JOURNAL": str(journal),
            # The samples' listener by its id; other services read $EVENTS_GROUP.
            "KAFKA_LISTENERS_CENTRAL_EVENTS_GROUP_ID"
            if target in SAMPLES
            else "EVENTS_GROUP": group,
            # A SIGKILLed member holds its partitions until its session times out: the
            # broker's minimum here, so a scenario's recovery is not 45 s per kill.
            "KAFKA_CONSUMER_SESSION_TIMEOUT": "6s",
            "KAFKA_CONSUMER_HEARTBEAT_INTERVAL": "1s",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        [self.port] = free_ports(1)
        self.starts += 1
        log = self.logs.with_name(f"{self.logs.stem}-{self.starts}{self.logs.suffix}")
        with log.open("wb") as output:
            self.process = start_service(
                self.target,
                port=self.port,
                config=self.config,
                env=self.env,
                cwd=ROOT,
                extra=self.extra,
                output=output,
                log_level="info",
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no revocation, no commit, no goodbye to the group."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as a process manager stops it; its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"the consumer did not stop within {timeout} s") from None

    def output(self) -> str:
        """Every instance's log, oldest first (for failure messages and log checks)."""
        parts = sorted(self.logs.parent.glob(f"{self.logs.stem}-*{self.logs.suffix}"))
        return "\n".join(p.read_text(errors="replace") for p in parts)

    async def ready(self, timeout: float = 60) -> None:
        """Until its readiness endpoint says UP."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        last = ""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=3) as http:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"the consumer exited:\n{self.output()[-3000:]}"
                try:
                    answer = await http.get("/actuator/health/readiness")
                    if answer.status_code == 200:
                        return
                    last = answer.text
                except httpx.TransportError as exc:
                    last = repr(exc)
                await asyncio.sleep(0.2)
        raise AssertionError(f"the consumer never turned ready: {last}")


def journal_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


async def handled_by(path: Path, pid: int, timeout: float) -> None:
    """Until a process with ``pid`` has journaled a handled event: the consumer works."""
    needle = f" {pid} ".encode()  # The fifth field, between the offset and the time.
    deadline = time.monotonic() + timeout
    while not (path.exists() and needle in path.read_bytes()):
        assert time.monotonic() < deadline, f"process {pid} handled nothing in {timeout} s"
        await asyncio.sleep(0.1)


async def all_handled(ledger: Ledger, journal: Path, timeout: float = 60) -> None:
    """Until every message acknowledged to the producers is in the journal (the consumers
    caught up), within ``timeout``."""
    deadline = time.monotonic() + timeout
    while missing := ledger.acknowledged - {h.id for h in read_journal(journal)}:
        assert time.monotonic() < deadline, (
            f"{len(missing)} acknowledged messages not handled in {timeout} s,"
            f" e.g. {sorted(missing)[:5]}"
        )
        await asyncio.sleep(0.2)


def cleanup(consumers: list[CentralConsumer]) -> None:
    for consumer in consumers:
        if consumer.process is not None and consumer.process.poll() is None:
            consumer.process.kill()
            consumer.process.wait(timeout=10)
