"""Recall and search: candidates by meaning and by keyword, fused, then ranked.

Pipeline (dakera-api.md §8): filters become an ``allow`` predicate applied *inside* both index
searches (before top-k) → vector candidates and BM25 candidates from a pool whose size does not
depend on ``top_k`` (so top-k prefixes are stable) → relevance (``fusion.py``: min-max or RRF
fusion, query-intent boosts from ``query.py``, session neighbours from ``timeline.py``) → rank
score that blends relevance with importance and recency → top-k. docs/benchmarks.md measures each
part on LoCoMo.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from dakera_server.engine.access import Caller
from dakera_server.engine.memory.agents import AgentMemories
from dakera_server.engine.memory.decay import DEFAULT_DECAY_POLICY, DecayPolicy, decayed_importance
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.fusion import DEFAULT_TUNING, RecallTuning, relevance
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.query import analyze_query
from dakera_server.engine.rules import MEMORY_TYPES, check_importance, parse_iso_time
from dakera_server.errors import InvalidInput

__all__ = ["RecallFilters", "RecallOutcome", "RecallTuning", "ScoredMemory", "recall"]

CANDIDATE_POOL = 100
MAX_YEARS_SPANNED = 30
RECENCY_HALF_LIFE_DAYS = 30.0
ROUTINGS = ("auto", "vector", "bm25", "hybrid")
FUSIONS = ("minmax", "rrf")


@dataclass(frozen=True)
class RecallFilters:
    """Filters of recall/search; all optional, AND-combined (tags any-of)."""

    memory_type: str | None = None
    min_importance: float | None = None
    tags: tuple[str, ...] = ()
    session_id: str | None = None
    since: float | None = None
    until: float | None = None

    @classmethod
    def parse(
        cls,
        *,
        memory_type: Any = None,
        min_importance: Any = None,
        tags: Any = None,
        session_id: Any = None,
        since: Any = None,
        until: Any = None,
    ) -> RecallFilters:
        """Validate client values into filters (400 on a bad one)."""
        if memory_type is not None and (
            not isinstance(memory_type, str) or memory_type.lower() not in MEMORY_TYPES
        ):
            raise InvalidInput(f"'memory_type' must be one of {', '.join(MEMORY_TYPES)}")
        if tags is not None and (
            not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)
        ):
            raise InvalidInput("'tags' must be a list of strings")
        return cls(
            memory_type=memory_type.lower() if isinstance(memory_type, str) else None,
            min_importance=None
            if min_importance is None
            else check_importance(min_importance, "min_importance"),
            tags=tuple(tags or ()),
            session_id=session_id if isinstance(session_id, str) else None,
            since=parse_iso_time(since, "since"),
            until=parse_iso_time(until, "until"),
        )

    def predicate(self, memories: dict[str, Memory], now: float) -> Callable[[str], bool]:
        """An id predicate for the index searches."""
        tags = set(self.tags)

        def allow(memory_id: str) -> bool:
            memory = memories.get(memory_id)
            if memory is None or memory.is_expired(now):
                return False
            if self.memory_type is not None and memory.memory_type != self.memory_type:
                return False
            if self.min_importance is not None and memory.importance < self.min_importance:
                return False
            if tags and tags.isdisjoint(memory.tags):
                return False
            if self.session_id is not None and memory.session_id != self.session_id:
                return False
            when = memory.event_time
            if self.since is not None and when < self.since:
                return False
            return not (self.until is not None and when > self.until)

        return allow


@dataclass(frozen=True)
class ScoredMemory:
    """One ranked result with its score components."""

    memory: Memory
    score: float
    rank_score: float
    vector_score: float | None
    text_score: float | None

    def to_wire(self) -> dict[str, Any]:
        """The result envelope of §7.2."""
        wire: dict[str, Any] = {
            "memory": self.memory.to_wire(),
            "score": self.score,
            "rank_score": self.rank_score,
            "smart_score": self.rank_score,
            "weighted_score": self.score * (0.7 + 0.3 * self.memory.importance),
        }
        if self.vector_score is not None:
            wire["vector_score"] = self.vector_score
        if self.text_score is not None:
            wire["text_score"] = self.text_score
        return wire


@dataclass
class RecallOutcome:
    """Ranked results plus timings."""

    results: list[ScoredMemory] = field(default_factory=list)
    embedding_ms: float = 0.0
    search_ms: float = 0.0


def _cosines(
    agent: AgentMemories, query_vector: npt.NDArray[np.float32]
) -> Callable[[Sequence[str]], dict[str, float]]:
    """Exact cosine of the query with stored memories (for BM25-only candidates)."""
    return lambda memory_ids: agent.vectors.cosines(memory_ids, query_vector)


def _years(
    memories: dict[str, Memory],
    vector_hits: list[tuple[str, float]],
    text_hits: list[tuple[str, float]],
) -> range:
    """The calendar years the candidates' event times span (what "in June" may refer to)."""
    years = {
        datetime.fromtimestamp(memories[memory_id].event_time, UTC).year
        for memory_id, _ in (*vector_hits, *text_hits)
        if memory_id in memories
    }
    if not years:
        return range(0)
    # A month without a year is matched in every year of the span; a few decades is plenty.
    return range(max(min(years), max(years) - MAX_YEARS_SPANNED + 1), max(years) + 1)


