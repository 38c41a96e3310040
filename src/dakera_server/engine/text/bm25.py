"""BM25 exactly as tantivy computes it, for documents tantivy has not committed yet.

The full-text index (``fulltext.py``) answers a search from tantivy's committed segments plus a
small overlay of documents written since the last commit. An overlay document must score the
same bits it will score once committed, or a near-tied recall result swaps places depending on
whether a search came before or after a commit (a restored server's first queries, with all its
documents still in the overlay, ranked near-ties differently from its origin). So this module
repeats tantivy's formula (``query/bm25.rs``: K1 = 1.2, B = 0.75, its one-byte length
quantisation) step by step in 32-bit floats, in tantivy's order, with the C library's ``logf``.
"""

from __future__ import annotations

import bisect
import ctypes
import ctypes.util
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["quantised_length", "score_postings"]

# In 64-bit floats the overlay's scores differed from tantivy's in the seventh digit.
_F32 = np.float32
_K1 = _F32(1.2)
_B = _F32(0.75)
_ONE = _F32(1.0)
_HALF = _F32(0.5)


def _fieldnorm_table() -> list[int]:
    # tantivy stores a field's length in one byte, like Lucene: lengths below 24 are exact,
    # above that a 3-bit mantissa with an exponent. BM25 sees the decoded (rounded-down) length.
    table = []
    for code in range(256):
        if code < 24:
            table.append(code)
            continue
        b = code - 24
        bits, shift = b & 0b111, b >> 3
        table.append(24 + (bits if shift == 0 else (bits | 8) << (shift - 1)))
    return table


_FIELDNORMS = _fieldnorm_table()


def quantised_length(length: int) -> int:
    """The length BM25 sees: tantivy's one-byte code of ``length``, decoded."""
    return _FIELDNORMS[bisect.bisect_right(_FIELDNORMS, length) - 1]


def _load_logf() -> Callable[[float], float]:
    """The C library's ``logf``: the function tantivy's ``f32::ln`` calls (it links the
    system libm). glibc's ``logf`` is not correctly rounded: the 64-bit log cut to 32 bits
    differed from it by one unit in the last place for 10 of the first 50 idf values, which
    reordered tied documents before and after a commit."""
    name = ctypes.util.find_library("m")
    try:
        logf = ctypes.CDLL(name).logf if name else None
    except OSError:
        logf = None
    if logf is None:  # no C libm (not a Linux/glibc host): the nearest thing
        return math.log
    logf.restype, logf.argtypes = ctypes.c_float, [ctypes.c_float]
    return logf


_LOGF = _load_logf()


def _idf(doc_freq: int, doc_count: int) -> np.float32:
    x = (_F32(doc_count - doc_freq) + _HALF) / (_F32(doc_freq) + _HALF)
    return _F32(_LOGF(float(_ONE + x)))


def score_postings(
    postings: Mapping[str, Sequence[tuple[int, int]]],
    lengths: Mapping[int, int],
    doc_count: int,
    total_terms: int,
    committed_doc_freq: Callable[[str], int],
) -> dict[int, np.float32]:
    """BM25 of uncommitted documents: ``postings`` maps each query term (in query order, which
    is tantivy's summing order) to ``(document key, term frequency)``; ``lengths`` are the
    documents' term counts; ``doc_count`` and ``total_terms`` cover the whole collection, and
    a term's document frequency is the committed one plus its overlay postings."""
    if not postings or doc_count == 0 or total_terms == 0:
        return {}
    average = _F32(total_terms) / _F32(doc_count)
    scores: dict[int, np.float32] = {}
    for term, hits in postings.items():
        doc_freq = min(doc_count, committed_doc_freq(term) + len(hits))
        weight = _idf(doc_freq, doc_count) * (_ONE + _K1)
        for key, freq in hits:
            fieldnorm = _F32(quantised_length(lengths[key]))
            norm = _K1 * (_ONE - _B + _B * fieldnorm / average)
            tf = _F32(freq)
            score = weight * (tf / (tf + norm))
            scores[key] = scores[key] + score if key in scores else score
    return scores
