"""The business-event log: ``EventLog`` (the contract) and ``SqliteEventLog``, an append-only
SQLite file beside the main store. (``storage/postgres/eventlog.py`` keeps it in PostgreSQL.)

Why a file of its own (``events.db``) rather than a table of ``dakera.db``: audit filters need
real indexed columns (agent, type, time) that the main store's generic one-payload shape does
not have, and appends arrive in batches from a background thread, so they should never wait on
(or hold up) the main store's write lock. The payload of every event still passes through the
store's ``PayloadCodec``, so encryption at rest covers it like any other record.

Contract: ``append`` is atomic per batch and returns after the commit is durable; ``page``
reads only committed rows.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dakera_server.errors import StorageError
from dakera_server.storage.base import IdentityCodec, PayloadCodec
from dakera_server.storage.sqlite import map_sqlite_errors, open_durable

__all__ = ["EventFilter", "EventLog", "EventRow", "SqliteEventLog"]

EVENT_LOG_FILE = "events.db"
TABLE = "audit_events"
STAGED = "audit_events_reencoded"

# Each entry migrates the schema from version i to i+1; never edit a released entry.
MIGRATIONS: tuple[str, ...] = (
    f"""CREATE TABLE {TABLE} (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        agent_id TEXT,
        namespace TEXT,
        payload BLOB NOT NULL
    );
    CREATE INDEX {TABLE}_agent ON {TABLE} (agent_id, id);
    CREATE INDEX {TABLE}_type ON {TABLE} (event_type, id);
    CREATE INDEX {TABLE}_ts ON {TABLE} (ts);""",
)


@dataclass(frozen=True)
class EventRow:
    """One persisted event: its filter columns in the clear and its payload (decoded)."""

    id: int
    timestamp: int
    event_type: str
    agent_id: str | None
    namespace: str | None
    payload: bytes


@dataclass(frozen=True)
class EventFilter:
    """Which events a page holds; every field is optional and they combine with AND.

    ``from_ts``/``to_ts`` are Unix milliseconds, inclusive. ``before_id`` pages backwards
    (newest first); without it the newest events come first.
    """

    agent_id: str | None = None
    event_type: str | None = None
    from_ts: int | None = None
    to_ts: int | None = None
    before_id: int | None = None

    def where(self, placeholder: str) -> tuple[str, list[Any]]:
        """The SQL ``WHERE`` clause of this filter (``""`` when it has none) and its values,
        with the driver's ``placeholder`` (``?`` SQLite, ``%s`` PostgreSQL). Only fixed column
        names are written into the SQL; every value is bound."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value, operator in (
            ("agent_id", self.agent_id, "="),
            ("event_type", self.event_type, "="),
            ("ts", self.from_ts, ">="),
            ("ts", self.to_ts, "<="),
            ("id", self.before_id, "<"),
        ):
            if value is not None:
                clauses.append(f"{column} {operator} {placeholder}")
                params.append(value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


class EventLog(ABC):
    """Append-only, durable business events; payloads sealed by the store's codec.

    A key rotation runs in three steps so that a log kept outside the store's transaction (a
    second SQLite file) still switches keys atomically with it: ``stage_reencode`` (under
    ``hold()``), the store's own ``reencode``, then ``apply_staged``. A log inside the store's
    database is re-encoded by the store's ``reencode`` in the same transaction instead, and its
    stage and apply steps only follow the codec.
    """

    codec: PayloadCodec

    @abstractmethod
    def last_id(self) -> int:
        """The highest id stored (0 when empty), so new ids continue after a restart."""

    # True for a log several processes append to: ids then come from ``reserve_ids``.
    shared = False

    def reserve_ids(self, count: int) -> int:
        """For a shared log: reserve ``count`` fresh ids for this process and return the first
        (the block is ``first .. first + count - 1``)."""
        raise NotImplementedError("ids of a log of one process continue after last_id")

    @abstractmethod
    def append(self, rows: Sequence[EventRow]) -> None:
        """Insert ``rows`` in one transaction; returns after the commit is durable. An id
        already present is kept as it was (a retried batch does not duplicate)."""

    @abstractmethod
    def page(self, where: EventFilter, limit: int) -> list[EventRow]:
        """Up to ``limit`` events matching ``where``, newest (highest id) first."""

    @abstractmethod
    def count(self) -> int:
        """How many events are stored."""

    @abstractmethod
    def hold(self) -> threading.RLock:
        """A lock that pauses appends while held (a rotation holds it from stage to apply)."""

    @abstractmethod
    def stage_reencode(self, new_codec: PayloadCodec) -> int:
        """Rotation step 1: prepare every payload under ``new_codec``; returns how many."""

    @abstractmethod
    def apply_staged(self, new_codec: PayloadCodec) -> None:
        """Rotation step 3 (after the store committed the new key): switch to ``new_codec``."""

    @abstractmethod
    def close(self) -> None:
        """Release the log; further calls are errors."""


class SqliteEventLog(EventLog):
    """Append-only event rows in ``path`` (WAL, ``synchronous=FULL``)."""

    def __init__(self, path: Path, codec: PayloadCodec | None = None) -> None:
        self.path = path
        self.codec = codec or IdentityCodec()
        # Re-entrant: a key rotation holds it across stage → main store switch → apply.
        self._lock = threading.RLock()
        self._conn = open_durable(path, MIGRATIONS, "the event log")
        self.recover()

    def last_id(self) -> int:
        """The highest id stored (0 when empty), so new ids continue after a restart."""
        with self._lock, map_sqlite_errors():
            found = self._conn.execute(f"SELECT MAX(id) FROM {TABLE}").fetchone()[0]  # noqa: S608
        return int(found or 0)

    def append(self, rows: Sequence[EventRow]) -> None:
        """Insert ``rows`` in one transaction; returns after the commit is durable.

        An id already present is kept as it was (a retried batch does not duplicate).
        """
        if not rows:
            return
        with self._lock, map_sqlite_errors():
            # Encode under the lock (a rotation swaps the codec while holding it).
            params = [
                (
                    row.id,
                    row.timestamp,
                    row.event_type,
                    row.agent_id,
                    row.namespace,
                    self.codec.encode(TABLE, str(row.id), row.payload),
                )
                for row in rows
            ]
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    f"INSERT OR IGNORE INTO {TABLE} "  # noqa: S608
                    "(id, ts, event_type, agent_id, namespace, payload) VALUES (?,?,?,?,?,?)",
                    params,
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def page(self, where: EventFilter, limit: int) -> list[EventRow]:
        """Up to ``limit`` events matching ``where``, newest (highest id) first."""
        clause, params = where.where("?")
        # Only fixed column names and TABLE are interpolated; every value is bound.
        sql = f"SELECT id, ts, event_type, agent_id, namespace, payload FROM {TABLE}{clause}"  # noqa: S608
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        with self._lock, map_sqlite_errors():
            found = self._conn.execute(sql, params).fetchall()
        return [
            EventRow(
                int(event_id),
                int(ts),
                str(kind),
                agent,
                namespace,
                self.codec.decode(TABLE, str(event_id), payload),
            )
            for event_id, ts, kind, agent, namespace, payload in found
        ]

    def hold(self) -> threading.RLock:
        """The log's lock: holding it pauses appends (a rotation holds it from stage to apply,
        so no event is written under the old key after its rows were staged)."""
        return self._lock

    def stage_reencode(self, new_codec: PayloadCodec) -> int:
        """Phase 1 of a key rotation: write every payload re-encoded into a staging table.

        The live rows stay as they are, so until ``apply_staged`` the log still reads with the
        old key; a crash here leaves the staging table, which ``recover`` resolves.
        """
        with self._lock, map_sqlite_errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {STAGED} "
                    "(id INTEGER PRIMARY KEY, payload BLOB NOT NULL)"
                )
                self._conn.execute(f"DELETE FROM {STAGED}")  # noqa: S608
                rows = self._conn.execute(f"SELECT id, payload FROM {TABLE}").fetchall()  # noqa: S608
                self._conn.executemany(
                    f"INSERT INTO {STAGED} (id, payload) VALUES (?, ?)",  # noqa: S608
                    [
                        (
                            event_id,
                            new_codec.encode(
                                TABLE,
                                str(event_id),
                                self.codec.decode(TABLE, str(event_id), payload),
                            ),
                        )
                        for event_id, payload in rows
                    ],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(rows)

    def apply_staged(self, new_codec: PayloadCodec) -> None:
        """Phase 2 (after the main store committed the new key): swap the staged payloads in."""
        with self._lock, map_sqlite_errors():
            if not self._has_staged():
                self.codec = new_codec
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute(
                    f"UPDATE {TABLE} SET payload = (SELECT payload FROM {STAGED} "  # noqa: S608
                    f"WHERE {STAGED}.id = {TABLE}.id) WHERE id IN (SELECT id FROM {STAGED})"
                )
                self._conn.execute(f"DROP TABLE {STAGED}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self.codec = new_codec

    def discard_staged(self) -> None:
        """Drop a staging table left by a rotation that did not commit."""
        with self._lock, map_sqlite_errors():
            self._conn.execute(f"DROP TABLE IF EXISTS {STAGED}")

    def staged_readable(self) -> bool | None:
        """``None`` without staged rows; else whether the current codec reads them."""
        with self._lock, map_sqlite_errors():
            if not self._has_staged():
                return None
            first = self._conn.execute(f"SELECT id, payload FROM {STAGED} LIMIT 1").fetchone()  # noqa: S608
        if first is None:
            return True
        try:
            self.codec.decode(TABLE, str(first[0]), first[1])
        except StorageError:
            return False
        return True

    def _has_staged(self) -> bool:
        found = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (STAGED,)
        ).fetchone()
        return found is not None

    def recover(self) -> None:
        """Finish or undo a rotation interrupted between its two phases.

        Staged rows readable with the current key mean the main store committed the new key:
        apply them. Otherwise the rotation never committed: drop them.
        """
        readable = self.staged_readable()
        if readable is True:
            self.apply_staged(self.codec)
        elif readable is False:
            self.discard_staged()

    def scrub(self) -> None:
        """Fold the WAL back and rewrite the file, so no old page image stays on disk."""
        with self._lock, map_sqlite_errors():
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def count(self) -> int:
        """How many events are stored."""
        with self._lock, map_sqlite_errors():
            sql = f"SELECT COUNT(*) FROM {TABLE}"  # noqa: S608
            return int(self._conn.execute(sql).fetchone()[0])

    def close(self) -> None:
        """Close the file; further calls are errors."""
        with self._lock, map_sqlite_errors():
            self._conn.close()
