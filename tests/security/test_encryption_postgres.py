"""Encryption at rest on the PostgreSQL store: payloads are sealed before they reach
PostgreSQL (no canary in any table, in ``pg_dump`` or in the cluster's files), the key is
checked at start-up, a plaintext database is encrypted in place, and rotation works."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from dakera_server.security.crypto import MAGIC
from tests.conftest import ROOT_KEY, start_server
from tests.pgcluster import PostgresCluster
from tests.processes import BIN, free_port, spawn_server
from tests.security.test_encryption import HEADERS, HEX_KEY, NEW_PASSPHRASE, PASSPHRASE, fill

TABLES = ("memories", "sessions", "namespaces", "vectors", "api_keys", "edges", "trash")


def table_bytes(url: str) -> bytes:
    """Every column of every row of every dakera table, as raw bytes."""
    chunks: list[bytes] = []
    with psycopg.connect(url) as conn:
        for table in (*TABLES, "meta", "audit_events", "changes", "change_heads"):
            for row in conn.execute(f"SELECT * FROM dakera.{table}").fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value))
                    elif value is not None:
                        chunks.append(str(value).encode())
    return b"\n".join(chunks)


def cluster_files(cluster: PostgresCluster) -> bytes:
    """Every byte of every file of the cluster (heap, indexes, WAL) after a checkpoint."""
    with psycopg.connect(cluster.admin_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    return b"".join(p.read_bytes() for p in sorted(cluster.data.rglob("*")) if p.is_file())


def findable(canary: str, haystack: bytes) -> bool:
    """The canary as text, or hex-encoded the way pg_dump prints bytea."""
    return canary.encode() in haystack or canary.encode().hex().encode() in haystack


def serve(data_dir: Path, url: str, key: str | None) -> subprocess.CompletedProcess[str]:
    """``serve`` expected to refuse: returns the finished process."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "DAKERA_DATA_DIR": str(data_dir),
        "DAKERA_PORT": str(free_port()),
        "DAKERA_GRPC_ENABLED": "false",
        "DAKERA_ROOT_API_KEY": ROOT_KEY,
        "DAKERA_STORAGE_URL": url,
        **({"DAKERA_ENCRYPTION_KEY": key} if key else {}),
    }
    return subprocess.run([str(BIN), "serve"], env=env, capture_output=True, text=True, timeout=90)


def test_no_canary_reaches_postgres(
    postgres: PostgresCluster, tmp_path: Path, embedder: Any
) -> None:
    database = postgres.create_database("enc")
    url = postgres.url(database)
    canary = "PGCANARYq8z"
    server = start_server(tmp_path / "data", embedder, encryption_key=PASSPHRASE, storage_url=url)
    try:
        fill(server.url, canary)
        with server.http() as http:
            secret = http.post("/admin/keys", json={"name": "app", "scope": "read"}).json()["key"]
    finally:
        server.stop()
    [(events,)] = postgres.query(database, "SELECT count(*) FROM dakera.audit_events")
    assert isinstance(events, int) and events > 0, "the business-event log has rows to inspect"
    rows = table_bytes(url)
    assert MAGIC in rows  # sealed payloads are there...
    for needle in (canary, secret, PASSPHRASE):
        assert not findable(needle, rows), needle  # ...and nothing readable
        assert not findable(needle, postgres.dump(database)), needle
    files = cluster_files(postgres)
    assert canary.encode() not in files and secret.encode() not in files
    assert postgres.query(database, "SELECT fingerprint IS NOT NULL FROM dakera.codec_state") == [
        (True,)
    ]

    # The same check finds a canary when encryption is off: it can fail.
    plain_url = postgres.url(postgres.create_database("plain"))
    plain = start_server(tmp_path / "plain", embedder, storage_url=plain_url)
    try:
        fill(plain.url, "PGPLAINCANARY", n=1)
    finally:
        plain.stop()
    assert findable("PGPLAINCANARY", table_bytes(plain_url))


@pytest.mark.slow
def test_the_key_is_checked_at_start_and_a_plaintext_database_is_encrypted_in_place(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    database = postgres.create_database("inplace")
    url = postgres.url(database)
    canary = "PGINPLACECANARY"
    plain = spawn_server(tmp_path / "a", tmp_path / "a.log", DAKERA_STORAGE_URL=url)
    ids = fill(plain.url, canary, n=3)
    plain.stop()
    assert findable(canary, table_bytes(url))
    encrypted = spawn_server(
        tmp_path / "b", tmp_path / "b.log", DAKERA_STORAGE_URL=url, DAKERA_ENCRYPTION_KEY=HEX_KEY
    )
    try:
        with httpx.Client(base_url=encrypted.url, headers=HEADERS, timeout=30) as http:
            memory = http.get(f"/v1/memory/get/{ids[0]}?agent_id=enc").json()
            assert memory["content"].startswith(canary)
    finally:
        encrypted.stop()
    assert not findable(canary, table_bytes(url))
    assert not findable(canary, postgres.dump(database))
    wrong = serve(tmp_path / "c", url, PASSPHRASE)
    assert wrong.returncode != 0 and "does not match" in wrong.stderr
    assert PASSPHRASE not in wrong.stderr + wrong.stdout
    missing = serve(tmp_path / "c", url, None)
    assert missing.returncode != 0 and "is encrypted" in missing.stderr


def test_rotation_on_postgres(postgres: PostgresCluster, tmp_path: Path, embedder: Any) -> None:
    url = postgres.url(postgres.create_database("rotate"))
    server = start_server(tmp_path / "r", embedder, encryption_key=PASSPHRASE, storage_url=url)
    try:
        ids = fill(server.url, "PGROTATE", n=3)
        with server.http() as http:
            answer = http.post("/v1/admin/encryption/rotate-key", json={"new_key": NEW_PASSPHRASE})
            assert answer.status_code == 200, answer.text
            assert answer.json()["rotated"] >= 3
            assert http.get(f"/v1/memory/get/{ids[0]}?agent_id=enc").status_code == 200
            after = http.post("/v1/memory/store", json={"agent_id": "enc", "content": "later"})
            assert after.status_code == 200
            ids.append(after.json()["memory"]["id"])
            assert http.get("/v1/audit?limit=5").status_code == 200  # events re-sealed too
    finally:
        server.stop()
    with pytest.raises(Exception, match="does not match"):
        start_server(tmp_path / "r2", embedder, encryption_key=PASSPHRASE, storage_url=url)
    again = start_server(tmp_path / "r3", embedder, encryption_key=NEW_PASSPHRASE, storage_url=url)
    try:
        with again.http() as http:
            for memory_id in ids:
                assert http.get(f"/v1/memory/get/{memory_id}?agent_id=enc").status_code == 200
            assert http.get("/v1/audit?limit=50").status_code == 200
    finally:
        again.stop()
