"""Document import through the SDK: real Markdown, HTML, text, PDF and DOCX files become chunk
memories that recall finds by section; list, detail, re-import, delete; the limits and the
bombs are 400s that store nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from dakera import DakeraClient
from dakera.exceptions import (
    DakeraError,
    FeatureNotAvailableError,
    NotFoundError,
    ValidationError,
)
from dakera.models import DocumentChunkMeta

from dakera_server.engine.graph.model import SYSTEM
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.files import (
    make_docx,
    make_html,
    make_markdown,
    make_pages,
    make_pdf,
    make_pdf_bomb,
    make_zip_bomb,
)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def files_server(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: EmbeddingProvider,
    fresh_storage: Callable[[], dict[str, Any]],
) -> Iterator[RunningServer]:
    """Attachments and documents on; small page and text limits so bombs stay small."""
    running = start_server(
        tmp_path_factory.mktemp("documents"),
        embedder,
        **fresh_storage(),
        attachments_enabled=True,
        documents_enabled=True,
        document_max_pages=40,
        document_max_text_bytes=5_000_000,
        document_max_chunks=200,
    )
    yield running
    running.stop()


@pytest.fixture
def sdk(files_server: RunningServer) -> Iterator[DakeraClient]:
    client = DakeraClient(files_server.url, api_key=ROOT_KEY)
    yield client
    client.close()


def run_import(sdk: DakeraClient, agent: str, accepted: Any) -> Any:
    job = sdk.wait_for_document_job(accepted.job_id, agent, timeout=120, poll_interval=0.1)
    assert job.status == "Completed", job.raw
    return job


def upload_and_import(sdk: DakeraClient, agent: str, data: bytes, media: str) -> Any:
    space = f"_dakera_agent_{agent}"
    ref = sdk.upload_attachment(space, data, content_type=media).attachment_ref
    accepted = sdk.import_attachment_document(space, ref, agent)
    run_import(sdk, agent, accepted)
    return accepted


def tagged(server: RunningServer, agent: str, document_id: str) -> list[str]:
    """Ids of the agent's memories tagged with the document (straight from the engine)."""
    held = server.engine.memories.agent(SYSTEM, agent)
    if held is None:
        return []
    return sorted(m.id for m in held.memories.values() if f"document:{document_id}" in m.tags)


def top_chunk(sdk: DakeraClient, agent: str, question: str) -> DocumentChunkMeta:
    recalled = sdk.recall(agent, question, top_k=3)
    meta = DocumentChunkMeta.from_memory(recalled.memories[0])
    assert meta is not None, recalled.memories[0]
    return meta


@pytest.mark.parametrize("kind", ["markdown", "html", "pdf", "docx"])
def test_recall_finds_the_section_a_question_is_about(
    sdk: DakeraClient, agent_id: str, kind: str
) -> None:
    if kind == "markdown":
        accepted = sdk.import_document(agent_id, make_markdown(), media_type="text/markdown")
        run_import(sdk, agent_id, accepted)
    elif kind == "html":
        accepted = sdk.import_document(agent_id, make_html(), media_type="text/html")
        run_import(sdk, agent_id, accepted)
    elif kind == "pdf":
        accepted = upload_and_import(sdk, agent_id, make_pdf(), "application/pdf")
    else:
        accepted = upload_and_import(sdk, agent_id, make_docx(), DOCX)
    meta = top_chunk(sdk, agent_id, "How do I remove limescale with citric acid?")
    assert meta.id == accepted.document_id
    assert meta.heading_path[-1] == "Descaling"
    assert meta.heading_path[0] == "Espresso manual"
    meta = top_chunk(sdk, agent_id, "How long is the warranty and what do I need for a claim?")
    assert meta.heading_path[-1] == "Warranty"
    if kind == "pdf":
        assert meta.page_start == meta.page_end == 3
        assert meta.pages == 3


def test_chunks_carry_provenance_and_link_in_order(
    sdk: DakeraClient, agent_id: str, files_server: RunningServer
) -> None:
    accepted = sdk.import_document(
        agent_id, make_markdown(), media_type="text/markdown", tags=["manual"]
    )
    job = run_import(sdk, agent_id, accepted)
    assert job.document_id == accepted.document_id and job.message == "chunks_stored 3/3"
    detail = sdk.get_document(accepted.document_id, agent_id)
    assert detail.document.chunk_count == len(detail.chunks) == 3
    assert [c.chunk_index for c in detail.chunks] == [0, 1, 2]
    assert all(c.id.startswith("doc_") for c in detail.chunks)
    memory = sdk.get_memory(agent_id, detail.chunks[1].id)
    assert memory["content"].startswith("Espresso manual › Descaling\n\n")
    assert set(memory["tags"]) == {"manual", f"document:{accepted.document_id}"}
    meta = DocumentChunkMeta.from_memory(memory)
    assert meta is not None and meta.chunk_index == 1 and meta.chunk_count == 3
    assert meta.sha256 and meta.char_end > meta.char_start
    assert "Limescale" in memory["content"]
    with httpx.Client(
        base_url=files_server.url, headers={"Authorization": f"Bearer {ROOT_KEY}"}
    ) as raw:
        edges = raw.get(f"/v1/agents/{agent_id}/graph/export", params={"format": "json"}).json()[
            "edges"
        ]
    follows = {(e["from_id"], e["to_id"]) for e in edges if e["edge_type"] == "precedes"}
    ids = [c.id for c in detail.chunks]
    assert follows == {(ids[0], ids[1]), (ids[1], ids[2])}


