"""Fixtures that run the built image as a container, hardened as security.md says.

Containers use the host network bound to loopback (``DAKERA_HOST=127.0.0.1`` and free ports):
the private dockerd of ``scripts/dockerd.sh`` has no bridge, and a loopback bind reaches
nothing outside this machine. Every container is removed by its id when the test ends.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.deploy.support import IMAGE, docker, require_image
from tests.processes import free_ports

HARDENED = [
    "--read-only",
    "--user",
    "1000:1000",
    "--cap-drop",
    "ALL",
    "--security-opt",
    "no-new-privileges",
]


@dataclass
class Container:
    """A running container of the image: its id, URL, gRPC port, data dir and root key."""

    id: str
    url: str
    grpc_port: int
    data: Path
    root_key: str
    started: float
    env: dict[str, str] = field(default_factory=dict)

    def logs(self) -> str:
        result = docker("logs", self.id, check=False)
        return result.stdout + result.stderr

    def exec_python(self, code: str) -> tuple[int, str]:
        """Run Python inside the container, as its user (no shell exists to run anything else)."""
        result = docker(
            "exec", self.id, "/opt/dakera/venv/bin/python", "-c", code, check=False, timeout=60
        )
        return result.returncode, result.stdout + result.stderr

    def health(self) -> str:
        state = json.loads(docker("inspect", "--format", "{{json .State}}", self.id).stdout)
        return str(state.get("Health", {}).get("Status", "none"))

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds from ``docker run`` to the first 200 of /health/ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.TransportError:
                pass
            if not json.loads(
                docker("inspect", "--format", "{{json .State.Running}}", self.id).stdout
            ):
                raise AssertionError(f"container exited:\n{self.logs()}")
            time.sleep(0.1)
        raise AssertionError(f"container not ready in {timeout}s:\n{self.logs()}")

    def wait_healthy(self, timeout: float = 120) -> float:
        """Seconds from ``docker run`` to Docker's health status ``healthy`` (HEALTHCHECK)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health() == "healthy":
                return time.monotonic() - self.started
            time.sleep(0.2)
        raise AssertionError(f"container not healthy in {timeout}s:\n{self.logs()}")


def data_dir(tmp_path: Path, name: str = "data") -> Path:
    """A host directory for /data, owned by UID 1000 as the image's user needs."""
    path = tmp_path / name
    path.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(path, 1000, 1000)
        # pytest's base directory is private to root; the container user must reach /data's
        # mount source only through Docker, which does not need the parents to be traversable.
    return path


ContainerFactory = Callable[..., Container]


@pytest.fixture
def run_container(tmp_path: Path) -> Iterator[ContainerFactory]:
    """Start containers of the image (hardened by default); removes them afterwards."""
    require_image()
    started: list[str] = []

    def run(
        *extra: str,
        env: dict[str, str] | None = None,
        hardened: bool = True,
        data: Path | None = None,
        command: tuple[str, ...] = (),
    ) -> Container:
        port, grpc_port = free_ports(2)
        root_key = secrets.token_hex(32)
        volume = data or data_dir(tmp_path, f"data-{len(started)}")
        environment = {
            "DAKERA_HOST": "127.0.0.1",
            "DAKERA_PORT": str(port),
            "DAKERA_GRPC_PORT": str(grpc_port),
            "DAKERA_ROOT_API_KEY": root_key,
            **(env or {}),
        }
        flags = [f"--env={k}={v}" for k, v in environment.items()]
        begin = time.monotonic()
        result = docker(
            "run", "--detach", "--network", "host", *(HARDENED if hardened else []),
            "-v", f"{volume}:/data", *flags, *extra, IMAGE, *command,
        )  # fmt: skip
        container_id = result.stdout.strip()
        started.append(container_id)
        return Container(
            container_id,
            f"http://127.0.0.1:{port}",
            grpc_port,
            volume,
            environment["DAKERA_ROOT_API_KEY"],
            begin,
            environment,
        )

    yield run
    for container_id in started:
        docker("rm", "--force", container_id, check=False)
