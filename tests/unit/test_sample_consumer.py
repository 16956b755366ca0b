"""The central consumer's replay option: parsed strictly, applied once per partition."""

from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition

from kafkaboot import SeekCallback
from kafkaboot.config import load_settings
from kafkaboot.errors import ConfigurationError
from sample_consumer_service.listeners import Replay, replay_start

P0, P1 = TopicPartition("events", 0), TopicPartition("events", 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("none", None),
        ("", None),
        ("Beginning", "beginning"),
        ("2026-11-22T08:00:00Z", datetime(2026, 11, 22, 8, tzinfo=UTC)),
    ],
)
def test_replay_start_values(value, expected):
    assert replay_start(value) == expected


@pytest.mark.parametrize("value", ["yesterday", "2026-11-22T08:00:00"])
def test_a_bad_replay_start_names_the_key_and_the_accepted_values(value):
    with pytest.raises(ConfigurationError, match=r"replay: .* is not a replay start") as error:
        replay_start(value)
    assert "beginning" in error.value.problems[0].hint


def assigned(replay, partitions, value):
    seek = SeekCallback()
    settings = load_settings(environ={}, overrides={"replay": value})
    replay.on_partitions_assigned(dict.fromkeys(partitions, 0), seek, settings=settings)
    return [(r.kind, r.partitions, r.value) for r in seek.requests]


def test_replay_from_the_beginning_happens_once_per_partition():
    replay = Replay()
    assert assigned(replay, [P0], "beginning") == [("beginning", (P0,), 0)]
    # A rebalance hands P0 back and adds P1: only P1 is new to this process.
    assert assigned(replay, [P0, P1], "beginning") == [("beginning", (P1,), 0)]
    assert assigned(replay, [P0, P1], "beginning") == []


def test_replay_from_a_time_seeks_by_timestamp():
    requests = assigned(Replay(), [P0], "2026-11-22T08:00:00+00:00")
    when_ms = int(datetime(2026, 11, 22, 8, tzinfo=UTC).timestamp() * 1000)
    assert requests == [("timestamp", (P0,), when_ms)]


def test_no_replay_keeps_the_committed_offsets():
    assert assigned(Replay(), [P0, P1], "none") == []
