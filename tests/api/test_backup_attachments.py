"""Attachments in backups and restores (issue 14 x issue 20; engine/portability/files.py).

Real servers, real files: a backup carries every attachment record and its file; a restore
into a fresh server downloads the same bytes with the same ETag and type; ``target_namespaces``
restores bring only their namespace's files; an encrypted server's backup holds no byte of a
file in the clear; an altered file in a backup is refused; a file deleted while a backup runs
is still in it; a backup of format version 1 (no attachments) still restores.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dakera import DakeraClient

from dakera_server.engine.attachments.service import SYSTEM_READER
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.api.test_backups import restore, wait_restore
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.files import make_png

FILES = {"attachments_enabled": True, "max_attachment_bytes": 4_000_000}
CANARY = b"canary-wombat-file-73"


def space(agent: str) -> str:
    return f"_dakera_agent_{agent}"


def blob_files(server: RunningServer) -> set[Path]:
    """The committed blob files under the server's data dir."""
    root = Path(server.settings.data_dir) / "attachments"
    return {p for p in root.glob("??/*") if p.is_file()}


def backup_bytes(server: RunningServer, **body: Any) -> tuple[dict[str, Any], bytes]:
    """Take a backup and download it (the gzip wire form, as uploads take it)."""
    with server.http() as http:
        created = http.post("/v1/admin/backups", json={"name": "files", **body})
        assert created.status_code == 200, created.text
        record: dict[str, Any] = created.json()
        data = http.get(f"/v1/admin/backups/{record['backup_id']}/download").content
    return record, data


@pytest.fixture
def source(tmp_path: Path, embedder: EmbeddingProvider) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "source", embedder, **FILES)
    yield server
    server.stop()


@pytest.fixture
def fresh(tmp_path: Path, embedder: EmbeddingProvider) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "fresh", embedder, **FILES)
    yield server
    server.stop()


def test_files_come_back_with_bytes_etag_type_and_references(
    source: RunningServer, fresh: RunningServer
) -> None:
    sdk = DakeraClient(source.url, api_key=ROOT_KEY)
    big = os.urandom(2_500_000)  # several 1 MiB frames and 64 KiB blob chunks
    files = {
        space("photos"): (make_png(), "image/png"),
        "shared-docs": (b"plain notes " + CANARY, "text/plain; charset=utf-8"),
        space("archive"): (big, "application/octet-stream"),
    }
    refs = {
        ns: sdk.upload_attachment(ns, data, content_type=kind).attachment_ref
        for ns, (data, kind) in files.items()
    }
    empty = sdk.upload_attachment(space("archive"), b"", content_type="text/plain")
    memory = sdk.store_memory("photos", "the grinder photo", attachment_ref=refs[space("photos")])
    record, data = backup_bytes(source)
    assert record["counts"]["attachments"] == 4
    assert record["counts"]["attachment_bytes"] == sum(len(d) for d, _ in files.values())

    status = restore(fresh, data)
    assert status["status"] == "completed", status
    assert status["counts"]["attachments"] == 4
    restored = DakeraClient(fresh.url, api_key=ROOT_KEY)
    for ns, (original, _kind) in files.items():
        before = sdk.download_attachment(ns, refs[ns])
        after = restored.download_attachment(ns, refs[ns])
        assert after.data == original == before.data
        assert (after.etag, after.content_type) == (before.etag, before.content_type)
    assert restored.download_attachment(space("archive"), empty.attachment_ref).data == b""
    kept = restored.get_memory("photos", memory["id"])
    assert kept["attachment_ref"] == refs[space("photos")]
    # One blob per attachment on the target: nothing staged was left behind.
    assert len(blob_files(fresh)) == 4