def test_reimporting_the_same_bytes_does_not_duplicate(
    sdk: DakeraClient, agent_id: str, files_server: RunningServer
) -> None:
    first = sdk.import_document(agent_id, make_markdown(), media_type="text/markdown")
    run_import(sdk, agent_id, first)
    second = sdk.import_document(agent_id, make_markdown(), media_type="text/markdown")
    job = run_import(sdk, agent_id, second)
    assert second.document_id == first.document_id
    assert job.message is not None and job.message.startswith("unchanged")
    assert len(sdk.list_documents(agent_id).documents) == 1
    assert len(tagged(files_server, agent_id, first.document_id)) == 3


def test_a_changed_document_replaces_its_chunks(
    sdk: DakeraClient, agent_id: str, files_server: RunningServer
) -> None:
    first = sdk.import_document(agent_id, make_markdown(), media_type="text/markdown",
                                document_id="manual")  # fmt: skip
    run_import(sdk, agent_id, first)
    shorter = "# Espresso manual\n\n## Descaling\n\nUse vinegar never.\n"
    second = sdk.import_document(agent_id, shorter, media_type="text/markdown",
                                 document_id="manual")  # fmt: skip
    run_import(sdk, agent_id, second)
    detail = sdk.get_document("manual", agent_id)
    assert detail.document.chunk_count == 1
    assert len(tagged(files_server, agent_id, "manual")) == 1


def test_list_pages_with_a_cursor(sdk: DakeraClient, agent_id: str) -> None:
    for index in range(5):
        accepted = sdk.import_document(agent_id, f"Note number {index}: brew at dawn.",
                                       document_id=f"note-{index}")  # fmt: skip
        run_import(sdk, agent_id, accepted)
    first = sdk.list_documents(agent_id, limit=2)
    assert [d.document_id for d in first.documents] == ["note-0", "note-1"]
    assert first.next_cursor == "note-1"
    seen = [d.document_id for d in sdk.iter_documents(agent_id, page_size=2)]
    assert seen == [f"note-{i}" for i in range(5)]
    last = sdk.list_documents(agent_id, cursor="note-3", limit=2)
    assert [d.document_id for d in last.documents] == ["note-4"] and last.next_cursor is None


def test_delete_removes_every_chunk_and_its_edges(
    sdk: DakeraClient, agent_id: str, files_server: RunningServer
) -> None:
    accepted = sdk.import_document(agent_id, make_markdown(), media_type="text/markdown")
    run_import(sdk, agent_id, accepted)
    ids = [c.id for c in sdk.get_document(accepted.document_id, agent_id).chunks]
    answer = sdk.delete_document(accepted.document_id, agent_id)
    assert answer.deleted_chunks == 3
    for chunk in ids:
        with pytest.raises(NotFoundError):
            sdk.get_memory(agent_id, chunk)
    graph = files_server.engine.graph.graph(agent_id)
    assert graph is None or not any(e.edge_type == "precedes" for e in graph.edges.values())
    with pytest.raises(NotFoundError):
        sdk.get_document(accepted.document_id, agent_id)
    with pytest.raises(NotFoundError):
        sdk.delete_document(accepted.document_id, agent_id)


def test_deleting_an_imported_file_is_a_conflict_until_its_document_goes(
    sdk: DakeraClient, agent_id: str
) -> None:
    space = "docs-" + agent_id[-6:]
    ref = sdk.upload_attachment(space, make_pdf(), content_type="application/pdf").attachment_ref
    accepted = sdk.import_attachment_document(space, ref, agent_id)
    run_import(sdk, agent_id, accepted)
    summary = sdk.list_documents(agent_id).documents[0]
    assert summary.attachment_ref == ref and summary.pages == 3
    with pytest.raises(DakeraError) as refused:
        sdk.delete_attachment(space, ref)
    assert refused.value.status_code == 409
    sdk.delete_document(accepted.document_id, agent_id)
    # The SDK documents it: the file goes once no document or memory references it.
    assert sdk.list_attachments(space) == []


