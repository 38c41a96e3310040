"""Attachments and imported documents under encryption at rest: no canary of a file or of its
chunks in any file of the data directory; a tampered stored file is refused; a key rotation
and a later restart keep every file readable; files stored before encryption was switched on
are sealed at the next start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dakera import DakeraClient
from dakera.exceptions import ServerError

from tests.conftest import ROOT_KEY, start_server
from tests.files import make_docx

PASSPHRASE = "correct horse battery staple"
NEW_PASSPHRASE = "another long passphrase 42"
CANARY = "CANARYfz9q"
LANES = {"attachments_enabled": True, "documents_enabled": True}


def disk_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())


def blobs(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "attachments").glob("??/*") if p.is_file()]


def wait(sdk: DakeraClient, agent: str, job_id: str) -> None:
    job = sdk.wait_for_document_job(job_id, agent, timeout=120, poll_interval=0.1)
    assert job.status == "Completed", job.raw


def test_no_canary_from_a_file_or_its_chunks_reaches_the_disk(
    tmp_path: Path, embedder: Any
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, embedder, encryption_key=PASSPHRASE, **LANES)
    sdk = DakeraClient(server.url, api_key=ROOT_KEY)
    try:
        space = "_dakera_agent_enc"
        text = f"# Vault\n\n## Codes\n\nThe door code is {CANARY} and nobody else knows it.\n"
        note = sdk.upload_attachment(space, text.encode(), content_type="text/markdown")
        wait(sdk, "enc", sdk.import_attachment_document(space, note.attachment_ref, "enc").job_id)
        inline = sdk.import_document("enc", f"Inline copy: {CANARY} again.", title="copy")
        wait(sdk, "enc", inline.job_id)
        sections = [("Codes", [f"The safe opens with {CANARY}."])]
        word = sdk.upload_attachment(
            space,
            make_docx(sections),
            content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )
        wait(sdk, "enc", sdk.import_attachment_document(space, word.attachment_ref, "enc").job_id)
        recalled = sdk.recall("enc", "what is the door code?", top_k=5)
        assert any(CANARY in m.content for m in recalled.memories)
        assert CANARY.encode() in sdk.download_attachment(space, note.attachment_ref).data
        assert CANARY.encode() not in disk_bytes(data_dir)
        assert PASSPHRASE.encode() not in disk_bytes(data_dir)
    finally:
        sdk.close()
        server.stop()
    assert CANARY.encode() not in disk_bytes(data_dir)
    assert len(blobs(data_dir)) == 2


def test_a_tampered_stored_file_is_refused(tmp_path: Path, embedder: Any) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir, embedder, encryption_key=PASSPHRASE, **LANES)
    sdk = DakeraClient(server.url, api_key=ROOT_KEY)
    try:
        ref = sdk.upload_attachment("vault", b"ledger " * 50_000, content_type="text/plain")
        (blob,) = blobs(data_dir)
        sealed = bytearray(blob.read_bytes())
        sealed[100] ^= 0x01
        blob.write_bytes(bytes(sealed))
        with pytest.raises(ServerError) as refused:
            sdk.download_attachment("vault", ref.attachment_ref)
        assert refused.value.status_code == 500
        assert "ledger" not in str(refused.value)
    finally:
        sdk.close()
        server.stop()


def test_files_survive_rotation_and_restart(tmp_path: Path, embedder: Any) -> None:
    data_dir = tmp_path / "data"
    payload = b"quarterly figures " * 20_000  # several sealed records
    server = start_server(data_dir, embedder, encryption_key=PASSPHRASE, **LANES)
    sdk = DakeraClient(server.url, api_key=ROOT_KEY)
    try:
        ref = sdk.upload_attachment("vault", payload, content_type="text/plain").attachment_ref
        before = [p.read_bytes() for p in blobs(data_dir)]
        assert sdk.rotate_encryption_key(new_key=NEW_PASSPHRASE).reseal == "completed"
        assert sdk.download_attachment("vault", ref).data == payload
        # The file itself did not change: only its data key was re-wrapped with the store.
        assert [p.read_bytes() for p in blobs(data_dir)] == before
    finally:
        sdk.close()
        server.stop()
    again = start_server(data_dir, embedder, encryption_key=NEW_PASSPHRASE, **LANES)
    sdk = DakeraClient(again.url, api_key=ROOT_KEY)
    try:
        assert sdk.download_attachment("vault", ref).data == payload
    finally:
        sdk.close()
        again.stop()


def test_files_stored_before_encryption_are_sealed_at_the_next_start(
    tmp_path: Path, embedder: Any
) -> None:
    data_dir = tmp_path / "data"
    secret = f"plain {CANARY} file".encode() * 100
    server = start_server(data_dir, embedder, **LANES)
    sdk = DakeraClient(server.url, api_key=ROOT_KEY)
    try:
        ref = sdk.upload_attachment("vault", secret, content_type="text/plain").attachment_ref
    finally:
        sdk.close()
        server.stop()
    assert CANARY.encode() in disk_bytes(data_dir / "attachments")
    server = start_server(data_dir, embedder, encryption_key=PASSPHRASE, **LANES)
    sdk = DakeraClient(server.url, api_key=ROOT_KEY)
    try:
        assert sdk.download_attachment("vault", ref).data == secret
    finally:
        sdk.close()
        server.stop()
    assert CANARY.encode() not in disk_bytes(data_dir)
