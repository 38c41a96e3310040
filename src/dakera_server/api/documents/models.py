"""Wire models of the document, attachment-job and record routes (dakera-api.md §5.1).

``chunking`` is strict (the contract: unknown fields are a 422); the rest ignores unknown
fields. Types are checked here; meaning (limits, patterns) in the engine.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "MEMORY_FIELDS",
    "ChunkingOptions",
    "ImportAttachmentDocumentRequest",
    "ImportDocumentRequest",
    "MediaJobRequest",
    "UpsertRecordsRequest",
    "memory_fields",
]

MEMORY_FIELDS = (
    "memory_type",
    "session_id",
    "importance",
    "tags",
    "metadata",
    "ttl_seconds",
    "expires_at",
)


class ChunkingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = None
    overlap_tokens: int | None = None
    strategy: str | None = None


class MemoryFields(BaseModel):
    memory_type: str | None = None
    session_id: str | None = None
    importance: float | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    ttl_seconds: int | None = None
    expires_at: int | None = None
    lang: str | None = None


class DocumentOptions(MemoryFields):
    chunking: ChunkingOptions | None = None
    decompose: bool | None = None


class ImportDocumentRequest(DocumentOptions):
    agent_id: str
    content: str
    media_type: str | None = None
    title: str | None = None
    document_id: str | None = None


class ImportAttachmentDocumentRequest(DocumentOptions):
    agent_id: str
    title: str | None = None
    document_id: str | None = None


class MediaJobRequest(MemoryFields):
    agent_id: str
    content: str | None = None
    id: str | None = None


class UpsertRecordsRequest(BaseModel):
    records: list[dict[str, Any]]


def memory_fields(body: MemoryFields) -> dict[str, Any]:
    """The memory fields every chunk / job memory carries, as the engine takes them."""
    return {name: getattr(body, name) for name in MEMORY_FIELDS}
