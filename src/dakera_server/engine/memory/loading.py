"""Start-up of the memory engine: every agent's memories and indexes from the store.

Vectors come from the stored rows (never embedded again unless the model changed: a row whose
vector has the wrong size is embedded once and written back); an agent big enough for HNSW
adopts its index snapshot when the snapshot matches the stored vectors (``snapshots.py``), so a
restart does not rebuild graphs. Snapshots are written at shutdown, not here: the HNSW graph is
built in the background after loading.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from dakera_server.engine.ann.snapshots import SnapshotStore
from dakera_server.engine.memory.agents import AgentMemories
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.owners import MemoryOwners
from dakera_server.engine.memory.snapshots import restore_agent_index, save_agent_index
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.storage.base import Op, Store

__all__ = ["LoadableEngine", "load_agents", "save_agent_snapshots"]


class LoadableEngine(Protocol):
    """What loading needs of the memory engine (``MemoryEngine`` is one)."""

    storage: Store
    embedder: EmbeddingProvider
    snapshots: SnapshotStore | None
    exact_threshold: int
    owners: MemoryOwners
    follow: Callable[[str], None]

    def held(self, agent_id: str, *, create: bool = False) -> AgentMemories | None: ...

    def held_agents(self) -> list[AgentMemories]: ...

    def put_op(self, memory: Memory, vector: npt.NDArray[np.float32] | None) -> Op: ...


def load_agents(engine: LoadableEngine) -> int:
    """Rebuild every agent's indexes from the store; returns the number of memories."""
    by_agent: dict[str, list[tuple[Memory, bytes | None]]] = {}
    for row in engine.storage.iter_rows("memories"):
        memory = Memory.from_payload(row.payload)
        by_agent.setdefault(memory.agent_id, []).append((memory, row.vector))
    total = 0
    dim = engine.embedder.dimension
    for agent_id, rows in by_agent.items():
        memories = [m for m, _ in rows]
        vectors = np.zeros((len(rows), dim), dtype=np.float32)
        stale: list[int] = []
        for index, (_, blob) in enumerate(rows):
            if blob is not None and len(blob) == dim * 4:
                vectors[index] = np.frombuffer(blob, dtype=np.float32)
            else:
                stale.append(index)
        if stale:
            # The embedding model changed since these were stored: embed them again, once.
            fresh = engine.embedder.embed([memories[i].content for i in stale]).vectors
            vectors[stale] = fresh
            engine.storage.write([engine.put_op(memories[i], vectors[i]) for i in stale])
        engine.follow(agent_id)
        agent = engine.held(agent_id, create=True)
        assert agent is not None
        restored = None
        if engine.snapshots is not None and len(memories) >= engine.exact_threshold:
            blobs = {m.id: vectors[i].tobytes() for i, m in enumerate(memories)}
            restored = restore_agent_index(engine.snapshots, agent_id, dim, blobs)
        if restored is None:
            # No snapshot is written here: the HNSW graph is built in the background after
            # this returns, so one taken now would hold only the exact segment (rebuilt from
            # the store as fast as it is read) and cost seconds behind the indexer's lock.
            agent.put_many(memories, vectors)
        else:
            agent.adopt(memories, restored)
        engine.owners.add(agent_id, memories)
        total += len(memories)
    return total


def save_agent_snapshots(engine: LoadableEngine) -> int:
    """Snapshot every agent index big enough for HNSW (at shutdown); returns how many."""
    if engine.snapshots is None:
        return 0
    saved = 0
    for agent in engine.held_agents():
        if len(agent) < engine.exact_threshold:
            continue
        blobs = {
            row.key: row.vector
            for row in engine.storage.iter_rows("memories", agent.agent_id)
            if row.vector is not None
        }
        with agent.lock:
            save_agent_index(engine.snapshots, agent.agent_id, agent.vectors, blobs)
        saved += 1
    return saved
