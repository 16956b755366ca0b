"""FaultGate: a process holds at a closed gate (and says so) until the test opens it, passes
an open one, and never closes a gate itself."""

import asyncio
import os
import subprocess
import sys

import pytest

from kafkaboot.testing import FaultGate, WaitTimeout

pytestmark = pytest.mark.asyncio

HOLDER = """
import asyncio, sys
from kafkaboot.testing import FaultGate
asyncio.run(FaultGate(sys.argv[1]).hold())
print("went on")
"""


async def test_an_open_gate_is_passed_and_stays_open(tmp_path):
    gate = FaultGate(tmp_path / "gate")
    await asyncio.wait_for(gate.hold(), timeout=5)
    assert not gate.path.exists()
    assert gate.holders() == []


async def test_a_process_holds_at_a_closed_gate_until_it_opens(tmp_path):
    gate = FaultGate(tmp_path / "gate")
    gate.close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(gate.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        await gate.wait_held(holder.pid, timeout=30)
        assert holder.poll() is None, "it went on past a closed gate"
        assert gate.holders() == [holder.pid]
        gate.open()
        out, _ = holder.communicate(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert (holder.returncode, out) == (0, "went on\n")


async def test_a_holder_in_process_goes_on_once_opened(tmp_path):
    gate = FaultGate(tmp_path / "gate")
    gate.close()
    held = asyncio.create_task(gate.hold())
    await gate.wait_held(os.getpid(), timeout=5)
    assert not held.done()
    gate.open()
    await asyncio.wait_for(held, timeout=5)


async def test_waiting_for_a_process_that_never_comes_names_the_gate(tmp_path):
    gate = FaultGate(tmp_path / "gate")
    gate.close()
    with pytest.raises(WaitTimeout) as failure:
        await gate.wait_held(999_999, timeout=0.05)
    assert str(failure.value) == (
        f"FaultGate {gate.path}: process 999999 did not reach it within 0.05s "
        "(the gate is closed; held there: [])"
    )
