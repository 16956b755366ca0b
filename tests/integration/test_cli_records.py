"""`kafkaboot send` and `kafkaboot consume` against the real broker."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from kafkaboot import clients
from kafkaboot.cli import main

from .kafka_helpers import as_terminal_job, committed, create_topic, produce, unique


@pytest.fixture(autouse=True)
def no_service_config(tmp_path, monkeypatch):
    """The commands read ./application.yml and $KAFKABOOT_CONFIG: neither is the test's."""
    monkeypatch.chdir(tmp_path)
    for name in ("KAFKABOOT_CONFIG", "KAFKABOOT_PROFILES_ACTIVE", "SPRING_PROFILES_ACTIVE"):
        monkeypatch.delenv(name, raising=False)


def new_topic(bootstrap, partitions=1):
    return asyncio.run(create_topic(bootstrap, partitions=partitions, prefix="cli-records"))


def cli(capsys, bootstrap, *argv):
    """Exit code, stdout and stderr of one in-process command."""
    code = main([*argv, "--bootstrap-servers", bootstrap])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def consumed(capsys, bootstrap, topic, *options):
    code, out, err = cli(capsys, bootstrap, "consume", topic, "--format", "json", *options)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def command(*argv):
    """`python -m kafkaboot ARGV` as a subprocess's argument list."""
    return [sys.executable, "-m", "kafkaboot", *argv]


def test_send_then_consume_round_trips_values_keys_headers_and_partitions(kafka_bootstrap, capsys):
    topic = new_topic(kafka_bootstrap, partitions=2)
    code, out, _ = cli(
        capsys, kafka_bootstrap, "send", topic, "hello", "--key", "k1", "--partition", "1",
        "--header", "trace=abc", "--header", "trace=def",
    )  # fmt: skip
    assert code == 0
    assert out.split() == ["LINE", "PARTITION", "OFFSET", "1", "1", "0"]
    code, out, _ = cli(
        capsys, kafka_bootstrap, "send", topic, "world", "--partition", "0", "--format", "json"
    )
    assert code == 0
    assert json.loads(out) == [{"line": 1, "partition": 0, "offset": 0}]

    records = sorted(consumed(capsys, kafka_bootstrap, topic), key=lambda r: r["partition"])
    assert [(r["partition"], r["offset"], r["key"], r["value"]) for r in records] == [
        (0, 0, None, "world"),
        (1, 0, "k1", "hello"),
    ]
    assert records[1]["headers"] == [["trace", "abc"], ["trace", "def"]]
    assert records[1]["topic"] == topic
    assert abs(datetime.fromisoformat(records[1]["timestamp"]) - datetime.now(UTC)) < timedelta(
        minutes=5
    )
    code, out, err = cli(capsys, kafka_bootstrap, "consume", topic, "--partition", "1")
    assert code == 0
    [line] = out.splitlines()
    assert line.startswith("partition=1 offset=0 timestamp=")
    assert line.endswith("key=k1 headers=trace:abc,trace:def value=hello")
    assert "1 record(s)" in err


def test_send_from_a_file_sends_one_record_per_line_and_skips_blank_lines(
    kafka_bootstrap, capsys, tmp_path
):
    topic = new_topic(kafka_bootstrap)
    lines = tmp_path / "orders.txt"
    lines.write_bytes(b"first\nsecond\n\nthird\n")
    code, out, _ = cli(
        capsys, kafka_bootstrap, "send", topic, "--file", str(lines), "--format", "json"
    )
    assert code == 0
    assert json.loads(out) == [
        {"line": 1, "partition": 0, "offset": 0},
        {"line": 2, "partition": 0, "offset": 1},
        {"line": 4, "partition": 0, "offset": 2},
    ]
    assert [r["value"] for r in consumed(capsys, kafka_bootstrap, topic)] == [
        "first",
        "second",
        "third",
    ]


def test_bytes_that_are_not_text_are_sent_as_they_are_and_shown_as_base64(
    kafka_bootstrap, capsys, tmp_path
):
    topic = new_topic(kafka_bootstrap)
    lines = tmp_path / "binary"
    lines.write_bytes(b"\xff\xfe\x00\n")
    code, _, err = cli(
        capsys, kafka_bootstrap, "send", topic, "--file", str(lines), "--serializer", "bytes"
    )
    assert code == 0, err
    [record] = consumed(capsys, kafka_bootstrap, topic)
    assert record["value"] == {"base64": "//4A"}
    _, out, _ = cli(capsys, kafka_bootstrap, "consume", topic)
    assert out.rstrip().endswith("value=base64://4A")


