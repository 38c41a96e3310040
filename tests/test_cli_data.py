"""``dakera-server backup|export|import`` (cli_data.py): offline on a stopped data directory, and
against a running server with ``--url``, as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT_KEY
from tests.processes import BIN, spawn_server

pytestmark = pytest.mark.slow


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")}
    environ.update({"DAKERA_DATA_DIR": str(data_dir), "DAKERA_ROOT_API_KEY": ROOT_KEY})
    return subprocess.run(
        [str(BIN), *args], env=environ, capture_output=True, text=True, timeout=300, check=False
    )


def test_offline_and_online_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "memories.jsonl"
    source.write_text(
        "\n".join(json.dumps({"id": f"m{i}", "content": f"cli memory {i}"}) for i in range(5))
        + '\n{"id": "bad", "tags": ["x"]}\n'
    )
    imported = cli(data, "import", str(source), "--agent", "cli-agent", "--json")
    assert imported.returncode == 0, imported.stderr
    report = json.loads(imported.stdout)
    assert report["imported"] == 5 and report["errors"] == [
        "row 6: 'content' must be a non-empty string"
    ]
    exported = cli(data, "export", "--agent", "cli-agent", "--format", "jsonl")
    assert exported.returncode == 0, exported.stderr
    assert sorted(json.loads(line)["id"] for line in exported.stdout.splitlines()) == [
        f"m{i}" for i in range(5)
    ]
    assert "exported 5 memories" in exported.stderr
    created = cli(data, "backup", "create", "--name", "offline", "--json")
    assert created.returncode == 0, created.stderr
    backup_id = json.loads(created.stdout)["backup_id"]
    listed = cli(data, "backup", "list")
    assert backup_id in listed.stdout and "offline" in listed.stdout
    verified = cli(data, "backup", "verify", backup_id, "--json")
    assert json.loads(verified.stdout)["valid"] is True
    file = data / "backups" / f"{backup_id}.dkbak"
    broken = tmp_path / "broken.dkbak"
    blob = bytearray(file.read_bytes())
    blob[len(blob) // 2] ^= 1
    broken.write_bytes(bytes(blob))
    refused = cli(tmp_path / "other", "backup", "verify", str(broken))
    assert refused.returncode == 1 and "SHA-256" in refused.stderr

    fresh = tmp_path / "fresh"
    restored = cli(fresh, "backup", "restore", str(file), "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["counts"]["memories"] == 5

    server = spawn_server(fresh, tmp_path / "server.log")
    try:
        url = ["--url", server.url, "--api-key", ROOT_KEY]
        remote = cli(tmp_path / "unused", "export", "--agent", "cli-agent", "--format", "csv", *url)
        assert remote.returncode == 0 and remote.stdout.count("cli memory") == 5, remote.stderr
        made = cli(tmp_path / "unused", "backup", "create", "--name", "online", "--json", *url)
        online_id = json.loads(made.stdout)["backup_id"]
        more = tmp_path / "more.csv"
        more.write_text("content\nonline one\nonline two\n")
        added = cli(
            tmp_path / "unused", "import", str(more), "--agent", "cli-agent", "--json", *url
        )
        assert json.loads(added.stdout)["imported"] == 2, added.stderr
        back = cli(
            tmp_path / "unused", "backup", "restore", online_id, "--overwrite", "--json", *url
        )
        assert json.loads(back.stdout)["status"] == "completed", back.stderr
        with httpx.Client(base_url=server.url, headers={"X-API-Key": ROOT_KEY}) as http:
            count = http.get("/v1/export", params={"agent_id": "cli-agent"}).text.count("\n")
        assert count == 5
    finally:
        server.stop()
