"""Encryption at rest: canaries never on disk, key checks at start-up, in-place encryption,
rotation (atomic under kill -9), and the routes' forms (dakera-api.md §4.12, security.md)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dakera_server.engine.core import DB_FILE
from dakera_server.security.crypto import KeyMismatch
from dakera_server.security.encryption import open_codec
from dakera_server.storage.sqlite import SqliteStore
from tests.conftest import ROOT_KEY, start_server
from tests.processes import BIN, free_port, spawn_server

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
PASSPHRASE = "correct horse battery staple"
NEW_PASSPHRASE = "another long passphrase 42"
HEX_KEY = "ab" * 32
VECTORS = 20_000


def disk_bytes(data_dir: Path) -> bytes:
    """Every byte of every file under the data directory."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def fill(url: str, canary: str, n: int = 5) -> list[str]:
    """Write canaries through the memory, session and namespace routes; return memory ids."""
    ids = []
    with httpx.Client(base_url=url, headers=HEADERS, timeout=60) as http:
        for i in range(n):
            answer = http.post(
                "/v1/memory/store",
                json={
                    "agent_id": "enc",
                    "content": f"{canary} content {i}",
                    "tags": [f"{canary}tag"],
                    "metadata": {"note": f"{canary} metadata"},
                },
            )
            assert answer.status_code == 200, answer.text
            ids.append(answer.json()["memory"]["id"])
        sid = http.post("/v1/sessions/start", json={"agent_id": "enc"}).json()["session"]["id"]
        http.post(f"/v1/sessions/{sid}/end", json={"summary": f"{canary} summary"})
        http.post(
            "/v1/namespaces/encns/upsert-text",
            json={
                "documents": [
                    {
                        "id": "d1",
                        "text": f"{canary} document text",
                        "metadata": {"m": f"{canary} vector metadata"},
                    }
                ]
            },
        )
        http.post(
            "/v1/namespaces/encns/vectors",
            json={
                "vectors": [
                    {"id": "v1", "values": [0.5] * 384, "metadata": {"m": f"{canary} raw metadata"}}
                ]
            },
        )
    return ids


def start_args(data_dir: Path, key: str | None) -> dict[str, Any]:
    env = {"DAKERA_ENCRYPTION_KEY": key} if key is not None else {}
    return {"data_dir": data_dir, **env}


