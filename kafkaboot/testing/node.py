"""One Kafka node as an operating-system process, and the loopback ports nodes listen on.

A node's process id outlives the process that started it (it is saved in ``cluster.json``),
so whether a node runs is decided from the pid *and* the command line behind it: after a
crash or a reboot the saved pid may belong to another program.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kafkaboot.errors import BrokerError

__all__ = [
    "BrokerNode",
    "NodeState",
    "free_port_range",
    "free_ports",
    "log_tail",
    "port_in_use",
    "process_alive",
]

NodeState = Literal["running", "stopped", "dead-pid"]
"""``running``; ``stopped`` (no pid saved: stopped through kafkaboot); ``dead-pid`` (a pid is
saved but that process is gone or is not this node: it crashed or was killed from outside)."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that are free right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_range(count: int, attempts: int = 100) -> int:
    """The first of ``count`` consecutive loopback ports that are all free right now.

    Raises:
        BrokerError: no such run was found.
    """
    for _ in range(attempts):
        [first] = free_ports(1)
        if first + count > 65536:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise BrokerError(f"found no {count} consecutive free ports on 127.0.0.1")


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def process_alive(pid: int | None) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie counts as exited)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as stopped.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _command_line(pid: int) -> str | None:
    """The command line of ``pid``, or ``None`` where ``/proc`` cannot tell (no ``/proc``, or
    a process in the middle of ``exec``, whose command line reads empty for a moment)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return command.replace(b"\0", b" ").decode(errors="replace") or None


def log_tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a node's log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class BrokerNode:
    """One combined broker + controller process of a :class:`KafkaCluster`."""

    node_id: int
    broker_port: int
    controller_port: int
    directory: Path
    pid: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    """Set when this process started the node: lets us reap it and wait on it exactly."""
    secured_ports: dict[str, int] = field(default_factory=dict)
    """Secured listeners, security protocol -> port (``broker_port`` is the first one's);
    empty for a PLAINTEXT-only node."""
    internal_port: int | None = None
    """On a secured node: the PLAINTEXT listener for traffic between brokers and for
    kafkaboot's own readiness and metadata questions (loopback only)."""

    @property
    def config_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def bootstrap_server(self) -> str:
        """Where clients connect: the first secured listener on a secured node."""
        return f"127.0.0.1:{self.broker_port}"

    @property
    def admin_server(self) -> str:
        """Where kafkaboot asks a node about itself: always a PLAINTEXT listener."""
        return f"127.0.0.1:{self.internal_port or self.broker_port}"

    @property
    def admin_port(self) -> int:
        return self.internal_port or self.broker_port

    @property
    def ports(self) -> list[int]:
        """Every port the node listens on."""
        ports = [self.broker_port, self.controller_port, *self.secured_ports.values()]
        if self.internal_port is not None:
            ports.append(self.internal_port)
        return sorted(set(ports))

    def is_running(self) -> bool:
        return self.state() == "running"

    def state(self) -> NodeState:
        """Running, stopped through kafkaboot, or gone behind kafkaboot's back (``dead-pid``)."""
        if self.pid is None:
            return "stopped"
        if self.process is not None and self.process.pid == self.pid:
            return "running" if self.process.poll() is None else "dead-pid"
        if not process_alive(self.pid):
            return "dead-pid"
        command = _command_line(self.pid)
        # A reused pid: alive, but not a Kafka started with this node's configuration.
        if command is not None and str(self.config_file) not in command:
            return "dead-pid"
        return "running"

    def signal(self, signum: int) -> None:
        if self.pid and self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def wait_stopped(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.is_running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def forget_process(self) -> None:
        """Record the node as stopped, reaping our child so it leaves no zombie."""
        if self.process is not None:
            with contextlib.suppress(OSError):
                self.process.poll()
        self.pid = self.process = None

    def to_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "node_id": self.node_id,
            "broker_port": self.broker_port,
            "controller_port": self.controller_port,
            "directory": str(self.directory),
            "pid": self.pid,
        }
        if self.secured_ports:
            state["secured_ports"] = dict(self.secured_ports)
            state["internal_port"] = self.internal_port
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> BrokerNode:
        """The node :meth:`to_state` saved."""
        return cls(
            state["node_id"],
            state["broker_port"],
            state["controller_port"],
            Path(state["directory"]),
            state.get("pid"),
            secured_ports=dict(state.get("secured_ports", {})),
            internal_port=state.get("internal_port"),
        )
