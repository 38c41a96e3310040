"""Backups and restore against real servers and real files (issue 14; api/admin/backups.py).

The first test is the contract of an online backup: four writers keep storing while it is
taken; a fresh server restored from it holds every write acknowledged before the backup began,
and 50 fixed recall queries answer exactly what they answered at backup time.
"""

from __future__ import annotations

import gzip
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.models import Record, Representation, RepresentationKind

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.files import make_markdown

TOPICS = [
    "coffee",
    "hiking",
    "python",
    "jazz",
    "tennis",
    "sushi",
    "paris",
    "chess",
    "rain",
    "bikes",
]
QUERIES = [f"what about {TOPICS[i % 10]} and item {i}" for i in range(50)]


def wait_restore(http: httpx.Client, restore_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = http.get(f"/v1/admin/backups/restore/{restore_id}")
        assert answer.status_code == 200, (answer.status_code, answer.text)
        status: dict[str, Any] = answer.json()
        if status["status"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError("restore did not finish")


def restore(server: RunningServer, backup: bytes, **body: Any) -> dict[str, Any]:
    with server.http() as http:
        uploaded = http.post(
            "/v1/admin/backups/upload", content=backup, headers={"Content-Type": "application/gzip"}
        )
        assert uploaded.status_code == 200, uploaded.text
        started = http.post(
            "/v1/admin/backups/restore", json={"backup_id": uploaded.json()["backup_id"], **body}
        )
        assert started.status_code == 200, started.text
        return wait_restore(http, started.json()["restore_id"])


def recall_ids(client: DakeraClient, agent: str) -> list[list[str]]:
    return [[m.id for m in client.recall(agent, q, top_k=8).memories] for q in QUERIES]


@pytest.fixture
def fresh(tmp_path: Path, embedder: EmbeddingProvider) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "fresh", embedder)
    yield server
    server.stop()


@pytest.fixture
def source(tmp_path: Path, embedder: EmbeddingProvider) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "source", embedder)
    yield server
    server.stop()


def test_online_backup_during_four_writers_restores_every_acknowledged_write(
    source: RunningServer, fresh: RunningServer
) -> None:
    client = DakeraClient(source.url, api_key=ROOT_KEY)
    seed = [
        {
            "content": f"note {i}: {TOPICS[i % 10]} memory number {i} with detail {i * 7}",
            "importance": round(0.2 + (i % 7) / 10, 2),
            "tags": [TOPICS[i % 10]],
        }
        for i in range(120)
    ]
    with source.http() as http:
        answer = http.post(
            "/v1/memories/store/batch", json={"agent_id": "recall-agent", "memories": seed}
        )
        assert answer.status_code == 200, answer.text
    acknowledged: list[tuple[float, float, str, str]] = []  # (sent, acknowledged, agent, id)
    stop = threading.Event()
    lock = threading.Lock()

    def writer(n: int) -> None:
        own = DakeraClient(source.url, api_key=ROOT_KEY)
        i = 0
        while not stop.is_set():
            sent = time.monotonic()
            stored = own.store_memory(f"writer-{n}", f"writer {n} wrote line {i}")
            with lock:
                acknowledged.append((sent, time.monotonic(), f"writer-{n}", stored["id"]))
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    began = time.monotonic()
    backup = client.admin_create_backup("during-writes")
    returned = time.monotonic()
    at_backup = recall_ids(client, "recall-agent")
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    before = [(agent, mid) for _, at, agent, mid in acknowledged if at < began]
    after = [(agent, mid) for sent, _, agent, mid in acknowledged if sent > returned]
    assert len(before) >= 8 and after, "the writers did not write before and after the backup"
    with source.http() as http:
        data = http.get(f"/v1/admin/backups/{backup['backup_id']}/download").content
    status = restore(fresh, data)
    assert status["status"] == "completed", status
    restored = DakeraClient(fresh.url, api_key=ROOT_KEY)
    held = {
        (agent, m["id"])
        for agent in {a for a, _ in before}
        for m in restored.export_memories(format="jsonl", agent_id=agent).data
    }
    missing = [pair for pair in before if pair not in held]
    assert not missing, f"{len(missing)} acknowledged writes are not in the backup"
    assert all(pair not in held for pair in after)
    assert status["counts"]["memories"] == backup["counts"]["memories"]
    assert recall_ids(restored, "recall-agent") == at_backup


