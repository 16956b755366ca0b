"""How `kafkaboot run --workers N` ends: the exit code a process manager sees."""

import signal

import pytest

from kafkaboot import runner


class Child:
    def __init__(self, code):
        self.code = code
        self.signals = []

    def wait(self):
        return self.code

    def poll(self):
        return None

    def send_signal(self, signum):
        self.signals.append(signum)


def supervise(monkeypatch, codes, forward=None):
    """``_supervise`` over children that exit with ``codes``; ``forward``: a stop signal
    that reaches the supervisor while it waits for them."""
    handlers = {}
    children = [Child(code) for code in codes]
    if forward is not None:
        waiting = children[0].wait
        children[0].wait = lambda: (handlers[forward](forward, None), waiting())[1]
    monkeypatch.setattr(runner.subprocess, "Popen", lambda command, env: children.pop(0))
    monkeypatch.setattr(runner.signal, "signal", lambda signum, h: handlers.update({signum: h}))
    return runner._supervise(["svc"], len(codes))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_workers_stopped_by_the_forwarded_signal_end_the_supervisor_cleanly(monkeypatch, stop):
    """uvicorn re-raises the stop signal after its graceful shutdown; that is a clean stop,
    not exit code 241 (-15 as a byte)."""
    assert supervise(monkeypatch, [-stop, -stop, -stop], forward=stop) == 0


def test_a_worker_killed_by_another_signal_is_a_failure(monkeypatch):
    assert supervise(monkeypatch, [0, -signal.SIGKILL, 0]) == 128 + signal.SIGKILL


def test_a_worker_that_failed_gives_its_exit_code(monkeypatch):
    assert supervise(monkeypatch, [0, 1, 0]) == 1
