"""The storage interface every backend implements, and the records it persists.

Contract (tested against every implementation in ``tests/storage/test_contract.py``):

* ``write(ops)`` applies a whole batch or nothing, and returns only after the commit is durable
  (a 2xx built on it survives ``kill -9``). A store it cannot reach raises ``Unavailable``.
* ``iter_*`` return what the last completed ``write`` left, in no particular order.
* Sensitive fields travel in one opaque ``payload`` per record, passed through a ``PayloadCodec``
  so that encryption at rest can wrap every record without the backend knowing the fields.
* ``snapshot()`` is a consistent point-in-time read of every table (online backups), and
  ``write_stream(batches)`` one atomic transaction fed lazily (restores); see their docstrings.
* ``reencode`` rewrites every payload under another codec (key rotation, in-place encryption)
  and ``scrub`` removes superseded copies of rows the backend may keep.

Implementations: ``SqliteStore`` (embedded default, one process) and ``PostgresStore``
(``storage/postgres``: several processes on one database). A store shared by processes also
keeps a change log (``ChangeLog``, reached through ``Store.change_log``): every write commits a
change record per operation in the same transaction, numbered per change group
(``change_group``), so a process can tell exactly what others wrote since it last looked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from dakera_server.errors import FeatureNotAvailable

__all__ = [
    "Change",
    "ChangeListener",
    "ChangeLog",
    "ChangeNotice",
    "CurrentCodec",
    "GroupCommit",
    "IdentityCodec",
    "Op",
    "PayloadCodec",
    "Store",
    "StoreSnapshot",
    "StoredRow",
    "change_group",
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
OpKind = Literal["put", "delete", "delete_group", "insert", "update"]


class PayloadCodec(ABC):
    """Turns a record's plaintext payload into what is stored, bound to the record's identity."""

    @abstractmethod
    def encode(self, table: str, record_id: str, plaintext: bytes) -> bytes:
        """Bytes to store for ``plaintext`` of record ``record_id`` in ``table``."""

    @abstractmethod
    def decode(self, table: str, record_id: str, stored: bytes) -> bytes:
        """The plaintext back; raises if ``stored`` was not made for this record."""

    @property
    def fingerprint(self) -> str | None:
        """Public id of the key this codec seals with (``None``: it stores plaintext).

        A store shared by several processes records the fingerprint its rows are sealed under
        and refuses reads and writes from a process whose codec has another one, so a process
        still holding a rotated-out key can neither write under it nor misread new rows.
        """
        return None


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

    @property
    def fingerprint(self) -> str | None:
        codec: PayloadCodec = self.holder.codec
        return codec.fingerprint


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
    """One operation of a batch: put ``row`` (replace by table+group+key) or delete.

    ``insert`` writes the row only when none exists (two nodes creating the same singleton,
    the API-key pepper say, keep whichever committed first: read it back after). ``update``
    writes it only when one exists (a write computed from a node's cached copy, such as access
    statistics, must not bring back a row another node deleted meanwhile).
    """

    kind: OpKind
    row: StoredRow

    @classmethod
    def put(
        cls, table: Table, key: str, payload: bytes, *, group: str = "", vector: bytes | None = None
    ) -> Op:
        """Insert or replace one record."""
        return cls("put", StoredRow(table, key, group, payload, vector))

    @classmethod
    def insert(
        cls, table: Table, key: str, payload: bytes, *, group: str = "", vector: bytes | None = None
    ) -> Op:
        """Insert one record unless one with this key exists (then nothing changes)."""
        return cls("insert", StoredRow(table, key, group, payload, vector))

    @classmethod
    def update(
        cls, table: Table, key: str, payload: bytes, *, group: str = "", vector: bytes | None = None
    ) -> Op:
        """Replace one record only if it exists (absent: nothing is written)."""
        return cls("update", StoredRow(table, key, group, payload, vector))

    @classmethod
    def delete(cls, table: Table, key: str, *, group: str = "") -> Op:
        """Delete one record (absent is fine)."""
        return cls("delete", StoredRow(table, key, group, b""))

    @classmethod
    def delete_group(cls, table: Table, group: str) -> Op:
        """Delete every record of ``group`` in ``table`` (a namespace's vectors, say)."""
        return cls("delete_group", StoredRow(table, "", group, b""))


def change_group(table: str, group: str, key: str) -> str:
    """The change-log group an operation on ``table`` belongs to: what a cache reloads.

    ``agent/<id>`` for an agent's memories, sessions, graph edges, trash and imported
    documents; ``namespace/<name>`` for a namespace's vectors, their extra representations and
    the namespace's own record (the ``namespaces`` row keyed by its name);
    ``attachments/<namespace>`` for attachment records; ``keys/<group>`` for API-key records
    (``keys/key``) and usage counters (``keys/usage``); ``meta`` for the meta table (policies,
    lifecycle state, encryption record). The prefix keeps an agent and a namespace of the same
    name apart.
    """
    if table in ("memories", "sessions", "edges", "trash", "documents"):
        return f"agent/{group}"
    if table in ("vectors", "representations"):
        return f"namespace/{group}"
    if table == "attachments":
        return f"attachments/{group}"
    if table == "namespaces":
        return f"namespace/{key}"
    if table == "api_keys":
        return f"keys/{group}"
    return "meta"


@dataclass(frozen=True)
class Change:
    """One change record: operation ``op`` on ``table``/``key`` (group column ``row_group``),
    committed as change number ``seq`` of change group ``group``.

    Every record of one transaction in one group carries the same ``seq``; ``ordinal`` keeps
    their order inside the batch. For ``delete_group`` the key is empty.
    """

    group: str
    seq: int
    ordinal: int
    table: str
    row_group: str
    key: str
    op: OpKind


@dataclass(frozen=True)
class GroupCommit:
    """What one committed write did to one change group: its head went from ``previous`` to
    ``seq``. A cache that was at ``previous`` is, after applying the write itself, at ``seq``."""

    group: str
    previous: int
    seq: int


@dataclass(frozen=True)
class ChangeNotice:
    """A wake-up from the change log: group ``group`` committed change ``seq``. Notices can be
    lost (a dropped connection); the sequence read back from the log is the truth."""

    group: str
    seq: int


class ChangeLog(ABC):
    """The change records of a store shared by several processes (see ``storage/postgres``).

    Within a change group the numbers increase in commit order (they are not contiguous: one
    sequence serves every group): once ``head(g)`` has returned ``s``, every change of ``g``
    numbered ``s`` or less is committed and readable, and none numbered ``s`` or less can appear
    later. Catching up a group is therefore exact: read the head, then
    ``changes_after(group, cursor)`` until the cursor reaches it.
    """

    @abstractmethod
    def head(self, group: str) -> int:
        """The latest committed change number of ``group`` (0: never written)."""

    @abstractmethod
    def heads(self, groups: Sequence[str]) -> dict[str, int]:
        """``head`` of several groups in one round trip (absent groups map to 0)."""

    @abstractmethod
    def heads_all(self, prefix: str = "") -> dict[str, int]:
        """The head of every group whose name starts with ``prefix`` (one query): a node's
        cursors at start-up, and the groups a list of every agent must catch up first."""

    @abstractmethod
    def changes_after(self, group: str, seq: int, *, limit: int = 10_000) -> list[Change] | None:
        """Changes of ``group`` numbered above ``seq``, oldest first, at most ``limit`` records
        (never cutting one transaction's records apart unless it alone exceeds ``limit``).

        ``None`` when records above ``seq`` were pruned: the caller reloads the group's rows.
        """

    @abstractmethod
    def latest(self) -> int:
        """The highest change number committed in any group (a hint, not a cursor)."""

    @abstractmethod
    def changes_since(self, seq: int, *, limit: int = 10_000) -> list[Change]:
        """Changes of every group numbered above ``seq``, in number order. Across groups the
        numbers are not commit-ordered, so this is a hint for what to look at, never a cursor:
        catch up per group."""

    @abstractmethod
    def prune(self, up_to_seq: int) -> int:
        """Delete change records numbered ``up_to_seq`` or less; returns how many. Later
        ``changes_after`` below that number answer ``None``."""

    @abstractmethod
    def listen(self) -> ChangeListener:
        """A dedicated connection that receives ``ChangeNotice`` wake-ups after each commit."""


class ChangeListener(ABC):
    """Receives change notices on its own connection (see ``ChangeLog.listen``)."""

    @abstractmethod
    def wait(self, timeout: float) -> list[ChangeNotice]:
        """Notices that arrive within ``timeout`` seconds (empty when none did).

        Raises ``Unavailable`` when the connection is lost: notices may have been missed, so the
        caller catches up every group it holds from the log, then listens again.
        """

    @abstractmethod
    def close(self) -> None:
        """Stop listening and release the connection."""


class StoreSnapshot(ABC):
    """A read-only view of the whole store frozen at one instant (see ``Store.snapshot``)."""

    @abstractmethod
    def iter_rows(self, table: Table, group: str | None = None) -> Iterator[StoredRow]:
        """Every row of ``table`` (of one ``group`` when given) as of the snapshot's instant,
        payloads decoded, streamed (an implementation must not load a whole table in memory)."""

    @abstractmethod
    def count(self, table: Table, group: str | None = None) -> int:
        """How many rows ``table`` held at the snapshot's instant."""

    def read_blob(self, name: str) -> Iterator[bytes] | None:
        """The bytes of blob ``name`` as of the snapshot's instant, in chunks, when this store
        keeps blobs inside its own transactions (PostgreSQL); ``None`` when blobs live beside
        the store (files), where the reader takes them from the ``BlobStore`` while holding
        its deletes (``BlobStore.hold_deletes``). ``NotFound`` when the store keeps blobs and
        this one was not committed at the instant."""
        return None


class Store(ABC):
    """Durable storage. Implementations: ``SqliteStore`` (embedded default) and
    ``PostgresStore`` (shared by several processes)."""

    codec: PayloadCodec

    @abstractmethod
    def write(self, ops: Sequence[Op]) -> None:
        """Apply ``ops`` atomically; return only after the commit is durable."""

    @abstractmethod
    def iter_rows(self, table: Table, group: str | None = None) -> Iterator[StoredRow]:
        """Every row of ``table`` (of one ``group`` when given), payloads decoded."""

    @abstractmethod
    def get_row(self, table: Table, key: str, group: str = "") -> StoredRow | None:
        """One row, payload decoded, or ``None``."""

    def get_rows(self, table: Table, keys: Sequence[str], group: str) -> dict[str, StoredRow]:
        """The rows of ``keys`` in one group of a data table (not ``meta``) that exist, by key.
        A store across a network answers in one round trip (a follower re-reads hundreds of
        rows a change batch names); this default asks ``get_row`` for each."""
        found = {}
        for key in dict.fromkeys(keys):
            row = self.get_row(table, key, group)
            if row is not None:
                found[key] = row
        return found

    @abstractmethod
    def count(self, table: Table, group: str | None = None) -> int:
        """How many rows ``table`` holds (in ``group`` when given)."""

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[StoreSnapshot]:
        """A consistent point-in-time view of every table, for online backups.

        The contract every implementation keeps (``tests/storage/test_sqlite.py`` runs it):

        * **The instant is the call.** Every ``write`` that returned before ``snapshot()`` was
          called is visible through the view; no ``write`` that commits after the view was
          established is, for the whole life of the view (every table, every ``iter_rows`` and
          ``count`` call: one instant, not one per query).
        * **Online.** Writers are not blocked while the view is open (at most for the moment it
          takes to establish it); the view costs the store extra space at most (WAL growth,
          MVCC row versions), never a lock that stops writes.
        * **Decoded with the codec of that instant.** A key rotation committing while the view
          is open does not make its rows unreadable.
        * **Released on exit** of the context manager, even on error; use one view per backup.

        SQLite: a second connection on the WAL database, ``BEGIN`` plus a first read inside
        this call (WAL readers see the last commit before their first read, forever).
        PostgreSQL: a dedicated connection with ``BEGIN ISOLATION LEVEL REPEATABLE READ, READ
        ONLY`` and a first query inside this call (the snapshot is taken at the first query),
        rows streamed through a server-side (named) cursor.
        """

    @abstractmethod
    def write_stream(self, batches: Iterable[Sequence[Op]]) -> int:
        """Apply every op of every batch in ONE atomic transaction, consuming ``batches`` lazily
        (a restore of a million rows never holds them all in memory); returns how many ops.

        Durable on return, like ``write``. If the iterable raises, or the process dies before
        the end, nothing of it is applied. Other writers wait until it commits.
        """

    @abstractmethod
    def reencode(
        self,
        new_codec: PayloadCodec,
        *,
        batch_rows: int | None = None,
        extra_ops: Sequence[Op] = (),
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Rewrite every payload and vector with ``new_codec`` and make it the store's codec;
        returns the rows rewritten.

        With ``batch_rows=None`` everything is rewritten in ONE transaction together with
        ``extra_ops`` (a key rotation: either every record is under the new key or none is).
        With a batch size each batch commits on its own (an in-place encryption that can
        resume: the old codec must then read both forms). Writes arriving meanwhile land after
        the rewrite, under the new codec. Meta rows named ``plain:*`` are never encoded.
        """

    @abstractmethod
    def scrub(self) -> None:
        """Remove superseded copies of rows the backend keeps (old pages, dead tuples), so that
        after an in-place encryption no plaintext copy is left in the store's files."""

    @abstractmethod
    def describe(self) -> str:
        """Where the store lives, for logs and status: never a password."""

    @property
    def change_log(self) -> ChangeLog | None:
        """The store's change log, or ``None`` for a store only one process uses."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Flush and release the store; further calls are errors."""

    def heartbeat(self, node_id: str, info: dict[str, Any]) -> None:
        """Record that node ``node_id`` is alive, with ``info`` about it (a store shared by
        several processes; nothing for one process)."""
        return None

    def forget_node(self, node_id: str) -> None:
        """Drop a node's heartbeat row (it stopped for good); nothing for one process."""
        return None

    def nodes(self) -> list[dict[str, Any]] | None:
        """Every node's last heartbeat: its ``info`` plus ``node_id`` and ``age_seconds``
        (by the store's clock). ``None``: a store only one process uses."""
        return None

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Try to become the one process doing background work ``name`` (a decay pass, say)
        among those sharing the store; yields whether this one is. Held until the block ends,
        and released if the process dies. A store only one process uses always yields True."""
        yield True

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
