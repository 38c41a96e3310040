"""Wire models of the namespace and vector routes (dakera-api.md §3.2-3.6, §4.13).

Unknown fields are ignored (§1.14). Vector values are strict numbers (a string is a 400, not
silently parsed); everything whose meaning needs checking (dimensions, filters, limits) is typed
loosely here and validated by the engine, which names the field in its 400.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict

__all__ = [
    "AdminCreateNamespaceRequest",
    "AggregateRequest",
    "BatchQueryRequest",
    "BatchQueryTextRequest",
    "BulkDeleteRequest",
    "BulkUpdateRequest",
    "ConfigureNamespaceRequest",
    "CountRequest",
    "CreateNamespaceRequest",
    "DeleteVectorsRequest",
    "DocumentIn",
    "ExplainRequest",
    "ExportRequest",
    "FetchRequest",
    "FulltextIndexRequest",
    "FulltextSearchRequest",
    "HybridRequest",
    "IdsRequest",
    "MultiVectorRequest",
    "QueryRequest",
    "QueryTextRequest",
    "UnifiedQueryRequest",
    "UpsertColumnsRequest",
    "UpsertRequest",
    "UpsertTextRequest",
    "VectorIn",
    "WarmCacheRequest",
]

Number = Annotated[float, Strict()]


class Body(BaseModel):
    """Ignores unknown fields."""

    model_config = ConfigDict(extra="ignore")


class CreateNamespaceRequest(Body):
    name: Any = None
    namespace: Any = None  # the SDK sends ``name``; accept the response's spelling too
    dimension: Any = None
    dimensions: Any = None
    distance: Any = None
    index_type: Any = None
    metadata: Any = None


class ConfigureNamespaceRequest(Body):
    dimension: Any = None
    distance: Any = None


class NamespaceConfig(Body):
    vector_index: Any = None
    encryption: Any = None
    dimension: Any = None
    distance: Any = None


class AdminCreateNamespaceRequest(Body):
    """The security document's form: ``{"name", "config": {"vector_index", "encryption"}}``."""

    name: Any = None
    config: NamespaceConfig = Field(default_factory=NamespaceConfig)
    dimension: Any = None
    distance: Any = None


class VectorIn(Body):
    id: Any = None
    values: list[Number] | None = None
    metadata: Any = None
    ttl_seconds: Any = None


class UpsertRequest(Body):
    vectors: list[VectorIn] | None = None


class UpsertColumnsRequest(Body):
    ids: Any = None
    vectors: list[list[Number]] | None = None
    attributes: Any = None
    ttl_seconds: Any = None
    dimension: Any = None


class QueryRequest(Body):
    vector: list[Number] | None = None
    top_k: Any = None
    filter: Any = None
    include_metadata: Any = None
    include_vectors: Any = None
    include_values: Any = None  # older spelling
    distance_metric: Any = None
    consistency: Any = None  # every read is strongly consistent here
    staleness_config: Any = None


class BatchQueryRequest(Body):
    queries: Any = None


class IdsRequest(Body):
    ids: Any = None


class DeleteVectorsRequest(Body):
    ids: Any = None
    delete_all: Any = None


class BulkDeleteRequest(Body):
    filter: Any = None


class BulkUpdateRequest(Body):
    filter: Any = None
    update: Any = None


class CountRequest(Body):
    filter: Any = None


class FetchRequest(Body):
    ids: Any = None
    include_values: Any = None
    include_vectors: Any = None
    include_metadata: Any = None


class ExportRequest(Body):
    cursor: Any = None
    limit: Any = None
    filter: Any = None
    include_vectors: Any = None


class DocumentIn(Body):
    id: Any = None
    text: Any = None
    content: Any = None  # the SDK docstring's spelling
    metadata: Any = None
    ttl_seconds: Any = None


class UpsertTextRequest(Body):
    documents: list[DocumentIn] | None = None
    model: Any = None


class QueryTextRequest(Body):
    text: Any = None
    query: Any = None
    top_k: Any = None
    filter: Any = None
    include_text: Any = None
    include_vectors: Any = None
    include_metadata: Any = None
    model: Any = None


class BatchQueryTextRequest(Body):
    queries: Any = None
    top_k: Any = None
    filter: Any = None
    include_text: Any = None
    include_vectors: Any = None
    include_metadata: Any = None
    model: Any = None


class FulltextIndexRequest(Body):
    documents: list[DocumentIn] | None = None


class FulltextSearchRequest(Body):
    query: Any = None
    text: Any = None
    top_k: Any = None
    filter: Any = None


class HybridRequest(Body):
    text: Any = None
    query: Any = None  # the SDK argument name, in case a client sends it as is
    vector: list[Number] | None = None
    top_k: Any = None
    vector_weight: Any = None
    filter: Any = None
    fusion: Any = None
    include_vectors: Any = None


class MultiVectorRequest(Body):
    positive_vectors: Any = None
    negative_vectors: Any = None
    top_k: Any = None
    filter: Any = None
    include_metadata: Any = None
    include_vectors: Any = None
    enable_mmr: Any = None
    mmr_lambda: Any = None


class UnifiedQueryRequest(Body):
    rank_by: Any = None
    top_k: Any = None
    filter: Any = None
    include_metadata: Any = None
    include_vectors: Any = None


class AggregateRequest(Body):
    aggregate_by: Any = None
    group_by: Any = None
    filter: Any = None
    limit: Any = None


class ExplainRequest(Body):
    query_type: Any = None
    top_k: Any = None
    vector: Any = None
    text_query: Any = None
    filter: Any = None
    execute: Any = None


class WarmCacheRequest(Body):
    namespace: Any = None
    priority: Any = None
    target_tier: Any = None
    background: Any = None
    access_pattern: Any = None
    vector_ids: Any = None
    ttl_hint_seconds: Any = None
    max_vectors: Any = None


class FulltextDeleteRequest(Body):
    ids: Any = None