def test_send_from_stdin_in_a_subprocess(kafka_bootstrap, capsys, tmp_path):
    topic = new_topic(kafka_bootstrap)
    done = subprocess.run(
        command("send", topic, "-", "--key", "batch-1", "--bootstrap-servers", kafka_bootstrap),
        input=b"a\nb\nc",
        capture_output=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split()[3:] == ["1", "0", "0", "2", "0", "1", "3", "0", "2"]
    records = consumed(capsys, kafka_bootstrap, topic)
    assert [(r["key"], r["value"]) for r in records] == [
        ("batch-1", "a"),
        ("batch-1", "b"),
        ("batch-1", "c"),
    ]


def test_a_line_that_is_not_json_sends_nothing_and_is_named(kafka_bootstrap, capsys, tmp_path):
    topic = new_topic(kafka_bootstrap)
    lines = tmp_path / "events.jsonl"
    lines.write_text('{"id": 1}\n{"id": 2,}\n{"id": 3}\n')
    code, out, err = cli(
        capsys, kafka_bootstrap, "send", topic, "--file", str(lines), "--serializer", "json"
    )
    assert code == 1
    assert out == ""
    assert "nothing was sent" in err
    assert "line 2 is not JSON" in err
    assert "line 1" not in err
    assert "line 3" not in err
    code, out, err = cli(capsys, kafka_bootstrap, "consume", topic)
    assert (code, out) == (0, "")
    assert "0 record(s)" in err


def test_json_lines_are_sent_as_compact_json(kafka_bootstrap, capsys, tmp_path):
    topic = new_topic(kafka_bootstrap)
    lines = tmp_path / "events.jsonl"
    lines.write_text('{ "id" : 1, "name": "café" }\n[1, 2.5, null]\n')
    code, _, err = cli(
        capsys, kafka_bootstrap, "send", topic, "--file", str(lines), "--serializer", "json"
    )
    assert code == 0, err
    assert [r["value"] for r in consumed(capsys, kafka_bootstrap, topic)] == [
        '{"id":1,"name":"café"}',
        "[1,2.5,null]",
    ]


def test_a_failed_record_is_reported_and_the_others_are_sent(kafka_bootstrap, capsys, tmp_path):
    topic = new_topic(kafka_bootstrap)
    lines = tmp_path / "mixed.txt"
    too_large = b"x" * 2_000_000  # Over the producer's max request size (1 MB).
    lines.write_bytes(b"small\n" + too_large + b"\nsmall again\n")
    code, out, err = cli(
        capsys, kafka_bootstrap, "send", topic, "--file", str(lines), "--format", "json"
    )
    assert code == 1
    sent, failed, sent_again = json.loads(out)
    assert (sent["line"], sent["offset"]) == (1, 0)
    assert (sent_again["line"], sent_again["offset"]) == (3, 1)
    assert failed["line"] == 2
    assert "max.request.size" in failed["error"]
    assert "1 of 3 record(s) failed (line(s) 2)" in err
    assert [r["value"] for r in consumed(capsys, kafka_bootstrap, topic)] == [
        "small",
        "small again",
    ]


def test_the_service_configuration_chooses_serializers_and_transactions(
    kafka_bootstrap, capsys, tmp_path
):
    topic = new_topic(kafka_bootstrap)
    config = tmp_path / "service.yml"
    config.write_text(
        "kafka:\n"
        "  producer: {value-serializer: json, transaction-id-prefix: cli-test-}\n"
        "  consumer: {value-deserializer: json, isolation-level: read_committed}\n"
    )
    lines = tmp_path / "events.jsonl"
    lines.write_text('{"id": 1}\n{"id": 2}\n')
    code, out, err = cli(
        capsys, kafka_bootstrap, "send", topic, "--file", str(lines), "--config", str(config),
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    # Offsets 0 and 1; the transaction's commit marker takes offset 2.
    assert [(o["line"], o["offset"]) for o in json.loads(out)] == [(1, 0), (2, 1)]
    asyncio.run(produce(kafka_bootstrap, topic, [b"not json"]))

    records = consumed(capsys, kafka_bootstrap, topic, "--config", str(config))
    assert [(r["offset"], r["value"]) for r in records[:2]] == [(0, {"id": 1}), (1, {"id": 2})]
    # The broker writes the commit marker after it answers the commit, so the next record
    # may land before or after it: offset 2 or 3.
    assert (records[2]["offset"] in (2, 3), records[2]["value"]) == (True, "not json")
    assert "value_error" not in records[0]
    assert "cannot be read as JSON" in records[2]["value_error"]


def test_a_transactional_service_sends_a_file_all_or_nothing(kafka_bootstrap, capsys, tmp_path):
    topic = new_topic(kafka_bootstrap)
    config = tmp_path / "service.yml"
    config.write_text(
        "kafka:\n"
        "  producer: {transaction-id-prefix: cli-test-}\n"
        "  consumer: {isolation-level: read_committed}\n"
    )
    lines = tmp_path / "mixed.txt"
    lines.write_bytes(b"small\n" + b"x" * 2_000_000 + b"\nsmall again\n")
    code, out, err = cli(
        capsys, kafka_bootstrap, "send", topic, "--file", str(lines), "--config", str(config),
        "--format", "json",
    )  # fmt: skip
    assert code == 1
    outcomes = json.loads(out)
    assert [o["line"] for o in outcomes] == [1, 2, 3]
    assert all(
        o["error"].startswith("not committed: the transaction was aborted") for o in outcomes
    )
    assert "3 of 3 record(s) failed (line(s) 1, 2, 3); none was sent" in err
    assert consumed(capsys, kafka_bootstrap, topic, "--config", str(config)) == []


def test_consume_from_an_offset_a_time_ago_a_timestamp_and_at_most_max(kafka_bootstrap, capsys):
    topic = new_topic(kafka_bootstrap)
    now = datetime.now(UTC)
    two_hours_ago = int((now - timedelta(hours=2)).timestamp() * 1000)
    recent = int(now.timestamp() * 1000)
    values = [b"old-0", b"old-1", b"old-2", b"new-3", b"new-4"]
    stamps = [two_hours_ago] * 3 + [recent] * 2
    asyncio.run(produce(kafka_bootstrap, topic, values, timestamps=stamps))

    def offsets(*options):
        return [r["offset"] for r in consumed(capsys, kafka_bootstrap, topic, *options)]

    assert offsets() == [0, 1, 2, 3, 4]
    assert offsets("--from", "3") == [3, 4]
    assert offsets("--from", "-1h") == [3, 4]
    assert offsets("--from=-1h") == [3, 4]
    assert offsets("--from", "-PT1H") == [3, 4]
    assert offsets("--from", "-3h") == [0, 1, 2, 3, 4]
    assert offsets("--from", (now - timedelta(hours=1)).isoformat()) == [3, 4]
    assert offsets("--from", "-1") == [4]
    assert offsets("--from=-2") == [3, 4]
    assert offsets("--from", "end") == []
    assert offsets("--max", "2") == [0, 1]
    assert offsets("--from", "1", "--max", "2") == [1, 2]


def test_a_bad_start_is_a_usage_error(kafka_bootstrap, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["consume", "any", "--from", "yesterday", "--bootstrap-servers", kafka_bootstrap])
    assert exited.value.code == 2
    assert "'yesterday' is not a start" in capsys.readouterr().err


def test_consume_with_a_group_commits_only_with_commit(kafka_bootstrap, capsys):
    topic, group = new_topic(kafka_bootstrap), unique("cli-group")
    asyncio.run(produce(kafka_bootstrap, topic, [b"a", b"b", b"c"]))

    assert len(consumed(capsys, kafka_bootstrap, topic, "--group", group, "--max", "2")) == 2
    assert asyncio.run(committed(kafka_bootstrap, group, topic)) == {0: None}

    shown = consumed(capsys, kafka_bootstrap, topic, "--group", group, "--max", "2", "--commit")
    assert [r["value"] for r in shown] == ["a", "b"]
    assert asyncio.run(committed(kafka_bootstrap, group, topic)) == {0: 2}
    # Without --from, a group's reading starts where it committed.
    assert [r["value"] for r in consumed(capsys, kafka_bootstrap, topic, "--group", group)] == ["c"]


def test_consume_commit_never_takes_the_services_static_membership(
    kafka_bootstrap, capsys, tmp_path, monkeypatch
):
    # The service's group.instance.id on the CLI's consumer would fence the service's member.
    config = tmp_path / "service.yml"
    config.write_text("kafka:\n  consumer:\n    properties: {group.instance.id: orders-1}\n")
    made = []
    consumer = clients.consumer

    def recorded(*topics, **kwargs):
        made.append(kwargs)
        return consumer(*topics, **kwargs)

    monkeypatch.setattr(clients, "consumer", recorded)
    topic, group = new_topic(kafka_bootstrap), unique("cli-static")
    asyncio.run(produce(kafka_bootstrap, topic, [b"a", b"b"]))
    options = ["--config", str(config), "--group", group, "--commit"]
    assert len(consumed(capsys, kafka_bootstrap, topic, *options)) == 2
    assert asyncio.run(committed(kafka_bootstrap, group, topic)) == {0: 2}
    assert made
    assert [kwargs.get("group_instance_id") for kwargs in made] == [None] * len(made)


def test_commit_without_a_group_is_a_usage_error(kafka_bootstrap, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["consume", "any", "--commit", "--bootstrap-servers", kafka_bootstrap])
    assert exited.value.code == 2
    assert "--commit needs --group" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_commit_is_refused_while_the_group_has_members(kafka_bootstrap, capsys):
    topic, group = await create_topic(kafka_bootstrap), unique("cli-busy")
    await produce(kafka_bootstrap, topic, [b"a"])
    member = clients.consumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await member.start()
    try:
        deadline = time.monotonic() + 30
        while not member.assignment():  # Joined once it has its partition.
            assert time.monotonic() < deadline, "the member never joined"
            await member.getmany(timeout_ms=100)
        argv = [
            "consume",
            topic,
            "--group",
            group,
            "--commit",
            "--bootstrap-servers",
            kafka_bootstrap,
        ]
        code = await asyncio.to_thread(main, argv)
    finally:
        await member.stop()
    captured = capsys.readouterr()
    assert code == 3
    assert captured.out == ""
    assert f"group {group!r} has 1 active member(s)" in captured.err
    assert await committed(kafka_bootstrap, group, topic) == {0: None}


async def start_following(tmp_path, bootstrap, topic, *options):
    """A `consume --follow` subprocess, returned once it has its start offsets: records
    sent from then on are the ones it follows."""
    process = await asyncio.create_subprocess_exec(
        *command(
            "consume", topic, "--follow", "--format", "json", "--bootstrap-servers", bootstrap
        ),
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        preexec_fn=as_terminal_job,  # It may get a Ctrl-C.
    )
    deadline = time.monotonic() + 60
    try:
        line = b""
        while not line.startswith(b"following "):  # Client warnings may come first.
            line = await asyncio.wait_for(process.stderr.readline(), deadline - time.monotonic())
            assert line, f"consume --follow ended before it started (exit {await process.wait()})"
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    return process


@pytest.mark.asyncio
async def test_follow_with_max_returns_after_records_that_arrive_after_it_started(
    kafka_bootstrap, tmp_path
):
    topic = await create_topic(kafka_bootstrap)
    await produce(kafka_bootstrap, topic, [b"before-0", b"before-1"])
    process = await start_following(tmp_path, kafka_bootstrap, topic, "--max", "3")
    await produce(kafka_bootstrap, topic, [b"after-2", b"after-3", b"after-4", b"after-5"])
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["offset"], r["value"]) for r in records] == [
        (2, "after-2"),
        (3, "after-3"),
        (4, "after-4"),
    ]
    assert b"3 record(s)" in err


