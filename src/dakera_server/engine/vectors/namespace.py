"""One vector namespace in memory: its records, its ANN index and its BM25 index.

The store (tables ``namespaces`` and ``vectors``, group = namespace name) is the source of
truth; a ``VectorNamespace`` is what searches read. Every mutation runs under the namespace's
``lock`` *after* the store committed it, so the record map and both indexes never disagree for
longer than one write, and a rejected write touches nothing.

A record is addressed by id and has two independent parts: a vector part (vector + metadata)
and a document part (text, BM25-indexed). Vector writes replace the vector part; ``upsert-text``
also sets the text; ``fulltext/index`` sets the text and keeps the vector, so a document indexed
separately still fuses with the vector of the same id in hybrid search. Deleting vectors deletes
whole records; ``fulltext/delete`` removes only the text.

Every record carries ``rev``, the namespace revision of the write that last changed it. The
namespace row carries the current ``revision``; an index snapshot records the revision it was
taken at, so start-up replays exactly the records written after it (``engine/ann/snapshots.py``).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson

from dakera_server.engine.ann import Metric, VectorIndex, create_index
from dakera_server.engine.text.fulltext import FullTextIndex
from dakera_server.engine.vectors.filters import MatchAll, Predicate
from dakera_server.storage.base import Op

__all__ = [
    "DISTANCES",
    "INDEX_KINDS",
    "NamespaceInfo",
    "NamespaceView",
    "VectorNamespace",
    "VectorRecord",
    "WritePlan",
]

DISTANCES: tuple[Metric, ...] = ("cosine", "euclidean", "dot_product")
INDEX_KINDS = ("hnsw", "flat")
FLAT_THRESHOLD = 2**62  # a "flat" namespace never leaves exact search
Allow = Callable[[str], bool]


@dataclass(slots=True)
class VectorRecord:
    """One id in a namespace: metadata, and a vector and/or a text."""

    id: str
    metadata: dict[str, Any]
    has_vector: bool
    text: str | None = None
    expires_at: int | None = None
    rev: int = 0

    def to_payload(self) -> bytes:
        """Stored form (the vector travels beside it as float32 bytes)."""
        body: dict[str, Any] = {"m": self.metadata, "r": self.rev}
        if self.text is not None:
            body["t"] = self.text
        if self.expires_at is not None:
            body["e"] = self.expires_at
        return orjson.dumps(body)

    @classmethod
    def from_payload(cls, record_id: str, payload: bytes, has_vector: bool) -> VectorRecord:
        """Inverse of ``to_payload``."""
        body = orjson.loads(payload)
        return cls(
            id=record_id,
            metadata=body.get("m") or {},
            has_vector=has_vector,
            text=body.get("t"),
            expires_at=body.get("e"),
            rev=int(body.get("r", 0)),
        )

    def live(self, now: float) -> bool:
        """Whether the record has not expired."""
        return self.expires_at is None or self.expires_at > now


@dataclass
class NamespaceInfo:
    """A data namespace's configuration and counters, as persisted in ``namespaces``.

    ``uid`` changes when a namespace is deleted and created again under the same name, so a
    snapshot of the old one is never mistaken for the new one. ``dimension`` is ``None`` until
    the first vector (a namespace can start with full-text documents only).
    """

    name: str
    uid: str
    dimension: int | None
    distance: Metric = "cosine"
    index_type: str = "hnsw"
    encryption: bool = False
    created_at: int = 0
    updated_at: int = 0
    revision: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(
        cls,
        name: str,
        dimension: int | None,
        distance: Metric,
        now: int,
        *,
        index_type: str = "hnsw",
        encryption: bool = False,
    ) -> NamespaceInfo:
        """A fresh namespace with a new ``uid``."""
        return cls(
            name=name,
            uid=secrets.token_hex(8),
            dimension=dimension,
            distance=distance,
            index_type=index_type,
            encryption=encryption,
            created_at=now,
            updated_at=now,
        )

    def to_payload(self) -> bytes:
        """Stored form."""
        return orjson.dumps(
            {
                "kind": "data",
                "name": self.name,
                "uid": self.uid,
                "dimension": self.dimension,
                "distance": self.distance,
                "index_type": self.index_type,
                "encryption": self.encryption,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
                "revision": self.revision,
                "extra": self.extra,
            }
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> NamespaceInfo | None:
        """Inverse of ``to_payload``; ``None`` for a row that is not a data namespace."""
        body = orjson.loads(payload)
        if not isinstance(body, dict) or body.get("kind") != "data" or "uid" not in body:
            return None
        distance = body.get("distance", "cosine")
        return cls(
            name=str(body["name"]),
            uid=str(body["uid"]),
            dimension=body.get("dimension"),
            distance=distance if distance in DISTANCES else "cosine",
            index_type=str(body.get("index_type", "hnsw")),
            encryption=bool(body.get("encryption", False)),
            created_at=int(body.get("created_at", 0)),
            updated_at=int(body.get("updated_at", 0)),
            revision=int(body.get("revision", 0)),
            extra=dict(body.get("extra") or {}),
        )


@dataclass(frozen=True)
class NamespaceView:
    """What ``GET /v1/namespaces/{ns}`` reports about a data or agent namespace."""

    name: str
    kind: str
    dimension: int | None
    distance: str
    vector_count: int
    index_type: str = "hnsw"
    search_backend: str = "exact"
    index_pending: int = 0
    document_count: int = 0
    encryption: bool = False
    created_at: int | None = None
    updated_at: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_agent(cls, name: str, vectors: VectorIndex, dimension: int) -> NamespaceView:
        """An agent's memories seen as a namespace (read-only; memory routes write it)."""
        return cls(
            name=name,
            kind="agent",
            dimension=dimension,
            distance="cosine",
            vector_count=len(vectors),
            search_backend=str(getattr(vectors, "backend", "exact")),
            index_pending=int(getattr(vectors, "pending", 0)),
            document_count=len(vectors),
        )

    def to_wire(self) -> dict[str, Any]:
        """Both the SDK's and the security document's spellings, flat."""
        return {
            "namespace": self.name,
            "name": self.name,
            "kind": self.kind,
            "dimension": self.dimension,
            "distance": self.distance,
            "vector_count": self.vector_count,
            "document_count": self.document_count,
            "index_type": self.index_type,
            "search_backend": self.search_backend,
            "index_pending": self.index_pending,
            "estimated_storage_bytes": self.vector_count * 4 * (self.dimension or 0)
            + 256 * max(self.vector_count, self.document_count),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "config": {"vector_index": self.index_type, "encryption": self.encryption},
        }


