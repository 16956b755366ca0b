"""``kafkaboot groups list|describe|reset-offsets`` against the real broker.

Each test gets a topic of two partitions with three records each, written ten minutes ago
ten seconds apart (record i on partition i % 2), and a group whose real member has
committed offset 1 on partition 0 (lag 2) and 3 on partition 1 (no lag). The member stays
in the group until a test makes it leave. The CLI runs in a thread (it runs its own event
loop) while the member keeps heartbeating on the test's.
"""

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from aiokafka import TopicPartition

from kafkaboot import clients
from kafkaboot.cli import main
from kafkaboot.cli.cluster import EXIT_REFUSED

from .kafka_helpers import committed, create_topic, group_state, produce, unique, wait_for

BASE_MS = int(time.time() * 1000) - 600_000
"""Record i is written at BASE_MS + i * 10 s."""


class Group:
    def __init__(self, bootstrap, topic, name, member):
        self.bootstrap, self.topic, self.name, self.member = bootstrap, topic, name, member
        self.stderr = ""

    async def run(self, *argv):
        """``kafkaboot groups ...`` on the test's broker; the exit code."""
        return await asyncio.to_thread(
            main, ["groups", *argv, "--bootstrap-servers", self.bootstrap]
        )

    async def json(self, capsys, *argv):
        """The ``--format json`` document; what went to stderr is kept in ``self.stderr``."""
        capsys.readouterr()
        assert await self.run(*argv, "--format", "json") == 0
        captured = capsys.readouterr()
        self.stderr = captured.err
        return json.loads(captured.out)

    async def leave(self):
        """Stop the member and wait until the broker has the group Empty."""
        await self.member.stop()
        deadline = time.monotonic() + 30
        while (state := await group_state(self.bootstrap, self.name)) != "Empty":
            assert time.monotonic() < deadline, f"group {self.name} is still {state} after 30s"
            await asyncio.sleep(0.1)

    async def committed(self):
        return await committed(self.bootstrap, self.name, self.topic, partitions=2)


@pytest_asyncio.fixture
async def group(kafka_bootstrap):
    topic = await create_topic(kafka_bootstrap, partitions=2, prefix="cli-groups")
    await produce(
        kafka_bootstrap,
        topic,
        [b"%d" % i for i in range(6)],
        partitions=2,
        timestamps=[BASE_MS + i * 10_000 for i in range(6)],
    )
    name = unique("cli-groups")
    member = clients.consumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=name, enable_auto_commit=False
    )
    await member.start()
    try:
        await wait_for(lambda: len(member.assignment()) == 2, message="the member's assignment")
        await member.commit({TopicPartition(topic, 0): 1, TopicPartition(topic, 1): 3})
        yield Group(kafka_bootstrap, topic, name, member)
    finally:
        await member.stop()


@pytest.mark.asyncio
async def test_list_shows_the_group_with_its_state_and_members(group, capsys):
    listed = await group.json(capsys, "list")

    [entry] = [g for g in listed["groups"] if g["group"] == group.name]
    assert entry == {"group": group.name, "state": "Stable", "members": 1}


@pytest.mark.asyncio
async def test_describe_shows_offsets_lag_and_the_member(group, capsys):
    described = await group.json(capsys, "describe", group.name)

    assert described["state"] == "Stable"
    [member] = described["members"]
    assert member["partitions"] == [
        {"topic": group.topic, "partition": 0},
        {"topic": group.topic, "partition": 1},
    ]
    lagging, current = described["partitions"]
    assert (lagging["committed"], lagging["log_end"], lagging["lag"]) == (1, 3, 2)
    assert (current["committed"], current["log_end"], current["lag"]) == (3, 3, 0)
    # The oldest unconsumed record of partition 0 is record 2, written at BASE_MS + 20 s.
    expected_age = (time.time() * 1000 - (BASE_MS + 20_000)) / 1000
    assert expected_age - 30 < lagging["lag_seconds"] <= expected_age + 1
    assert current["lag_seconds"] == 0
    assert lagging["member_id"] == current["member_id"] == member["member_id"]


