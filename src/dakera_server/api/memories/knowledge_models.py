"""Wire models of the knowledge-graph and entity routes (dakera-api.md §3.12, §4.2, §4.6).

Types are checked here; limits and meaning in the engine. The namespace NER config bodies are
strict (unknown fields → 422, §1.14); the others ignore unknown fields.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool

__all__ = [
    "CrossAgentRequest",
    "ExtractEntitiesRequest",
    "ExtractTextRequest",
    "ExtractorConfigRequest",
    "FullGraphRequest",
    "KnowledgeGraphRequest",
    "LinkRequest",
    "NerConfigPatch",
    "NerConfigPut",
    "SummarizeRequest",
]


class Tolerant(BaseModel):
    """Ignores unknown fields."""

    model_config = ConfigDict(extra="ignore")


class Strict(BaseModel):
    """Refuses unknown fields (422 UNPROCESSABLE_CONTENT)."""

    model_config = ConfigDict(extra="forbid")


class LinkRequest(Tolerant):
    target_id: str | None = None
    agent_id: str | None = None
    label: str | None = None


class KnowledgeGraphRequest(Tolerant):
    agent_id: str
    memory_id: str | None = None
    depth: int | None = None
    min_similarity: float | None = None


class FullGraphRequest(Tolerant):
    agent_id: str
    max_nodes: int | None = None
    min_similarity: float | None = None
    cluster_threshold: float | None = None
    max_edges_per_node: int | None = None
    content_preview_chars: int | None = None


class SummarizeRequest(Tolerant):
    agent_id: str
    memory_ids: list[str]
    target_type: str | None = None
    dry_run: bool | None = None


class CrossAgentRequest(Tolerant):
    agent_ids: list[str] | None = None
    min_similarity: float | None = None
    max_nodes_per_agent: int | None = None
    min_importance: float | None = None
    max_cross_edges: int | None = None
    content_preview_chars: int | None = None


class ExtractEntitiesRequest(Tolerant):
    content: str
    entity_types: list[str] | None = None
    lang: str | None = None


class ExtractTextRequest(Tolerant):
    text: str
    namespace: str | None = None
    provider: str | None = None
    model: str | None = None


class NerConfigPatch(Strict):
    extract_entities: StrictBool
    entity_types: list[str] | None = None


class NerConfigPut(Strict):
    extract_entities: StrictBool
    entity_types: list[str] | None = None


class ExtractorConfigRequest(Tolerant):
    provider: str
    model: str | None = None
    base_url: str | None = None