def test_chunking_options_are_strict_and_checked(
    sdk: DakeraClient, agent_id: str, files_server: RunningServer
) -> None:
    # The SDK refuses an unknown chunking key itself; the server must too (422, strict).
    with files_server.http() as raw:
        unknown = raw.post(
            "/v1/memory/documents",
            json={"agent_id": agent_id, "content": "text", "chunking": {"size": 3}},
        )
    assert unknown.status_code == 422 and unknown.json()["code"] == "UNPROCESSABLE_CONTENT"
    with pytest.raises(ValidationError):
        sdk.import_document(agent_id, "text", chunking={"strategy": "sentences"})
    small = sdk.import_document(
        agent_id, make_markdown(), media_type="text/markdown",
        chunking={"max_tokens": 16, "overlap_tokens": 4, "strategy": "fixed"},
    )  # fmt: skip
    run_import(sdk, agent_id, small)
    assert sdk.get_document(small.document_id, agent_id).document.chunk_count > 6


def test_bad_imports_are_refused_before_a_job_exists(sdk: DakeraClient, agent_id: str) -> None:
    with pytest.raises(DakeraError) as media:
        sdk.import_document(agent_id, "%PDF-1.4", media_type="application/pdf")
    assert media.value.status_code == 415
    with pytest.raises(ValidationError):
        sdk.import_document(agent_id, "x", metadata={"_dakera_document": {}})
    with pytest.raises(ValidationError):
        sdk.import_document(agent_id, "x", tags=["ok", ""])
    assert sdk.list_documents(agent_id).documents == []


@pytest.mark.parametrize(
    ("data", "media", "limit"),
    [
        (make_pdf_bomb(), "application/pdf", "per-stream decompression limit"),
        (make_pages(41, words_per_page=20), "application/pdf", "DAKERA_DOCUMENT_MAX_PAGES"),
        (make_zip_bomb(3_000_000), DOCX, "compression ratio limit"),
        (make_zip_bomb(6_000_000), DOCX, "DAKERA_DOCUMENT_MAX_TEXT_BYTES"),
    ],
    ids=["pdf-stream-bomb", "pdf-pages", "docx-ratio", "docx-size"],
)
def test_bombs_are_a_400_naming_the_limit_and_store_nothing(
    sdk: DakeraClient,
    agent_id: str,
    files_server: RunningServer,
    data: bytes,
    media: str,
    limit: str,
) -> None:
    space = f"_dakera_agent_{agent_id}"
    ref = sdk.upload_attachment(space, data, content_type=media).attachment_ref
    before = files_server.engine.store.count("memories")
    with pytest.raises(ValidationError) as refused:
        sdk.import_attachment_document(space, ref, agent_id)
    assert limit in str(refused.value)
    assert files_server.engine.store.count("memories") == before
    assert sdk.list_documents(agent_id).documents == []


def test_too_many_chunks_fail_the_job_and_store_nothing(
    sdk: DakeraClient, agent_id: str, files_server: RunningServer
) -> None:
    text = "\n\n".join(f"Paragraph {i} about grinder burr sizes." for i in range(400))
    accepted = sdk.import_document(agent_id, text, chunking={"max_tokens": 16})
    job = sdk.wait_for_document_job(accepted.job_id, agent_id, timeout=60, poll_interval=0.1)
    assert job.status == "Failed" and job.error_status == 413
    assert job.error_code == "PAYLOAD_TOO_LARGE"
    assert sdk.list_documents(agent_id).documents == []
    assert tagged(files_server, agent_id, accepted.document_id) == []


def test_jobs_are_per_agent(sdk: DakeraClient, agent_id: str) -> None:
    accepted = sdk.import_document(agent_id, "Grind fine for espresso.")
    run_import(sdk, agent_id, accepted)
    with pytest.raises(NotFoundError):
        sdk.get_document_job(accepted.job_id, "someone-else")
    with pytest.raises(NotFoundError):
        sdk.get_document_job("job_00000000_99", agent_id)


def test_capabilities_describe_the_lane(sdk: DakeraClient) -> None:
    documents = sdk.capabilities(refresh=True).documents
    assert documents.enabled and documents.default_chunk_tokens == 400
    assert "application/pdf" in documents.media_types
    assert documents.strategies == ["structure", "fixed"]


def test_the_lane_is_off_by_default(server: RunningServer, client: DakeraClient) -> None:
    with pytest.raises(FeatureNotAvailableError) as off:
        client.import_document("agent-x", "text")
    assert off.value.is_feature_disabled and "DAKERA_DOCUMENTS" in str(off.value.details)
    assert client.capabilities(refresh=True).documents.enabled is False
