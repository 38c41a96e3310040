"""A throwaway PostgreSQL 15 cluster for tests and benches: ``initdb`` into a temporary
directory, ``postgres`` on a free loopback port, stopped by its own PID.

PostgreSQL refuses to run as root, so under root every binary runs as the ``postgres`` user
(``runuser -u postgres --``) in a directory that user owns (created outside pytest's
``tmp_path``, whose parents are root-only). ``.ci/run`` installs the Debian ``postgresql``
package; tests skip with a clear reason only when its binaries are missing.

Test clusters run with ``fsync=off`` (the tests crash server processes, never this cluster's
machine, and creating a database per test costs ~1 s with fsync on this disk); benches pass
``fsync=True`` so their numbers include PostgreSQL's real commit cost.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

# POSTGRES_BIN_DIR: where initdb and postgres live on machines that are not Debian.
BIN_DIR = Path(os.environ.get("POSTGRES_BIN_DIR", "/usr/lib/postgresql/15/bin"))
MISSING_REASON = (
    f"PostgreSQL 15 binaries not found in {BIN_DIR} (apt-get install postgresql; .ci/run does)"
)


def available() -> bool:
    """Whether ``initdb`` and ``postgres`` are installed."""
    return (BIN_DIR / "initdb").exists() and (BIN_DIR / "postgres").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One cluster: ``start``, ``stop`` (fast shutdown), ``kill`` (SIGKILL), ``create_database``."""

    _names = itertools.count(1)

    def __init__(self, *, fsync: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="dakera-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = _free_port()
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *self._as_postgres,
                str(BIN_DIR / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str, *, password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        """Start (or restart on the same port and data) and wait until it accepts queries."""
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [
                    *self._as_postgres,
                    str(BIN_DIR / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "shared_buffers=32MB",
                    "-c",
                    f"fsync={'on' if self.fsync else 'off'}",
                    "-c",
                    "max_connections=200",
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited:\n{self.log.read_text(errors='replace')}")
            try:
                psycopg.connect(self.admin_url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def postmaster_pid(self) -> int:
        """The postmaster's PID (the first line of ``postmaster.pid``)."""
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster: open transactions roll back)."""
        self._signal(signal.SIGINT)

    def stop_immediately(self) -> None:
        """Immediate shutdown (SIGQUIT: no checkpoint; the next start runs crash recovery)."""
        self._signal(signal.SIGQUIT)

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash; the next start runs recovery)."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(self.postmaster_pid(), sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(self.postmaster_pid(), signal.SIGQUIT)
            self.process.wait(timeout=30)
        if sig == signal.SIGKILL:
            # Children of a killed postmaster exit on their own once they notice; wait for them
            # to release the shared memory so the next start does not find them.
            time.sleep(1.0)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its name."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def query(self, database: str, sql: str) -> list[tuple[object, ...]]:
        """Run ``sql`` as the superuser in ``database``; returns its rows."""
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(sql)  # type: ignore[arg-type]
            return list(cursor.fetchall()) if cursor.description else []

    def dump(self, database: str) -> bytes:
        """``pg_dump`` of ``database`` (plain SQL, as bytes)."""
        return subprocess.run(
            [str(BIN_DIR / "pg_dump"), "-d", self.url(database)],
            check=True,
            capture_output=True,
        ).stdout

    def cleanup(self) -> None:
        """Stop the cluster (no checkpoint: its files are deleted next) and delete them."""
        self.stop_immediately()
        shutil.rmtree(self.root, ignore_errors=True)
