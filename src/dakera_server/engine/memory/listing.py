"""Listing memories without a query: batch recall/forget filters, agent views, wake-up."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dakera_server.engine.access import Caller
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.rules import MEMORY_TYPES, check_importance
from dakera_server.errors import InvalidInput

__all__ = ["BatchPredicate", "agent_stats", "batch_forget", "batch_recall", "wake_up"]

WAKE_UP_HALF_LIFE_SECONDS = 14 * 86400


@dataclass(frozen=True)
class BatchPredicate:
    """The batch filter of §3.8: tags all-of, bounds inclusive, AND-combined."""

    tags: tuple[str, ...] = ()
    min_importance: float | None = None
    max_importance: float | None = None
    created_after: int | None = None
    created_before: int | None = None
    memory_type: str | None = None
    session_id: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> BatchPredicate:
        """Validate the client's filter object."""
        raw = raw or {}
        memory_type = raw.get("memory_type")
        if memory_type is not None and str(memory_type).lower() not in MEMORY_TYPES:
            raise InvalidInput(f"'filter.memory_type' must be one of {', '.join(MEMORY_TYPES)}")
        bounds = {}
        for name in ("min_importance", "max_importance"):
            if raw.get(name) is not None:
                bounds[name] = check_importance(raw[name], f"filter.{name}")
        return cls(
            tags=tuple(raw.get("tags") or ()),
            memory_type=None if memory_type is None else str(memory_type).lower(),
            session_id=raw.get("session_id"),
            created_after=raw.get("created_after"),
            created_before=raw.get("created_before"),
            **bounds,
        )

    @property
    def empty(self) -> bool:
        """True when no predicate is set."""
        return self == BatchPredicate()

    def matches(self, memory: Memory) -> bool:
        """Whether ``memory`` passes every set predicate."""
        if self.tags and not set(self.tags).issubset(memory.tags):
            return False
        if self.min_importance is not None and memory.importance < self.min_importance:
            return False
        if self.max_importance is not None and memory.importance > self.max_importance:
            return False
        if self.created_after is not None and memory.created_at < self.created_after:
            return False
        if self.created_before is not None and memory.created_at > self.created_before:
            return False
        if self.memory_type is not None and memory.memory_type != self.memory_type:
            return False
        return self.session_id is None or memory.session_id == self.session_id


@dataclass(frozen=True)
class BatchRecallOutcome:
    """Matches (newest first, at most ``limit``) and the counts of §3.8."""

    memories: list[Memory]
    total: int
    filtered: int
    truncated: bool


def _live(engine: MemoryEngine, caller: Caller, agent_id: str) -> list[Memory]:
    agent = engine.agent(caller, agent_id)
    return [] if agent is None else engine.live(agent)


def newest_first(memories: list[Memory]) -> list[Memory]:
    """Sort by creation time, newest first, ties by id."""
    return sorted(memories, key=lambda m: (-m.created_at, m.id))


def batch_recall(
    engine: MemoryEngine, caller: Caller, agent_id: str, predicate: BatchPredicate, limit: int
) -> BatchRecallOutcome:
    """Filter the agent's memories without embedding anything."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput("'limit' must be between 1 and 10000")
    live = _live(engine, caller, agent_id)
    matches = newest_first([m for m in live if predicate.matches(m)])
    return BatchRecallOutcome(matches[:limit], len(live), len(matches), len(matches) > limit)


def batch_forget(
    engine: MemoryEngine, caller: Caller, agent_id: str, predicate: BatchPredicate
) -> int:
    """Delete every memory matching a non-empty filter; returns how many."""
    if predicate.empty:
        raise InvalidInput("batch forget needs at least one filter predicate")
    targets = [m.id for m in _live(engine, caller, agent_id) if predicate.matches(m)]
    return len(engine.forget(caller, agent_id, targets))


def wake_up(
    engine: MemoryEngine, caller: Caller, agent_id: str, top_n: int, min_importance: float
) -> tuple[list[Memory], int]:
    """The agent's most important recent memories: importance × exp(−ln2 × age / 14 d)."""
    if not 1 <= top_n <= 100:
        raise InvalidInput("'top_n' must be between 1 and 100")
    now = engine.clock()
    live = [m for m in _live(engine, caller, agent_id) if m.importance >= min_importance]

    def weight(memory: Memory) -> float:
        age = max(0.0, now - memory.created_at)
        return memory.importance * math.exp(-math.log(2) * age / WAKE_UP_HALF_LIFE_SECONDS)

    live.sort(key=lambda m: (-weight(m), m.id))
    return live[:top_n], len(live)


def agent_stats(engine: MemoryEngine, caller: Caller, agent_id: str) -> dict[str, Any]:
    """Counts by type, average importance and the time span of the agent's memories."""
    live = _live(engine, caller, agent_id)
    by_type = Counter(m.memory_type for m in live)
    return {
        "total_memories": len(live),
        "memories_by_type": {kind: by_type.get(kind, 0) for kind in MEMORY_TYPES},
        "avg_importance": (sum(m.importance for m in live) / len(live)) if live else 0.0,
        "oldest_memory_at": min((m.created_at for m in live), default=None),
        "newest_memory_at": max((m.created_at for m in live), default=None),
    }
