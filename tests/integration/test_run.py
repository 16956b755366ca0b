"""`kafkaboot run` as users start it: HTTP and listeners in one process, health, stop."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from kafkaboot.testing import free_ports, start_service

from .kafka_helpers import as_terminal_job, committed, unique, wait_for

ROOT = Path(__file__).parents[2]


def start(config, port, *extra, output=subprocess.PIPE, **env):
    return start_service(
        "tests.integration.services.web_service",
        port=port,
        config=config,
        env=env,
        cwd=ROOT,
        extra=extra,
        output=output,
    )


def write_config(path, bootstrap, topic):
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
              topics:
                - name: {topic}
                  partitions: 1
            """
        )
    )


async def get(port, path):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        return await client.get(path)


async def post(port, path):
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return await client.post(path)


async def wait_ready(port, process, timeout=60):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            last = await get(port, "/actuator/health/readiness")
            if last.status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"the service never became ready: {last and last.text}")


@pytest.mark.slow
@pytest.mark.asyncio
async def test_run_serves_http_consumes_reports_health_and_stops_cleanly(kafka_bootstrap, tmp_path):
    topic, group = unique("run"), unique("run-group")
    config, handled = tmp_path / "application.yml", tmp_path / "handled.txt"
    write_config(config, kafka_bootstrap, topic)
    [port] = free_ports(1)
    process = start(
        config, port, SERVICE_TOPIC=topic, SERVICE_GROUP=group, HANDLED_FILE=str(handled)
    )
    try:
        await wait_ready(port, process)
        assert (await get(port, "/actuator/health")).json() == {
            "status": "UP",
            "components": {"kafka": {"status": "UP"}},
        }
        for value in ("a", "b"):
            assert (await post(port, f"/publish/{value}")).status_code == 200
        await wait_for(
            lambda: handled.exists() and handled.read_text().split() == ["a", "b"],
            message="both records handled",
        )
        [listener] = (await get(port, "/actuator/kafka/listeners")).json()
        assert listener["state"] == "running"
        assert listener["group_id"] == group
        assert [p["partition"] for p in listener["partitions"]] == [0]

        assert (await post(port, "/publish/slow")).json() == {"offset": 2}
        time.sleep(1.0)  # The listener is now inside the slow record.
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # uvicorn re-raises the stop signal after a clean shutdown, as process managers expect.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output
    assert time.monotonic() - started < 15
    # Finished work was committed; the record still in hand was not.
    assert await committed(kafka_bootstrap, group, topic) == {0: 2}


@pytest.mark.asyncio
async def test_run_without_a_broker_retries_then_exits_non_zero(tmp_path):
    [port, dead] = free_ports(2)
    config = tmp_path / "application.yml"
    write_config(config, f"127.0.0.1:{dead}", "t")
    process = start(config, port, KAFKABOOT_STARTUP_DEADLINE="3", HANDLED_FILE="/dev/null")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    assert "startup attempt 1 failed" in output
    assert "kafkaboot could not start: gave up starting" in output
    assert f"127.0.0.1:{dead}" in output


def run_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "kafkaboot", "run", *args],
        cwd=cwd,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_run_with_a_missing_config_file_names_it(tmp_path):
    result = run_cli("--config", str(tmp_path / "none.yml"), cwd=tmp_path)
    assert result.returncode == 1
    assert "none.yml" in result.stderr
    assert "does not exist" in result.stderr


def test_run_without_a_target_says_what_to_give(tmp_path):
    (tmp_path / "application.yml").write_text("server: {port: 1}\n")
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 1
    assert "kafkaboot.application.module" in result.stderr


