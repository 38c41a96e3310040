"""Nearest-neighbour vector indexes: one small interface, an exact and an HNSW implementation.

``VectorIndex`` (``base.py``) is the contract the memory and vector engines program against
(STYLE habit 9); ``create_index`` returns an ``AdaptiveIndex`` (``adaptive.py``): exact numpy
search while the index is small (exact, cheap below ~10k vectors, no graph), then an hnswlib
graph (``hnsw.py``) fed by a background thread (``indexer.py``) from an exact segment that
takes every write (``exact.py``). ``snapshots.py`` persists an index as sealed bytes so a restart
need not rebuild it.
May import: ``errors`` and ``storage`` (the payload codec) only.
"""

from __future__ import annotations

from dakera_server.engine.ann.adaptive import AdaptiveIndex
from dakera_server.engine.ann.base import (
    DEFAULT_EXACT_THRESHOLD,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    SELECTIVE_MAX_FRACTION,
    SELECTIVE_MAX_IDS,
    Metric,
    VectorIndex,
)
from dakera_server.engine.ann.exact import ExactIndex
from dakera_server.engine.ann.hnsw import HnswIndex

__all__ = [
    "DEFAULT_EXACT_THRESHOLD",
    "HNSW_EF_CONSTRUCTION",
    "HNSW_EF_SEARCH",
    "HNSW_M",
    "SELECTIVE_MAX_FRACTION",
    "SELECTIVE_MAX_IDS",
    "AdaptiveIndex",
    "ExactIndex",
    "HnswIndex",
    "Metric",
    "VectorIndex",
    "create_index",
]


def create_index(
    dimension: int, metric: Metric, *, exact_threshold: int = DEFAULT_EXACT_THRESHOLD
) -> VectorIndex:
    """The index the engines use: exact below ``exact_threshold`` vectors, HNSW above it."""
    return AdaptiveIndex(dimension, metric, exact_threshold=exact_threshold)
