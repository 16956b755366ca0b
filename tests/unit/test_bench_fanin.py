"""The fan-in scenario's pieces that need no broker: the CPU-bound handler's known cost,
the per-process readings from /proc, and the rows with their paired speed-up."""

import os
import sys
import time

import pytest

from bench.scenarios.fanin import _rows
from bench.services import memory_mb, process_cpu, worker_pids
from sample_counting_consumer.listeners import spend_cpu

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_the_cpu_bound_handler_spends_the_cpu_time_it_is_set_to():
    before = time.thread_time()
    for _ in range(100):
        spend_cpu(200)
    spent = time.thread_time() - before
    assert 0.020 <= spent < 0.060  # 100 x 200 µs of this thread's CPU, plus the loop.


@linux
def test_cpu_and_peak_memory_of_one_process_come_from_proc():
    before = process_cpu(os.getpid())
    spend_cpu(50_000)
    assert process_cpu(os.getpid()) - before >= 0.03
    block = bytearray(64 * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # Touch every page: resident.
    resident = memory_mb(os.getpid(), "VmRSS")  # Read first: the peak never falls below it.
    assert memory_mb(os.getpid(), "VmHWM") >= resident >= 64
    del block
    assert process_cpu(2**22 + 1) == 0.0  # No such process.


@linux
def test_worker_processes_are_the_children_else_the_process_itself():
    import subprocess

    # A supervisor of its own: this test process may have other children (a session's
    # broker), which are not the supervisor's workers.
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert supervisor.stdout is not None
        child = int(supervisor.stdout.readline())
        assert worker_pids(supervisor.pid) == [child]
        assert worker_pids(child) == [child]
    finally:
        for pid in worker_pids(supervisor.pid):
            os.kill(pid, 9)
        supervisor.kill()
        supervisor.communicate()


def _drained(rate, cores, shares=(800, 800), duplicates=0):
    return {
        "rate": rate,
        "before_resume": 0,
        "machine_busy": 0.9,
        "worker_cores": list(cores),
        "shares": list(shares),
        "lost": 0,
        "duplicates": duplicates,
    }


def test_workers_2_speed_up_is_the_median_of_paired_runs_with_cpu_per_process():
    found = {
        1: [_drained(100, [0.95]), _drained(120, [0.97]), _drained(90, [0.9])],
        2: [_drained(180, [0.9, 0.8]), _drained(180, [0.95, 0.85]), _drained(171, [0.9, 0.9])],
    }
    one, two = _rows(1600, 50, found)
    assert two.extra["speedup_vs_workers_1"] == pytest.approx(1.8)
    assert two.extra["speedup_range"] == pytest.approx([1.5, 1.9])
    assert two.extra["worker_cores"] == [0.9, 0.85]
    assert "0.90 + 0.85 cores" in two.note
    assert "≥ 1.6 x workers 1" in two.target
    assert "50 µs CPU/record" in one.scenario
    assert "1.6" not in _rows(1600, 0, found)[1].target  # The handler as is: no target.
