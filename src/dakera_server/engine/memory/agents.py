"""Per-agent in-memory state: the agent's memories and its two search indexes.

The store is the source of truth; this is what recall searches. Every mutation goes through
``put``/``remove`` under the agent's lock so the memory map and both indexes never disagree.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from dakera_server.engine.ann import VectorIndex, create_index
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.timeline import Timeline
from dakera_server.engine.text.fulltext import FullTextIndex

__all__ = ["AgentMemories"]


class AgentMemories:
    """One agent's memories with its vector (cosine) and BM25 indexes."""

    def __init__(self, agent_id: str, dimension: int, *, exact_threshold: int) -> None:
        self.agent_id = agent_id
        self.memories: dict[str, Memory] = {}
        self.vectors: VectorIndex = create_index(
            dimension, "cosine", exact_threshold=exact_threshold
        )
        self.text = FullTextIndex()
        self.timeline = Timeline()  # session neighbours by event time (recall)
        self.lock = threading.RLock()
        self._last_seq = 0

    def next_seq(self) -> int:
        """The next insertion number of this agent (the caller holds ``lock``)."""
        self._last_seq += 1
        return self._last_seq

    def _placed(self, memory: Memory) -> None:
        self.memories[memory.id] = memory
        self.timeline.add(memory)
        if memory.seq > self._last_seq:
            self._last_seq = memory.seq

    def put_many(self, memories: list[Memory], vectors: npt.NDArray[np.float32]) -> None:
        """Insert or replace ``memories`` with their embedding rows (same order)."""
        with self.lock:
            for memory in memories:
                self._placed(memory)
            self.vectors.upsert([m.id for m in memories], vectors)
            self.text.upsert([(m.id, m.content) for m in memories])

    def adopt(self, memories: list[Memory], index: VectorIndex) -> None:
        """Take ``memories`` with a ready vector index (restored from a snapshot)."""
        with self.lock:
            for memory in memories:
                self._placed(memory)
            self.vectors = index
            self.text.upsert([(m.id, m.content) for m in memories])

    def replace_text(self, memory: Memory, vector: npt.NDArray[np.float32] | None) -> None:
        """Re-index one memory after an update (new vector only when content changed)."""
        with self.lock:
            self._placed(memory)
            if vector is not None:
                self.vectors.upsert([memory.id], vector.reshape(1, -1))
                self.text.upsert([(memory.id, memory.content)])

    def remove(self, ids: Iterable[str]) -> list[Memory]:
        """Drop ``ids`` from the map and both indexes; returns the memories that existed."""
        with self.lock:
            removed = [self.memories.pop(i) for i in list(ids) if i in self.memories]
            gone = [m.id for m in removed]
            for memory_id in gone:
                self.timeline.remove(memory_id)
            if gone:
                self.vectors.delete(gone)
                self.text.delete(gone)
            return removed

    def __len__(self) -> int:
        return len(self.memories)
