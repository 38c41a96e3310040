"""Deduplication: fold near-identical memories of an agent into one survivor.

A group is a survivor plus the memories whose cosine to it is at least the threshold (same
session unless cross-session is allowed, same type when a type is given). The survivor is the
most important (then most used, then oldest) member; it absorbs the others' tags (union, at most
50), their highest importance and their access counts — repetition reinforces a memory. The
others are deleted and kept restorable in the trash (kind ``deduplication``).

Groups are written in batches, each one atomic store write. Before a batch is written the
members are checked, under the agent's lock, to be exactly what was scanned; a group where one
changed meanwhile is skipped (``duplicates_skipped_changed``) and the next pass sees it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dakera_server.engine.access import Caller
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.lifecycle.jobs import JobContext
from dakera_server.engine.lifecycle.similarity import leader_groups, similar_pairs, unit_matrix
from dakera_server.engine.lifecycle.trash import Trash, TrashEntry
from dakera_server.engine.memory.agents import AgentMemories
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.models import Memory
from dakera_server.engine.rules import MAX_TAGS
from dakera_server.storage.base import Op

__all__ = ["DedupReport", "Deduplicator", "fold", "fold_batch", "survivor_order"]

WRITE_BATCH = 10  # groups per atomic write: the agent's lock is held for one write of them

# survivor, absorbed memories, folded survivor, trash (ops, entry) per absorbed memory
Prepared = tuple[Memory, list[Memory], Memory, list[tuple[list[Op], TrashEntry | None]]]


@dataclass
class DedupReport:
    """What a pass found and did (the answer of ``POST /v1/knowledge/deduplicate``)."""

    memories_scanned: int = 0
    duplicates_found: int = 0
    duplicates_merged: int = 0
    duplicates_skipped_changed: int = 0
    groups: list[list[str]] = field(default_factory=list)

    @property
    def removed_count(self) -> int:
        """Memories deleted (folded into a survivor)."""
        return self.duplicates_merged

    def to_wire(self) -> dict[str, Any]:
        """The §4.2 answer."""
        return {
            "duplicates_found": self.duplicates_found,
            "duplicates_merged": self.duplicates_merged,
            "duplicates_skipped_changed": self.duplicates_skipped_changed,
            "removed_count": self.removed_count,
            "groups": self.groups,
            "memories_scanned": self.memories_scanned,
        }


def survivor_order(memories: Sequence[Memory]) -> list[int]:
    """Indexes from the best survivor down: importance, then use, then age, then id."""
    return sorted(
        range(len(memories)),
        key=lambda i: (
            -memories[i].importance,
            -memories[i].access_count,
            memories[i].created_at,
            memories[i].id,
        ),
    )


def fold(survivor: Memory, absorbed: Sequence[Memory], now: int) -> Memory:
    """A copy of ``survivor`` carrying what the ``absorbed`` memories knew."""
    merged = Memory(**survivor.__dict__)
    tags = list(survivor.tags)
    for memory in absorbed:
        tags.extend(memory.tags)
    merged.tags = list(dict.fromkeys(tags))[:MAX_TAGS]
    merged.importance = max([survivor.importance, *(m.importance for m in absorbed)])
    merged.access_count = survivor.access_count + sum(m.access_count for m in absorbed)
    merged.last_accessed_at = max(
        [survivor.last_accessed_at, *(m.last_accessed_at for m in absorbed)]
    )
    merged.updated_at = now
    return merged


def fold_batch(
    memories: MemoryEngine,
    trash: Trash,
    agent_id: str,
    groups: Sequence[tuple[Memory, list[Memory]]],
    kind: str,
    retention_hours: float,
) -> tuple[list[tuple[Memory, list[Memory]]], int]:
    """Fold each ``(survivor, absorbed)`` group: the absorbed go to the trash as ``kind``.

    One atomic write for all groups; if a memory changed since it was read, group by group,
    skipping the changed ones. Returns the folded groups and how many memories were skipped.
    Work that needs no lock (folding, trash payloads) is done before the write.
    """
    now = int(memories.clock())
    prepared: list[Prepared] = []
    for survivor, absorbed in groups:
        copies = [trash.ops(m, kind, survivor.id, retention_hours, now) for m in absorbed]
        prepared.append((survivor, absorbed, fold(survivor, absorbed, now), copies))

    def commit(chunk: list[Prepared]) -> bool:
        return memories.apply(
            agent_id,
            put=[(merged, None) for _, _, merged, _ in chunk],
            delete=[m.id for _, absorbed, _, _ in chunk for m in absorbed],
            extra_ops=[op for *_, copies in chunk for ops, _ in copies for op in ops],
            unchanged=[m for survivor, absorbed, _, _ in chunk for m in (survivor, *absorbed)],
        )

    done = prepared if commit(prepared) else [g for g in prepared if commit([g])]
    for *_, copies in done:
        trash.remember([entry for _, entry in copies])
    skipped = sum(len(g[1]) for g in prepared) - sum(len(g[1]) for g in done)
    return [(survivor, absorbed) for survivor, absorbed, _, _ in done], skipped


def session_buckets(memories: Sequence[Memory]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """One integer per distinct session id (no session is a bucket of its own)."""
    codes: dict[str | None, int] = {}
    return np.array([codes.setdefault(m.session_id, len(codes)) for m in memories], dtype=np.int64)


class Deduplicator:
    """Finds and folds near-duplicate groups of one agent."""

    def __init__(
        self,
        memories: MemoryEngine,
        trash: Trash,
        events: EventBus,
        retention_hours: Callable[[], float],
    ) -> None:
        self.memories = memories
        self.trash = trash
        self.events = events
        self.retention_hours = retention_hours

    def find(
        self,
        agent: AgentMemories,
        threshold: float,
        *,
        memory_type: str | None,
        cross_session: bool,
        context: JobContext,
    ) -> tuple[list[Memory], list[list[Memory]]]:
        """The live memories scanned, and the duplicate groups among them (survivor first)."""
        candidates = [
            m
            for m in self.memories.live(agent)
            if memory_type is None or m.memory_type == memory_type
        ]
        candidates.sort(key=lambda m: m.id)
        if len(candidates) < 2:
            return candidates, []
        matrix = unit_matrix(agent.vectors, [m.id for m in candidates], context.checkpoint)
        context.checkpoint()
        pairs = similar_pairs(
            matrix,
            threshold,
            buckets=None if cross_session else session_buckets(candidates),
            checkpoint=context.checkpoint,
        )
        groups = leader_groups(
            len(candidates), pairs, survivor_order(candidates), context.checkpoint
        )
        return candidates, [[candidates[i] for i in group] for group in groups]

    def run(
        self,
        caller: Caller,
        agent_id: str,
        *,
        threshold: float,
        memory_type: str | None,
        cross_session: bool,
        dry_run: bool,
        context: JobContext,
    ) -> DedupReport:
        """Report (``dry_run``) or fold the agent's duplicate groups."""
        report = DedupReport()
        agent = self.memories.agent(caller, agent_id)
        if agent is None:
            return report
        scanned, groups = self.find(
            agent, threshold, memory_type=memory_type, cross_session=cross_session, context=context
        )
        report.memories_scanned = len(scanned)
        report.duplicates_found = sum(len(g) - 1 for g in groups)
        report.groups = [[m.id for m in group] for group in groups]
        context.progress(0, len(groups))
        if dry_run:
            return report
        retention = self.retention_hours()
        for start in range(0, len(groups), WRITE_BATCH):
            batch = [
                (survivor, absorbed) for survivor, *absorbed in groups[start : start + WRITE_BATCH]
            ]
            folded, skipped = fold_batch(
                self.memories, self.trash, agent_id, batch, "deduplication", retention
            )
            report.duplicates_skipped_changed += skipped
            for survivor, absorbed in folded:
                report.duplicates_merged += len(absorbed)
                for memory in absorbed:
                    self.events.emit(
                        "deduplicated",
                        agent_id=agent_id,
                        memory_id=memory.id,
                        session_id=memory.session_id,
                        reason=f"absorbed into {survivor.id}",
                    )
            context.progress(min(len(groups), start + WRITE_BATCH))
            context.note(duplicates_merged=report.duplicates_merged)
            context.checkpoint()
        return report
