"""A real Prometheus (Debian's `prometheus` package) scrapes a `kafkaboot run` service, and
queries through Prometheus's HTTP API see the workload: 1,000 records handled, 3
dead-lettered, lag 0 once drained, and lag 500 while the listener is paused."""

import asyncio
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from kafkaboot.testing import free_ports, start_service

from .kafka_helpers import create_topic, produce, unique

ROOT = Path(__file__).parents[2]
PROMETHEUS = shutil.which("prometheus")

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is not installed (apt-get install prometheus; .ci/run does)",
)


def write_service_config(path, bootstrap, topic):
    path.write_text(
        textwrap.dedent(
            f"""\
            server:
              host: 127.0.0.1
            kafka:
              bootstrap-servers: {bootstrap}
              consumer:
                auto-offset-reset: earliest
              listener:
                shutdown-timeout: 2s
                error-handler:
                  backoff:
                    max-attempts: 1
                  dead-letter:
                    enabled: true
            """
        )
    )


def start_prometheus(directory, port, target_port):
    config = directory / "prometheus.yml"
    config.write_text(
        textwrap.dedent(
            f"""\
            global:
              scrape_interval: 1s
              scrape_timeout: 900ms
            scrape_configs:
              - job_name: central-consumer
                metrics_path: /actuator/prometheus
                static_configs:
                  - targets: ["127.0.0.1:{target_port}"]
            """
        )
    )
    log = open(directory / "prometheus.log", "w")  # noqa: SIM115 - closed by the fixture.
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, log


async def query(port, promql):
    """The value of an instant query with one result (None: no result yet)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        answer = await client.get("/api/v1/query", params={"query": promql})
    answer.raise_for_status()
    result = answer.json()["data"]["result"]
    if not result:
        return None
    assert len(result) == 1, result
    return float(result[0]["value"][1])


async def until(port, promql, expected, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = await query(port, promql)
        except httpx.TransportError:
            last = "Prometheus not answering"
        if last == expected:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{promql} was {last}, not {expected}, after {timeout}s")


async def post(port, path):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        answer = await client.post(path)
    answer.raise_for_status()


async def wait_ready(port, service, timeout=60):
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        while time.monotonic() < deadline:
            assert service.poll() is None, service.output()
            try:
                if (await client.get("/actuator/health/readiness")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the service never became ready")


@needs_prometheus
async def test_prometheus_sees_handled_dead_lettered_and_lag(kafka_bootstrap, tmp_path):
    topic = await create_topic(kafka_bootstrap, partitions=3, prefix="scraped")
    await produce(kafka_bootstrap, topic, [b"ok-%d" % n for n in range(1000)], partitions=3)
    await produce(kafka_bootstrap, topic, [b"bad-%d" % n for n in range(3)])
    config = tmp_path / "application.yml"
    write_service_config(config, kafka_bootstrap, topic)
    service_port, prometheus_port = free_ports(2)
    service = start_service(
        "tests.integration.services.observed_service",
        port=service_port,
        config=config,
        env={"SERVICE_TOPIC": topic, "SERVICE_GROUP": unique("g")},
        cwd=ROOT,
    )
    prometheus, log = start_prometheus(tmp_path, prometheus_port, service_port)
    mine = f'listener="observed",topic="{topic}"'
    try:
        await wait_ready(service_port, service)
        await until(
            prometheus_port, f"sum(kafkaboot_listener_records_handled_total{{{mine}}})", 1000
        )
        await until(
            prometheus_port, f"sum(kafkaboot_listener_records_dead_lettered_total{{{mine}}})", 3
        )
        await until(
            prometheus_port,
            f'sum(kafkaboot_listener_seconds_count{{{mine},result="failure",'
            f'exception="ValueError"}})',
            3,
        )
        # Every assigned partition is reported, each at lag 0 once drained.
        await until(prometheus_port, f"count(kafkaboot_consumer_lag_records{{{mine}}} == 0)", 3)
        await until(prometheus_port, f"max(kafkaboot_consumer_lag_seconds{{{mine}}})", 0)
        await post(service_port, "/pause")
        await until(
            prometheus_port,
            'kafkaboot_listener_state{listener="observed",state="paused"}',
            1,
        )
        await produce(kafka_bootstrap, topic, [b"late-%d" % n for n in range(500)], partitions=3)
        await until(prometheus_port, f"sum(kafkaboot_consumer_lag_records{{{mine}}})", 500)
        await post(service_port, "/resume")
        await until(prometheus_port, f"sum(kafkaboot_consumer_lag_records{{{mine}}})", 0)
        await until(
            prometheus_port, f"sum(kafkaboot_listener_records_handled_total{{{mine}}})", 1500
        )
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)
        log.close()
        service.terminate()
        service.wait(timeout=30)


async def test_one_scrape_shows_every_worker(kafka_bootstrap, tmp_path):
    """`--workers 2`: whichever worker takes the scrape answers for both, each sample
    labelled with its worker; every partition's lag appears once."""
    topic = await create_topic(kafka_bootstrap, partitions=4, prefix="workers")
    await produce(kafka_bootstrap, topic, [b"ok-%d" % n for n in range(200)], partitions=4)
    config = tmp_path / "application.yml"
    write_service_config(config, kafka_bootstrap, topic)
    (port,) = free_ports(1)
    service = start_service(
        "tests.integration.services.observed_service",
        port=port,
        config=config,
        env={"SERVICE_TOPIC": topic, "SERVICE_GROUP": unique("g")},
        cwd=ROOT,
        extra=("--workers", "2"),
    )
    try:
        await wait_ready(port, service)
        deadline = time.monotonic() + 60
        while True:
            families = await scrape(port)
            handled = samples_of(families, "kafkaboot_listener_records_handled_total", topic)
            lag = samples_of(families, "kafkaboot_consumer_lag_records", topic)
            partitions = sorted(s.labels["partition"] for s in lag)
            done = (
                sum(s.value for s in handled) == 200
                and partitions == ["0", "1", "2", "3"]
                and all(s.value == 0 for s in lag)
                and {s.labels["worker"] for s in lag} == {"0", "1"}
            )
            if done:
                break
            assert time.monotonic() < deadline, (handled, lag)
            await asyncio.sleep(0.5)
        # Fresh connections land on either worker; each answers for both.
        for _ in range(10):
            lag = samples_of(await scrape(port), "kafkaboot_consumer_lag_records", topic)
            assert sorted(s.labels["partition"] for s in lag) == ["0", "1", "2", "3"]
    finally:
        service.terminate()
        service.wait(timeout=30)


async def scrape(port):
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        answer = await client.get("/actuator/prometheus")
    answer.raise_for_status()
    return list(text_string_to_metric_families(answer.text))


def samples_of(families, name, topic):
    return [
        s
        for family in families
        for s in family.samples
        if s.name == name and s.labels.get("topic") == topic
    ]
