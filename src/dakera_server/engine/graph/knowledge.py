"""Similarity views over memories and extractive summaries (§3.12, §4.2).

* ``seed_graph`` — the memories most similar to a seed, level by level (depth ≤ 3), plus the
  stored graph edges between them (``POST /v1/knowledge/graph``);
* ``full_graph`` — an agent's most important memories, each joined to its nearest neighbours,
  grouped into clusters of mutually similar memories (``POST /v1/knowledge/graph/full``);
* ``cross_agent_network`` — memories of different agents that say similar things
  (``POST /v1/knowledge/network/cross-agent``), only over agents the caller may see;

Similarities are cosine over the stored embeddings, computed with numpy in blocks, never with
Python loops over pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from dakera_server.engine.access import Caller
from dakera_server.engine.graph.knowledge_graph import KnowledgeGraph
from dakera_server.engine.graph.model import Edge
from dakera_server.engine.memory.agents import AgentMemories
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.rules import check_importance
from dakera_server.errors import InvalidInput

__all__ = [
    "SimilarityGraph",
    "cross_agent_network",
    "full_graph",
    "seed_graph",
]

F32 = npt.NDArray[np.float32]
SEED_NEIGHBOURS = 10


def _number(value: Any, name: str, default: float, low: float, high: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"'{name}' must be a number between {low:g} and {high:g}")
    return float(value)


def _count(value: Any, name: str, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"'{name}' must be a whole number between {low} and {high}")
    return value


def _agent_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput("'agent_id' is required")
    return value


def _matrix(agent: AgentMemories, memories: list[Memory], dimension: int) -> F32:
    """Unit rows of the memories' stored vectors (zero rows where none is stored)."""
    rows = np.zeros((len(memories), dimension), dtype=np.float32)
    for index, memory in enumerate(memories):
        vector = agent.vectors.get_vector(memory.id)
        if vector is not None:
            rows[index] = vector
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: F32 = (rows / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return unit


def _by_importance(memories: list[Memory]) -> list[Memory]:
    return sorted(memories, key=lambda m: (-m.importance, -m.created_at, m.id))


def _node(memory: Memory, preview: int | None) -> dict[str, Any]:
    content = memory.content if preview is None else memory.content[:preview]
    return {
        "id": memory.id,
        "agent_id": memory.agent_id,
        "content": content,
        "content_len": len(memory.content),
        "content_truncated": len(content) < len(memory.content),
        "memory_type": memory.memory_type,
        "importance": memory.importance,
        "tags": list(memory.tags),
        "metadata": memory.metadata,
        "created_at": memory.created_at,
    }


@dataclass
class SimilarityGraph:
    """Nodes, similarity/graph edges and clusters of a similarity view."""

    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    clusters: list[list[str]] | None
    stats: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """``{nodes, edges, clusters, stats}``."""
        return {
            "nodes": self.nodes,
            "edges": self.edges,
            "clusters": self.clusters,
            "stats": self.stats,
        }


def _edge(source: str, target: str, similarity: float, relationship: str) -> dict[str, Any]:
    return {
        "source": source,
        "target": target,
        "similarity": round(similarity, 4),
        "relationship": relationship,
    }


def _stored_edges(kg: KnowledgeGraph, agent_id: str, ids: set[str]) -> list[Edge]:
    graph = kg.graph(agent_id)
    if graph is None:
        return []
    with graph.lock:
        return [e for e in graph.edges.values() if e.from_id in ids and e.to_id in ids]


def seed_graph(
    kg: KnowledgeGraph,
    caller: Caller,
    agent_id: Any,
    memory_id: Any,
    depth: Any = None,
    min_similarity: Any = None,
) -> SimilarityGraph:
    """Memories similar to a seed, level by level, plus the stored edges among them."""
    agent_name = _agent_id(agent_id)
    if not isinstance(memory_id, str) or not memory_id:
        raise InvalidInput("'memory_id' is required")
    levels = _count(depth, "depth", 1, 1, 3)
    threshold = _number(min_similarity, "min_similarity", 0.5, 0.0, 1.0)
    seed = kg.memories.get(caller, memory_id, agent_name)
    agent = kg.memories.agent(caller, agent_name)
    assert agent is not None
    now = kg.memories.clock()
    chosen: dict[str, Memory] = {seed.id: seed}
    pairs: dict[tuple[str, ...], dict[str, Any]] = {}

    def live(candidate: str) -> bool:
        memory = agent.memories.get(candidate)
        return memory is not None and not memory.is_expired(now)

    frontier = [seed]
    for _ in range(levels):
        following = []
        for memory in frontier:
            vector = agent.vectors.get_vector(memory.id)
            if vector is None:
                continue
            for other_id, score in agent.vectors.search(vector, SEED_NEIGHBOURS + 1, live):
                if other_id == memory.id or score < threshold:
                    continue
                pair = (min(memory.id, other_id), max(memory.id, other_id))
                relationship = "related_to" if score >= kg.similarity_threshold else "similar"
                pairs.setdefault(pair, _edge(memory.id, other_id, float(score), relationship))
                if other_id not in chosen:
                    chosen[other_id] = agent.memories[other_id]
                    following.append(agent.memories[other_id])
        frontier = following
    members = list(chosen.values())
    matrix = _matrix(agent, members, kg.memories.embedder.dimension)
    position = {m.id: i for i, m in enumerate(members)}
    for edge in _stored_edges(kg, agent_name, set(chosen)):
        similarity = float(matrix[position[edge.from_id]] @ matrix[position[edge.to_id]])
        pairs[(edge.from_id, edge.to_id, edge.edge_type)] = _edge(
            edge.from_id, edge.to_id, similarity, edge.edge_type
        )
    nodes = [
        {k: v for k, v in _node(m, None).items() if k not in ("content_len", "content_truncated")}
        for m in members
    ]
    return SimilarityGraph(nodes, list(pairs.values()), None)


class _Clusters:
    """Union-find over node positions."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def join(self, left: int, right: int) -> None:
        a, b = self.find(left), self.find(right)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def full_graph(
    kg: KnowledgeGraph,
    caller: Caller,
    agent_id: Any,
    *,
    max_nodes: Any = None,
    min_similarity: Any = None,
    cluster_threshold: Any = None,
    max_edges_per_node: Any = None,
    content_preview_chars: Any = None,
) -> SimilarityGraph:
    """The agent's most important memories with their nearest neighbours and clusters."""
    agent_name = _agent_id(agent_id)
    limit = _count(max_nodes, "max_nodes", 100, 1, 1000)
    threshold = _number(min_similarity, "min_similarity", 0.5, 0.0, 1.0)
    cluster_at = _number(cluster_threshold, "cluster_threshold", 0.75, 0.0, 1.0)
    per_node = _count(max_edges_per_node, "max_edges_per_node", 5, 1, 100)
    preview = _count(content_preview_chars, "content_preview_chars", 0, 1, 10_000) or None
    agent = kg.memories.agent(caller, agent_name)
    live = [] if agent is None else kg.memories.live(agent)
    members = _by_importance(live)[:limit]
    stats: dict[str, Any] = {"total_memories": len(live), "node_count": len(members)}
    if agent is None or not members:
        stats.update(edge_count=0, cluster_count=0, avg_similarity=0.0)
        return SimilarityGraph([], [], [], stats)
    matrix = _matrix(agent, members, kg.memories.embedder.dimension)
    scores = matrix @ matrix.T
    np.fill_diagonal(scores, -np.inf)
    pairs: dict[tuple[int, int], float] = {}
    take = min(per_node, len(members) - 1)
    if take > 0:
        nearest = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        for i, row in enumerate(nearest):
            for j in row:
                if scores[i, j] >= threshold:
                    pairs[(min(i, int(j)), max(i, int(j)))] = float(scores[i, j])
    clusters = _Clusters(len(members))
    for (i, j), similarity in pairs.items():
        if similarity >= cluster_at:
            clusters.join(i, j)
    groups: dict[int, list[int]] = {}
    for i in range(len(members)):
        groups.setdefault(clusters.find(i), []).append(i)
    grouped = sorted((g for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))
    cluster_of = {i: n for n, group in enumerate(grouped) for i in group}
    edges = [
        _edge(
            members[i].id,
            members[j].id,
            s,
            "related_to" if s >= kg.similarity_threshold else "similar",
        )
        for (i, j), s in sorted(pairs.items())
    ]
    position = {m.id: i for i, m in enumerate(members)}
    for edge in _stored_edges(kg, agent_name, set(position)):
        similarity = float(matrix[position[edge.from_id]] @ matrix[position[edge.to_id]])
        edges.append(_edge(edge.from_id, edge.to_id, similarity, edge.edge_type))
    nodes = []
    for i, memory in enumerate(members):
        node = _node(memory, preview)
        node["cluster"] = cluster_of.get(i)
        nodes.append(node)
    similarities = list(pairs.values())
    stats.update(
        edge_count=len(edges),
        cluster_count=len(grouped),
        avg_similarity=round(sum(similarities) / len(similarities), 4) if similarities else 0.0,
    )
    return SimilarityGraph(nodes, edges, [[members[i].id for i in g] for g in grouped], stats)


def cross_agent_network(
    memories: MemoryEngine,
    caller: Caller,
    *,
    agent_ids: Any = None,
    min_similarity: Any = None,
    max_nodes_per_agent: Any = None,
    min_importance: Any = None,
    max_cross_edges: Any = None,
    content_preview_chars: Any = None,
) -> dict[str, Any]:
    """Memories of different (visible) agents joined where their cosine ≥ ``min_similarity``;
    the strongest ``max_cross_edges`` pairs are kept."""
    threshold = _number(min_similarity, "min_similarity", 0.3, 0.0, 1.0)
    per_agent = _count(max_nodes_per_agent, "max_nodes_per_agent", 50, 1, 1000)
    floor = 0.0 if min_importance is None else check_importance(min_importance, "min_importance")
    edge_cap = _count(max_cross_edges, "max_cross_edges", 200, 0, 10_000)
    preview = _count(content_preview_chars, "content_preview_chars", 0, 1, 10_000) or None
    if agent_ids is not None and (
        not isinstance(agent_ids, list) or not all(isinstance(a, str) for a in agent_ids)
    ):
        raise InvalidInput("'agent_ids' must be a list of agent ids")
    names = memories.agent_ids(caller)
    if agent_ids is not None:
        wanted = set(agent_ids)
        names = [a for a in names if a in wanted]
    agents_wire, members, owners, blocks = [], [], [], []
    for index, name in enumerate(names):
        agent = memories.agent(caller, name)
        live = [] if agent is None else memories.live(agent)
        average = sum(m.importance for m in live) / len(live) if live else 0.0
        agents_wire.append(
            {"agent_id": name, "memory_count": len(live), "avg_importance": round(average, 4)}
        )
        picked = _by_importance([m for m in live if m.importance >= floor])[:per_agent]
        if agent is not None and picked:
            blocks.append(_matrix(agent, picked, memories.embedder.dimension))
            members.extend(picked)
            owners.extend([index] * len(picked))
    edges: list[dict[str, Any]] = []
    possible = 0
    if blocks:
        matrix = np.vstack(blocks)
        owner = np.asarray(owners)
        candidates: list[tuple[float, int, int]] = []
        for index in sorted(set(owners)):
            rows = np.flatnonzero(owner == index)
            cols = np.flatnonzero(owner > index)
            possible += len(rows) * len(cols)
            if not len(cols) or not edge_cap:
                continue
            scores = matrix[rows] @ matrix[cols].T
            hits = np.argwhere(scores >= threshold)
            if len(hits) > edge_cap:
                values = scores[hits[:, 0], hits[:, 1]]
                hits = hits[np.argpartition(-values, edge_cap - 1)[:edge_cap]]
            candidates.extend((float(scores[r, c]), int(rows[r]), int(cols[c])) for r, c in hits)
        candidates.sort(key=lambda c: (-c[0], members[c[1]].id, members[c[2]].id))
        for similarity, i, j in candidates[:edge_cap]:
            edges.append(
                {
                    "source": members[i].id,
                    "target": members[j].id,
                    "source_agent": members[i].agent_id,
                    "target_agent": members[j].agent_id,
                    "similarity": round(similarity, 4),
                }
            )
    nodes = [_node(m, preview) for m in members]
    for node in nodes:
        del node["metadata"]
    return {
        "agents": agents_wire,
        "nodes": nodes,
        "edges": edges,
        "stats": {
            "total_agents": len(agents_wire),
            "total_nodes": len(nodes),
            "total_cross_edges": len(edges),
            "density": round(len(edges) / possible, 6) if possible else 0.0,
        },
        "node_count": len(nodes),
    }
