"""Recall's relevance score: fuse the vector and BM25 candidate lists, then apply query intent.

``recall.py`` gathers candidates (filters applied inside both index searches) and calls
:func:`relevance`; it multiplies the result by importance/recency (``rank_factor``) and sorts.
Every knob lives in :class:`RecallTuning`, whose defaults were chosen on LoCoMo conversations
0-2 and checked on 3-4 (``docs/benchmarks.md`` has each idea with its measured effect, including
the ones that did not help and are therefore off).

Nothing here depends on ``top_k``: the same candidates get the same scores whatever the caller
asks for, so the first k results of ``top_k=k`` equal the first k of any larger ``top_k``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.query import QueryAnalysis, has_time_expression, speaker_of

__all__ = ["DEFAULT_TUNING", "RecallTuning", "Relevance", "relevance"]

RRF_K = 60
TIE_TOLERANCE = 1e-5  # relative: float32 scores carry ~7 significant digits


@dataclass(frozen=True)
class RecallTuning:
    """How relevance is computed. Boosts multiply the fused score by ``1 + boost``.

    * ``vector_weight``: share of the (min-max normalised) vector score in the hybrid fusion when
      the client sends no ``vector_weight``.
    * ``fill_vector``: give BM25-only candidates their exact cosine instead of 0.
    * ``when_boost``: for a when-question, memories that date something ("last Friday").
    * ``window_boost``: memories whose event time is in a period the query names ("in June").
    * ``speaker_boost``: chat-log memories (``"Name: ..."``) spoken by a person the query names.
    * ``neighbour_weight`` / ``neighbour_seeds``: the turns just before and after each of the
      best ``neighbour_seeds`` hits in the same conversation get at least ``neighbour_weight``
      times that hit's score (0 turns this off); ``neighbour_radius`` turns each way, each
      further ring ``neighbour_decay`` times less (the answer to a question is often the reply,
      or the reply after a short aside).
    """

    vector_weight: float = 0.45
    fill_vector: bool = True
    when_boost: float = 0.3
    window_boost: float = 0.5
    speaker_boost: float = 0.1
    neighbour_weight: float = 0.7
    neighbour_seeds: int = 5
    neighbour_radius: int = 2
    neighbour_decay: float = 0.9


DEFAULT_TUNING = RecallTuning()


@dataclass(frozen=True)
class Relevance:
    """One candidate's relevance and the raw component scores it came from."""

    score: float
    vector_score: float | None
    text_score: float | None


def minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """Scores rescaled to [0, 1] (all 1.0 when they are equal): keeps the gaps, unlike RRF.

    Scores closer than ``TIE_TOLERANCE`` of their size count as equal. Rescaling stretches any
    spread to the full [0, 1], so without this, rounding noise between near-identical candidates
    (BM25 scored in float32 by tantivy or in float64 by the write overlay, a query embedded alone
    or in a shared batch: ~1e-7) would become a whole unit of score and reorder them from one
    recall to the next.
    """
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high - low <= TIE_TOLERANCE * max(abs(high), abs(low), 1e-12):
        return dict.fromkeys(scores, 1.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def rrf(ranked: Sequence[tuple[str, float]]) -> dict[str, float]:
    """Reciprocal-rank scores of a best-first list (k = ``RRF_K``)."""
    return {key: 1.0 / (RRF_K + rank + 1) for rank, (key, _) in enumerate(ranked)}


def relevance(
    vector_hits: Sequence[tuple[str, float]],
    text_hits: Sequence[tuple[str, float]],
    *,
    memories: Mapping[str, Memory],
    cosines: Callable[[Sequence[str]], dict[str, float]] | None,
    fusion: str,
    vector_weight: float | None,
    analysis: QueryAnalysis,
    neighbours: Callable[[str], Sequence[Sequence[str]]] | None,
    tuning: RecallTuning = DEFAULT_TUNING,
) -> dict[str, Relevance]:
    """Relevance of every candidate of either list.

    ``cosines(ids)`` gives candidates' exact vector similarities (None: vector search was not
    used); ``neighbours(id)`` the ids adjacent to it in its conversation (None: not known).
    """
    weight = tuning.vector_weight if vector_weight is None else vector_weight
    if not text_hits:
        weight = 1.0
    if not vector_hits:
        weight = 0.0
    vector_raw, text_raw = dict(vector_hits), dict(text_hits)
    if cosines is not None and tuning.fill_vector and vector_hits:
        missing = [memory_id for memory_id in text_raw if memory_id not in vector_raw]
        if missing:
            vector_raw.update(cosines(missing))
    if fusion == "rrf":
        ranked = sorted(vector_raw.items(), key=lambda item: -item[1])
        vector_norm, text_norm = rrf(ranked), rrf(text_hits)
    else:
        vector_norm, text_norm = minmax(vector_raw), minmax(text_raw)
    fused = {
        memory_id: weight * vector_norm.get(memory_id, 0.0)
        + (1 - weight) * text_norm.get(memory_id, 0.0)
        for memory_id in vector_norm.keys() | text_norm.keys()
    }
    _apply_intent(fused, memories, analysis, tuning)
    if neighbours is not None and tuning.neighbour_weight > 0:
        _spread_to_neighbours(fused, neighbours, tuning)
    use_vector, use_text = bool(vector_hits) or cosines is not None, bool(text_hits)
    return {
        memory_id: Relevance(
            score,
            vector_raw.get(memory_id) if use_vector else None,
            text_raw.get(memory_id) if use_text else None,
        )
        for memory_id, score in fused.items()
        if memory_id in memories
    }


def _apply_intent(
    fused: dict[str, float],
    memories: Mapping[str, Memory],
    analysis: QueryAnalysis,
    tuning: RecallTuning,
) -> None:
    when = analysis.asks_when and tuning.when_boost > 0
    window = bool(analysis.windows) and tuning.window_boost > 0
    speaker = bool(analysis.names) and tuning.speaker_boost > 0
    if not (when or window or speaker):
        return
    for memory_id, score in fused.items():
        memory = memories.get(memory_id)
        if memory is None:
            continue
        factor = 1.0
        if when and has_time_expression(memory.content):
            factor += tuning.when_boost
        if window and analysis.in_window(memory.event_time):
            factor += tuning.window_boost
        if speaker and speaker_of(memory.content) in analysis.names:
            factor += tuning.speaker_boost
        fused[memory_id] = score * factor


def _spread_to_neighbours(
    fused: dict[str, float],
    neighbours: Callable[[str], Sequence[Sequence[str]]],
    tuning: RecallTuning,
) -> None:
    seeds = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[: tuning.neighbour_seeds]
    for memory_id, score in seeds:
        weight = tuning.neighbour_weight
        for ring in neighbours(memory_id):
            lifted = weight * score
            for other in ring:
                if lifted > fused.get(other, 0.0):
                    fused[other] = lifted
            weight *= tuning.neighbour_decay
