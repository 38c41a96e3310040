"""Compression (``POST /v1/agents/{id}/compress``): summarise clusters of related memories.

Clusters are DBSCAN groups of at least three memories at cosine ≥ 0.85 (looser than
consolidation: related, not identical). Each cluster gets an extractive summary — its distinct
sentences, most important memory first — written as a new ``semantic`` memory; the originals are
deprecated into the trash (kind ``consolidation``, restorable).

A summary is validated before it is written (dakera-api.md §4.2, server v0.12.2+): one longer
than ``MAX_SUMMARY_CHARS`` or whose embedding has drifted from the cluster's centroid is not
written, is listed in ``summaries_skipped`` with the reason, and its originals are kept.
Memories with importance above 0.8 are never compressed away.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.lifecycle.consolidate import PROTECTED_IMPORTANCE, merge_contents
from dakera_server.engine.lifecycle.dedup import session_buckets, survivor_order
from dakera_server.engine.lifecycle.jobs import JobContext
from dakera_server.engine.lifecycle.similarity import dbscan, similar_pairs, unit_matrix
from dakera_server.engine.lifecycle.trash import Trash
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.writes import new_memory_id
from dakera_server.engine.rules import MAX_TAGS

__all__ = ["Compressor"]

SIMILARITY = 0.85
MIN_CLUSTER = 3
MAX_SUMMARY_CHARS = 4000
MIN_CENTROID_COSINE = 0.75


class Compressor:
    """Summarises an agent's clusters of related memories."""

    def __init__(
        self,
        memories: MemoryEngine,
        trash: Trash,
        events: EventBus,
        *,
        retention_hours: Callable[[], float],
        cross_session: Callable[[], bool],
    ) -> None:
        self.memories = memories
        self.trash = trash
        self.events = events
        self.retention_hours = retention_hours
        self.cross_session = cross_session

    def compress(self, caller: Caller, agent_id: str, context: JobContext) -> dict[str, Any]:
        """One compression pass over the agent (the §4.2 answer)."""
        started = time.perf_counter()
        answer: dict[str, Any] = {
            "agent_id": agent_id,
            "memories_scanned": 0,
            "clusters_found": 0,
            "summaries_created": 0,
            "originals_deprecated": 0,
            "summary_ids": [],
            "deprecated_ids": [],
            "summaries_skipped": [],
            "memories_before": 0,
            "memories_after": 0,
            "removed_count": 0,
        }
        agent = self.memories.agent(caller, agent_id)
        live = [] if agent is None else sorted(self.memories.live(agent), key=lambda m: m.id)
        answer["memories_scanned"] = answer["memories_before"] = len(live)
        candidates = [m for m in live if m.importance <= PROTECTED_IMPORTANCE]
        if agent is not None and len(candidates) >= MIN_CLUSTER:
            matrix = unit_matrix(agent.vectors, [m.id for m in candidates], context.checkpoint)
            pairs = similar_pairs(
                matrix,
                SIMILARITY,
                buckets=None if self.cross_session() else session_buckets(candidates),
                checkpoint=context.checkpoint,
            )
            clusters = [
                c
                for c in dbscan(len(candidates), pairs, MIN_CLUSTER, context.checkpoint)
                if len(c) >= MIN_CLUSTER
            ]
            answer["clusters_found"] = len(clusters)
            context.progress(0, len(clusters))
            for done, cluster in enumerate(clusters, start=1):
                members = [candidates[i] for i in cluster]
                centroid = matrix[cluster].mean(axis=0)
                self._summarise(agent_id, members, centroid, answer)
                context.progress(done)
                context.checkpoint()
        answer["originals_deprecated"] = answer["removed_count"] = len(answer["deprecated_ids"])
        answer["summaries_created"] = len(answer["summary_ids"])
        answer["memories_after"] = (
            answer["memories_before"] - answer["removed_count"] + answer["summaries_created"]
        )
        answer["duration_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        return answer

    def _summarise(
        self,
        agent_id: str,
        members: list[Memory],
        centroid: np.ndarray[Any, np.dtype[np.float32]],
        answer: dict[str, Any],
    ) -> None:
        summary_id = new_memory_id()
        ordered = [members[i] for i in survivor_order(members)]
        content = merge_contents(ordered)
        if len(content) > MAX_SUMMARY_CHARS:
            answer["summaries_skipped"].append(
                {
                    "summary_id": summary_id,
                    "reason": f"summary longer than {MAX_SUMMARY_CHARS} characters",
                }
            )
            return
        vector = self.memories.embedder.embed([content]).vectors[0]
        norm = float(np.linalg.norm(centroid)) * float(np.linalg.norm(vector))
        cosine = float(vector @ centroid) / norm if norm > 0 else 0.0
        if cosine < MIN_CENTROID_COSINE:
            answer["summaries_skipped"].append(
                {
                    "summary_id": summary_id,
                    "reason": f"summary drifted from its cluster (cosine {cosine:.2f})",
                }
            )
            return
        now = int(self.memories.clock())
        summary = Memory(
            id=summary_id,
            agent_id=agent_id,
            content=content,
            memory_type="semantic",
            importance=max(m.importance for m in members),
            tags=list(dict.fromkeys(t for m in members for t in m.tags))[:MAX_TAGS],
            metadata={"compressed_from": [m.id for m in members]},
            created_at=now,
            updated_at=now,
            last_accessed_at=now,
        )
        committed = self.trash.replace(
            agent_id, summary, vector, members, "consolidation", self.retention_hours(), now
        )
        if not committed:
            answer["summaries_skipped"].append(
                {"summary_id": summary_id, "reason": "a memory changed during the pass"}
            )
            return
        answer["summary_ids"].append(summary_id)
        answer["deprecated_ids"].extend(m.id for m in members)
        self.events.emit(
            "consolidated",
            agent_id=agent_id,
            memory_id=summary_id,
            reason=f"compressed {len(members)} memories into {summary_id}",
            details={"source_memory_ids": [m.id for m in members]},
        )
