"""Extractive summaries of memories (``POST /v1/knowledge/summarize``, dakera-api.md §4.2).

No language model: the sentences that share the most words with the other sources are kept, in
source order, without near-repeats. The summary is stored as a new memory (sources stay) and
linked to each source with a ``linked_by`` edge labelled ``summarizes``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from dakera_server.engine.access import Caller
from dakera_server.engine.graph.knowledge_graph import KnowledgeGraph
from dakera_server.engine.graph.model import Edge
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.engine.rules import MEMORY_TYPES
from dakera_server.errors import InvalidInput

__all__ = ["SummaryOutcome", "extractive_summary", "summarize"]

STOP_WORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being i "
    "me my we our you your he she it its they them their this that these those so just really "
    "very too also not no yes do did does have has had will would can could should about into "
    "than then there here what when where who how all any some more most much".split()
)


@dataclass(frozen=True)
class SummaryOutcome:
    """What ``summarize`` stored."""

    summary: str
    source_count: int
    new_memory_id: str

    def to_wire(self) -> dict[str, Any]:
        """``{summary, source_count, new_memory_id}`` (§4.2)."""
        return {
            "summary": self.summary,
            "source_count": self.source_count,
            "new_memory_id": self.new_memory_id,
        }


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[a-z0-9][a-z0-9']*")


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS}


def extractive_summary(contents: list[str], max_bytes: int) -> str:
    """Pick the sentences that share the most words with the other sources, in source order,
    skipping near-repeats; at most ``max_bytes`` UTF-8 bytes."""
    sentences: list[tuple[int, int, str, set[str]]] = []
    for source, content in enumerate(contents):
        for position, sentence in enumerate(s.strip() for s in _SENTENCE.split(content)):
            if sentence:
                sentences.append((source, position, sentence, _words(sentence)))
    frequency: dict[str, int] = {}
    for content in contents:
        for word in _words(content):
            frequency[word] = frequency.get(word, 0) + 1

    def score(item: tuple[int, int, str, set[str]]) -> float:
        _, position, _, words = item
        shared = sum(frequency.get(w, 0) for w in words)
        return shared / (math.sqrt(len(words)) + 1.0) + (0.5 if position == 0 else 0.0)

    budget = min(len(sentences), max(3, min(10, len(contents))))
    picked: list[tuple[int, int, str, set[str]]] = []
    for item in sorted(sentences, key=lambda s: (-score(s), s[0], s[1])):
        words = item[3]
        if any(len(words & p[3]) / max(1, len(words | p[3])) >= 0.7 for p in picked):
            continue
        picked.append(item)
        if len(picked) == budget:
            break
    picked.sort(key=lambda s: (s[0], s[1]))
    summary = ""
    for _, _, sentence, _ in picked:
        ended = sentence if sentence[-1] in ".!?" else sentence + "."
        candidate = f"{summary} {ended}".strip()
        if len(candidate.encode("utf-8")) > max_bytes:
            break
        summary = candidate
    return summary or contents[0].encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def summarize(
    kg: KnowledgeGraph, caller: Caller, agent_id: Any, memory_ids: Any, target_type: Any
) -> SummaryOutcome:
    """Summarise ≥ 2 memories into a new one, linked to each source (``linked_by``,
    label ``summarizes``). The sources stay."""
    if not isinstance(agent_id, str) or not agent_id:
        raise InvalidInput("'agent_id' is required")
    agent_name = agent_id
    if (
        not isinstance(memory_ids, list)
        or not all(isinstance(i, str) for i in memory_ids)
        or not 2 <= len(set(memory_ids)) <= 100
    ):
        raise InvalidInput("'memory_ids' must list between 2 and 100 distinct memory ids")
    kind = "semantic" if target_type is None else target_type
    if not isinstance(kind, str) or kind.lower() not in MEMORY_TYPES:
        raise InvalidInput(f"'target_type' must be one of {', '.join(MEMORY_TYPES)}")
    sources = [kg.memories.get(caller, i, agent_name) for i in dict.fromkeys(memory_ids)]
    text = extractive_summary([m.content for m in sources], kg.memories.max_content_bytes)
    tags = sorted({t for m in sources for t in m.tags})[:50]
    item = NewMemory(
        agent_id=agent_name,
        content=text,
        memory_type=kind.lower(),
        importance=max(m.importance for m in sources),
        tags=tags,
        metadata={"summary_of": [m.id for m in sources]},
    )
    stored = kg.memories.store(caller, [item]).memories[0]
    now = int(kg.memories.clock())
    kg.add_edges(
        agent_name,
        [Edge(stored.id, m.id, "linked_by", 1.0, now, "summarizes") for m in sources],
    )
    return SummaryOutcome(text, len(sources), stored.id)
