"""Validation of what clients send to the vector routes: ids, values, dimensions, options.

Everything a vector write or query accepts passes through here before the store or an index
sees it, so each rule lives once and every violation is an ``InvalidInput`` (or a subclass with
its own wire code) naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from dakera_server.engine.ann import Metric
from dakera_server.engine.rules import check_metadata, check_ttl
from dakera_server.engine.vectors.namespace import DISTANCES, INDEX_KINDS
from dakera_server.errors import DimensionMismatch, EmptyVector, InvalidInput

__all__ = [
    "MAX_BATCH",
    "MAX_DIMENSION",
    "MAX_TOP_K",
    "NewDocument",
    "NewVector",
    "ValidVectors",
    "check_dimension",
    "check_distance",
    "check_flag",
    "check_ids",
    "check_index_type",
    "check_query_vector",
    "check_text",
    "check_top_k",
    "check_vector_id",
    "padded",
    "validate_vectors",
]

F32 = npt.NDArray[np.float32]
MAX_DIMENSION = 65_536
MAX_TOP_K = 10_000
MAX_BATCH = 100_000
MAX_ID_BYTES = 512
MAX_TEXT_BYTES = 1_000_000


@dataclass
class NewVector:
    """A vector as a client sent it, before validation."""

    id: Any
    values: Any
    metadata: Any = None
    ttl_seconds: Any = None


@dataclass
class NewDocument:
    """A text document as a client sent it (``text``, or ``content`` for older clients)."""

    id: Any
    text: Any
    metadata: Any = None
    ttl_seconds: Any = None


@dataclass
class ValidVectors:
    """A validated vector batch: ids, a ``(n, dim)`` float32 matrix, metadata and expiries."""

    ids: list[str]
    matrix: F32
    metadata: list[dict[str, Any]]
    expires_at: list[int | None]

    @property
    def dimension(self) -> int:
        """The width of every vector in the batch."""
        return int(self.matrix.shape[1])


def check_vector_id(value: Any, where: str) -> str:
    """A record id: a non-empty string of at most 512 UTF-8 bytes."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"'{where}' must be a non-empty string")
    if len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidInput(f"'{where}' is longer than {MAX_ID_BYTES} bytes")
    return value


def check_ids(value: Any, where: str = "ids", *, allow_empty: bool = False) -> list[str]:
    """A list of record ids, de-duplicated in order."""
    if not isinstance(value, list):
        raise InvalidInput(f"'{where}' must be a list of ids")
    if not value and not allow_empty:
        raise InvalidInput(f"'{where}' must not be empty")
    if len(value) > MAX_BATCH:
        raise InvalidInput(f"'{where}' has more than {MAX_BATCH} ids")
    return list(dict.fromkeys(check_vector_id(v, f"{where}[{i}]") for i, v in enumerate(value)))


def check_dimension(value: Any, where: str = "dimension") -> int:
    """A vector dimension between 1 and 65536."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSION:
        raise InvalidInput(f"'{where}' must be a whole number between 1 and {MAX_DIMENSION}")
    return value


def check_distance(value: Any, where: str = "distance") -> Metric:
    """``cosine`` (default), ``euclidean`` or ``dot_product``."""
    if value is None:
        return "cosine"
    if isinstance(value, str):
        lowered = value.strip().lower()
        for metric in DISTANCES:
            if lowered == metric:
                return metric
    raise InvalidInput(f"'{where}' must be one of {', '.join(DISTANCES)}")


def check_index_type(value: Any, where: str = "vector_index") -> str:
    """``hnsw`` (default: exact search while small, HNSW above the threshold) or ``flat``."""
    if value is None:
        return "hnsw"
    if isinstance(value, str) and value.strip().lower() in INDEX_KINDS:
        return value.strip().lower()
    raise InvalidInput(f"'{where}' must be one of {', '.join(INDEX_KINDS)}")


def check_top_k(value: Any, where: str = "top_k", default: int = 10) -> int:
    """A result count between 1 and 10000."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise InvalidInput(f"'{where}' must be a whole number between 1 and {MAX_TOP_K}")
    return value