def run_serve(data_dir: Path, key: str | None) -> subprocess.CompletedProcess[str]:
    """Start ``serve`` expecting it to refuse; returns the finished process."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "DAKERA_DATA_DIR": str(data_dir),
        "DAKERA_PORT": str(free_port()),
        "DAKERA_GRPC_ENABLED": "false",
        "DAKERA_ROOT_API_KEY": ROOT_KEY,
    }
    if key is not None:
        env["DAKERA_ENCRYPTION_KEY"] = key
    return subprocess.run([str(BIN), "serve"], env=env, capture_output=True, text=True, timeout=90)


def test_no_canary_reaches_the_disk(tmp_path: Path, embedder: Any) -> None:
    data_dir = tmp_path / "data"
    canary = "CANARYxq7"
    server = start_server(data_dir, embedder, encryption_key=PASSPHRASE)
    try:
        ids = fill(server.url, canary)
        with server.http() as http:
            flagged = http.post(
                "/admin/namespaces", json={"name": "encflag", "config": {"encryption": True}}
            )
            assert flagged.status_code == 201, flagged.text
            key = http.post("/admin/keys", json={"name": "app", "scope": "read"})
            secret = key.json().get("key", "dk_missing")
            assert (
                http.get(f"/v1/memory/get/{ids[0]}?agent_id=enc")
                .json()["content"]
                .startswith(canary)
            )
        during = disk_bytes(data_dir)
        assert canary.encode() not in during
        assert secret.encode() not in during
        assert PASSPHRASE.encode() not in during
    finally:
        server.stop()
    after = disk_bytes(data_dir)
    assert canary.encode() not in after
    assert secret.encode() not in after


@pytest.mark.slow
def test_wrong_or_missing_key_refuses_and_changes_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = spawn_server(data_dir, tmp_path / "log", DAKERA_ENCRYPTION_KEY=PASSPHRASE)
    fill(server.url, "WRONGKEYCANARY", n=2)
    server.stop()
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    wrong = run_serve(data_dir, "not the right passphrase")
    assert wrong.returncode != 0
    assert "does not match" in wrong.stderr
    assert "not the right passphrase" not in wrong.stderr + wrong.stdout
    missing = run_serve(data_dir, None)
    assert missing.returncode != 0
    assert "encrypted" in missing.stderr
    after = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file()}
    assert before == after
    short = run_serve(data_dir, "short")
    assert short.returncode == 2 and "DAKERA_ENCRYPTION_KEY" in short.stderr


@pytest.mark.slow
def test_plaintext_directory_is_encrypted_in_place(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    canary = "PLAINCANARY"
    plain = spawn_server(data_dir, tmp_path / "log")
    ids = fill(plain.url, canary, n=3)
    plain.stop()
    assert canary.encode() in disk_bytes(data_dir)
    encrypted = spawn_server(data_dir, tmp_path / "log", DAKERA_ENCRYPTION_KEY=HEX_KEY)
    try:
        with httpx.Client(base_url=encrypted.url, headers=HEADERS) as http:
            memory = http.get(f"/v1/memory/get/{ids[0]}?agent_id=enc").json()
            assert memory["content"].startswith(canary)
    finally:
        encrypted.stop()
    assert canary.encode() not in disk_bytes(data_dir)


def test_rotation_through_the_sdk_and_the_seed_form(tmp_path: Path, embedder: Any) -> None:
    from dakera import DakeraClient

    data_dir = tmp_path / "data"
    server = start_server(data_dir, embedder, encryption_key=PASSPHRASE)
    try:
        ids = fill(server.url, "ROTATE", n=3)
        client = DakeraClient(server.url, api_key=ROOT_KEY)
        answer = client.rotate_encryption_key(new_key=NEW_PASSPHRASE)
        assert answer.rotated >= 3 and answer.reseal == "completed"
        assert NEW_PASSPHRASE not in str(answer)
        with server.http() as http:
            assert http.get(f"/v1/memory/get/{ids[0]}?agent_id=enc").status_code == 200
            wrong_old = http.post(
                "/admin/encryption/rotate", json={"old_key": PASSPHRASE, "new_key": HEX_KEY}
            )
            assert wrong_old.status_code == 400
            seed = http.post(
                "/admin/encryption/rotate", json={"old_key": NEW_PASSPHRASE, "new_key": HEX_KEY}
            )
            assert seed.status_code == 200, seed.text
            strict = http.post("/v1/admin/encryption/rotate-key", json={"old_key": "x"})
            assert strict.status_code == 422
            status = http.get("/v1/admin/encryption/status").json()
            assert status["status"] == "completed" and status["enabled"] is True
    finally:
        server.stop()
    with pytest.raises(Exception, match="does not match"):
        start_server(data_dir, embedder, encryption_key=NEW_PASSPHRASE)
    again = start_server(data_dir, embedder, encryption_key=HEX_KEY)
    try:
        with again.http() as http:
            for memory_id in ids:
                assert http.get(f"/v1/memory/get/{memory_id}?agent_id=enc").status_code == 200
    finally:
        again.stop()


def test_rotation_without_encryption_is_a_clear_400(http: Any) -> None:
    answer = http.post("/v1/admin/encryption/rotate-key", json={"new_key": NEW_PASSPHRASE})
    assert answer.status_code == 400
    assert "DAKERA_ENCRYPTION_KEY" in answer.json()["error"]


@pytest.mark.slow
def test_kill_9_during_rotation_leaves_one_valid_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = spawn_server(data_dir, tmp_path / "log", DAKERA_ENCRYPTION_KEY=PASSPHRASE)
    with httpx.Client(base_url=server.url, headers=HEADERS, timeout=300) as http:
        # Raw vectors are cheap to write, so the rotation has ~20k records to re-encrypt and
        # the kill lands before, during or after it.
        memories = [{"content": f"record {i}"} for i in range(200)]
        answer = http.post(
            "/v1/memories/store/batch", json={"agent_id": "rot", "memories": memories}
        )
        assert answer.status_code == 200
        for start in range(0, VECTORS, 5000):
            batch = [
                {"id": f"v{i}", "values": [1.0, float(i), 0.5, 0.25]}
                for i in range(start, start + 5000)
            ]
            assert (
                http.post("/v1/namespaces/rotns/vectors", json={"vectors": batch}).status_code
                == 200
            )
        total = 200

        def rotate() -> None:
            try:
                http.post("/v1/admin/encryption/rotate-key", json={"new_key": NEW_PASSPHRASE})
            except httpx.TransportError:
                pass

        rotator = threading.Thread(target=rotate)
        rotator.start()
        time.sleep(random.uniform(0.05, 0.6))
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        rotator.join()
    valid = []
    for key in (PASSPHRASE, NEW_PASSPHRASE):
        store = SqliteStore(data_dir / DB_FILE)
        try:
            open_codec(store, key, data_dir)
        except KeyMismatch:
            continue
        finally:
            store.close()
        valid.append(key)
    assert len(valid) == 1, "exactly one of the old and new keys must open the data"
    survivor = spawn_server(data_dir, tmp_path / "log", DAKERA_ENCRYPTION_KEY=valid[0])
    try:
        with httpx.Client(base_url=survivor.url, headers=HEADERS) as http:
            listed = http.post(
                "/v1/memories/recall/batch", json={"agent_id": "rot", "filter": {}, "limit": 5000}
            ).json()
            assert listed["total"] == total
            assert http.get("/v1/namespaces/rotns").json()["vector_count"] == VECTORS
    finally:
        survivor.stop()


def test_writes_during_rotation_land_under_the_new_key(tmp_path: Path, embedder: Any) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, embedder, encryption_key=PASSPHRASE)
    acknowledged: list[str] = []
    stop = threading.Event()

    def write_loop() -> None:
        with server.http() as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                answer = http.post(
                    "/v1/memory/store", json={"agent_id": "during", "content": f"write {i}"}
                )
                assert answer.status_code == 200, answer.text
                acknowledged.append(answer.json()["memory"]["id"])

    try:
        with server.http() as http:
            batch = [{"id": f"v{i}", "values": [1.0, float(i), 0.5]} for i in range(20_000)]
            created = http.post("/v1/namespaces", json={"name": "dur", "dimension": 3})
            assert created.status_code in (200, 201), created.text
            assert (
                http.post("/v1/namespaces/dur/vectors", json={"vectors": batch}).status_code == 200
            )
            writer = threading.Thread(target=write_loop)
            writer.start()
            while len(acknowledged) < 5:
                time.sleep(0.01)
            rotated = http.post("/v1/admin/encryption/rotate-key", json={"new_key": NEW_PASSPHRASE})
            assert rotated.status_code == 200, rotated.text
            time.sleep(0.3)  # a few writes after the rotation too
            stop.set()
            writer.join()
    finally:
        stop.set()
        server.stop()
    assert len(acknowledged) > 5
    again = start_server(data_dir, embedder, encryption_key=NEW_PASSPHRASE)
    try:
        with again.http() as http:
            for memory_id in acknowledged:
                found = http.get(f"/v1/memory/get/{memory_id}?agent_id=during")
                assert found.status_code == 200, memory_id
    finally:
        again.stop()