class VectorNamespace:
    """The in-memory state of one data namespace (see the module docstring)."""

    def __init__(
        self,
        info: NamespaceInfo,
        *,
        exact_threshold: int,
        vector_source: Callable[[str, str], bytes | None] | None = None,
    ) -> None:
        self.info = info
        self.exact_threshold = exact_threshold
        self.vector_source = vector_source  # (namespace, id) -> the stored float32 bytes
        self.records: dict[str, VectorRecord] = {}
        self.index: VectorIndex | None = None
        self.text = FullTextIndex()
        self.lock = threading.RLock()
        self.deleted = False
        self.expiring = 0  # records with an expiry: searches then always need a predicate
        self.snapshot_revision = -1  # revision of the last snapshot written or loaded
        if info.dimension is not None:
            self.index = self.new_index(info.dimension, info.distance)

    @property
    def name(self) -> str:
        """The namespace name."""
        return self.info.name

    @property
    def threshold(self) -> int:
        """Vector count above which the index switches from exact search to HNSW."""
        return FLAT_THRESHOLD if self.info.index_type == "flat" else self.exact_threshold

    def new_index(self, dimension: int, distance: Metric) -> VectorIndex:
        """An empty index with this namespace's index kind."""
        return create_index(dimension, distance, exact_threshold=self.threshold)

    def reindexed(self, dimension: int, distance: Metric) -> VectorIndex:
        """A new index of ``dimension``/``distance`` holding this namespace's vectors (a
        configure that changes the distance)."""
        index = self.new_index(dimension, distance)
        if self.index is not None and len(self.index):
            ids = [r.id for r in self.records.values() if r.has_vector]
            rows = [self.index.get_vector(i) for i in ids]
            index.upsert(ids, np.stack([r for r in rows if r is not None]))
        return index

    def view(self) -> NamespaceView:
        """What ``GET /v1/namespaces/{ns}`` reports about it."""
        info = self.info
        return NamespaceView(
            name=info.name,
            kind="data",
            dimension=info.dimension,
            distance=info.distance,
            vector_count=self.vector_count(),
            index_type=info.index_type,
            search_backend=self.backend(),
            index_pending=self.index_pending(),
            document_count=len(self.text),
            encryption=info.encryption,
            created_at=info.created_at,
            updated_at=info.updated_at,
        )

    def vector_count(self) -> int:
        """Records that have a vector (live or not yet purged)."""
        return 0 if self.index is None else len(self.index)

    def backend(self) -> str:
        """Which search the index currently runs: ``exact`` or ``hnsw``."""
        return str(getattr(self.index, "backend", "exact"))

    def index_pending(self) -> int:
        """Vectors the background indexer has not moved into the HNSW graph yet (they are
        searched exactly meanwhile)."""
        return int(getattr(self.index, "pending", 0))

    def values_of(self, record_id: str) -> list[float] | None:
        """A record's vector exactly as stored (the index keeps cosine rows normalised, which
        would hand back 0.99999994 for 1.0), or ``None`` without one."""
        if self.vector_source is not None:
            blob = self.vector_source(self.info.name, record_id)
            if blob is not None:
                values: list[float] = np.frombuffer(blob, dtype=np.float32).tolist()
                return values
        held = None if self.index is None else self.index.get_vector(record_id)
        return None if held is None else [float(x) for x in held]

    def allow(self, predicate: Predicate, now: float) -> Allow | None:
        """An id predicate for the index searches, or ``None`` when every id passes."""
        if predicate is MatchAll and not self.expiring:
            return None
        records = self.records

        def check(record_id: str) -> bool:
            record = records.get(record_id)
            return (
                record is not None
                and (record.expires_at is None or record.expires_at > now)
                and predicate(record.metadata)
            )

        return check

    def matching(
        self, predicate: Predicate, now: float, *, vectors_only: bool = False
    ) -> list[VectorRecord]:
        """Live records passing ``predicate`` (a metadata scan), in no particular order."""
        return [
            record
            for record in list(self.records.values())
            if (not vectors_only or record.has_vector)
            and record.live(now)
            and predicate(record.metadata)
        ]

    def put(self, record: VectorRecord) -> VectorRecord | None:
        """Record ``record`` in the map (indexes are the caller's job); returns the old one."""
        old = self.records.get(record.id)
        self.records[record.id] = record
        self.expiring += (record.expires_at is not None) - (
            old is not None and old.expires_at is not None
        )
        return old

    def pop(self, record_id: str) -> VectorRecord | None:
        """Forget ``record_id`` in the map; returns it."""
        old = self.records.pop(record_id, None)
        if old is not None and old.expires_at is not None:
            self.expiring -= 1
        return old


WriteKind = Literal["upserted", "deleted"]


@dataclass
class WritePlan:
    """What one write commits (``ops``) and then applies in memory (``apply``)."""

    ops: list[Op]
    apply: Callable[[], None]
    count: int
    op: str = "upserted"
    dimension: int | None = None
    result: Any = None
