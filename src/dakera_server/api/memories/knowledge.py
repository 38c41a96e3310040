"""Knowledge-graph and entity routes (dakera-api.md §3.12, §4.2 summarize/cross-agent, §4.6).

Memory-centred routes take no agent id: the memory is resolved across the agents the key may
see (unknown and invisible both answer 404). ``POST /v1/knowledge/deduplicate`` lives with the
lifecycle routes.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Query
from starlette.responses import Response

from dakera_server.api.deps import CallerDep, EngineDep
from dakera_server.api.memories.knowledge_models import (
    CrossAgentRequest,
    ExtractEntitiesRequest,
    ExtractorConfigRequest,
    ExtractTextRequest,
    FullGraphRequest,
    KnowledgeGraphRequest,
    LinkRequest,
    NerConfigPatch,
    NerConfigPut,
    SummarizeRequest,
)
from dakera_server.api.scopes import Routes, Scope
from dakera_server.engine.graph import knowledge, queries, summaries
from dakera_server.errors import InvalidInput, UnprocessableContent

routes = Routes()


def _json(data: dict[str, Any]) -> Response:
    """Graph answers can hold thousands of nodes: serialise them with orjson in one pass
    (FastAPI's encoder walks every value in Python first)."""
    return Response(orjson.dumps(data), media_type="application/json")


# ----------------------------------------------------------------------- memory graph
@routes.get("/v1/memories/{memory_id}/graph", scope=Scope.READ)
def memory_graph(
    memory_id: str,
    engine: EngineDep,
    caller: CallerDep,
    depth: int = 1,
    edge_types: str | None = None,
    types: str | None = None,
) -> Response:
    view = queries.traverse(engine.graph, caller, memory_id, depth, edge_types or types)
    return _json(view.to_wire())


@routes.get("/v1/memories/{memory_id}/path", scope=Scope.READ)
def memory_path(
    memory_id: str, engine: EngineDep, caller: CallerDep, to: str | None = None
) -> dict[str, Any]:
    path = queries.memory_path(engine.graph, caller, memory_id, to)
    return {"from_id": memory_id, "to_id": to, "path": path, "hop_count": len(path) - 1}


@routes.post("/v1/memories/{memory_id}/links", scope=Scope.WRITE)
def memory_link(
    memory_id: str, body: LinkRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    if not body.agent_id or not body.target_id:
        raise UnprocessableContent("'target_id' and 'agent_id' are required to link memories")
    edge = engine.graph.link(caller, memory_id, body.target_id, body.agent_id, body.label)
    return edge.to_wire()


@routes.get("/v1/agents/{agent_id}/graph/export", scope=Scope.READ)
def agent_graph_export(
    agent_id: str, engine: EngineDep, caller: CallerDep, format: str | None = None
) -> Response:
    return _json(queries.agent_export(engine.graph, caller, agent_id).to_wire())


# ----------------------------------------------------------------------- KG-2 queries
@routes.get("/v1/knowledge/query", scope=Scope.READ)
def knowledge_query(
    engine: EngineDep,
    caller: CallerDep,
    agent_id: str | None = None,
    root_id: str | None = None,
    edge_type: str | None = None,
    min_weight: float | None = None,
    max_depth: int = 3,
    limit: int = 100,
) -> Response:
    edges = queries.query_edges(
        engine.graph,
        caller,
        agent_id,
        root_id=root_id,
        edge_types=edge_type,
        min_weight=min_weight,
        max_depth=max_depth,
        limit=limit,
    )
    nodes = {e.from_id for e in edges} | {e.to_id for e in edges}
    return _json(
        {
            "agent_id": agent_id,
            "node_count": len(nodes),
            "edge_count": len(edges),
            "edges": [e.to_wire() for e in edges],
        }
    )


@routes.get("/v1/knowledge/path", scope=Scope.READ)
def knowledge_path(
    engine: EngineDep,
    caller: CallerDep,
    agent_id: str | None = None,
    from_id: str | None = Query(default=None, alias="from"),
    to: str | None = None,
) -> dict[str, Any]:
    path = queries.agent_path(engine.graph, caller, agent_id, from_id, to)
    return {
        "agent_id": agent_id,
        "from_id": from_id,
        "to_id": to,
        "hop_count": len(path) - 1,
        "path": path,
    }


@routes.get("/v1/knowledge/export", scope=Scope.READ)
def knowledge_export(
    engine: EngineDep, caller: CallerDep, agent_id: str | None = None, format: str = "json"
) -> Response:
    if not agent_id:
        raise InvalidInput("the 'agent_id' query parameter is required")
    if format not in ("json", "graphml"):
        raise InvalidInput("'format' must be json or graphml")
    export = queries.agent_export(engine.graph, caller, agent_id)
    if format == "graphml":
        return Response(queries.graphml(export), media_type="application/xml")
    return _json(export.to_wire(with_format=True))


# ----------------------------------------------------------------------- similarity views
@routes.post("/v1/knowledge/graph", scope=Scope.READ)
def knowledge_graph(body: KnowledgeGraphRequest, engine: EngineDep, caller: CallerDep) -> Response:
    view = knowledge.seed_graph(
        engine.graph, caller, body.agent_id, body.memory_id, body.depth, body.min_similarity
    )
    return _json(view.to_wire())


@routes.post("/v1/knowledge/graph/full", scope=Scope.READ)
def full_knowledge_graph(body: FullGraphRequest, engine: EngineDep, caller: CallerDep) -> Response:
    view = knowledge.full_graph(
        engine.graph,
        caller,
        body.agent_id,
        max_nodes=body.max_nodes,
        min_similarity=body.min_similarity,
        cluster_threshold=body.cluster_threshold,
        max_edges_per_node=body.max_edges_per_node,
        content_preview_chars=body.content_preview_chars,
    )
    return _json(view.to_wire())


@routes.post("/v1/knowledge/summarize", scope=Scope.WRITE)
def summarize(body: SummarizeRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    if body.dry_run:
        raise InvalidInput("summarize has no dry run: it always stores the summary")
    outcome = summaries.summarize(
        engine.graph, caller, body.agent_id, body.memory_ids, body.target_type
    )
    return outcome.to_wire()


@routes.post("/v1/knowledge/network/cross-agent", scope=Scope.ADMIN)
def cross_agent_network(body: CrossAgentRequest, engine: EngineDep, caller: CallerDep) -> Response:
    network = knowledge.cross_agent_network(
        engine.memories,
        caller,
        agent_ids=body.agent_ids,
        min_similarity=body.min_similarity,
        max_nodes_per_agent=body.max_nodes_per_agent,
        min_importance=body.min_importance,
        max_cross_edges=body.max_cross_edges,
        content_preview_chars=body.content_preview_chars,
    )
    return _json(network)


# ----------------------------------------------------------------------- entities
@routes.get("/v1/memory/entities/{memory_id}", scope=Scope.READ)
def memory_entities(memory_id: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    memory, entities = engine.graph.entities_of(caller, memory_id)
    return {
        "memory_id": memory.id,
        "agent_id": memory.agent_id,
        "entities": [e.to_wire() for e in entities],
        "count": len(entities),
    }


@routes.post("/v1/memories/extract", scope=Scope.READ)
def extract_entities(body: ExtractEntitiesRequest, engine: EngineDep) -> dict[str, Any]:
    entities = engine.entities.extract_builtin(body.content, body.entity_types)
    return {"entities": [e.to_wire() for e in entities], "count": len(entities)}


@routes.post("/v1/extract", scope=Scope.READ)
def extract_text(body: ExtractTextRequest, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    result = engine.entities.extract(caller, body.text, body.namespace, body.provider, body.model)
    return {
        "entities": [e.to_wire() for e in result.entities],
        "provider": result.provider,
        "model": result.model,
        "duration_ms": result.duration_ms,
    }


@routes.get("/v1/namespaces/{namespace}/config", scope=Scope.READ)
def get_namespace_entity_config(
    namespace: str, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    return engine.entities.config(caller, namespace).ner_wire()


@routes.patch("/v1/namespaces/{namespace}/config", scope=Scope.WRITE)
def configure_namespace_ner(
    namespace: str, body: NerConfigPatch, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    config = engine.entities.configure_ner(
        caller, namespace, body.extract_entities, body.entity_types, replace_all=False
    )
    return config.ner_wire()


@routes.put("/v1/namespaces/{namespace}/config", scope=Scope.WRITE)
def replace_namespace_ner_config(
    namespace: str, body: NerConfigPut, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    config = engine.entities.configure_ner(
        caller, namespace, body.extract_entities, body.entity_types, replace_all=True
    )
    return config.ner_wire()


@routes.get("/v1/namespaces/{namespace}/extractor", scope=Scope.READ)
def get_namespace_extractor(namespace: str, engine: EngineDep, caller: CallerDep) -> dict[str, Any]:
    return engine.entities.config(caller, namespace).extractor_wire()


@routes.patch("/v1/namespaces/{namespace}/extractor", scope=Scope.WRITE)
def configure_namespace_extractor(
    namespace: str, body: ExtractorConfigRequest, engine: EngineDep, caller: CallerDep
) -> dict[str, Any]:
    config = engine.entities.configure_extractor(
        caller, namespace, body.provider, body.model, body.base_url
    )
    return {**config.extractor_wire(), "updated": True}
