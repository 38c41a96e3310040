"""Record upserts and reads: the primary vector through the vector engine, the extra
representations in the ``representations`` table, both in one transaction.

The primary vector is an ordinary vector of the namespace (queried, filtered, counted and
deleted by the vector routes; a delete there takes the representations with it). The
representations are read from the store when a record is asked for, never held in memory:
token multivectors are large and only the record route reads them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from dakera_server.engine.access import Caller
from dakera_server.engine.records.packing import (
    DTYPES,
    KINDS,
    MAX_REPRESENTATIONS,
    Packed,
    pack,
    unpack,
)
from dakera_server.engine.vectors import writes as vector_writes
from dakera_server.engine.vectors.engine import NamespaceEngine
from dakera_server.engine.vectors.input import NewVector, check_vector_id
from dakera_server.errors import FeatureDisabled, InvalidInput, MemoryNotFound, PayloadTooLarge
from dakera_server.storage.base import Op

__all__ = ["RecordEngine"]


@dataclass(frozen=True)
class _Stored:
    representations: list[Packed]
    ttl_seconds: int | None

    def to_payload(self) -> bytes:
        return orjson.dumps(
            {
                "ttl_seconds": self.ttl_seconds,
                "representations": [
                    {**p.manifest(), "data": base64.b64encode(p.data).decode("ascii")}
                    for p in self.representations
                ],
            }
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> _Stored:
        data = orjson.loads(payload)
        reps = [
            Packed(
                r["name"],
                r["kind"],
                r["dtype"],
                int(r["dim"]),
                int(r["count"]),
                r.get("model", ""),
                base64.b64decode(r["data"]),
            )
            for r in data.get("representations", [])
        ]
        return cls(reps, data.get("ttl_seconds"))


class RecordEngine:
    """The records surface over the vector engine."""

    def __init__(
        self, vectors: NamespaceEngine, *, enabled: bool, max_vectors: int, max_bytes: int
    ) -> None:
        self.vectors = vectors
        self.enabled = enabled
        self.max_vectors = max_vectors
        self.max_bytes = max_bytes

    def require_enabled(self) -> None:
        """501 ``FEATURE_DISABLED`` unless records are on."""
        if not self.enabled:
            raise FeatureDisabled(
                "records are not enabled on this server", details="set DAKERA_RECORDS to enable it"
            )

    def capabilities(self) -> dict[str, Any]:
        """The ``records`` block of ``/v1/capabilities``."""
        return {
            "enabled": self.enabled,
            "representation_kinds": list(KINDS),
            "dtypes": list(DTYPES),
            "max_representations": MAX_REPRESENTATIONS,
            "max_vectors": self.max_vectors,
            "max_bytes": self.max_bytes,
        }

    def upsert(self, caller: Caller, namespace: str, records: Any) -> int:
        """Insert or replace records (all or nothing); returns how many."""
        self.require_enabled()
        if not isinstance(records, list) or not records:
            raise InvalidInput("'records' must be a non-empty list")
        items: list[NewVector] = []
        ops: list[Op] = []
        for i, record in enumerate(records):
            where = f"records[{i}]"
            if not isinstance(record, dict):
                raise InvalidInput(f"'{where}' must be an object")
            record_id = check_vector_id(record.get("id"), f"{where}.id")
            reps = self._representations(record.get("representations"), where)
            ttl = record.get("ttl_seconds")
            items.append(NewVector(record_id, record.get("values"), record.get("metadata"), ttl))
            stored = _Stored(reps, ttl if isinstance(ttl, int) else None)
            ops.append(Op.put("representations", record_id, stored.to_payload(), group=namespace))
        return vector_writes.upsert(self.vectors, caller, namespace, items, ops, where="records")

    def _representations(self, value: Any, where: str) -> list[Packed]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise InvalidInput(f"'{where}.representations' must be a list")
        if len(value) > MAX_REPRESENTATIONS:
            raise InvalidInput(
                f"'{where}.representations' has more than {MAX_REPRESENTATIONS} entries"
            )
        packed = [pack(v, f"{where}.representations[{j}]") for j, v in enumerate(value)]
        names = [p.name for p in packed]
        if len(set(names)) != len(names):
            raise InvalidInput(f"'{where}.representations' repeats a name")
        rows = 1 + sum(p.count for p in packed)
        if rows > self.max_vectors:
            raise PayloadTooLarge(
                f"'{where}' carries {rows} vectors; the limit is {self.max_vectors} "
                "(DAKERA_RECORD_MAX_VECTORS)"
            )
        size = sum(len(p.data) for p in packed)
        if size > self.max_bytes:
            raise PayloadTooLarge(
                f"'{where}' representations take {size} bytes; the limit is {self.max_bytes} "
                "(DAKERA_RECORD_MAX_BYTES)"
            )
        return packed

    def get(
        self, caller: Caller, namespace: str, record_id: str, include_vectors: bool
    ) -> dict[str, Any]:
        """The record view of dakera-api.md §5.1 (404 ``VECTOR_NOT_FOUND`` when absent)."""
        self.require_enabled()
        space = self.vectors.get(caller, namespace)
        now = self.vectors.clock()
        with space.lock:
            record = space.records.get(record_id)
            values = space.values_of(record_id) if record is not None else None
        if record is None or not record.live(now):
            raise MemoryNotFound(f"record '{record_id}' not found", resource="record")
        row = self.vectors.store.get_row("representations", record_id, namespace)
        stored = _Stored([], None) if row is None else _Stored.from_payload(row.payload)
        view: dict[str, Any] = {
            "id": record_id,
            "dimension": space.info.dimension,
            "representations": [self._rep(p, include_vectors) for p in stored.representations],
            "unsupported_representations": 0,
            "metadata": record.metadata or None,
            "ttl_seconds": stored.ttl_seconds,
            "expires_at": record.expires_at,
        }
        if include_vectors:
            view["values"] = values
        return view

    @staticmethod
    def _rep(packed: Packed, include_vectors: bool) -> dict[str, Any]:
        wire = packed.manifest()
        if include_vectors:
            wire["vectors"] = unpack(packed)
        return wire