@pytest.mark.asyncio
async def test_describe_prints_tables_as_text(group, capsys):
    assert await group.run("describe", group.name) == 0

    out = capsys.readouterr().out
    assert f"group {group.name}: Stable, 1 member(s)" in out
    header = next(line for line in out.splitlines() if line.startswith("TOPIC"))
    assert header.split() == [
        *("TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "LAG-SECONDS", "MEMBER-ID")
    ]
    assert f"{group.topic}[0,1]" in out


@pytest.mark.asyncio
async def test_describe_of_an_unknown_group_exits_1(kafka_bootstrap, capsys):
    missing = unique("no-such-group")

    assert (
        await asyncio.to_thread(
            main, ["groups", "describe", missing, "--bootstrap-servers", kafka_bootstrap]
        )
        == 1
    )
    assert f"consumer group {missing!r} does not exist" in capsys.readouterr().err


@pytest.mark.asyncio
async def test_reset_dry_run_prints_the_plan_and_commits_nothing(group, capsys):
    plan = await group.json(
        capsys, "reset-offsets", group.name, "--topic", group.topic, "--to-earliest"
    )

    assert plan["executed"] is False
    assert [(p["partition"], p["committed"], p["new"]) for p in plan["partitions"]] == [
        (0, 1, 0),
        (1, 3, 0),
    ]
    assert await group.committed() == {0: 1, 1: 3}
    assert "--execute is refused until then" in group.stderr


@pytest.mark.asyncio
async def test_reset_execute_with_an_active_member_is_refused(group, capsys):
    code = await group.run(
        "reset-offsets", group.name, "--topic", group.topic, "--to-earliest", "--execute"
    )

    assert code == EXIT_REFUSED
    err = capsys.readouterr().err
    assert f"consumer group {group.name} has active members" in err
    assert "stop them first" in err
    assert await group.committed() == {0: 1, 1: 3}


@pytest.mark.asyncio
async def test_reset_to_earliest_commits_the_plan_once_the_member_left(group, capsys):
    await group.leave()

    plan = await group.json(
        capsys, "reset-offsets", group.name, "--topic", group.topic, "--to-earliest", "--execute"
    )

    assert plan["executed"] is True
    assert await group.committed() == {0: 0, 1: 0}


@pytest.mark.asyncio
async def test_reset_shift_by_moves_only_the_chosen_partition(group):
    await group.leave()

    code = await group.run(
        "reset-offsets",
        group.name,
        "--topic",
        group.topic,
        "--shift-by",
        "-1",
        "--partition",
        "1",
        "--execute",
    )

    assert code == 0
    assert await group.committed() == {0: 1, 1: 2}


@pytest.mark.asyncio
async def test_reset_to_datetime_commits_the_first_offset_at_or_after_it(group):
    await group.leave()
    moment = datetime.fromtimestamp((BASE_MS + 25_000) / 1000, tz=UTC).isoformat()

    code = await group.run(
        "reset-offsets", group.name, "--topic", group.topic, "--to-datetime", moment, "--execute"
    )

    # Partition 0 holds records 0, 2, 4 and partition 1 records 1, 3, 5: 4 and 3 come first.
    assert code == 0
    assert await group.committed() == {0: 2, 1: 1}


@pytest.mark.asyncio
async def test_reset_clamps_offsets_into_the_log(group, capsys):
    await group.leave()

    plan = await group.json(
        capsys,
        "reset-offsets",
        group.name,
        "--topic",
        group.topic,
        "--to-offset",
        "99",
        "--execute",
    )

    assert [p["new"] for p in plan["partitions"]] == [3, 3]
    assert await group.committed() == {0: 3, 1: 3}


@pytest.mark.asyncio
async def test_reset_as_a_command_prints_the_plan_table(group, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KAFKABOOT_CONFIG"}
    argv = ["groups", "reset-offsets", group.name, "--topic", group.topic, "--to-latest"]

    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "kafkaboot", *argv, "--bootstrap-servers", group.bootstrap],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # No application.yml: the defaults and --bootstrap-servers.
        env=env,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["TOPIC", "PARTITION", "COMMITTED", "NEW", "LOG-START", "LOG-END"]
    assert [row.split() for row in rows] == [
        [group.topic, "0", "1", "3", "0", "3"],
        [group.topic, "1", "3", "3", "0", "3"],
    ]
    assert "dry run: nothing committed" in done.stderr
    assert await group.committed() == {0: 1, 1: 3}
