"""Consolidation: merge memories that say the same thing, per agent.

Two forms (dakera-api.md §3.7, §4.2):

* ``consolidate`` (``POST /v1/memory/consolidate``) merges chosen memories — or, without ids,
  up to five of the agent's most common type, the best one and its nearest neighbours — into a
  *new* memory whose content is the sources' distinct sentences in time order.
* ``consolidate_agent`` (``POST /v1/agents/{id}/consolidate`` and the AutoPilot) runs DBSCAN
  over the agent's vectors (cosine distance ``epsilon``, ``min_samples``); in each cluster the
  best memory is the anchor and absorbs the others, which are deprecated. Memories with
  importance above 0.8 are never deprecated.

Removed memories stay restorable in the trash (kind ``consolidation``). A merge, or a batch of
clusters, is one atomic store write, checked under the agent's lock against concurrent changes
(a cluster whose memories changed since the scan is left for the next pass).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.lifecycle.dedup import (
    WRITE_BATCH,
    fold_batch,
    session_buckets,
    survivor_order,
)
from dakera_server.engine.lifecycle.jobs import JobContext
from dakera_server.engine.lifecycle.similarity import dbscan, similar_pairs, unit_matrix
from dakera_server.engine.lifecycle.state import StateStore
from dakera_server.engine.lifecycle.trash import Trash
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.writes import new_memory_id
from dakera_server.engine.rules import MAX_TAGS, MEMORY_TYPES, check_agent_id, check_importance
from dakera_server.errors import Conflict, InvalidInput, MemoryNotFound
from dakera_server.storage.base import Op

__all__ = [
    "ConsolidationConfig",
    "ConsolidationOutcome",
    "Consolidator",
    "merge_contents",
]

PROTECTED_IMPORTANCE = 0.8
AUTO_PICK = 5
PICK_POOL = 2000  # newest memories of the type considered when no ids are given
PICK_THRESHOLD = 0.5
MAX_LOG = 100
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _normal(sentence: str) -> str:
    """Casefolded words, padded so containment tests match whole words only."""
    words = " ".join(sentence.casefold().split()).rstrip(".!?;, ")
    return f" {words} " if words else ""


def merge_contents(memories: Sequence[Memory]) -> str:
    """The distinct sentences of ``memories`` in the given order (repeats dropped)."""
    kept: list[str] = []
    seen: list[str] = []
    for memory in memories:
        for sentence in SENTENCE_END.split(memory.content.strip()):
            sentence = sentence.strip()
            key = _normal(sentence)
            if not key or any(key in other for other in seen):
                continue
            # A longer sentence that contains earlier ones replaces them.
            covered = [i for i, other in enumerate(seen) if other in key]
            for i in reversed(covered):
                del kept[i], seen[i]
            kept.append(sentence)
            seen.append(key)
    return " ".join(kept)


@dataclass(frozen=True)
class ConsolidationConfig:
    """Per-agent DBSCAN settings (``PATCH /v1/agents/{id}/consolidation/config``)."""

    enabled: bool = True
    epsilon: float = 0.05
    min_samples: int = 2
    soft_deprecation_days: int = 0

    def changed(self, changes: Mapping[str, Any]) -> ConsolidationConfig:
        """A validated copy with the given fields set."""
        updated = self
        if changes.get("enabled") is not None:
            if not isinstance(changes["enabled"], bool):
                raise InvalidInput("'enabled' must be true or false")
            updated = replace(updated, enabled=changes["enabled"])
        if changes.get("epsilon") is not None:
            epsilon = check_importance(changes["epsilon"], "epsilon")
            if not 0.0 < epsilon < 1.0:
                raise InvalidInput("'epsilon' must be above 0 and below 1 (a cosine distance)")
            updated = replace(updated, epsilon=epsilon)
        for name, low, high in (("min_samples", 2, 1000), ("soft_deprecation_days", 0, 3650)):
            value = changes.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(f"'{name}' must be a whole number from {low} to {high}")
            number: dict[str, Any] = {name: value}
            updated = replace(updated, **number)
        return updated


@dataclass(frozen=True)
class ConsolidationOutcome:
    """The answer of ``POST /v1/memory/consolidate``."""

    memory: Memory
    source_ids: list[str]

    def to_wire(self) -> dict[str, Any]:
        """§3.7 shape."""
        return {
            "consolidated_memory": self.memory.to_wire(),
            "source_memory_ids": self.source_ids,
            "memories_removed": len(self.source_ids),
        }


class Consolidator:
    """Consolidation of one agent's memories, its per-agent config and its run log."""

    def __init__(
        self,
        memories: MemoryEngine,
        trash: Trash,
        events: EventBus,
        state: StateStore,
        *,
        retention_hours: Callable[[], float],
        cross_session: Callable[[], bool],
    ) -> None:
        self.memories = memories
        self.trash = trash
        self.events = events
        self.state = state
        self.retention_hours = retention_hours
        self.cross_session = cross_session
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ config
    def config(self, agent_id: str) -> ConsolidationConfig:
        """The agent's settings (defaults until patched)."""
        document = self.state.load(f"consolidation.config.{agent_id}") or {}
        try:
            return ConsolidationConfig().changed(document)
        except InvalidInput:
            return ConsolidationConfig()

    def patch_config(
        self, caller: Caller, agent_id: str, changes: Mapping[str, Any]
    ) -> ConsolidationConfig:
        """Validate and persist a change of the agent's settings."""
        agent_id = check_agent_id(agent_id)
        if not caller.can_see_agent(agent_id):
            raise MemoryNotFound(f"agent '{agent_id}' not found", resource="agent")
        config = self.config(agent_id).changed(changes)
        self.state.save(f"consolidation.config.{agent_id}", asdict(config))
        return config

    def log(self, caller: Caller, agent_id: str) -> list[dict[str, Any]]:
        """The agent's consolidation runs, oldest first (at most 100)."""
        if not caller.can_see_agent(agent_id):
            return []
        entries = (self.state.load(f"consolidation.log.{agent_id}") or {}).get("entries")
        return list(entries) if isinstance(entries, list) else []

    def _log_op(self, agent_id: str, entry: dict[str, Any]) -> Op:
        entries = (self.state.load(f"consolidation.log.{agent_id}") or {}).get("entries") or []
        return self.state.op(
            f"consolidation.log.{agent_id}", {"entries": [*entries, entry][-MAX_LOG:]}
        )

    def _retention(self, config: ConsolidationConfig) -> float:
        hours = self.retention_hours()
        if config.soft_deprecation_days > 0:
            hours = max(hours, config.soft_deprecation_days * 24.0)
        return hours

    # ------------------------------------------------------- merge into new memory
    def consolidate(
        self,
        caller: Caller,
        agent_id: str,
        memory_ids: Sequence[str] | None,
        threshold: float | None = None,
        target_type: str | None = None,
    ) -> ConsolidationOutcome:
        """Merge memories into one new memory; the sources go to the trash."""
        agent_id = check_agent_id(agent_id)
        if target_type is not None and target_type.lower() not in MEMORY_TYPES:
            raise InvalidInput(f"'target_type' must be one of {', '.join(MEMORY_TYPES)}")
        if threshold is not None:
            threshold = check_importance(threshold, "threshold")
        if memory_ids is not None:
            if len(set(memory_ids)) < 2:
                raise InvalidInput("'memory_ids' must name at least two different memories")
            sources = [self.memories.get(caller, i, agent_id) for i in dict.fromkeys(memory_ids)]
        else:
            sources = self._pick(caller, agent_id, threshold)
        sources.sort(key=lambda m: (m.event_time, m.created_at))  # stable: ties keep order
        content = merge_contents(sources)
        if len(content.encode("utf-8")) > self.memories.max_content_bytes:
            raise InvalidInput(
                f"the merged content would exceed {self.memories.max_content_bytes} bytes; "
                "consolidate fewer memories"
            )
        kinds = Counter(m.memory_type for m in sources)
        now = int(self.memories.clock())
        sessions = {m.session_id for m in sources}
        merged = Memory(
            id=new_memory_id(),
            agent_id=agent_id,
            content=content,
            memory_type=(target_type or kinds.most_common(1)[0][0]).lower(),
            importance=max(m.importance for m in sources),
            tags=list(dict.fromkeys(t for m in sources for t in m.tags))[:MAX_TAGS],
            metadata={"consolidated_from": [m.id for m in sources]},
            session_id=sessions.pop() if len(sessions) == 1 else None,
            created_at=now,
            updated_at=now,
            last_accessed_at=now,
            access_count=sum(m.access_count for m in sources),
        )
        vector = self.memories.embedder.embed([content]).vectors[0]
        retention = self._retention(self.config(agent_id))
        if not self.trash.replace(
            agent_id, merged, vector, sources, "consolidation", retention, now
        ):
            raise Conflict("a memory changed while it was being consolidated; retry")
        source_ids = [m.id for m in sources]
        self.events.emit(
            "consolidated",
            agent_id=agent_id,
            memory_id=merged.id,
            importance=merged.importance,
            reason=f"merged {len(sources)} memories into {merged.id}",
            details={"source_memory_ids": source_ids},
        )
        return ConsolidationOutcome(merged, source_ids)

    def _pick(self, caller: Caller, agent_id: str, threshold: float | None) -> list[Memory]:
        """Up to five memories of the most common type: the tightest group among them.

        The seed is the memory whose nearest neighbours are closest (so a few near-identical
        memories are found even among many unrelated ones); its neighbours join when their
        cosine to it reaches ``threshold`` (default ``PICK_THRESHOLD``: unrelated memories are
        never merged just because they share a type).
        """
        agent = self.memories.agent(caller, agent_id)
        live = [] if agent is None else self.memories.live(agent)
        if agent is None or len(live) < 2:
            raise InvalidInput("consolidation needs at least two memories of the agent")
        kind = Counter(m.memory_type for m in live).most_common(1)[0][0]
        pool = sorted(
            (m for m in live if m.memory_type == kind), key=lambda m: (-m.created_at, m.id)
        )[:PICK_POOL]
        if len(pool) < 2:
            raise InvalidInput(f"the agent has fewer than two '{kind}' memories to consolidate")
        matrix = unit_matrix(agent.vectors, [m.id for m in pool])
        sims = matrix @ matrix.T
        np.fill_diagonal(sims, -1.0)
        k = min(AUTO_PICK - 1, len(pool) - 1)
        nearest = np.partition(sims, len(pool) - k, axis=1)[:, len(pool) - k :]
        seed = int(np.argmax(nearest.sum(axis=1)))
        floor = PICK_THRESHOLD if threshold is None else threshold
        order = np.argsort(-sims[seed], kind="stable")[:k]
        chosen = [seed, *(int(i) for i in order if sims[seed, i] >= floor)]
        if len(chosen) < 2:
            raise InvalidInput(
                f"no two '{kind}' memories are similar enough (cosine ≥ {floor}) to consolidate"
            )
        return [pool[i] for i in chosen]

    # ------------------------------------------------------------- DBSCAN pass
    def consolidate_agent(
        self, caller: Caller, agent_id: str, context: JobContext
    ) -> dict[str, Any]:
        """DBSCAN clusters; each cluster's anchor absorbs its other (unprotected) members."""
        config = self.config(agent_id)
        answer: dict[str, Any] = {
            "agent_id": agent_id,
            "memories_scanned": 0,
            "clusters_found": 0,
            "memories_deprecated": 0,
            "anchor_ids": [],
            "deprecated_ids": [],
        }
        agent = self.memories.agent(caller, agent_id)
        if agent is None:
            return answer
        live = sorted(self.memories.live(agent), key=lambda m: m.id)
        answer["memories_scanned"] = len(live)
        if len(live) < 2:
            return answer
        matrix = unit_matrix(agent.vectors, [m.id for m in live], context.checkpoint)
        pairs = similar_pairs(
            matrix,
            1.0 - config.epsilon,
            buckets=None if self.cross_session() else session_buckets(live),
            checkpoint=context.checkpoint,
        )
        clusters = dbscan(len(live), pairs, config.min_samples, context.checkpoint)
        answer["clusters_found"] = len(clusters)
        retention = self._retention(config)
        groups = []
        for cluster in clusters:
            members = [live[i] for i in cluster]
            anchor = members[survivor_order(members)[0]]
            absorbed = [
                m for m in members if m is not anchor and m.importance <= PROTECTED_IMPORTANCE
            ]
            if absorbed:
                groups.append((anchor, absorbed))
        context.progress(0, len(groups))
        for start in range(0, len(groups), WRITE_BATCH):
            folded, _ = fold_batch(
                self.memories,
                self.trash,
                agent_id,
                groups[start : start + WRITE_BATCH],
                "consolidation",
                retention,
            )
            for anchor, absorbed in folded:  # a changed cluster waits for the next pass
                answer["anchor_ids"].append(anchor.id)
                answer["deprecated_ids"].extend(m.id for m in absorbed)
                self.events.emit(
                    "consolidated",
                    agent_id=agent_id,
                    memory_id=anchor.id,
                    reason=f"merged {len(absorbed)} memories into {anchor.id}",
                    details={"source_memory_ids": [m.id for m in absorbed]},
                )
            context.progress(min(len(groups), start + WRITE_BATCH))
            context.checkpoint()
        answer["memories_deprecated"] = len(answer["deprecated_ids"])
        entry = {
            "timestamp": int(self.memories.clock()),
            **{k: answer[k] for k in ("clusters_found", "memories_deprecated")},
            "anchor_ids": answer["anchor_ids"],
            "deprecated_ids": answer["deprecated_ids"],
        }
        with self._lock:
            self.memories.storage.write([self._log_op(agent_id, entry)])
        return answer
