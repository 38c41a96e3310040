"""Which agents hold a memory id: ``GET /v1/memories/{id}`` names no agent.

A memory id is unique per agent, not across agents (an import may reuse ids), so a lookup by id
alone needs every agent holding it; scanning every agent's map per request would cost time in
the number of agents. Kept by the memory engine under the agent locks of its writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from dakera_server.engine.memory.models import Memory

__all__ = ["MemoryOwners"]


class MemoryOwners:
    """memory id -> the agents holding a memory of that id."""

    def __init__(self) -> None:
        self._owners: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def add(self, agent_id: str, memories: Iterable[Memory]) -> None:
        """``agent_id`` holds ``memories``."""
        with self._lock:
            for memory in memories:
                self._owners.setdefault(memory.id, set()).add(agent_id)

    def discard(self, agent_id: str, memories: Iterable[Memory]) -> None:
        """``agent_id`` no longer holds ``memories``."""
        with self._lock:
            for memory in memories:
                owners = self._owners.get(memory.id)
                if owners is not None:
                    owners.discard(agent_id)
                    if not owners:
                        del self._owners[memory.id]

    def of(self, memory_id: str) -> set[str]:
        """The agents holding ``memory_id`` (a copy)."""
        with self._lock:
            return set(self._owners.get(memory_id, ()))

    def clear(self) -> None:
        """Nobody holds anything (the engine forgot every agent)."""
        with self._lock:
            self._owners = {}
