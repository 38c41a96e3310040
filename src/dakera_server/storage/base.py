"""The storage interface every backend implements, and the records it persists.

Contract (tested against every implementation in ``tests/storage/test_contract.py``):

* ``write(ops)`` applies a whole batch or nothing, and returns only after the commit is durable
  (a 2xx built on it survives ``kill -9``).
* ``iter_*`` return what the last completed ``write`` left, in no particular order.
* Sensitive fields travel in one opaque ``payload`` per record, passed through a ``PayloadCodec``
  so that encryption at rest can wrap every record without the backend knowing the fields.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dakera_server.errors import FeatureNotAvailable

__all__ = [
    "CurrentCodec",
    "IdentityCodec",
    "Op",
    "PayloadCodec",
    "Store",
    "StoredRow",
]

Table = Literal[
    "memories",
    "sessions",
    "namespaces",
    "vectors",
    "api_keys",
    "edges",
    "meta",
    "trash",
    "attachments",
    "documents",
    "representations",
]


class PayloadCodec(ABC):
    """Turns a record's plaintext payload into what is stored, bound to the record's identity."""

    @abstractmethod
    def encode(self, table: str, record_id: str, plaintext: bytes) -> bytes:
        """Bytes to store for ``plaintext`` of record ``record_id`` in ``table``."""

    @abstractmethod
    def decode(self, table: str, record_id: str, stored: bytes) -> bytes:
        """The plaintext back; raises if ``stored`` was not made for this record."""


class IdentityCodec(PayloadCodec):
    """No encryption: the payload is stored as is."""

    def encode(self, table: str, record_id: str, plaintext: bytes) -> bytes:
        return plaintext

    def decode(self, table: str, record_id: str, stored: bytes) -> bytes:
        return stored


class CurrentCodec(PayloadCodec):
    """Follows whatever codec ``holder.codec`` is now, so files written beside the store
    (snapshots, the event log) switch keys when a rotation swaps the store's codec."""

    def __init__(self, holder: Any) -> None:
        self.holder = holder

    def encode(self, table: str, record_id: str, plaintext: bytes) -> bytes:
        codec: PayloadCodec = self.holder.codec
        return codec.encode(table, record_id, plaintext)

    def decode(self, table: str, record_id: str, stored: bytes) -> bytes:
        codec: PayloadCodec = self.holder.codec
        return codec.decode(table, record_id, stored)


@dataclass(frozen=True)
class StoredRow:
    """One persisted record: its key columns in the clear, its payload and vector as blobs.

    ``group`` is the record's owner (agent id for memories/sessions/edges, namespace for
    vectors, empty otherwise); ``vector`` holds float32 bytes or ``None``.
    """

    table: Table
    key: str
    group: str
    payload: bytes
    vector: bytes | None = None


@dataclass(frozen=True)
class Op:
    """One operation of a batch: put ``row`` (replace by table+group+key) or delete."""

    kind: Literal["put", "delete", "delete_group"]
    row: StoredRow

    @classmethod
    def put(
        cls, table: Table, key: str, payload: bytes, *, group: str = "", vector: bytes | None = None
    ) -> Op:
        """Insert or replace one record."""
        return cls("put", StoredRow(table, key, group, payload, vector))

    @classmethod
    def delete(cls, table: Table, key: str, *, group: str = "") -> Op:
        """Delete one record (absent is fine)."""
        return cls("delete", StoredRow(table, key, group, b""))

    @classmethod
    def delete_group(cls, table: Table, group: str) -> Op:
        """Delete every record of ``group`` in ``table`` (a namespace's vectors, say)."""
        return cls("delete_group", StoredRow(table, "", group, b""))


class Store(ABC):
    """Durable storage. Implementations: ``SqliteStore`` (embedded default)."""

    @abstractmethod
    def write(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` atomically; return only after the commit is durable."""

    @abstractmethod
    def iter_rows(self, table: Table, group: str | None = None) -> Iterator[StoredRow]:
        """Every row of ``table`` (of one ``group`` when given), payloads decoded."""

    @abstractmethod
    def get_row(self, table: Table, key: str, group: str = "") -> StoredRow | None:
        """One row, payload decoded, or ``None``."""

    @abstractmethod
    def count(self, table: Table, group: str | None = None) -> int:
        """How many rows ``table`` holds (in ``group`` when given)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store; further calls are errors."""

    def disk_usage(self) -> dict[str, int] | None:
        """Bytes the backend occupies on disk by part (``{"total": n, ...}``), or ``None``
        when it cannot tell (a remote database)."""
        return None

    def compact(self, *, force: bool = False) -> dict[str, Any]:
        """Give free space back to the file system and fold any write-ahead log.

        Returns a report with at least ``bytes_before`` and ``bytes_after``. ``force`` rewrites
        the store even when it reports no free pages. A backend that cannot do this on request
        raises ``FeatureNotAvailable`` (the wire's 501 ``NOT_IMPLEMENTED``).
        """
        raise FeatureNotAvailable("this storage backend cannot compact on request")
