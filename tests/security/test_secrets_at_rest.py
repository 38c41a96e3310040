"""No key secret ever reaches a file: not the store (pages or WAL), not the audit log, not the
server's own output, even at debug level with request and response bodies audited.

The server runs as a real process. Every secret created during the run (through the API, the
namespace routes, rotation and the command line), the root key, and near-miss strings sent as
bad keys are then searched for in every byte of every file under the data directory, while the
server runs (WAL present) and after it stopped, and in its captured output.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from dakera_server.config import SETTINGS
from tests.conftest import ROOT_KEY
from tests.processes import BIN, spawn_server

pytestmark = pytest.mark.slow
KNOWN_ENV = {setting.env for setting in SETTINGS}


def audit_env(data_dir: Path) -> dict[str, str]:
    """Turn on every audit option this build has, writing inside the data directory."""
    wanted = {
        "DAKERA_AUDIT_ENABLED": "true",
        "DAKERA_AUDIT_REQUEST_BODY": "true",
        "DAKERA_AUDIT_RESPONSE_BODY": "true",
        "DAKERA_AUDIT_LOG_PATH": str(data_dir / "audit.log"),
    }
    return {k: v for k, v in wanted.items() if k in KNOWN_ENV}


def leaks(paths: list[Path], secrets: list[str]) -> list[str]:
    found = []
    for path in paths:
        data = path.read_bytes()
        for secret in secrets:
            for form in {secret, secret.removeprefix("dk_")}:
                if form.encode() in data:
                    found.append(f"{path.name} holds {form[:10]}…")
    return found


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_no_secret_in_any_file_or_log(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    log = tmp_path / "server.log"
    server = spawn_server(data, log, DAKERA_LOG_LEVEL="debug", **audit_env(data))
    secrets: list[str] = [ROOT_KEY]
    try:
        root = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ROOT_KEY}"})
        made = {}
        for name, body in {
            "reader": {"scope": "read"},
            "writer": {"scope": "write", "namespace": "tenant-s"},
            "admin": {"scope": "admin", "namespaces": ["tenant-s", "_dakera_agent_s-*"]},
            "expiring": {"scope": "read", "expires_in_days": 1},
        }.items():
            answer = root.post("/admin/keys", json={"name": name, **body})
            assert answer.status_code == 201, answer.text
            made[name] = answer.json()
            secrets.append(made[name]["key"])
        ns_key = root.post("/v1/namespaces/tenant-s/keys", json={"name": "ns", "scope": "write"})
        secrets.append(ns_key.json()["key"])
        graced = root.post(
            f"/admin/keys/{made['reader']['key_id']}/rotate", json={"grace_secs": 600}
        )
        secrets.append(graced.json()["new_key"])
        rotated = root.post(f"/admin/keys/{made['expiring']['key_id']}/rotate")
        secrets.append(rotated.json()["new_key"])
        cli = subprocess.run(
            [str(BIN), "keys", "create", "--name", "cli", "--scope", "write", "--json"],
            env={"DAKERA_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        cli_key = json.loads(cli.stdout)
        secrets.append(cli_key["key"])
        cli_rotated = subprocess.run(
            [str(BIN), "keys", "rotate", cli_key["key_id"], "--json"],
            env={"DAKERA_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        secrets.append(json.loads(cli_rotated.stdout)["key"])

        near_misses = [s[:-1] + ("0" if s[-1] != "0" else "1") for s in secrets]
        for secret in secrets + near_misses:
            for headers, params in (
                ({"Authorization": f"Bearer {secret}"}, {}),
                ({"X-API-Key": secret}, {}),
                ({}, {"api_key": secret}),
            ):
                httpx.get(f"{server.url}/v1/auth/whoami", headers=headers, params=params)
            auth = {"Authorization": f"Bearer {secret}"}
            httpx.post(
                f"{server.url}/v1/memory/store",
                headers=auth,
                json={"agent_id": "s-agent", "content": "a memory written during the scan"},
            )
            httpx.get(f"{server.url}/admin/keys", headers=auth)  # 403 for most: still no leak
            httpx.post(
                f"{server.url}/v1/memory/recall",
                headers={**auth, "Content-Type": "application/json"},
                content=b"{not json",
            )
        secrets += near_misses
        root.post(f"/admin/keys/{made['writer']['key_id']}/deactivate")
        root.delete(f"/admin/keys/{made['admin']['key_id']}")
        assert (
            root.get(f"/admin/keys/{made['writer']['key_id']}/usage").json()["total_requests"] > 0
        )
        root.close()
        running = leaks(files_under(data), secrets)
        assert not running, running
    finally:
        server.stop()
    assert (data / "dakera.db").exists()
    if "DAKERA_AUDIT_LOG_PATH" in KNOWN_ENV:
        audit = (data / "audit.log").read_text()
        assert "/admin/keys" in audit and "whoami" in audit, "the audit log was not written"
    stopped = leaks([*files_under(data), log], secrets)
    assert not stopped, stopped
