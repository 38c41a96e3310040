"""An imported document's record: its summary and the list of its chunk memories.

Kept in the ``documents`` table (group = agent id, key = document id) and written in the same
transaction as the chunk memories, so a document and its chunks appear (and go) together.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from dakera_server.engine.documents.chunker import Chunk

__all__ = [
    "BREADCRUMB",
    "DOCUMENT_META_KEY",
    "DOCUMENT_TAG_PREFIX",
    "ChunkEntry",
    "DocumentRecord",
    "chunk_id",
    "default_document_id",
]

DOCUMENT_META_KEY = "_dakera_document"
DOCUMENT_TAG_PREFIX = "document:"
BREADCRUMB = " › "


def default_document_id(agent_id: str, sha256: str) -> str:
    """Derived from the agent and the content hash: the same bytes get the same id."""
    return "doc_" + hashlib.sha256(f"{agent_id}\x00{sha256}".encode()).hexdigest()[:24]


def chunk_id(agent_id: str, document_id: str, index: int) -> str:
    """The memory id of chunk ``index`` (``doc_…``; stable across re-imports)."""
    stem = hashlib.sha256(f"{agent_id}\x00{document_id}".encode()).hexdigest()[:20]
    return f"doc_{stem}_{index}"


@dataclass(frozen=True)
class ChunkEntry:
    """One chunk as the document detail lists it."""

    id: str
    chunk_index: int
    page_start: int | None
    page_end: int | None
    heading_path: list[str]
    char_start: int
    char_end: int

    @classmethod
    def of(cls, memory_id: str, index: int, chunk: Chunk, path: list[str]) -> ChunkEntry:
        """The entry of ``chunk`` stored as ``memory_id``."""
        return cls(
            memory_id,
            index,
            chunk.page_start,
            chunk.page_end,
            path,
            chunk.char_start,
            chunk.char_end,
        )


@dataclass
class DocumentRecord:
    """One document of an agent."""

    document_id: str
    agent_id: str
    title: str | None
    media_type: str
    chunk_count: int
    bytes: int
    pages: int | None
    created_at: int
    updated_at: int
    sha256: str
    fingerprint: str
    attachment_ref: str | None = None
    source_namespace: str | None = None
    decompose: bool = False
    chunks: list[ChunkEntry] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The list entry of ``GET /v1/memory/documents``."""
        return {
            "document_id": self.document_id,
            "title": self.title,
            "media_type": self.media_type,
            "chunk_count": self.chunk_count,
            "bytes": self.bytes,
            "pages": self.pages,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "sha256": self.sha256,
            "attachment_ref": self.attachment_ref,
        }

    def chunk_meta(self, entry: ChunkEntry) -> dict[str, Any]:
        """``_dakera_document`` of one chunk memory (dakera-api.md §5.1)."""
        return {
            "id": self.document_id,
            "title": self.title,
            "media_type": self.media_type,
            "chunk_index": entry.chunk_index,
            "chunk_count": self.chunk_count,
            "page_start": entry.page_start,
            "page_end": entry.page_end,
            "heading_path": entry.heading_path,
            "char_start": entry.char_start,
            "char_end": entry.char_end,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "pages": self.pages,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "decompose": self.decompose,
            "fingerprint": self.fingerprint,
        }

    def to_payload(self) -> builtins.bytes:
        """Stored form."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_payload(cls, payload: builtins.bytes) -> DocumentRecord:
        """Inverse of ``to_payload``."""
        data = orjson.loads(payload)
        data["chunks"] = [ChunkEntry(**c) for c in data.get("chunks", [])]
        return cls(**data)
