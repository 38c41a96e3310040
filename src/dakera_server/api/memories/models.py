"""Wire models of the memory routes (dakera-api.md §3.7-3.8).

Store, batch store, recall and batch recall are tolerant: unknown fields are ignored and named
in ``warnings`` (§1.14). Types are checked here; meaning (limits, patterns) in the engine.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "BatchFilter",
    "BatchForgetRequest",
    "BatchRecallRequest",
    "BatchStoreItem",
    "BatchStoreRequest",
    "ForgetRequest",
    "ImportanceRequest",
    "RecallRequest",
    "StoreMemoryRequest",
    "UpdateMemoryRequest",
    "unknown_field_warnings",
]


class Tolerant(BaseModel):
    """Keeps unknown fields so the answer can warn about them."""

    model_config = ConfigDict(extra="allow")


class StoreMemoryRequest(Tolerant):
    agent_id: str
    content: str
    memory_type: str | None = None
    importance: float | None = None
    metadata: dict[str, Any] | None = None
    session_id: str | None = None
    tags: list[str] | None = None
    ttl_seconds: int | None = None
    expires_at: int | None = None
    lang: str | None = None
    attachment_ref: str | None = None
    event_time: int | float | str | None = None
    id: str | None = None
    embedding: list[float] | None = None
    valid_from: int | None = None


class BatchStoreItem(Tolerant):
    content: str
    memory_type: str | None = None
    importance: float | None = None
    tags: list[str] | None = None
    session_id: str | None = None
    metadata: dict[str, Any] | None = None
    ttl_seconds: int | None = None
    expires_at: int | None = None
    id: str | None = None
    attachment_ref: str | None = None
    event_time: int | float | str | None = None
    lang: str | None = None


class BatchStoreRequest(Tolerant):
    agent_id: str
    memories: list[BatchStoreItem]
    lang: str | None = None


class RecallRequest(Tolerant):
    agent_id: str
    query: str
    top_k: int | None = None
    memory_type: str | None = None
    min_importance: float | None = None
    tags: list[str] | None = None
    session_id: str | None = None
    since: str | None = None
    until: str | None = None
    include_associated: bool | None = None
    associated_memories_cap: int | None = None
    associated_memories_depth: int | None = None
    associated_memories_min_weight: float | None = None
    routing: str | None = None
    rerank: bool | None = None
    rerank_candidates: int | None = None
    fusion: str | None = None
    vector_weight: float | None = None
    iterations: int | None = None
    neighborhood: bool | None = None
    neighborhood_mode: str | None = None
    include_summaries: bool | None = None
    lang: str | None = None


class BatchFilter(Tolerant):
    tags: list[str] | None = None
    min_importance: float | None = None
    max_importance: float | None = None
    created_after: int | None = None
    created_before: int | None = None
    memory_type: str | None = None
    session_id: str | None = None


class BatchRecallRequest(Tolerant):
    agent_id: str
    filter: BatchFilter | None = None
    limit: int | None = None


class BatchForgetRequest(BaseModel):
    agent_id: str
    filter: BatchFilter | None = None


class UpdateMemoryRequest(BaseModel):
    content: str | None = None
    metadata: dict[str, Any] | None = None
    memory_type: str | None = None
    lang: str | None = None
    importance: float | None = None
    tags: list[str] | None = None


class ForgetRequest(BaseModel):
    agent_id: str
    memory_ids: list[str] | None = None
    memory_id: str | None = None


class ImportanceRequest(BaseModel):
    agent_id: str
    importance: float
    memory_id: str | None = None
    memory_ids: list[str] | None = None


def unknown_field_warnings(model: BaseModel, prefix: str = "") -> list[str]:
    """``unknown field 'x' ignored`` for each field the client sent that we do not know."""
    return [f"unknown field '{prefix}{name}' ignored" for name in (model.model_extra or {})]