def test_run_with_an_unknown_module_says_so(tmp_path):
    result = run_cli("no_such_service", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot import 'no_such_service'" in result.stderr


@pytest.mark.asyncio
async def test_plain_uvicorn_runs_a_kafkaboot_app(kafka_bootstrap, tmp_path):
    topic = unique("uvicorn")
    config = tmp_path / "application.yml"
    write_config(config, kafka_bootstrap, topic)
    [port] = free_ports(1)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.integration.services.uvicorn_service:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ | {"KAFKABOOT_CONFIG": str(config), "SERVICE_TOPIC": topic},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        await wait_ready(port, process)
        [listener] = (await get(port, "/actuator/kafka/listeners")).json()
        assert listener["topics"] == [topic]
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert "Traceback" not in output


@pytest.mark.slow
@pytest.mark.asyncio
async def test_readiness_follows_the_broker_away_and_back(disposable_broker, tmp_path):
    cluster = disposable_broker
    topic = unique("ready")
    config = tmp_path / "application.yml"
    write_config(config, cluster.bootstrap_servers, topic)
    [port] = free_ports(1)
    process = start(config, port, SERVICE_TOPIC=topic, HANDLED_FILE=str(tmp_path / "h.txt"))
    try:
        await wait_ready(port, process)
        await asyncio.to_thread(cluster.stop_node, 1)
        deadline = time.monotonic() + 30
        while (await get(port, "/actuator/health/readiness")).status_code != 503:
            assert time.monotonic() < deadline, "readiness stayed UP without a broker"
            await asyncio.sleep(0.5)
        body = (await get(port, "/actuator/health/readiness")).json()
        assert body["status"] == "OUT_OF_SERVICE"
        assert body["details"]["broker_reachable"] is False
        assert (await get(port, "/actuator/health")).status_code == 200  # Still alive.
        await asyncio.to_thread(cluster.start_node, 1)  # Returns once it is back.
        await wait_ready(port, process, timeout=90)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.asyncio
async def test_workers_share_the_port_and_the_consumer_group(kafka_bootstrap, tmp_path):
    from aiokafka.admin import AIOKafkaAdminClient

    topic, group = unique("workers"), unique("workers-group")
    config = tmp_path / "application.yml"
    write_config(config, kafka_bootstrap, topic)
    config.write_text(config.read_text().replace("partitions: 1", "partitions: 4"))
    [port] = free_ports(1)
    process = start(
        config,
        port,
        "--workers",
        "2",
        SERVICE_TOPIC=topic,
        SERVICE_GROUP=group,
        HANDLED_FILE=str(tmp_path / "h.txt"),
    )
    try:
        await wait_ready(port, process)
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            deadline = time.monotonic() + 60
            while True:
                [description] = await admin.describe_consumer_groups([group])
                members = description.to_object()["groups"][0]["members"]
                if len(members) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        finally:
            await admin.close()
        assert len(members) == 2  # Two processes, one group: partitions are shared.
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert "Traceback" not in output


@pytest.mark.asyncio
async def test_run_on_an_in_memory_broker_publishes_and_consumes_in_one_process(tmp_path):
    config, handled = tmp_path / "application.yml", tmp_path / "handled.txt"
    write_config(config, "127.0.0.1:1", "events")  # --broker memory replaces the address.
    [port] = free_ports(1)
    process = start(config, port, "--broker", "memory", HANDLED_FILE=str(handled))
    try:
        await wait_ready(port, process)
        for offset, value in enumerate(("a", "b")):
            assert (await post(port, f"/publish/{value}")).json() == {"offset": offset}
        await wait_for(
            lambda: handled.exists() and handled.read_text().split() == ["a", "b"],
            message="both records handled",
        )
        [listener] = (await get(port, "/actuator/kafka/listeners")).json()
        assert listener["partitions"][0]["committed"] == 2
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "running on an in-memory Kafka (memory://run)" in output
    assert "Traceback" not in output


def test_run_on_an_in_memory_broker_refuses_more_than_one_worker(tmp_path):
    (tmp_path / "application.yml").write_text("server: {port: 1}\n")
    result = run_cli("some_service", "--broker", "memory", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 1
    assert "--broker memory runs in one process" in result.stderr


@pytest.mark.asyncio
async def test_run_reload_restarts_the_service_when_a_file_changes(tmp_path):
    service = tmp_path / "reload_service.py"
    source = (
        "from fastapi import FastAPI\n"
        "app = FastAPI()\n"
        "@app.get('/version')\n"
        "async def version() -> dict:\n"
        "    return {'version': %r}\n"
    )
    service.write_text(source % "one")
    config = tmp_path / "application.yml"
    config.write_text("server:\n  host: 127.0.0.1\n")
    [port] = free_ports(1)
    command = [sys.executable, "-m", "kafkaboot", "run", "reload_service", "--port", str(port)]
    command += ["--config", str(config), "--reload", "--broker", "memory", "--log-level", "info"]
    process = subprocess.Popen(  # A process group of its own, as a terminal's job is.
        command,
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=as_terminal_job,
    )
    try:
        await wait_ready(port, process)
        assert (await get(port, "/version")).json() == {"version": "one"}
        service.write_text(source % "two")
        deadline = time.monotonic() + 60
        seen = None
        while time.monotonic() < deadline:
            try:
                seen = (await get(port, "/version")).json()
                if seen == {"version": "two"}:
                    break
            except httpx.TransportError:
                pass  # Between the old process and the new one.
            await asyncio.sleep(0.2)
        assert seen == {"version": "two"}
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole job.
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "reload_service.py changed: restarting the service" in output
    assert "Traceback" not in output
    # Each child stopped gracefully (its lifespan's shutdown ran), the old one on the
    # reload and the new one on the Ctrl-C: one signal each, never uvicorn's forced exit.
    assert output.count("Application shutdown complete") == 2, output
    with pytest.raises(httpx.TransportError):  # The child went with its parent.
        await get(port, "/version")