def test_target_namespaces_bring_only_their_files_and_dry_run_counts_them(
    source: RunningServer,
) -> None:
    sdk = DakeraClient(source.url, api_key=ROOT_KEY)
    a, b = space("alpha"), space("beta")
    kept_a = sdk.upload_attachment(a, b"alpha at backup time", content_type="text/plain")
    kept_b = sdk.upload_attachment(b, b"beta at backup time", content_type="text/plain")
    record, _ = backup_bytes(source)
    subset, _ = backup_bytes(source, namespaces=[a])
    assert subset["counts"]["attachments"] == 1
    assert subset["counts"]["attachment_bytes"] == len(b"alpha at backup time")
    later_a = sdk.upload_attachment(a, b"alpha after the backup", content_type="text/plain")
    later_b = sdk.upload_attachment(b, b"beta after the backup", content_type="text/plain")
    blobs_before = blob_files(source)
    with source.http() as http:
        dry = http.post(
            "/v1/admin/backups/restore",
            json={"backup_id": record["backup_id"], "target_namespaces": [a], "dry_run": True},
        )
        report = wait_restore(http, dry.json()["restore_id"])
        assert report["counts"]["attachments"] == 1
        assert report["counts"]["attachment_bytes"] == len(b"alpha at backup time")
        assert report["would_replace"]["attachments"] == 2
        assert blob_files(source) == blobs_before  # a dry run writes nothing
        real = http.post(
            "/v1/admin/backups/restore",
            json={"backup_id": record["backup_id"], "target_namespaces": [a], "overwrite": True},
        )
        done = wait_restore(http, real.json()["restore_id"])
        assert done["status"] == "completed", done
        assert done["replaced"]["attachments"] == 2
    assert [x.attachment_ref for x in sdk.list_attachments(a)] == [kept_a.attachment_ref]
    assert sdk.download_attachment(a, kept_a.attachment_ref).data == b"alpha at backup time"
    assert sorted(x.attachment_ref for x in sdk.list_attachments(b)) == sorted(
        [kept_b.attachment_ref, later_b.attachment_ref]
    )
    assert later_a.attachment_ref not in {x.attachment_ref for x in sdk.list_attachments(a)}
    # The replaced blobs of alpha are gone, beta's are untouched: one file per attachment.
    assert len(blob_files(source)) == 3


