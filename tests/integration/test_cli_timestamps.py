"""A timestamp without a zone means UTC in every command that takes one (``consume --from``,
``groups reset-offsets --to-datetime``), as in Kafka's own tools (``Utils.getDateTime``
appends ``Z``), whatever the local time zone of the machine running the command."""

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from kafkaboot.cli import main

from .kafka_helpers import create_topic, produce, unique

MIDDLE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
"""Without its zone, between the two records in UTC; in UTC+9 it is nine hours earlier,
before both."""
ZONELESS = MIDDLE.replace(tzinfo=None).isoformat()
WRITTEN_MS = [int((MIDDLE + timedelta(hours=h)).timestamp() * 1000) for h in (-1, 1)]


@pytest.fixture(autouse=True)
def nine_hours_ahead_of_utc(monkeypatch, tmp_path):
    """The process's local time zone is UTC+9 for the test; no service configuration."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKABOOT_CONFIG", raising=False)
    monkeypatch.setenv("TZ", "JST-9")  # POSIX: no time zone database needed.
    time.tzset()
    assert time.timezone == -9 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def topic(kafka_bootstrap):
    """A topic whose offset 0 was written an hour before MIDDLE and offset 1 an hour after."""
    name = asyncio.run(create_topic(kafka_bootstrap, prefix="cli-timestamps"))
    asyncio.run(produce(kafka_bootstrap, name, [b"before", b"after"], timestamps=WRITTEN_MS))
    return name


def test_consume_from_a_zoneless_timestamp_reads_it_as_utc(topic, kafka_bootstrap, capsys):
    argv = ["consume", topic, "--from", ZONELESS, "--format", "json"]
    assert main([*argv, "--bootstrap-servers", kafka_bootstrap]) == 0
    shown = [json.loads(line)["value"] for line in capsys.readouterr().out.splitlines()]
    assert shown == ["after"]


def test_reset_offsets_to_a_zoneless_datetime_reads_it_as_utc(topic, kafka_bootstrap, capsys):
    argv = ["groups", "reset-offsets", unique("g"), "--topic", topic, "--to-datetime", ZONELESS]
    assert main([*argv, "--format", "json", "--bootstrap-servers", kafka_bootstrap]) == 0
    [partition] = json.loads(capsys.readouterr().out)["partitions"]
    assert partition["new"] == 1
