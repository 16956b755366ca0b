"""A real PostgreSQL server for tests: the distribution's own binaries (``initdb`` and
``pg_ctl``), a data directory in a temporary folder, a loopback port and a Unix socket in
that folder; no system service is touched.

PostgreSQL refuses to run as root; as root, the server runs as the ``postgres`` account
that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from kafkaboot.errors import KafkaBootError

__all__ = ["PostgresServer", "PostgresUnavailable", "find_postgres_binaries"]

_USER = "kafkaboot"
"""The superuser ``initdb`` creates (trusted on loopback: a throwaway test server)."""


class PostgresUnavailable(KafkaBootError):
    """The PostgreSQL server binaries are not installed (or cannot run here)."""


def find_postgres_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: ``$KAFKABOOT_PG_BIN``, then the
    ``PATH``, then Debian's ``/usr/lib/postgresql/<version>/bin`` (newest first)."""
    configured = os.environ.get("KAFKABOOT_PG_BIN")
    if configured:
        return Path(configured) if (Path(configured) / "initdb").exists() else None
    on_path = shutil.which("initdb")
    if on_path is not None:
        # Resolved: a link on the PATH points into the directory that holds the other tools.
        directory = Path(on_path).resolve().parent
        if all((directory / tool).exists() for tool in ("pg_ctl", "createdb")):
            return directory
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_of)
    return Path(found[-1]).parent if found else None


def _version_of(initdb: str) -> int:
    version = Path(initdb).parent.parent.name
    return int(version) if version.isdigit() else 0


class PostgresServer:
    """One PostgreSQL server in a temporary directory; ``start()`` / ``stop()`` or ``with``.

    Attributes:
        port: the loopback port it listens on (after ``start``).
    """

    def __init__(self, binaries: Path | None = None, *, database: str = "postgres") -> None:
        found = binaries or find_postgres_binaries()
        if found is None:
            raise PostgresUnavailable(
                "PostgreSQL's server binaries (initdb, pg_ctl) were not found; install the "
                "postgresql package (apt-get install postgresql) or set KAFKABOOT_PG_BIN"
            )
        self.binaries = found
        self.database = database
        self.port = 0
        self._dir: Path | None = None
        self._run_as: dict[str, Any] = {}
        self._created = 0

    @property
    def url(self) -> str:
        """A SQLAlchemy URL (asyncpg) for the server's ``database``."""
        return f"postgresql+asyncpg://{_USER}@127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """A libpq-style URL (``postgresql://``) for other clients."""
        return f"postgresql://{_USER}@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 60.0) -> None:
        if self._dir is not None:
            raise PostgresUnavailable("this PostgreSQL server is already started")
        base = Path(tempfile.mkdtemp(prefix="kafkaboot-pg-"))
        self._run_as = _unprivileged(base)
        data = base / "data"
        self.port = _free_port()
        self._dir = base
        try:
            self._run(
                "initdb", "-D", str(data), "-U", _USER, "--auth=trust", "-E", "UTF8",
                "--no-sync", timeout=timeout,
            )  # fmt: skip
            options = (
                f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={base} -c fsync=on -c max_connections=200"
            )
            self._run(
                "pg_ctl", "-D", str(data), "-o", options, "-l", str(base / "server.log"),
                "-w", "-t", str(int(timeout)), "start", timeout=timeout + 5,
            )  # fmt: skip
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        base, self._dir = self._dir, None
        if base is None:
            return
        try:
            if (base / "data" / "postmaster.pid").exists():
                self._run(
                    "pg_ctl", "-D", str(base / "data"), "-m", "fast", "-w", "stop", timeout=60
                )
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def create_database(self) -> str:
        """A new, empty database (a unique name): its SQLAlchemy URL."""
        if self._dir is None:
            raise PostgresUnavailable("start the PostgreSQL server before creating databases")
        self._created += 1
        name = f"test_{os.getpid()}_{self._created}"
        self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", _USER, name, timeout=30
        )
        return f"postgresql+asyncpg://{_USER}@127.0.0.1:{self.port}/{name}"

    def log(self) -> str:
        """The server's log so far (for a failing test's report)."""
        if self._dir is None or not (self._dir / "server.log").exists():
            return ""
        return (self._dir / "server.log").read_text(errors="replace")

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, tool: str, *args: str, timeout: float) -> None:
        try:
            subprocess.run(  # noqa: S603 - PostgreSQL's own tools, our arguments
                [str(self.binaries / tool), *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=timeout,
                **self._run_as,
            )
        except subprocess.CalledProcessError as exc:
            raise PostgresUnavailable(
                f"{tool} failed (exit {exc.returncode}): {exc.stderr.strip() or exc.stdout.strip()}"
                f"\n{self.log()}"
            ) from exc


def _unprivileged(base: Path) -> dict[str, Any]:
    """As root: run as ``postgres`` (which must own the directory); else as ourselves."""
    if os.geteuid() != 0:
        return {}
    try:
        account = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresUnavailable(
            "PostgreSQL does not run as root and there is no 'postgres' account to run it "
            "as; run the tests as an ordinary user or create the account"
        ) from exc
    os.chown(base, account.pw_uid, account.pw_gid)
    return {"user": account.pw_uid, "group": account.pw_gid, "cwd": str(base)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
