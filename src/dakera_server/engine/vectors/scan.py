"""Metadata scans over a namespace: count, fetch, paged export, aggregation, cache warming,
and full-text statistics. None of them writes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from dakera_server.engine.access import Caller
from dakera_server.engine.text.fulltext import FullTextStats
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.engine.vectors.filters import compile_filter
from dakera_server.engine.vectors.input import check_flag, check_ids
from dakera_server.engine.vectors.namespace import VectorNamespace, VectorRecord
from dakera_server.errors import InvalidInput

__all__ = [
    "AGGREGATES",
    "ExportPage",
    "StoredVector",
    "WarmOutcome",
    "aggregate",
    "count",
    "export",
    "fetch",
    "fulltext_stats",
    "warm",
]

AGGREGATES = ("Count", "Sum", "Avg", "Min", "Max")
EXPORT_DEFAULT = 100
EXPORT_MAX = 1000
GROUP_DEFAULT = 100
GROUP_MAX = 10_000
PRIORITIES = ("critical", "high", "normal", "low", "background")
TIERS = ("l1", "l2", "both")
PATTERNS = ("random", "sequential", "temporal", "spatial")


@dataclass(frozen=True)
class StoredVector:
    """A record as fetch/export return it."""

    id: str
    values: list[float] | None
    metadata: dict[str, Any] | None

    def to_wire(self) -> dict[str, Any]:
        """``{"id", "values"?, "metadata"?}``."""
        wire: dict[str, Any] = {"id": self.id}
        if self.values is not None:
            wire["values"] = self.values
        if self.metadata is not None:
            wire["metadata"] = self.metadata
        return wire


@dataclass(frozen=True)
class ExportPage:
    """One page of an export and the cursor of the next (``None`` on the last page)."""

    vectors: list[StoredVector]
    next_cursor: str | None
    total: int


def count(engine: NamespaceEngine, caller: Caller, name: str, filter: Any = None) -> int:
    """Live vectors passing ``filter``."""
    namespace = engine.get(caller, name)
    predicate = compile_filter(filter)
    return len(namespace.matching(predicate, engine.clock(), vectors_only=True))


def _stored(
    namespace: VectorNamespace,
    records: list[VectorRecord],
    include_values: bool,
    include_metadata: bool,
) -> list[StoredVector]:
    return [
        StoredVector(
            record.id,
            namespace.values_of(record.id) if include_values else None,
            dict(record.metadata) if include_metadata else None,
        )
        for record in records
    ]


def fetch(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    ids: Any,
    *,
    include_values: Any = None,
    include_metadata: Any = None,
) -> list[StoredVector]:
    """Records by id (legacy ``fetch``); unknown or expired ids are left out."""
    namespace = engine.get(caller, name)
    wanted = check_ids(ids)
    now = engine.clock()
    found = [
        r
        for r in (namespace.records.get(i) for i in wanted)
        if r is not None and r.has_vector and r.live(now)
    ]
    return _stored(
        namespace,
        found,
        check_flag(include_values, "include_values", True),
        check_flag(include_metadata, "include_metadata", True),
    )


def _decode_cursor(cursor: Any) -> str | None:
    if cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str):
        raise InvalidInput("'cursor' must be the next_cursor string of a previous page")
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii") + b"==").decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidInput("'cursor' is not a cursor this server issued") from None


def export(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    *,
    cursor: Any = None,
    limit: Any = None,
    filter: Any = None,
    include_vectors: Any = None,
) -> ExportPage:
    """Live vectors in id order, ``limit`` per page, resumable from ``cursor``."""
    namespace = engine.get(caller, name)
    size = EXPORT_DEFAULT if limit is None else limit
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= EXPORT_MAX:
        raise InvalidInput(f"'limit' must be a whole number between 1 and {EXPORT_MAX}")
    after = _decode_cursor(cursor)
    predicate = compile_filter(filter)
    records = sorted(
        namespace.matching(predicate, engine.clock(), vectors_only=True), key=lambda r: r.id
    )
    remaining = [r for r in records if after is None or r.id > after]
    page = remaining[:size]
    next_cursor = None
    if len(remaining) > size:
        next_cursor = base64.urlsafe_b64encode(page[-1].id.encode("utf-8")).decode().rstrip("=")
    vectors = _stored(namespace, page, check_flag(include_vectors, "include_vectors", True), True)
    return ExportPage(vectors, next_cursor, len(records))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compute(spec: list[Any], records: list[VectorRecord]) -> Any:
    kind = spec[0]
    if kind == "Count":
        return len(records)
    field = spec[1]
    values = [r.metadata[field] for r in records if _number(r.metadata.get(field))]
    if kind == "Sum":
        return sum(values)
    if not values:
        return None
    if kind == "Avg":
        return sum(values) / len(values)
    return min(values) if kind == "Min" else max(values)


def aggregate(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    *,
    aggregate_by: Any,
    group_by: Any = None,
    filter: Any = None,
    limit: Any = None,
) -> dict[str, Any]:
    """``Count``/``Sum``/``Avg``/``Min``/``Max`` over live vectors' metadata, optionally per
    group of ``group_by`` values (groups with the most records first, at most ``limit``)."""
    namespace = engine.get(caller, name)
    specs = aggregate_by if aggregate_by else {"count": ["Count"]}
    if not isinstance(specs, dict):
        raise InvalidInput("'aggregate_by' must be an object of named aggregates")
    for label, spec in specs.items():
        if not isinstance(spec, list) or not spec or spec[0] not in AGGREGATES:
            raise InvalidInput(
                f'\'aggregate_by.{label}\' must be ["Count"] or ["Sum"|"Avg"|"Min"|"Max", '
                '"<field>"]'
            )
        if spec[0] != "Count" and (len(spec) != 2 or not isinstance(spec[1], str)):
            raise InvalidInput(f'\'aggregate_by.{label}\' needs a field name: ["{spec[0]}", "f"]')
    fields = [group_by] if isinstance(group_by, str) else group_by
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) for f in fields)
    ):
        raise InvalidInput("'group_by' must be a field name or a list of field names")
    size = GROUP_DEFAULT if limit is None else limit
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= GROUP_MAX:
        raise InvalidInput(f"'limit' must be a whole number between 1 and {GROUP_MAX}")
    records = namespace.matching(compile_filter(filter), engine.clock(), vectors_only=True)
    answer: dict[str, Any] = {
        "namespace": name,
        "aggregations": {label: _compute(spec, records) for label, spec in specs.items()},
        "total_count": len(records),
    }
    if fields:
        groups: dict[str, tuple[dict[str, Any], list[VectorRecord]]] = {}
        for record in records:
            key_values = {f: record.metadata.get(f) for f in fields}
            key = repr(sorted(key_values.items(), key=lambda kv: kv[0]))
            groups.setdefault(key, (key_values, []))[1].append(record)
        ordered = sorted(groups.values(), key=lambda g: (-len(g[1]), repr(g[0])))[:size]
        answer["groups"] = [
            {"group": values, **{label: _compute(spec, members) for label, spec in specs.items()}}
            for values, members in ordered
        ]
        answer["aggregation_groups"] = answer["groups"]
        answer["group_count"] = len(groups)
    return answer


@dataclass(frozen=True)
class WarmOutcome:
    """What warming did: every vector already lives in memory, so it only counts them."""

    warmed: int
    skipped: int
    priority: str
    target_tier: str

    def to_wire(self) -> dict[str, Any]:
        """The ``WarmCacheResponse`` shape (strict enums for tier and priority)."""
        return {
            "success": True,
            "entries_warmed": self.warmed,
            "entries_skipped": self.skipped,
            "message": "all vectors of this server are held in memory; nothing had to be loaded",
            "target_tier": self.target_tier,
            "priority": self.priority,
            "bytes_warmed": 0,
        }


def _choice(value: Any, field: str, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise InvalidInput(f"'{field}' must be one of {', '.join(choices)}")
    return value


def warm(
    engine: NamespaceEngine,
    caller: Caller,
    name: str,
    *,
    vector_ids: Any = None,
    priority: Any = None,
    target_tier: Any = None,
    access_pattern: Any = None,
    max_vectors: Any = None,
) -> WarmOutcome:
    """Validate a warm request and count what is (already) in memory."""
    namespace = engine.get(caller, name)
    level = _choice(priority, "priority", PRIORITIES, "normal")
    tier = _choice(target_tier, "target_tier", TIERS, "l2")
    _choice(access_pattern, "access_pattern", PATTERNS, "random")
    if max_vectors is not None and (
        isinstance(max_vectors, bool) or not isinstance(max_vectors, int) or max_vectors < 0
    ):
        raise InvalidInput("'max_vectors' must be a whole number ≥ 0")
    if vector_ids:
        wanted = check_ids(vector_ids, "vector_ids")
        present = sum(1 for i in wanted if i in namespace.records)
        warmed, skipped = present, len(wanted) - present
    else:
        warmed, skipped = namespace.vector_count(), 0
    if max_vectors is not None and warmed > max_vectors:
        skipped += warmed - max_vectors
        warmed = max_vectors
    return WarmOutcome(warmed, skipped, level, tier)


def fulltext_stats(engine: NamespaceEngine, caller: Caller, name: str) -> FullTextStats:
    """Document count, distinct indexed terms and mean indexed terms per document."""
    return engine.get(caller, name).text.stats()