def _neighbours(
    agent: AgentMemories, allow: Callable[[str], bool], radius: int
) -> Callable[[str], list[list[str]]]:
    """The session neighbours of a memory (``timeline.py``) that the filters allow."""
    return lambda memory_id: agent.timeline.neighbours(memory_id, allow, radius)


def _recency(memory: Memory, now: float) -> float:
    age_days = max(0.0, now - memory.event_time) / 86400.0
    return math.pow(0.5, age_days / RECENCY_HALF_LIFE_DAYS)


def rank_factor(memory: Memory, now: float, policy: DecayPolicy = DEFAULT_DECAY_POLICY) -> float:
    """How importance and recency scale relevance: bounded so relevance dominates.

    Importance is the *decayed* importance (``decay.py``): an old, unused memory ranks
    below an equally relevant fresh one.
    """
    importance = decayed_importance(memory, now, policy)
    return (0.7 + 0.3 * importance) * (0.85 + 0.15 * _recency(memory, now))


def recall(
    engine: MemoryEngine,
    caller: Caller,
    agent_id: str,
    query: Any,
    *,
    top_k: Any = 5,
    filters: RecallFilters | None = None,
    routing: Any = None,
    fusion: Any = None,
    vector_weight: Any = None,
    touch: bool = True,
    tuning: RecallTuning = DEFAULT_TUNING,
) -> RecallOutcome:
    """Rank the agent's memories for ``query``; an unknown or invisible agent has none.

    ``tuning`` sets the ranking knobs (the server always uses the defaults; benchmarks vary it).
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("'query' must be a non-empty string")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 1000:
        raise InvalidInput("'top_k' must be a whole number between 1 and 1000")
    routing = "auto" if routing is None else str(routing).lower()
    if routing not in ROUTINGS:
        raise InvalidInput(f"'routing' must be one of {', '.join(ROUTINGS)}")
    fusion = "minmax" if fusion is None else str(fusion).lower()
    if fusion not in FUSIONS:
        raise InvalidInput(f"'fusion' must be one of {', '.join(FUSIONS)}")
    weight = None if vector_weight is None else check_importance(vector_weight, "vector_weight")
    filters = filters or RecallFilters()
    outcome = RecallOutcome()
    agent = engine.agent(caller, agent_id)
    if agent is None or len(agent) == 0:
        return outcome
    now = engine.clock()
    pool = max(CANDIDATE_POOL, 2 * top_k)
    use_vector = routing != "bm25"
    use_text = routing != "vector"
    vector_hits: list[tuple[str, float]] = []
    text_hits: list[tuple[str, float]] = []
    if use_vector:
        started = time.perf_counter()
        query_vector = engine.embedder.embed_one(query)
        outcome.embedding_ms = (time.perf_counter() - started) * 1000.0
    started = time.perf_counter()
    with agent.lock:
        allow = filters.predicate(agent.memories, now)
        if use_vector:
            vector_hits = agent.vectors.search(query_vector, pool, allow)
        if use_text:
            text_hits = agent.text.search(query, pool, allow)
        memories = agent.memories
        spread = tuning.neighbour_weight > 0
        candidates = relevance(
            vector_hits,
            text_hits,
            memories=memories,
            cosines=_cosines(agent, query_vector) if use_vector else None,
            fusion=fusion,
            vector_weight=weight,
            analysis=analyze_query(query, lambda: _years(memories, vector_hits, text_hits)),
            neighbours=_neighbours(agent, allow, tuning.neighbour_radius) if spread else None,
            tuning=tuning,
        )
        scored = []
        for memory_id, found in candidates.items():
            memory = memories[memory_id]
            scored.append(
                ScoredMemory(
                    memory=memory,
                    score=found.score,
                    rank_score=found.score * rank_factor(memory, now, engine.decay_policy(memory)),
                    vector_score=found.vector_score,
                    text_score=found.text_score,
                )
            )
    scored.sort(key=lambda s: (-s.rank_score, s.memory.id))
    outcome.results = scored[:top_k]
    outcome.search_ms = (time.perf_counter() - started) * 1000.0
    if touch:
        engine.counters.touch(s.memory for s in outcome.results)
    return outcome
