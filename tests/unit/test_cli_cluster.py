"""What the operations commands share (kafkaboot.cli.cluster): the consumer settings a
command's own consumer gets, how a date-time is read, and the progress counter."""

import io
import sys
import time

import pytest

from kafkaboot.cli.cluster import Progress, consumer_kwargs, timestamp_ms
from kafkaboot.config import load_settings


def test_a_commands_consumer_never_takes_the_services_group_membership(tmp_path):
    config = tmp_path / "application.yml"
    config.write_text(
        "kafka:\n"
        "  consumer:\n"
        "    group-id: orders-service\n"
        "    client-id: orders-service-1\n"
        "    enable-auto-commit: true\n"
        "    isolation-level: read_committed\n"
        "    properties: {group.instance.id: orders-1}\n"
    )
    settings = load_settings(config, environ={})
    kwargs = consumer_kwargs(settings, "kafkaboot-consume", "billing")
    assert "group_instance_id" not in kwargs  # It would fence the service's static member.
    assert kwargs["group_id"] == "billing"
    assert kwargs["client_id"] == "kafkaboot-consume"
    assert kwargs["enable_auto_commit"] is False
    assert kwargs["isolation_level"] == "read_committed"  # The service's own, kept.
    assert consumer_kwargs(settings, "kafkaboot-groups")["group_id"] is None


@pytest.fixture
def nine_hours_ahead_of_utc(monkeypatch):
    monkeypatch.setenv("TZ", "JST-9")  # POSIX: no time zone database needed.
    time.tzset()
    assert time.timezone == -9 * 3600
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_date_time_without_a_zone_is_utc_whatever_the_local_zone(nine_hours_ahead_of_utc):
    utc = timestamp_ms("2026-01-31T12:00:00Z")
    assert timestamp_ms("2026-01-31T12:00:00") == utc
    assert timestamp_ms("2026-01-31T13:00:00+01:00") == utc


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_counts_in_place_on_a_terminal(monkeypatch):
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    progress = Progress("sent {done}/{total}")
    progress.update(1, 3)
    progress.update(3, 3)  # The last count is shown however soon it comes.
    progress.close()
    assert stderr.getvalue().startswith("\rsent 1/3")
    assert stderr.getvalue().endswith("\rsent 3/3\n")


def test_progress_prints_nothing_off_a_terminal_or_when_turned_off(monkeypatch):
    for stderr, shown in ((io.StringIO(), True), (_Terminal(), False)):
        monkeypatch.setattr(sys, "stderr", stderr)
        progress = Progress("sent {done}/{total}", shown=shown)
        progress.update(1, 1)
        progress.close()
        assert stderr.getvalue() == ""
