"""``kafkaboot dlt replay`` shows its progress on a terminal, and only there; the library
reports it through a callback and prints nothing. (What a replay re-publishes, and where, is
tested in test_error_handling.py.)"""

import asyncio
import sys

import pytest

from kafkaboot.cli import main
from kafkaboot.config import load_settings
from kafkaboot.errorhandling.replay import replay_dead_letters

from .kafka_helpers import create_topic, produce

VALUES = [b"0", b"1", b"2", b"3", b"4", b"5"]


@pytest.fixture(autouse=True)
def no_service_config(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAFKABOOT_CONFIG", raising=False)


@pytest.fixture
def dead_letters(kafka_bootstrap):
    """A dead-letter topic of two partitions with six records (no original-topic headers:
    each replay gives --to), and the topic to replay them to."""

    async def made():
        dlt = await create_topic(kafka_bootstrap, partitions=2, prefix="replay-dlt")
        await produce(kafka_bootstrap, dlt, VALUES, partitions=2)
        return dlt, await create_topic(kafka_bootstrap, prefix="replay-to")

    return asyncio.run(made())


@pytest.mark.asyncio
@pytest.mark.parametrize("limit", [None, 4])
async def test_replay_reports_each_dead_letter_to_the_progress_callback(
    kafka_bootstrap, dead_letters, limit
):
    dlt, target = dead_letters
    settings = load_settings(overrides={"kafka": {"bootstrap-servers": kafka_bootstrap}})
    calls = []
    report = await replay_dead_letters(
        settings,
        dlt,
        to=target,
        limit=limit,
        progress=lambda done, at_most: calls.append((done, at_most)),
    )
    expected = limit or len(VALUES)
    assert report.total == expected
    assert calls == [(done, expected) for done in range(1, expected + 1)]


def replay(dlt, target, bootstrap, capsys):
    code = main(["dlt", "replay", dlt, "--to", target, "--bootstrap-servers", bootstrap])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured


def test_replay_on_a_terminal_counts_on_stderr(kafka_bootstrap, dead_letters, capsys, monkeypatch):
    dlt, target = dead_letters
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    captured = replay(dlt, target, kafka_bootstrap, capsys)
    assert captured.err.endswith("\rread 6 of at most 6 dead letter(s)\n")
    assert f"re-published 6 dead letter(s) from {dlt} to {target}" in captured.out


def test_replay_off_a_terminal_prints_no_progress(kafka_bootstrap, dead_letters, capsys):
    dlt, target = dead_letters
    captured = replay(dlt, target, kafka_bootstrap, capsys)
    assert "of at most" not in captured.err
    assert "\r" not in captured.err + captured.out
    assert f"re-published 6 dead letter(s) from {dlt} to {target}" in captured.out
