"""Starting ``dakera-server serve`` as a real subprocess, for tests that need a process boundary."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT_KEY, wait_ready

BIN = Path(sys.executable).parent / "dakera-server"


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` different ports free a moment ago: all bound at once, so two asks in a row
    cannot get the same port back (two listeners of one process on one port would merge)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class ServerProcess:
    """A server subprocess with its URL and captured output file."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def spawn_server(
    data_dir: Path, log: Path, *, ready_timeout: float = 90.0, **env: str
) -> ServerProcess:
    """Start ``dakera-server serve`` on a free port and wait until it is ready."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    environ.update(
        {
            "DAKERA_PORT": str(port),
            "DAKERA_DATA_DIR": str(data_dir),
            "DAKERA_ROOT_API_KEY": ROOT_KEY,
            "DAKERA_GRPC_PORT": "0",  # never the fixed 50051: spawned servers run in parallel
            **env,
        }
    )
    with log.open("ab") as handle:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [str(BIN), "serve"], env=environ, stdout=handle, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=ready_timeout, exited=lambda: process.poll() is not None)
    except (TimeoutError, RuntimeError):
        process.kill()
        raise AssertionError(f"server did not start:\n{log.read_text(errors='replace')}") from None
    return ServerProcess(process, url, log)
