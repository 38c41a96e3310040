"""The document engine: imports as jobs, and the list, detail and delete of documents.

Each agent's documents are held in memory (loaded from the ``documents`` table at start-up);
the chunks themselves are ordinary memories of the agent, recalled like any other, carrying
``_dakera_document`` provenance and the tag ``document:<id>``, and linked in reading order by
``precedes`` edges (chunk i → chunk i+1) in the knowledge graph.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from dakera_server.engine.access import Caller
from dakera_server.engine.attachments.service import AttachmentStore
from dakera_server.engine.documents.chunker import ChunkPlan, chunk_document
from dakera_server.engine.documents.extract import extract
from dakera_server.engine.documents.importer import ImportRequest, Prepared, prepare
from dakera_server.engine.documents.limits import ImportLimits
from dakera_server.engine.documents.models import (
    BREADCRUMB,
    DOCUMENT_META_KEY,
    DOCUMENT_TAG_PREFIX,
    ChunkEntry,
    DocumentRecord,
    chunk_id,
)
from dakera_server.engine.graph.knowledge_graph import KnowledgeGraph
from dakera_server.engine.graph.model import Edge
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.engine.rules import check_agent_id
from dakera_server.engine.tasks.runner import Task, TaskRunner
from dakera_server.errors import (
    FeatureDisabled,
    InvalidInput,
    JobNotFound,
    NamespaceAccessDenied,
    NotFound,
    PayloadTooLarge,
)
from dakera_server.storage.base import Op, Store

__all__ = ["JOB_TYPE", "DocumentEngine"]

JOB_TYPE = "document_import"
DEFAULT_PAGE = 50
MAX_PAGE = 500


class DocumentEngine:
    """Documents of every agent; see the module docstring."""

    def __init__(
        self,
        store: Store,
        memories: MemoryEngine,
        graph: KnowledgeGraph,
        attachments: AttachmentStore,
        tasks: TaskRunner,
        *,
        enabled: bool,
        defaults: ChunkPlan,
        limits: ImportLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.memories = memories
        self.graph = graph
        self.attachments = attachments
        self.tasks = tasks
        self.enabled = enabled
        self.defaults = defaults
        self.limits = limits
        self.clock = clock
        self._docs: dict[str, dict[str, DocumentRecord]] = {}
        self._lock = threading.Lock()
        attachments.referencers.insert(0, self.reference)  # name the document, not a chunk

    def load(self) -> int:
        """Read every document record, replacing what was held (start-up, and the reload after
        a restore); returns how many."""
        docs: dict[str, dict[str, DocumentRecord]] = {}
        count = 0
        for row in self.store.iter_rows("documents"):
            record = DocumentRecord.from_payload(row.payload)
            docs.setdefault(record.agent_id, {})[record.document_id] = record
            count += 1
        with self._lock:
            self._docs = docs
        return count

    # ------------------------------------------------------------------ checks
    def require_enabled(self) -> None:
        """501 ``FEATURE_DISABLED`` unless document import is on."""
        if not self.enabled:
            raise FeatureDisabled(
                "document import is not enabled on this server",
                details="set DAKERA_DOCUMENTS to enable it",
            )

    def _agent(self, caller: Caller, agent_id: Any) -> str:
        self.require_enabled()
        agent = check_agent_id(agent_id)
        if not caller.can_see_agent(agent):
            raise NamespaceAccessDenied(f"this key may not use agent '{agent}'")
        return agent

    # ------------------------------------------------------------------ imports
    def submit(self, caller: Caller, request: ImportRequest, *, text_only: bool) -> Task:
        """Check an import and queue its job (``202``); every refusal happens here."""
        self._agent(caller, request.agent_id)
        prepared = prepare(
            request,
            defaults=self.defaults,
            model_window=self.memories.embedder.max_tokens,
            limits=self.limits,
            max_content_bytes=self.memories.max_content_bytes,
            now=int(self.clock()),
            text_only=text_only,
        )
        metadata = {
            "namespace": f"_dakera_agent_{prepared.agent_id}",
            "agent_id": prepared.agent_id,
            "document_id": prepared.document_id,
            "media_type": request.media_type,
        }
        if request.attachment_ref is not None:
            metadata["attachment_ref"] = request.attachment_ref
            metadata["source_namespace"] = request.source_namespace or ""
        return self.tasks.submit(JOB_TYPE, metadata, lambda task: self._run(caller, prepared, task))

    def submit_attachment(
        self, caller: Caller, namespace: str, ref: str, request: ImportRequest
    ) -> Task:
        """An import of a stored attachment; its stored media type picks the parser."""
        self.require_enabled()
        attachment = self.attachments.get(caller, namespace, ref)
        self._agent(caller, request.agent_id)
        request.data = self.attachments.read_all(attachment, self.attachments.max_bytes)
        request.media_type = attachment.content_type.split(";", 1)[0]
        request.attachment_ref = attachment.ref
        request.source_namespace = namespace
        request.filename = attachment.filename
        return self.submit(caller, request, text_only=False)

    def _run(self, caller: Caller, prepared: Prepared, task: Task) -> None:
        agent, document_id = prepared.agent_id, prepared.document_id
        with self._lock:
            existing = self._docs.get(agent, {}).get(document_id)
        if existing is not None and existing.fingerprint == prepared.fingerprint:
            live = self.memories.agent(caller, agent)
            if live is not None and all(c.id in live.memories for c in existing.chunks):
                task.report(1, 1, f"unchanged: chunks_stored {existing.chunk_count}/"
                                  f"{existing.chunk_count}")  # fmt: skip
                return
        task.report(0, 1, "extracting text")
        extracted = extract(prepared.kind, prepared.request.data, self.limits)
        chunks = chunk_document(extracted, prepared.plan)
        if len(chunks) > self.limits.max_chunks:
            raise PayloadTooLarge(
                f"the document makes {len(chunks)} chunks; the limit is "
                f"{self.limits.max_chunks} (DAKERA_DOCUMENT_MAX_CHUNKS)"
            )
        now = int(self.clock())
        title = prepared.title or extracted.title or prepared.request.filename
        request = prepared.request
        record = DocumentRecord(
            document_id=document_id,
            agent_id=agent,
            title=title,
            media_type=request.media_type,
            chunk_count=len(chunks),
            bytes=len(request.data),
            pages=extracted.pages,
            created_at=existing.created_at if existing is not None else now,
            updated_at=now,
            sha256=prepared.sha256,
            fingerprint=prepared.fingerprint,
            attachment_ref=request.attachment_ref,
            source_namespace=request.source_namespace,
            decompose=prepared.decompose,
        )
        items = []
        for index, chunk in enumerate(chunks):
            path = [title, *chunk.path] if title else list(chunk.path)
            if len(path) > 1 and path[0] == path[1]:  # the title is also the first heading
                path = path[1:]
            entry = ChunkEntry.of(chunk_id(agent, document_id, index), index, chunk, path)
            record.chunks.append(entry)
            items.append(self._chunk_memory(agent, record, entry, chunk.text, request.fields))
        task.report(0, len(items), f"chunks_stored 0/{len(items)}")
        self.memories.store(
            caller,
            items,
            [Op.put("documents", document_id, record.to_payload(), group=agent)],
        )
        stale = [c.id for c in existing.chunks[len(chunks) :]] if existing is not None else []
        if stale:
            self.memories.apply(agent, delete=stale)
        ids = [entry.id for entry in record.chunks]
        self.graph.add_edges(
            agent,
            [Edge(a, b, "precedes", 1.0, now, document_id) for a, b in itertools.pairwise(ids)],
        )
        with self._lock:
            self._docs.setdefault(agent, {})[document_id] = record
        if existing is not None and existing.attachment_ref not in (None, record.attachment_ref):
            self.attachments.collect(existing.source_namespace or "", existing.attachment_ref)
        task.report(len(items), len(items), f"chunks_stored {len(items)}/{len(items)}")

    @staticmethod
    def _chunk_memory(
        agent: str, record: DocumentRecord, entry: ChunkEntry, text: str, fields: dict[str, Any]
    ) -> NewMemory:
        breadcrumb = BREADCRUMB.join(entry.heading_path)
        tags = [*(fields.get("tags") or []), DOCUMENT_TAG_PREFIX + record.document_id]
        return NewMemory(
            agent_id=agent,
            content=f"{breadcrumb}\n\n{text}" if breadcrumb else text,
            memory_type=fields.get("memory_type"),
            importance=fields.get("importance"),
            tags=list(dict.fromkeys(tags)),
            metadata=fields.get("metadata"),
            session_id=fields.get("session_id"),
            ttl_seconds=fields.get("ttl_seconds"),
            expires_at=fields.get("expires_at"),
            id=entry.id,
            attachment_ref=record.attachment_ref,
            reserved_metadata={DOCUMENT_META_KEY: record.chunk_meta(entry)},
        )

    def job(self, caller: Caller, job_id: str, agent_id: Any) -> Task:
        """An import job, visible to keys that may read its agent."""
        self.require_enabled()
        task = self.tasks.get(job_id, JOB_TYPE)
        owner = task.metadata.get("agent_id", "")
        if agent_id is not None and agent_id != owner:
            raise JobNotFound(f"job '{job_id}' not found", resource="job")
        if not caller.can_see_agent(owner):
            raise JobNotFound(f"job '{job_id}' not found", resource="job")
        return task

    # ------------------------------------------------------------------ reads and deletes
    def list(
        self, caller: Caller, agent_id: Any, cursor: str | None, limit: int | None
    ) -> tuple[list[DocumentRecord], str | None]:
        """One page of the agent's documents sorted by id, and the cursor of the next."""
        agent = self._agent(caller, agent_id)
        size = DEFAULT_PAGE if limit is None else limit
        if not 1 <= size <= MAX_PAGE:
            raise InvalidInput(f"'limit' must be between 1 and {MAX_PAGE}")
        with self._lock:
            records = sorted(self._docs.get(agent, {}).values(), key=lambda r: r.document_id)
        if cursor:
            records = [r for r in records if r.document_id > cursor]
        page = records[:size]
        more = len(records) > size
        return page, (page[-1].document_id if more and page else None)

    def get(self, caller: Caller, agent_id: Any, document_id: str) -> DocumentRecord:
        """One document (404 ``NOT_FOUND`` with ``resource: document``)."""
        agent = self._agent(caller, agent_id)
        with self._lock:
            record = self._docs.get(agent, {}).get(document_id)
        if record is None:
            raise NotFound(f"document '{document_id}' not found", resource="document")
        return record

    def delete(self, caller: Caller, agent_id: Any, document_id: str) -> int:
        """Delete a document and all of its chunks (their edges go with them); returns how
        many chunk memories were removed."""
        record = self.get(caller, agent_id, document_id)
        agent = record.agent_id
        live = self.memories.agent(caller, agent)
        present = [c.id for c in record.chunks if live is not None and c.id in live.memories]
        self.memories.apply(
            agent,
            delete=[c.id for c in record.chunks],
            extra_ops=[Op.delete("documents", document_id, group=agent)],
        )
        with self._lock:
            self._docs.get(agent, {}).pop(document_id, None)
        if record.attachment_ref is not None and record.source_namespace is not None:
            self.attachments.collect(record.source_namespace, record.attachment_ref)
        return len(present)

    def reference(self, namespace: str, ref: str) -> str | None:
        """Attachment referencer: a document imported from ``namespace``/``ref``."""
        with self._lock:
            for documents in self._docs.values():
                for record in documents.values():
                    if record.source_namespace == namespace and record.attachment_ref == ref:
                        return f"document '{record.document_id}'"
        return None
