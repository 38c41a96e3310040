"""The container image, run the way security.md says: read-only, UID 1000, no capabilities.

The image is built by ``make image`` (``.ci/run`` builds it before the tests) from a base made
of Debian packages. These tests run it for real: the SDK stores and recalls through it, a write
outside ``/data`` fails inside the container, the file system holds no shell or package
manager, and ``--user 0`` makes the server refuse to start.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from dakera import DakeraClient

from tests.deploy.conftest import ContainerFactory
from tests.deploy.support import IMAGE, docker, require_image

MAX_IMAGE_BYTES = 450 * 1000 * 1000


def _image_files() -> set[str]:
    """Every path in the image's file system (from ``docker export`` of a created container)."""
    created = docker("create", IMAGE).stdout.strip()
    try:
        exported = subprocess.run(
            ["docker", "export", created], capture_output=True, check=True, timeout=300
        ).stdout
    finally:
        docker("rm", created, check=False)
    with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
        return {"/" + member.name.lstrip("./") for member in archive.getmembers()}


def test_the_image_has_no_shell_no_package_manager_and_fits_the_budget() -> None:
    require_image()
    files = _image_files()
    for forbidden in (
        "/bin/sh", "/usr/bin/sh", "/bin/bash", "/usr/bin/bash", "/bin/dash", "/usr/bin/dash",
        "/usr/bin/apt", "/usr/bin/apt-get", "/usr/bin/dpkg", "/usr/bin/env", "/usr/bin/gcc",
        "/opt/dakera/venv/bin/pip",
    ):  # fmt: skip
        assert forbidden not in files, forbidden
    assert not any("/site-packages/pip/" in f for f in files)
    assert "/opt/dakera/venv/bin/dakera-server" in files
    assert any(f.endswith("model.safetensors") for f in files)  # the MiniLM weights are inside
    inspect = json.loads(docker("image", "inspect", IMAGE).stdout)[0]
    config = inspect["Config"]
    assert config["User"] == "1000:1000"
    assert "/data" in config["Volumes"]
    assert set(config["ExposedPorts"]) == {"3300/tcp", "50051/tcp"}
    environment = dict(item.split("=", 1) for item in config["Env"])
    assert environment["DAKERA_DATA_DIR"] == "/data"
    assert environment["DAKERA_HOST"] == "0.0.0.0"
    assert environment["DAKERA_REFUSE_ROOT"] == "true"
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "/opt/dakera/venv/bin/dakera-server"]
    assert inspect["Size"] <= MAX_IMAGE_BYTES, inspect["Size"]
    # Running the missing shell fails at exec, before anything starts.
    ran = docker("run", "--rm", "--entrypoint", "/bin/sh", IMAGE, "-c", "true", check=False)
    assert ran.returncode != 0 and "no such file" in ran.stderr.lower()


def test_the_sdk_stores_and_recalls_through_a_hardened_container(
    run_container: ContainerFactory,
) -> None:
    container = run_container()
    ready = container.wait_ready()
    client = DakeraClient(container.url, api_key=container.root_key)
    client.store_memory("deployed-agent", "The user prefers dark roast coffee", importance=0.8)
    client.store_memory("deployed-agent", "The meeting moved to Thursday", importance=0.4)
    recalled = client.recall("deployed-agent", "What coffee does the user like?")
    assert recalled.memories[0].content == "The user prefers dark roast coffee"
    healthy = container.wait_healthy()
    print(f"\ncold start: ready after {ready:.1f} s, Docker 'healthy' after {healthy:.1f} s")
    # Inside the container, as its user: /data is writable, nothing else is.
    code, output = container.exec_python(
        "import os\n"
        "print(os.geteuid(), os.getegid())\n"
        "open('/data/probe.txt', 'w').write('ok')\n"
        "for path in ('/opt/dakera/x', '/tmp/x', '/etc/x', '/x'):\n"
        "    try:\n"
        "        open(path, 'w')\n"
        "    except OSError as exc:\n"
        "        print(path, 'refused', exc.errno)\n"
        "    else:\n"
        "        print(path, 'WRITTEN')\n"
    )
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == "1000 1000"
    assert all("refused" in line for line in lines[1:]) and len(lines) == 5, output
    assert (container.data / "probe.txt").read_text() == "ok"
    stored = {p.name for p in container.data.iterdir()}
    assert any(name.endswith(".db") or name.endswith(".sqlite") for name in stored), stored
    # The self-check run inside the container sees a non-root, read-only process.
    doctor = docker("exec", container.id, "/opt/dakera/venv/bin/dakera-server", "doctor",
                    "--json", check=False)  # fmt: skip
    report = json.loads(doctor.stdout)
    container_item = next(c for c in report["checks"] if c["id"] == "non_root_read_only")
    assert container_item["status"] == "pass", container_item


def test_running_the_image_as_root_is_refused(run_container: ContainerFactory) -> None:
    container = run_container("--user", "0", hardened=False)
    result = docker("wait", container.id, timeout=120)
    assert result.stdout.strip() != "0"
    assert "refusing to start as root (UID 0)" in container.logs()


def test_from_source_as_root_the_setting_decides(tmp_path: Path) -> None:
    """`make run` as root keeps working (the setting is off); with it on, the same refusal."""
    import os

    from tests.processes import BIN, spawn_server

    if os.geteuid() != 0:
        pytest.skip("needs root to show both sides")
    server = spawn_server(tmp_path / "data", tmp_path / "server.log")
    server.stop()
    refused = subprocess.run(
        [str(BIN), "serve"],
        env={**os.environ, "DAKERA_REFUSE_ROOT": "true", "DAKERA_DATA_DIR": str(tmp_path / "d")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode == 2
    assert "refusing to start as root (UID 0)" in refused.stderr