def test_sessions_edges_keys_and_policies_come_back(
    source: RunningServer, fresh: RunningServer
) -> None:
    client = DakeraClient(source.url, api_key=ROOT_KEY)
    session = client.start_session("keeper")
    for i in range(6):
        client.store_memory(
            "keeper", f"Alice met Bob in Paris on day {i}", session_id=session["id"]
        )
    with source.http() as http:
        key = http.post("/admin/keys", json={"name": "kept", "scope": "write"}).json()["key"]
        policy = {"working_ttl_seconds": 3600}
        assert http.put("/v1/namespaces/_dakera_agent_keeper/memory_policy", json=policy).is_success
        graph = http.get("/v1/agents/keeper/graph/export").json()
        created = http.post("/v1/admin/backups", json={"name": "all"}).json()
        data = http.get(f"/v1/admin/backups/{created['backup_id']}/download").content
        policy_before = http.get("/v1/namespaces/_dakera_agent_keeper/memory_policy").json()
    assert restore(fresh, data)["status"] == "completed"
    with fresh.http() as http:
        assert http.get("/v1/agents/keeper/graph/export").json() == graph
        assert http.get("/v1/namespaces/_dakera_agent_keeper/memory_policy").json() == policy_before
        sessions = http.get("/v1/agents/keeper/sessions").json()
        assert session["id"] in str(sessions)
    with fresh.http(key=key) as http:
        assert http.get("/v1/auth/whoami").json()["name"] == "kept"
    with fresh.http() as http:  # the configured root key still works under the restored pepper
        assert http.get("/v1/auth/whoami").status_code == 200


