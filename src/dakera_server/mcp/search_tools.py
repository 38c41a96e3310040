"""Tools that search beyond one agent's memory list: the knowledge graph and vector namespaces."""

from __future__ import annotations

from dakera_server.engine.access import Scope
from dakera_server.mcp import render
from dakera_server.mcp.args import FILTER, MEMORY_ID_PATH, NAMESPACE, TOP_K
from dakera_server.mcp.table import Arg, Tool, string

__all__ = ["GRAPH_TOOLS", "NAMESPACE_TOOLS"]

GRAPH_TOOLS = (
    Tool(
        "dakera_graph_traverse",
        "GET",
        "/v1/memories/{memory_id}/graph",
        Scope.READ,
        "Traverse the knowledge graph",
        "Memories connected to one memory in the knowledge graph (related_to, shares_entity, "
        "precedes, linked_by edges), up to depth hops away.",
        (MEMORY_ID_PATH, Arg("depth", {"type": "integer", "minimum": 1, "maximum": 5}, to="query")),
        render.summary("Graph"),
    ),
    Tool(
        "dakera_graph_path",
        "GET",
        "/v1/memories/{memory_id}/path",
        Scope.READ,
        "Path between memories",
        "The shortest chain of knowledge-graph edges between two memories.",
        (
            Arg("from_id", string("Start memory id."), True, "path", "memory_id"),
            Arg("to_id", string("End memory id."), True, "query", "to"),
        ),
        render.summary("Path"),
    ),
    Tool(
        "dakera_memory_entities",
        "GET",
        "/v1/memory/entities/{memory_id}",
        Scope.READ,
        "Entities of a memory",
        "The people, places, organisations and other entities found in a memory.",
        (MEMORY_ID_PATH,),
        render.summary("Entities"),
    ),
)

NAMESPACE_TOOLS = (
    Tool(
        "dakera_text_query",
        "POST",
        "/v1/namespaces/{namespace}/query-text",
        Scope.READ,
        "Search a namespace by meaning",
        "Vector search of a namespace's documents with a text query (embedded by the server).",
        (NAMESPACE, Arg("text", string("The query."), True), TOP_K, FILTER),
        render.vector_hits("text"),
    ),
    Tool(
        "dakera_vector_query",
        "POST",
        "/v1/namespaces/{namespace}/query",
        Scope.READ,
        "Search a namespace by vector",
        "Nearest neighbours of a raw vector in a namespace.",
        (
            NAMESPACE,
            Arg("vector", {"type": "array", "items": {"type": "number"}}, True),
            TOP_K,
            FILTER,
            Arg("include_metadata", {"type": "boolean"}),
        ),
        render.vector_hits("text"),
    ),
    Tool(
        "dakera_fulltext_search",
        "POST",
        "/v1/namespaces/{namespace}/fulltext/search",
        Scope.READ,
        "Keyword search of a namespace",
        "BM25 keyword search of a namespace's documents.",
        (NAMESPACE, Arg("query", string("Keywords."), True), TOP_K, FILTER),
        render.vector_hits("content"),
    ),
    Tool(
        "dakera_hybrid_search",
        "POST",
        "/v1/namespaces/{namespace}/hybrid",
        Scope.READ,
        "Hybrid search of a namespace",
        "Keyword (BM25) and vector search fused; give a vector too for both.",
        (
            NAMESPACE,
            Arg("query", string("The query text."), True),
            Arg("vector", {"type": "array", "items": {"type": "number"}}),
            TOP_K,
            Arg("vector_weight", {"type": "number", "minimum": 0, "maximum": 1}),
            FILTER,
        ),
        render.vector_hits("content"),
    ),
)
