"""Stalled partitions: lag with a committed offset that does not move."""

import math

from kafkaboot.observability.lag import PartitionLag
from kafkaboot.observability.stalls import Stalls


def lag(records, committed, partition=0, paused=False):
    return PartitionLag(
        "l", "g", "t", partition, committed + records, committed, records, 0.0, paused
    )


def test_lag_without_progress_for_the_limit_is_a_stall():
    stalls = Stalls(after=60)
    assert stalls.update([lag(5, 100)], now=1000) == []
    assert stalls.update([lag(7, 100)], now=1059) == []
    [stall] = stalls.update([lag(9, 100)], now=1060)
    assert (stall.partition, stall.lag_records, stall.committed, stall.since) == (0, 9, 100, 1000)


def test_progress_or_no_lag_starts_the_wait_again():
    stalls = Stalls(after=60)
    stalls.update([lag(5, 100), lag(5, 7, partition=1)], now=1000)
    stalls.update([lag(5, 101), lag(0, 12, partition=1)], now=1050)  # Both moved on.
    assert stalls.update([lag(5, 101), lag(3, 12, partition=1)], now=1100) == []
    [stall] = stalls.update([lag(5, 101), lag(3, 12, partition=1)], now=1111)
    assert stall.partition == 0


def test_unknown_lag_is_never_a_stall():
    stalls = Stalls(after=1)
    unknown = lag(math.nan, math.nan)
    assert stalls.update([unknown], now=0) == []
    assert stalls.update([unknown], now=100) == []


def test_a_paused_partition_is_reported_as_paused():
    stalls = Stalls(after=1)
    stalls.update([lag(5, 100, paused=True)], now=0)
    [stall] = stalls.update([lag(5, 100, paused=True)], now=2)
    assert stall.paused
