"""What the server holds, namespace by namespace: records, dimensions, index state, bytes.

Read by analytics (storage), ops stats, index stats, quotas (usage), memory-type stats and the
storage-tier overview. Everything comes from the in-memory engines (no store scan), so these
answers stay cheap as data grows. Sizes are estimates named as such: vector bytes are
records × dimension × 4 (float32, as ``GET /v1/namespaces/{ns}`` reports), index bytes add
HNSW's links for namespaces served by the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dakera_server.engine.access import AGENT_NAMESPACE_PREFIX, agent_namespace
from dakera_server.engine.lifecycle.state import SYSTEM
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.ops.quotas import Usage
from dakera_server.engine.rules import MEMORY_TYPES
from dakera_server.engine.vectors.engine import NamespaceEngine

__all__ = ["HNSW_LINK_BYTES", "Inventory", "NamespaceFacts"]

# hnswlib M=16: level-0 links 2·M four-byte ids per vector (upper levels add ~1/M of that).
HNSW_LINK_BYTES = 2 * 16 * 4


@dataclass(frozen=True)
class NamespaceFacts:
    """One namespace as the ops routes see it."""

    name: str
    kind: str  # "data" or "agent"
    records: int
    vectors: int
    documents: int
    dimension: int | None
    backend: str
    pending: int
    updated_at: int | None = None

    @property
    def vector_bytes(self) -> int:
        """records × dimension × 4."""
        return self.vectors * (self.dimension or 0) * 4

    @property
    def index_bytes(self) -> int:
        """Vector rows held by the index, plus HNSW links when the graph serves it."""
        links = self.vectors * HNSW_LINK_BYTES if self.backend == "hnsw" else 0
        return self.vector_bytes + links

    def index_wire(self) -> dict[str, Any]:
        """One namespace of ``GET /v1/admin/indexes/stats``."""
        return {
            "index_type": self.backend,
            "kind": self.kind,
            "is_built": self.pending == 0,
            "indexed_vectors": self.vectors - self.pending,
            "pending_vectors": self.pending,
            "total_vectors": self.vectors,
            "documents": self.documents,
            "dimension": self.dimension,
            "size_bytes": self.index_bytes,
            "last_rebuild": None,
        }


class Inventory:
    """Facts about every namespace, data and agent, from the engines' in-memory state."""

    def __init__(self, memories: MemoryEngine, namespaces: NamespaceEngine) -> None:
        self.memories = memories
        self.namespaces = namespaces

    def agent_facts(self, agent_id: str) -> NamespaceFacts | None:
        """An agent's namespace, or ``None`` when the agent holds nothing."""
        agent = self.memories.agent(SYSTEM, agent_id)
        if agent is None:
            return None
        count = len(agent)
        return NamespaceFacts(
            name=agent_namespace(agent_id),
            kind="agent",
            records=count,
            vectors=count,
            documents=len(agent.text),
            dimension=self.memories.embedder.dimension,
            backend=str(getattr(agent.vectors, "backend", "exact")),
            pending=int(getattr(agent.vectors, "pending", 0)),
        )

    def facts(self, name: str) -> NamespaceFacts | None:
        """One namespace's facts, or ``None`` when it does not exist."""
        if name.startswith(AGENT_NAMESPACE_PREFIX):
            found = self.agent_facts(name[len(AGENT_NAMESPACE_PREFIX) :])
            if found is not None:
                return found
        namespace = self.namespaces.held(name)
        if namespace is None:
            return None
        return NamespaceFacts(
            name=name,
            kind="data",
            records=len(namespace.records),
            vectors=namespace.vector_count(),
            documents=len(namespace.text),
            dimension=namespace.info.dimension,
            backend=namespace.backend(),
            pending=namespace.index_pending(),
            updated_at=namespace.info.updated_at or None,
        )

    def names(self) -> list[str]:
        """Every namespace, data and agent, sorted."""
        return list(self.namespaces.names(SYSTEM))

    def all(self) -> list[NamespaceFacts]:
        """Facts of every namespace (skipping any deleted meanwhile)."""
        return [f for name in self.names() if (f := self.facts(name)) is not None]

    def usage(self, name: str) -> Usage | None:
        """Quota usage of one namespace."""
        found = self.facts(name)
        if found is None:
            return None
        return Usage(found.records, found.dimension, found.updated_at)

    def known_ids(self, name: str) -> set[str]:
        """Record ids a namespace holds (a quota check counts only new ones)."""
        if name.startswith(AGENT_NAMESPACE_PREFIX):
            agent = self.memories.agent(SYSTEM, name[len(AGENT_NAMESPACE_PREFIX) :])
            if agent is not None:
                return set(agent.memories)
        namespace = self.namespaces.held(name)
        return set() if namespace is None else set(namespace.records)

    def memory_types(self) -> dict[str, Any]:
        """Live memories per type across agents (``GET /v1/admin/memory-type-stats``)."""
        counts = dict.fromkeys(MEMORY_TYPES, 0)
        agents = self.memories.agent_ids(SYSTEM)
        for agent_id in agents:
            agent = self.memories.agent(SYSTEM, agent_id)
            if agent is None:
                continue
            for memory in self.memories.live(agent):
                kind = memory.memory_type.lower()
                counts[kind] = counts.get(kind, 0) + 1
        return {"total": sum(counts.values()), **counts, "agent_namespaces": len(agents)}