def test_each_broken_backup_is_refused_with_its_own_message_and_changes_nothing(
    source: RunningServer, fresh: RunningServer, tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    client = DakeraClient(source.url, api_key=ROOT_KEY)
    client.store_memory("victim", "the original content")
    with source.http() as http:
        created = http.post("/v1/admin/backups", json={"name": "good"}).json()
        plain = gzip.decompress(
            http.get(f"/v1/admin/backups/{created['backup_id']}/download").content
        )
    tampered = bytearray(plain)
    tampered[len(plain) // 2] ^= 0x40
    header_end = plain.index(b"}") + 1
    newer_plain = plain[:header_end].replace(b'"format_version":2', b'"format_version":3')
    newer_plain += plain[header_end:-38]
    newer_plain += b"SHA256" + hashlib.sha256(newer_plain).digest()
    cases = {
        "BACKUP_CHECKSUM_MISMATCH": (bytes(tampered), "altered"),
        "BACKUP_TRUNCATED": (plain[: len(plain) * 2 // 3], "truncated"),
        "BACKUP_FORMAT_UNSUPPORTED": (newer_plain, "format version 3"),
    }
    messages = set()
    with fresh.http() as http:
        DakeraClient(fresh.url, api_key=ROOT_KEY).store_memory("victim", "the target's own")
        for code, (body, words) in cases.items():
            answer = http.post(
                "/v1/admin/backups/upload",
                content=gzip.compress(body),
                headers={"Content-Type": "application/gzip"},
            )
            assert answer.status_code == 422, answer.text
            assert answer.json()["code"] == code and words in answer.json()["error"]
            messages.add(answer.json()["error"])
        assert http.get("/v1/admin/backups").json()["backups"] == []
    # The same file altered on disk after it was listed: restore refuses before any write.
    path = source.settings.data_dir / "backups" / f"{created['backup_id']}.dkbak"
    path.write_bytes(bytes(tampered))
    with source.http() as http:
        refused = http.post(
            "/v1/admin/backups/restore", json={"backup_id": created["backup_id"], "overwrite": True}
        )
        assert refused.status_code == 422 and refused.json()["code"] == "BACKUP_CHECKSUM_MISMATCH"
    assert [m.content for m in client.recall("victim", "content").memories] == [
        "the original content"
    ]
    # Wrong key: sealed by a server with one key, uploaded to a server with another.
    sealed = start_server(tmp_path / "k1", embedder, encryption_key=secrets.token_hex(32))
    other = start_server(tmp_path / "k2", embedder, encryption_key=secrets.token_hex(32))
    try:
        with sealed.http() as http:
            done = http.post("/v1/admin/backups", json={"name": "sealed"}).json()
            blob = http.get(f"/v1/admin/backups/{done['backup_id']}/download").content
        for target in (other, fresh):
            with target.http() as http:
                answer = http.post(
                    "/v1/admin/backups/upload",
                    content=blob,
                    headers={"Content-Type": "application/gzip"},
                )
                assert answer.status_code == 422 and answer.json()["code"] == "BACKUP_KEY_MISMATCH"
                messages.add(answer.json()["error"])
    finally:
        sealed.stop()
        other.stop()
    assert len(messages) == 5, messages
    victim = DakeraClient(fresh.url, api_key=ROOT_KEY).recall("victim", "content").memories
    assert [m.content for m in victim] == ["the target's own"]


def test_encrypted_backup_holds_no_plaintext(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    key = secrets.token_hex(32)
    server = start_server(tmp_path / "enc", embedder, encryption_key=key)
    try:
        client = DakeraClient(server.url, api_key=ROOT_KEY)
        client.store_memory(
            "canary-agent-7Q",
            "the canary zebra-quokka-91 sings",
            tags=["canarytag-55"],
            metadata={"canarykey": "canaryvalue-66"},
        )
        with server.http() as http:
            created = http.post("/v1/admin/backups", json={"name": "canary-name-44"}).json()
            assert created["encrypted"] is True
            download = gzip.decompress(
                http.get(f"/v1/admin/backups/{created['backup_id']}/download").content
            )
            refused = http.post("/v1/admin/backups", json={"name": "x", "encrypt": False})
            assert refused.status_code == 400
        files = b"".join(p.read_bytes() for p in (tmp_path / "enc" / "backups").iterdir())
        for blob in (files, download):
            for canary in (
                b"zebra-quokka-91",
                b"canary-agent-7Q",
                b"canarytag-55",
                b"canaryvalue-66",
                b"canary-name-44",
                b"canarykey",
            ):
                assert canary not in blob, canary
    finally:
        server.stop()
    # The same key restores it: a fresh server with that key reads the backup back.
    again = start_server(tmp_path / "enc2", embedder, encryption_key=key)
    try:
        assert restore(again, gzip.compress(download))["status"] == "completed"
        found = DakeraClient(again.url, api_key=ROOT_KEY).recall("canary-agent-7Q", "canary")
        assert found.memories[0].content == "the canary zebra-quokka-91 sings"
    finally:
        again.stop()


def test_modes_dry_run_conflict_targets_and_overwrite(source: RunningServer) -> None:
    client = DakeraClient(source.url, api_key=ROOT_KEY)
    client.store_memory("keep-me", "kept as it was")
    client.store_memory("roll-back", "version one")
    with source.http() as http:
        backup_id = http.post("/v1/admin/backups", json={"name": "m"}).json()["backup_id"]
        client.store_memory("roll-back", "version two")
        client.store_memory("keep-me", "written after the backup")
        refused = http.post("/v1/admin/backups/restore", json={"backup_id": backup_id})
        assert refused.status_code == 409 and "overwrite" in refused.json()["error"]
        target = ["_dakera_agent_roll-back"]
        dry = http.post(
            "/v1/admin/backups/restore",
            json={"backup_id": backup_id, "target_namespaces": target, "dry_run": True},
        )
        report = wait_restore(http, dry.json()["restore_id"])
        assert report["counts"]["memories"] == 1 and report["would_replace"]["memories"] == 2
        assert len(client.recall("roll-back", "version").memories) == 2
        real = http.post(
            "/v1/admin/backups/restore",
            json={"backup_id": backup_id, "target_namespaces": target, "overwrite": True},
        )
        assert wait_restore(http, real.json()["restore_id"])["status"] == "completed"
        events = http.get("/v1/audit", params={"event_type": "backup_restored"}).json()["events"]
        assert events and events[0]["details"]["backup_id"] == backup_id
        assert http.get("/v1/audit", params={"event_type": "backup_created"}).json()["events"]
    assert [m.content for m in client.recall("roll-back", "version").memories] == ["version one"]
    assert len(client.recall("keep-me", "kept written").memories) == 2


def test_requests_the_server_does_not_support_are_refused_clearly(source: RunningServer) -> None:
    with source.http() as http:
        answer = http.post("/v1/admin/backups", json={"name": "x", "backup_type": "incremental"})
        assert answer.status_code == 400 and "full backups only" in answer.json()["error"]
        answer = http.post("/v1/admin/backups", json={"name": "x", "compression": "zstd"})
        assert answer.status_code == 400 and "zstd" in answer.json()["error"]
        assert (
            http.post("/v1/admin/backups", json={"name": "x", "include_data": True}).status_code
            == 422
        )
        answer = http.post("/v1/admin/backups", json={"name": "x", "encrypt": True})
        assert answer.status_code == 400 and "DAKERA_ENCRYPTION_KEY" in answer.json()["error"]
        assert http.get("/v1/admin/backups/bk_nope").status_code == 404


def test_subset_uncompressed_backups_and_the_schedule(source: RunningServer) -> None:
    client = DakeraClient(source.url, api_key=ROOT_KEY)
    client.store_memory("in-subset", "one")
    client.store_memory("not-in-subset", "two")
    with source.http() as http:
        subset = http.post(
            "/v1/admin/backups",
            json={"name": "sub", "namespaces": ["_dakera_agent_in-subset"], "compression": "none"},
        ).json()
        assert subset["counts"]["memories"] == 1 and subset["compression"] == "none"
        assert "api_keys" not in subset["counts"]
        schedule = http.post(
            "/v1/admin/backups/schedule", json={"enabled": True, "interval_secs": 1, "keep_last": 2}
        ).json()
        assert schedule["enabled"] and schedule["interval_secs"] == 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listed = http.get("/v1/admin/backups").json()["backups"]
            if (
                http.get("/v1/admin/backups/schedule").json()["last_run_at"]
                and len([b for b in listed if b["trigger"] == "scheduled"]) == 2
            ):
                time.sleep(2.5)  # two more runs: retention keeps the newest two
                break
            time.sleep(0.2)
        http.post("/v1/admin/backups/schedule", json={"enabled": False})
        listed = http.get("/v1/admin/backups").json()["backups"]
        scheduled = [b for b in listed if b["trigger"] == "scheduled"]
        assert len(scheduled) == 2, listed
        assert any(b["backup_id"] == subset["backup_id"] for b in listed)  # manual ones stay
        assert (
            http.post("/v1/admin/backups/schedule", json={"cron": "every tuesday"}).status_code
            == 400
        )
        assert (
            http.post("/v1/admin/backups/schedule", json={"cron": "@daily"}).json()["interval_secs"]
            == 86400
        )
        assert http.delete(f"/v1/admin/backups/{subset['backup_id']}").json()["deleted"] is True
        assert http.get(f"/v1/admin/backups/{subset['backup_id']}").status_code == 404


def test_imported_documents_and_record_representations_come_back(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    """The opt-in lanes' rows are in a backup too: a document's record (its chunks are
    memories) and a multi-representation record's extra representations."""
    lanes = {"documents_enabled": True, "records_enabled": True}
    origin = start_server(tmp_path / "origin", embedder, **lanes)
    target = start_server(tmp_path / "target", embedder, **lanes)
    try:
        sdk = DakeraClient(origin.url, api_key=ROOT_KEY)
        accepted = sdk.import_document("reader", make_markdown(), media_type="text/markdown")
        job = sdk.wait_for_document_job(accepted.job_id, "reader", timeout=120, poll_interval=0.1)
        assert job.status == "Completed", job.raw
        sdk.upsert_records(
            "rec-space",
            [
                Record(
                    id="r1",
                    values=[1.0, 0.0, 0.0],
                    representations=[
                        Representation("title", [[0.1, 0.2]], kind=RepresentationKind.DENSE)
                    ],
                )
            ],
        )
        document = sdk.get_document(accepted.document_id, "reader")
        kept = sdk.get_record("rec-space", "r1", include_vectors=True)
        with origin.http() as http:
            created = http.post("/v1/admin/backups", json={"name": "lanes"}).json()
            data = http.get(f"/v1/admin/backups/{created['backup_id']}/download").content
        assert restore(target, data)["status"] == "completed"
        restored = DakeraClient(target.url, api_key=ROOT_KEY)
        assert restored.get_document(accepted.document_id, "reader") == document
        assert restored.get_record("rec-space", "r1", include_vectors=True) == kept
    finally:
        origin.stop()
        target.stop()
