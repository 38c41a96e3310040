"""Attachments through the SDK and raw HTTP: content-addressed upload, list, download with the
stored type and ETag, the browser-safety headers, the type check against the bytes, size and
digest refusals that leave nothing on disk, 409 while referenced, clean-up with the last
memory."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dakera import DakeraClient
from dakera.exceptions import (
    ConflictError,
    DakeraError,
    FeatureNotAvailableError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationError,
)

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.files import make_pdf, make_png, make_wav

LIMIT = 200_000


@pytest.fixture(scope="module")
def files_server(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: EmbeddingProvider,
    fresh_storage: Callable[[], dict[str, Any]],
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("attachments"),
        embedder,
        **fresh_storage(),
        attachments_enabled=True,
        max_attachment_bytes=LIMIT,
    )
    yield running
    running.stop()


@pytest.fixture
def sdk(files_server: RunningServer) -> Iterator[DakeraClient]:
    client = DakeraClient(files_server.url, api_key=ROOT_KEY)
    yield client
    client.close()


def blob_files(server: RunningServer) -> set[str]:
    """Every stored blob, committed or not: files under the data dir (their temp files too), or
    the rows of the PostgreSQL blob table."""
    if server.settings.storage_url is not None:
        with psycopg.connect(server.settings.storage_url) as conn:
            return {str(name) for (name,) in conn.execute("SELECT name FROM dakera.blobs")}
    root = Path(server.settings.data_dir) / "attachments"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_upload_is_content_addressed_and_idempotent(sdk: DakeraClient, agent_id: str) -> None:
    space = f"_dakera_agent_{agent_id}"
    data = make_pdf()
    first = sdk.upload_attachment(space, data, content_type="application/pdf")
    assert first.attachment_ref == "sha256:" + hashlib.sha256(data).hexdigest()
    assert first.created and first.size_bytes == len(data)
    again = sdk.upload_attachment(space, data, content_type="application/pdf")
    assert again.attachment_ref == first.attachment_ref and not again.created
    listed = sdk.list_attachments(space)
    assert [(a.attachment_ref, a.content_type, a.size_bytes) for a in listed] == [
        (first.attachment_ref, "application/pdf", len(data))
    ]


def test_download_streams_the_bytes_with_type_etag_and_safety_headers(
    sdk: DakeraClient, files_server: RunningServer, agent_id: str
) -> None:
    space = f"_dakera_agent_{agent_id}"
    page = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
    ref = sdk.upload_attachment(space, page, content_type="text/html").attachment_ref
    got = sdk.download_attachment(space, ref)
    assert got.data == page and got.content_type == "text/html"
    assert got.etag == ref.split(":")[1]
    with files_server.http() as raw:
        answer = raw.get(f"/v1/namespaces/{space}/attachments/{ref}")
        assert answer.headers["content-disposition"].startswith("attachment;")
        assert answer.headers["x-content-type-options"] == "nosniff"
        policies = answer.headers.get_list("content-security-policy")
        assert any("sandbox" in p for p in policies)
        assert answer.headers["content-length"] == str(len(page))
        again = raw.get(
            f"/v1/namespaces/{space}/attachments/{ref}",
            headers={"If-None-Match": answer.headers["etag"]},
        )
        assert again.status_code == 304 and again.content == b""


def test_a_file_name_is_kept_and_checked(files_server: RunningServer, agent_id: str) -> None:
    space = f"_dakera_agent_{agent_id}"
    with files_server.http() as raw:
        stored = raw.post(
            f"/v1/namespaces/{space}/attachments",
            params={"filename": "grinder notes.txt"},
            content=b"burr size 12",
            headers={"Content-Type": "text/plain"},
        )
        assert stored.status_code == 201 and stored.json()["filename"] == "grinder notes.txt"
        ref = stored.json()["attachment_ref"]
        got = raw.get(f"/v1/namespaces/{space}/attachments/{ref}")
        assert 'filename="grinder notes.txt"' in got.headers["content-disposition"]
        for bad in ("../../etc/passwd", "<script>alert(1)</script>.html"):
            refused = raw.post(
                f"/v1/namespaces/{space}/attachments",
                params={"filename": bad},
                content=b"x",
                headers={"Content-Type": "text/plain"},
            )
            assert refused.status_code == 400, bad


def test_the_body_is_a_file_not_input_to_scan(sdk: DakeraClient, agent_id: str) -> None:
    space = f"_dakera_agent_{agent_id}"
    sql_tutorial = b"SELECT * FROM users WHERE name = '' OR 1=1; DROP TABLE users; --"
    stored = sdk.upload_attachment(space, sql_tutorial, content_type="text/plain")
    assert sdk.download_attachment(space, stored.attachment_ref).data == sql_tutorial
    broken_json = b'{"not": json'
    stored = sdk.upload_attachment(space, broken_json, content_type="application/json")
    assert sdk.download_attachment(space, stored.attachment_ref).data == broken_json


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (b"<html><body>hi</body></html>", "image/png"),
        (make_png(), "application/pdf"),
        (b"%PDF-1.4 not really", "image/png"),
        (make_wav(), "text/plain"),
        (b"<svg onload=alert(1)>", "video/mp4"),
        (b"plain words", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ],
)
def test_a_type_the_bytes_contradict_is_refused(
    sdk: DakeraClient, files_server: RunningServer, agent_id: str, data: bytes, declared: str
) -> None:
    space = f"_dakera_agent_{agent_id}"
    before = blob_files(files_server)
    with pytest.raises(DakeraError) as refused:
        sdk.upload_attachment(space, data, content_type=declared)
    assert refused.value.status_code == 415
    assert sdk.list_attachments(space) == []
    assert blob_files(files_server) == before


def test_oversize_uploads_are_refused_and_leave_nothing(
    files_server: RunningServer, sdk: DakeraClient, agent_id: str
) -> None:
    space = f"_dakera_agent_{agent_id}"
    before = blob_files(files_server)
    with pytest.raises(PayloadTooLargeError) as declared:
        sdk.upload_attachment(space, b"a" * (LIMIT + 1), content_type="text/plain")
    assert "DAKERA_MAX_ATTACHMENT_BYTES" in str(declared.value)

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(LIMIT // 10_000 + 5):
            yield b"b" * 10_000

    with files_server.http() as raw:
        streamed = raw.post(
            f"/v1/namespaces/{space}/attachments",
            content=chunked(),
            headers={"Content-Type": "text/plain"},
        )
    assert streamed.status_code == 413
    assert sdk.list_attachments(space) == []
    assert blob_files(files_server) == before


def test_an_upload_changed_in_transit_is_refused(
    files_server: RunningServer, sdk: DakeraClient, agent_id: str
) -> None:
    space = f"_dakera_agent_{agent_id}"
    sent = b"the original bytes"
    digest = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    with files_server.http() as raw:
        refused = raw.post(
            f"/v1/namespaces/{space}/attachments",
            content=sent,
            headers={"Content-Type": "text/plain", "Content-Digest": f"sha-256=:{digest}:"},
        )
        assert refused.status_code == 400 and "Content-Digest" in refused.json()["error"]
        good = base64.b64encode(hashlib.sha256(sent).digest()).decode()
        accepted = raw.post(
            f"/v1/namespaces/{space}/attachments",
            content=sent,
            headers={"Content-Type": "text/plain", "Content-Digest": f"sha-256=:{good}:"},
        )
        assert accepted.status_code == 201
    assert len(sdk.list_attachments(space)) == 1


def test_a_referenced_attachment_cannot_be_deleted_and_goes_with_its_last_memory(
    sdk: DakeraClient, files_server: RunningServer, agent_id: str
) -> None:
    space = f"_dakera_agent_{agent_id}"
    before = blob_files(files_server)
    ref = sdk.upload_attachment(space, make_png(), content_type="image/png").attachment_ref
    assert len(blob_files(files_server) - before) == 1
    first = sdk.store_memory(agent_id, "A photo of the grinder", attachment_ref=ref)
    second = sdk.store_memory(agent_id, "The same photo, cropped", attachment_ref=ref)
    with pytest.raises(ConflictError):
        sdk.delete_attachment(space, ref)
    sdk.forget(agent_id, first["id"])
    assert len(sdk.list_attachments(space)) == 1
    sdk.forget(agent_id, second["id"])
    assert sdk.list_attachments(space) == []
    assert blob_files(files_server) - before == set()


def test_a_memory_may_only_reference_a_stored_attachment(sdk: DakeraClient, agent_id: str) -> None:
    with pytest.raises(ValidationError):
        sdk.store_memory(agent_id, "dangling", attachment_ref="sha256:" + "0" * 64)
    with pytest.raises(ValidationError):
        sdk.store_memory(agent_id, "malformed", attachment_ref="not-a-ref")


def test_delete_and_missing(sdk: DakeraClient, agent_id: str) -> None:
    space = f"_dakera_agent_{agent_id}"
    ref = sdk.upload_attachment(space, b"delete me", content_type="text/plain").attachment_ref
    sdk.delete_attachment(space, ref)
    with pytest.raises(NotFoundError) as missing:
        sdk.download_attachment(space, ref)
    assert missing.value.resource == "attachment"
    with pytest.raises(NotFoundError):
        sdk.delete_attachment(space, ref)
    with pytest.raises(ValidationError):
        sdk.download_attachment(space, "sha256:xyz")


def test_namespaces_are_isolated(files_server: RunningServer, sdk: DakeraClient) -> None:
    ref = sdk.upload_attachment("tenant-one", b"secret plan", content_type="text/plain")
    with files_server.http() as root:
        key = root.post(
            "/admin/keys",
            json={"name": "tenant-two", "scope": "write", "namespaces": ["tenant-two"]},
        ).json()["key"]
    other = DakeraClient(files_server.url, api_key=key)
    try:
        with pytest.raises(NotFoundError):
            other.download_attachment("tenant-one", ref.attachment_ref)
        with pytest.raises(NotFoundError):
            other.list_attachments("tenant-one")
        assert other.upload_attachment("tenant-two", b"mine", content_type="text/plain").created
    finally:
        other.close()


def test_the_lane_is_off_by_default(client: DakeraClient) -> None:
    with pytest.raises(FeatureNotAvailableError) as off:
        client.upload_attachment("anything", b"bytes", content_type="text/plain")
    assert off.value.is_feature_disabled and "DAKERA_ATTACHMENTS" in str(off.value.details)
