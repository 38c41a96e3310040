"""Reading the knowledge graph: traversal, shortest paths, edge queries and exports.

Traversal and paths follow edges in both directions (an association links both memories) and
report each edge with its stored direction. Only live memories (not expired, not forgotten) are
nodes; a memory the caller may not see answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as _escape
from xml.sax.saxutils import quoteattr as _quoteattr

from dakera_server.engine.access import Caller, agent_namespace
from dakera_server.engine.graph.knowledge_graph import KnowledgeGraph
from dakera_server.engine.graph.model import AgentGraph, Edge, parse_edge_types
from dakera_server.engine.memory.models import Memory
from dakera_server.errors import InvalidInput, NotFound

__all__ = [
    "MAX_DEPTH",
    "GraphExport",
    "GraphNode",
    "Traversal",
    "agent_export",
    "agent_path",
    "graphml",
    "memory_path",
    "query_edges",
    "traverse",
]

MAX_DEPTH = 5
PREVIEW_CHARS = 200
MAX_QUERY_LIMIT = 1000


@dataclass
class GraphNode:
    """A memory reached by a traversal, with the edges through which it was reached."""

    memory: Memory
    depth: int
    edges: list[Edge] = field(default_factory=list)

    def to_wire(self) -> dict[str, Any]:
        """The node object of ``GET /v1/memories/{id}/graph``."""
        return {
            "memory_id": self.memory.id,
            "depth": self.depth,
            "content_preview": self.memory.content[:PREVIEW_CHARS],
            "importance": self.memory.importance,
            "memory_type": self.memory.memory_type,
            "edges": [e.to_wire() for e in self.edges],
        }


@dataclass
class Traversal:
    """The answer of a memory-centred traversal."""

    root_id: str
    depth: int
    nodes: list[GraphNode]

    def to_wire(self) -> dict[str, Any]:
        """``{root_id, depth, node_count, nodes}`` (§3.12)."""
        return {
            "root_id": self.root_id,
            "depth": self.depth,
            "node_count": len(self.nodes),
            "nodes": [n.to_wire() for n in self.nodes],
        }


@dataclass
class GraphExport:
    """An agent's whole graph."""

    agent_id: str
    memories: list[Memory]
    edges: list[Edge]
    entities: list[dict[str, Any]]

    def to_wire(self, *, with_format: bool = False) -> dict[str, Any]:
        """``{agent_id, namespace, node_count, edge_count, edges}`` (+ entity nodes)."""
        wire: dict[str, Any] = {"agent_id": self.agent_id}
        if with_format:
            wire["format"] = "json"
        wire.update(
            {
                "namespace": agent_namespace(self.agent_id),
                "node_count": len(self.memories),
                "edge_count": len(self.edges),
                "edges": [e.to_wire() for e in self.edges],
                "entities": self.entities,
            }
        )
        return wire