@pytest.mark.asyncio
async def test_follow_ends_on_ctrl_c_with_130_having_committed_what_it_showed(
    kafka_bootstrap, tmp_path
):
    topic, group = await create_topic(kafka_bootstrap), unique("cli-follow")
    process = await start_following(tmp_path, kafka_bootstrap, topic, "--group", group, "--commit")
    try:
        await produce(kafka_bootstrap, topic, [b"a", b"b"])
        shown = [await asyncio.wait_for(process.stdout.readline(), 30) for _ in range(2)]
        assert [json.loads(line)["value"] for line in shown] == ["a", "b"]
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130
    assert await committed(kafka_bootstrap, group, topic) == {0: 2}


@pytest.mark.skipif(os.name != "posix", reason="SIGTERM")
@pytest.mark.asyncio
async def test_follow_ends_on_sigterm_after_committing_what_it_showed(kafka_bootstrap, tmp_path):
    topic, group = await create_topic(kafka_bootstrap), unique("cli-term")
    process = await start_following(tmp_path, kafka_bootstrap, topic, "--group", group, "--commit")
    try:
        await produce(kafka_bootstrap, topic, [b"a"])
        assert json.loads(await asyncio.wait_for(process.stdout.readline(), 30))["value"] == "a"
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 128 + signal.SIGTERM
    assert b"1 record(s); committed for group" in err
    assert await committed(kafka_bootstrap, group, topic) == {0: 1}
