"""``dakera-server health``: the image's health check, with no shell and no curl to lean on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from tests.processes import BIN, free_port, spawn_server


def _health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    return subprocess.run(
        [str(BIN), "health", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_health_follows_the_configured_port_and_fails_when_nothing_answers(
    tmp_path: Path,
) -> None:
    server = spawn_server(tmp_path / "data", tmp_path / "server.log")
    try:
        port = str(urlsplit(server.url).port)
        # DAKERA_HOST=0.0.0.0 (the image's) is asked on loopback.
        ready = _health({"DAKERA_HOST": "0.0.0.0", "DAKERA_PORT": port})
        assert ready.returncode == 0, ready.stderr
        assert "/health/ready: 200" in ready.stdout
        assert _health({}, "--url", server.url).returncode == 0
    finally:
        server.stop()
    down = _health({"DAKERA_PORT": str(free_port())}, "--timeout", "1")
    assert down.returncode == 1
    assert "health" in down.stderr