def _check_depth(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInput(f"'{name}' must be a whole number of at least {low}")
    return min(value, MAX_DEPTH)


def _live(graph_memories: dict[str, Memory], now: float) -> Callable[[str], Memory | None]:
    def get(memory_id: str) -> Memory | None:
        memory = graph_memories.get(memory_id)
        return None if memory is None or memory.is_expired(now) else memory

    return get


def _bfs(
    graph: AgentGraph,
    root: str,
    depth: int,
    live: Callable[[str], Memory | None],
    accept: Callable[[Edge], bool],
) -> tuple[dict[str, int], dict[str, list[Edge]], list[Edge]]:
    """Levels from ``root``; each induced edge attached to its deeper endpoint."""
    levels = {root: 0}
    attached: dict[str, list[Edge]] = {root: []}
    order: list[Edge] = []
    seen: set[str] = set()
    frontier = [root]
    for level in range(depth):
        following: list[str] = []
        for node in frontier:
            for key, edge in graph.adjacency.get(node, {}).items():
                if key in seen or not accept(edge):
                    continue
                other = edge.other(node)
                if live(other) is None:
                    continue
                if other not in levels:
                    levels[other] = level + 1
                    attached[other] = []
                    following.append(other)
                seen.add(key)
                order.append(edge)
                deeper = other if levels[other] > levels[node] else node
                if levels[other] == levels[node]:
                    deeper = edge.to_id
                attached[deeper].append(edge)
        frontier = following
    return levels, attached, order


def traverse(
    kg: KnowledgeGraph,
    caller: Caller,
    memory_id: str,
    depth: Any = 1,
    edge_types: Any = None,
) -> Traversal:
    """``GET /v1/memories/{id}/graph``: breadth-first from a visible memory, depth ≤ 5
    (deeper requests are capped), optionally following only some edge types."""
    hops = _check_depth(depth, "depth", 0)
    types = parse_edge_types(edge_types)
    root = kg.memories.get(caller, memory_id, None)
    graph = kg.graph(root.agent_id)
    agent = kg.memories.agent(caller, root.agent_id)
    nodes = [GraphNode(root, 0)]
    if graph is None or agent is None:
        return Traversal(root.id, hops, nodes)
    live = _live(agent.memories, kg.memories.clock())
    with graph.lock:
        levels, attached, _ = _bfs(graph, root.id, hops, live, _accept(types, None))
    nodes[0].edges = attached[root.id]
    for node_id, level in levels.items():
        memory = live(node_id)
        if node_id != root.id and memory is not None:
            nodes.append(GraphNode(memory, level, attached[node_id]))
    return Traversal(root.id, hops, nodes)


def _accept(types: frozenset[str] | None, min_weight: float | None) -> Callable[[Edge], bool]:
    def accept(edge: Edge) -> bool:
        if types is not None and edge.edge_type not in types:
            return False
        return min_weight is None or edge.weight >= min_weight

    return accept


def _shortest(
    graph: AgentGraph, source: str, target: str, live: Callable[[str], Memory | None]
) -> list[str] | None:
    if source == target:
        return [source]
    parent: dict[str, str] = {source: source}
    queue = deque([source])
    while queue:
        node = queue.popleft()
        for edge in graph.adjacency.get(node, {}).values():
            other = edge.other(node)
            if other in parent or live(other) is None:
                continue
            parent[other] = node
            if other == target:
                path = [target]
                while path[-1] != source:
                    path.append(parent[path[-1]])
                return path[::-1]
            queue.append(other)
    return None


def _path_between(kg: KnowledgeGraph, caller: Caller, source: Memory, target: Memory) -> list[str]:
    graph = kg.graph(source.agent_id)
    agent = kg.memories.agent(caller, source.agent_id)
    path = None
    if source.agent_id == target.agent_id and graph is not None and agent is not None:
        with graph.lock:
            path = _shortest(
                graph, source.id, target.id, _live(agent.memories, kg.memories.clock())
            )
    if path is None:
        raise NotFound(f"no path from '{source.id}' to '{target.id}'", resource="path")
    return path


def memory_path(kg: KnowledgeGraph, caller: Caller, source_id: str, target_id: Any) -> list[str]:
    """``GET /v1/memories/{id}/path?to=``: shortest path (404 when none)."""
    if not isinstance(target_id, str) or not target_id:
        raise InvalidInput("the 'to' query parameter must name a memory")
    source = kg.memories.get(caller, source_id, None)
    target = kg.memories.get(caller, target_id, None)
    return _path_between(kg, caller, source, target)


def agent_path(
    kg: KnowledgeGraph, caller: Caller, agent_id: Any, source_id: Any, target_id: Any
) -> list[str]:
    """``GET /v1/knowledge/path``: shortest path between two memories of one agent."""
    if not isinstance(agent_id, str) or not agent_id:
        raise InvalidInput("the 'agent_id' query parameter is required")
    if not isinstance(source_id, str) or not isinstance(target_id, str):
        raise InvalidInput("the 'from' and 'to' query parameters are required")
    source = kg.memories.get(caller, source_id, agent_id)
    target = kg.memories.get(caller, target_id, agent_id)
    return _path_between(kg, caller, source, target)


def query_edges(
    kg: KnowledgeGraph,
    caller: Caller,
    agent_id: Any,
    *,
    root_id: Any = None,
    edge_types: Any = None,
    min_weight: Any = None,
    max_depth: Any = 3,
    limit: Any = 100,
) -> list[Edge]:
    """``GET /v1/knowledge/query``: the agent's edges filtered by type and weight, or the edges
    met by a breadth-first walk from ``root_id`` (following only edges that pass the filter)."""
    if not isinstance(agent_id, str) or not agent_id:
        raise InvalidInput("the 'agent_id' query parameter is required")
    hops = _check_depth(max_depth, "max_depth", 1)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_QUERY_LIMIT:
        raise InvalidInput(f"'limit' must be between 1 and {MAX_QUERY_LIMIT}")
    if min_weight is not None and (
        isinstance(min_weight, bool) or not isinstance(min_weight, int | float)
    ):
        raise InvalidInput("'min_weight' must be a number")
    accept = _accept(
        parse_edge_types(edge_types), None if min_weight is None else float(min_weight)
    )
    root = None if root_id is None else kg.memories.get(caller, str(root_id), agent_id)
    agent = kg.memories.agent(caller, agent_id)
    graph = kg.graph(agent_id)
    if agent is None or graph is None:
        return []
    live = _live(agent.memories, kg.memories.clock())
    with graph.lock:
        if root is not None:
            _, _, edges = _bfs(graph, root.id, hops, live, accept)
        else:
            edges = [
                e
                for e in graph.edges.values()
                if accept(e) and live(e.from_id) is not None and live(e.to_id) is not None
            ]
            edges.sort(key=lambda e: (e.created_at, e.key))
    return edges[:limit]


def agent_export(kg: KnowledgeGraph, caller: Caller, agent_id: str) -> GraphExport:
    """Every live memory, edge and entity node of an agent (empty for an unknown agent)."""
    agent = kg.memories.agent(caller, agent_id)
    graph = kg.graph(agent_id)
    if agent is None:
        return GraphExport(agent_id, [], [], [])
    memories = kg.memories.live(agent)
    if graph is None:
        return GraphExport(agent_id, memories, [], [])
    live = _live(agent.memories, kg.memories.clock())
    with graph.lock:
        edges = [
            e
            for e in graph.edges.values()
            if live(e.from_id) is not None and live(e.to_id) is not None
        ]
        entities: dict[str, dict[str, Any]] = {}
        for memory in memories:
            for entity in graph.entities.get(memory.id, ()):
                if entity.key is None:
                    continue
                node = entities.setdefault(
                    entity.key,
                    {
                        "id": f"entity:{entity.key}",
                        "entity_type": entity.entity_type,
                        "value": entity.value,
                        "memory_ids": [],
                    },
                )
                node["memory_ids"].append(memory.id)
    edges.sort(key=lambda e: (e.created_at, e.key))
    memories.sort(key=lambda m: (m.created_at, m.id))
    return GraphExport(agent_id, memories, edges, list(entities.values()))


_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def escape(text: str) -> str:
    """XML text: escaped, without the characters XML 1.0 cannot carry at all."""
    return _escape(_XML_INVALID.sub("", text))


def quoteattr(text: str) -> str:
    """An XML attribute value, quoted."""
    return _quoteattr(_XML_INVALID.sub("", text))


def graphml(export: GraphExport) -> str:
    """The export as GraphML: memory nodes, entity nodes, memory edges and mention edges."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        '  <key id="kind" for="node" attr.name="kind" attr.type="string"/>',
        '  <key id="content" for="node" attr.name="content" attr.type="string"/>',
        '  <key id="importance" for="node" attr.name="importance" attr.type="double"/>',
        '  <key id="memory_type" for="node" attr.name="memory_type" attr.type="string"/>',
        '  <key id="entity_type" for="node" attr.name="entity_type" attr.type="string"/>',
        '  <key id="edge_type" for="edge" attr.name="edge_type" attr.type="string"/>',
        '  <key id="weight" for="edge" attr.name="weight" attr.type="double"/>',
        '  <key id="label" for="edge" attr.name="label" attr.type="string"/>',
        '  <key id="created_at" for="edge" attr.name="created_at" attr.type="long"/>',
        f'  <graph id={quoteattr(export.agent_id)} edgedefault="directed">',
    ]
    for memory in export.memories:
        lines += [
            f"    <node id={quoteattr(memory.id)}>",
            '      <data key="kind">memory</data>',
            f'      <data key="content">{escape(memory.content)}</data>',
            f'      <data key="importance">{memory.importance}</data>',
            f'      <data key="memory_type">{escape(memory.memory_type)}</data>',
            "    </node>",
        ]
    for entity in export.entities:
        lines += [
            f"    <node id={quoteattr(entity['id'])}>",
            '      <data key="kind">entity</data>',
            f'      <data key="content">{escape(entity["value"])}</data>',
            f'      <data key="entity_type">{escape(entity["entity_type"])}</data>',
            "    </node>",
        ]
    for edge in export.edges:
        lines.append(f"    <edge source={quoteattr(edge.from_id)} target={quoteattr(edge.to_id)}>")
        lines.append(f'      <data key="edge_type">{edge.edge_type}</data>')
        lines.append(f'      <data key="weight">{edge.weight}</data>')
        lines.append(f'      <data key="created_at">{edge.created_at}</data>')
        if edge.label is not None:
            lines.append(f'      <data key="label">{escape(edge.label)}</data>')
        lines.append("    </edge>")
    for entity in export.entities:
        for memory_id in entity["memory_ids"]:
            lines.append(
                f"    <edge source={quoteattr(memory_id)} target={quoteattr(entity['id'])}>"
            )
            lines.append('      <data key="edge_type">mentions</data>')
            lines.append("    </edge>")
    lines += ["  </graph>", "</graphml>"]
    return "\n".join(lines) + "\n"