def check_flag(value: Any, where: str, default: bool) -> bool:
    """An optional boolean."""
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidInput(f"'{where}' must be true or false")
    return value


def check_text(value: Any, where: str) -> str:
    """A non-empty string of at most 1 MB."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"'{where}' must be a non-empty string")
    if len(value.encode("utf-8")) > MAX_TEXT_BYTES:
        raise InvalidInput(f"'{where}' is longer than {MAX_TEXT_BYTES} bytes")
    return value


def _as_matrix(rows: Sequence[Any], label: Callable[[int], str]) -> F32:
    """Rows of numbers → float32 matrix, all the same non-zero width and finite.

    ``label(i)`` names row ``i`` in error messages (``vectors[3].values``, say).
    """
    width: int | None = None
    for i, row in enumerate(rows):
        if not isinstance(row, list | tuple):
            raise InvalidInput(f"'{label(i)}' must be a list of numbers")
        if not row:
            raise EmptyVector(f"'{label(i)}' is empty: a vector needs at least one value")
        if width is None:
            width = len(row)
            if width > MAX_DIMENSION:
                raise InvalidInput(f"'{label(i)}' has more than {MAX_DIMENSION} values")
        elif len(row) != width:
            raise DimensionMismatch(
                f"'{label(i)}' has dimension {len(row)} but '{label(0)}' has dimension {width}"
            )
    try:
        # No dtype here: strings would be parsed as numbers by a float32 conversion.
        raw = np.asarray(rows)
    except (TypeError, ValueError):
        raw = np.empty((0, 0), dtype=object)
    if raw.ndim != 2 or raw.dtype.kind not in "iuf" or raw.shape[0] != len(rows):
        raise InvalidInput(f"'{label(0)}' and the other vectors must hold only numbers")
    with np.errstate(over="ignore"):
        matrix = raw.astype(np.float32)
    finite = np.isfinite(matrix).all(axis=1)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise InvalidInput(
            f"'{label(bad)}' holds a value that is not a finite float32 number (NaN, "
            "infinity or beyond ±3.4e38)"
        )
    return matrix


def validate_vectors(
    items: Sequence[NewVector], now: int, *, where: str = "vectors"
) -> ValidVectors:
    """Check a vector batch whole; a repeated id is an error (which one would win is unclear)."""
    if not items:
        raise InvalidInput(f"'{where}' must not be empty")
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"'{where}' has more than {MAX_BATCH} vectors")
    ids: list[str] = []
    seen: set[str] = set()
    metadata: list[dict[str, Any]] = []
    expires: list[int | None] = []
    for i, item in enumerate(items):
        record_id = check_vector_id(item.id, f"{where}[{i}].id")
        if record_id in seen:
            raise InvalidInput(f"id '{record_id}' appears twice in '{where}'")
        seen.add(record_id)
        ids.append(record_id)
        metadata.append(check_metadata(item.metadata, f"{where}[{i}].metadata") or {})
        ttl = check_ttl(item.ttl_seconds, f"{where}[{i}].ttl_seconds")
        expires.append(None if ttl is None else now + ttl)
    matrix = _as_matrix([item.values for item in items], lambda i: f"{where}[{i}].values")
    return ValidVectors(ids, matrix, metadata, expires)


def check_query_vector(value: Any, dimension: int | None, namespace: str, where: str) -> F32:
    """A query vector: finite numbers, exactly the namespace's dimension."""
    vector = _as_matrix([value], lambda _i: where)[0]
    if dimension is not None and vector.shape[0] != dimension:
        raise DimensionMismatch(
            f"'{where}' has dimension {vector.shape[0]} but namespace '{namespace}' has "
            f"dimension {dimension}"
        )
    return np.asarray(vector, dtype=np.float32)


def padded(vectors: npt.NDArray[np.float32], dimension: int) -> npt.NDArray[np.float32]:
    """Zero-pad embedding rows to ``dimension`` (inner products and cosines are unchanged)."""
    width = vectors.shape[1]
    if width == dimension:
        return vectors
    out = np.zeros((vectors.shape[0], dimension), dtype=np.float32)
    out[:, :width] = vectors
    return out
