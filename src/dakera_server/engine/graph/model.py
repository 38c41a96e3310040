"""Edges and one agent's graph: the data the knowledge graph is made of, with no behaviour
that needs the memory engine (``knowledge_graph.py`` adds the hooks, ``load.py`` the start-up).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.entities.extractor import Entity
from dakera_server.errors import InvalidInput

__all__ = [
    "AUTOMATIC",
    "EDGE_TYPES",
    "EDGE_TYPE_ALIASES",
    "SYSTEM",
    "AgentGraph",
    "Edge",
    "parse_edge_types",
    "row_payload",
]

EDGE_TYPES = ("related_to", "shares_entity", "precedes", "linked_by", "supersedes")
EDGE_TYPE_ALIASES = {"similar_to": "related_to", "similar": "related_to"}
AUTOMATIC = frozenset({"related_to", "shares_entity"})
# The graph maintains itself for every agent; this caller is never exposed to requests.
SYSTEM = Caller(key_id="system", name="system", scope=Scope.SUPER_ADMIN, namespaces=None)


def parse_edge_types(value: Any) -> frozenset[str] | None:
    """Edge type filter from a list or comma-separated string; None = every type."""
    if value is None or value == "" or value == []:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise InvalidInput("'edge_type' must be a comma-separated list of edge types")
    types = set()
    for item in items:
        name = item.strip().lower()
        name = EDGE_TYPE_ALIASES.get(name, name)
        if name not in EDGE_TYPES:
            raise InvalidInput(
                f"unknown edge type '{item.strip()}'; known: {', '.join(EDGE_TYPES)}"
            )
        types.add(name)
    return frozenset(types)


@dataclass(slots=True)
class Edge:
    """A directed, typed edge between two memories of one agent."""

    from_id: str
    to_id: str
    edge_type: str
    weight: float
    created_at: int
    label: str | None = None

    @property
    def key(self) -> str:
        """``from|type|to``: the edge's identity (one edge per type per ordered pair)."""
        return f"{self.from_id}|{self.edge_type}|{self.to_id}"

    def other(self, node: str) -> str:
        """The endpoint that is not ``node``."""
        return self.to_id if node == self.from_id else self.from_id

    def to_wire(self) -> dict[str, Any]:
        """The edge object of §3.12 (``label`` only when set)."""
        wire: dict[str, Any] = {
            "from_id": self.from_id,
            "to_id": self.to_id,
            "edge_type": self.edge_type,
            "weight": self.weight,
            "created_at": self.created_at,
        }
        if self.label is not None:
            wire["label"] = self.label
        return wire

    def to_payload(self) -> bytes:
        """Persisted bytes (same fields as the wire form)."""
        return orjson.dumps(self.to_wire())

    @classmethod
    def from_payload(cls, payload: bytes) -> Edge:
        """Rebuild from ``to_payload``."""
        data = orjson.loads(payload)
        return cls(
            data["from_id"],
            data["to_id"],
            data["edge_type"],
            float(data["weight"]),
            int(data["created_at"]),
            data.get("label"),
        )


class AgentGraph:
    """One agent's edges (by key and by node), entities per memory, and entity mentions."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self.edges: dict[str, Edge] = {}
        self.adjacency: dict[str, dict[str, Edge]] = {}
        self.entities: dict[str, tuple[Entity, ...]] = {}
        self.mentions: dict[str, dict[str, None]] = {}
        self.lock = threading.RLock()

    def add(self, edge: Edge) -> None:
        """Insert or replace ``edge``."""
        key = edge.key
        self.edges[key] = edge
        self.adjacency.setdefault(edge.from_id, {})[key] = edge
        self.adjacency.setdefault(edge.to_id, {})[key] = edge

    def remove(self, key: str) -> Edge | None:
        """Drop one edge; returns it if it existed."""
        edge = self.edges.pop(key, None)
        if edge is not None:
            for node in (edge.from_id, edge.to_id):
                around = self.adjacency.get(node)
                if around is not None:
                    around.pop(key, None)
                    if not around:
                        del self.adjacency[node]
        return edge

    def drop(self, memory_id: str, *, automatic_only: bool = False) -> list[Edge]:
        """Remove the memory's edges (only derived ones with ``automatic_only``) and its
        entity mentions; returns the removed edges."""
        around = list(self.adjacency.get(memory_id, {}).values())
        removed = [e for e in around if not automatic_only or e.edge_type in AUTOMATIC]
        for edge in removed:
            self.remove(edge.key)
        for entity in self.entities.pop(memory_id, ()):
            key = entity.key
            if key is not None and key in self.mentions:
                self.mentions[key].pop(memory_id, None)
                if not self.mentions[key]:
                    del self.mentions[key]
        return removed

    def set_entities(self, memory_id: str, entities: Sequence[Entity]) -> None:
        """Record a memory's entities and index its mentions (appended: newest last)."""
        self.entities[memory_id] = tuple(entities)
        for entity in entities:
            if entity.key is not None:
                self.mentions.setdefault(entity.key, {})[memory_id] = None

    def latest_mentions(self, key: str, count: int, exclude: str) -> list[str]:
        """Up to ``count`` memories that mention ``key`` most recently, other than ``exclude``."""
        found: list[str] = []
        for memory_id in reversed(self.mentions.get(key, {})):
            if memory_id != exclude:
                found.append(memory_id)
                if len(found) == count:
                    break
        return found


def row_payload(graph: AgentGraph, memory_id: str) -> bytes:
    """A memory's persisted row: its entities and the edges that start at it."""
    edges = [
        [e.to_id, e.edge_type, e.weight, e.created_at, e.label]
        for e in graph.adjacency.get(memory_id, {}).values()
        if e.from_id == memory_id
    ]
    entities = [e.to_payload() for e in graph.entities.get(memory_id, ())]
    return orjson.dumps({"entities": entities, "edges": edges})