def test_an_encrypted_servers_backup_holds_no_byte_of_a_file(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    key = secrets.token_hex(32)
    origin = start_server(tmp_path / "enc", embedder, encryption_key=key, **FILES)
    target = start_server(tmp_path / "enc2", embedder, encryption_key=key, **FILES)
    try:
        text = b"the secret recipe: " + CANARY + b" " + CANARY.hex().encode()
        ref = (
            DakeraClient(origin.url, api_key=ROOT_KEY)
            .upload_attachment("vault", text, content_type="text/plain")
            .attachment_ref
        )
        for compression in ("gzip", "none"):
            record, data = backup_bytes(origin, compression=compression)
            assert record["encrypted"] is True and record["counts"]["attachments"] == 1
            on_disk = b"".join(p.read_bytes() for p in (tmp_path / "enc" / "backups").iterdir())
            for blob in (gzip.decompress(data), on_disk):
                assert CANARY not in blob and CANARY.hex().encode() not in blob
        assert restore(target, data)["status"] == "completed"
        got = DakeraClient(target.url, api_key=ROOT_KEY).download_attachment("vault", ref)
        assert got.data == text and got.etag == hashlib.sha256(text).hexdigest()
        # Restored sealed again under the target's key: no plaintext in its data dir either.
        for path in (tmp_path / "enc2").rglob("*"):
            if path.is_file():
                assert CANARY not in path.read_bytes(), path
    finally:
        origin.stop()
        target.stop()


def test_an_altered_file_in_a_backup_is_refused_and_changes_nothing(
    source: RunningServer, fresh: RunningServer
) -> None:
    payload = b"ledger line " + CANARY
    ref = (
        DakeraClient(source.url, api_key=ROOT_KEY)
        .upload_attachment("ledger", payload, content_type="text/plain")
        .attachment_ref
    )
    _, data = backup_bytes(source, compression="none")
    plain = gzip.decompress(data)
    at = plain.index(CANARY)  # unsealed, uncompressed: the file's bytes are in a 'B' frame
    tampered = bytearray(plain)
    tampered[at] ^= 0x20
    with fresh.http() as http:
        answer = http.post(
            "/v1/admin/backups/upload",
            content=gzip.compress(bytes(tampered)),
            headers={"Content-Type": "application/gzip"},
        )
        assert answer.status_code == 422 and answer.json()["code"] == "BACKUP_CHECKSUM_MISMATCH"
    # Someone who also recomputes the SHA-256 gets past the checksum, not past the check of
    # every file against its sha256 reference: the restore fails and writes nothing.
    body = bytes(tampered[:-38])
    forged = body + b"SHA256" + hashlib.sha256(body).digest()
    status = restore(fresh, gzip.compress(forged))
    assert status["status"] == "failed" and "reference" in status["errors"][0], status
    assert DakeraClient(fresh.url, api_key=ROOT_KEY).list_attachments("ledger") == []
    assert blob_files(fresh) == set()
    assert DakeraClient(source.url, api_key=ROOT_KEY).download_attachment("ledger", ref).data == (
        payload
    )


def test_a_file_deleted_while_the_backup_runs_is_still_in_it(
    source: RunningServer, fresh: RunningServer
) -> None:
    """The record is in the snapshot; its blob is deleted after the snapshot's instant (the
    engine deletes the blob right after the record's delete commits): the backup still holds
    the bytes, and the blob goes once the backup is done."""
    sdk = DakeraClient(source.url, api_key=ROOT_KEY)
    payload = os.urandom(300_000)
    ref = sdk.upload_attachment("fleeting", payload).attachment_ref
    engine = source.engine
    store = engine.portability.backups.store
    taking = store.snapshot
    deleted = threading.Event()

    @contextlib.contextmanager
    def snapshot_then_delete() -> Iterator[Any]:
        with taking() as view:
            engine.attachments.delete(SYSTEM_READER, "fleeting", ref)  # after the instant
            deleted.set()
            yield view

    store.snapshot = snapshot_then_delete  # type: ignore[method-assign]
    try:
        record, data = backup_bytes(source)
    finally:
        del store.snapshot
    assert deleted.is_set() and sdk.list_attachments("fleeting") == []
    assert blob_files(source) == set()  # the held delete ran when the backup ended
    assert record["counts"]["attachments"] == 1
    assert restore(fresh, data)["status"] == "completed"
    got = DakeraClient(fresh.url, api_key=ROOT_KEY).download_attachment("fleeting", ref)
    assert got.data == payload


def test_a_version_1_backup_restores_and_leaves_attachments_alone(
    source: RunningServer, fresh: RunningServer
) -> None:
    """Format version 1 had no attachments: restoring one (even with overwrite) replaces the
    rows it holds and keeps the server's files."""
    DakeraClient(source.url, api_key=ROOT_KEY).store_memory("old", "from an old backup")
    _, data = backup_bytes(source)
    plain = gzip.decompress(data)
    assert b'"format_version":2' in plain[:400]
    end = plain.index(b"}") + 1
    body = plain[:end].replace(b'"format_version":2', b'"format_version":1') + plain[end:-38]
    old = body + b"SHA256" + hashlib.sha256(body).digest()
    target = DakeraClient(fresh.url, api_key=ROOT_KEY)
    ref = target.upload_attachment("kept-files", b"still here", content_type="text/plain")
    status = restore(fresh, gzip.compress(old), overwrite=True)
    assert status["status"] == "completed", status
    assert "attachments" not in status["replaced"]
    assert target.recall("old", "old backup").memories[0].content == "from an old backup"
    assert target.download_attachment("kept-files", ref.attachment_ref).data == b"still here"
