"""Online backups and restores on PostgreSQL: ``Store.snapshot`` and ``Store.write_stream``.

A snapshot is a dedicated connection (outside the pool, so a long backup never holds a pooled
connection other requests wait for) in a ``REPEATABLE READ, READ ONLY`` transaction whose first
statement, run inside ``open_snapshot``, fixes the instant: every write committed before it is
visible, none committed after it is, for every table. That first statement is
``dakera.begin_access``: it checks the codec fingerprint and takes the codec lock shared, so a
key rotation waits for the backup to finish instead of re-sealing rows under it. Rows stream
through server-side (named) cursors, a thousand at a time. Writers are never blocked: readers do
not lock rows in PostgreSQL. Attachment files (``dakera.blobs``/``blob_chunks``) are read in the
same transaction (``read_blob``): a blob whose record is in the snapshot is readable from it
even if another node deletes it meanwhile, so a backup needs no hold on deletes here.

A restore's stream of batches runs in ONE transaction on a pooled connection, each batch
written like any write (change heads, change records, ``NOTIFY``), so other nodes follow a
restore as they follow any write; nothing of it is visible, or kept, unless all of it commits.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

import psycopg
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from dakera_server.errors import NotFound, StorageError
from dakera_server.storage.base import (
    Op,
    PayloadCodec,
    StoredRow,
    StoreSnapshot,
    Table,
)
from dakera_server.storage.postgres.connect import connect_direct
from dakera_server.storage.postgres.errors import map_postgres_errors
from dakera_server.storage.postgres.rows import META_SELECT, decode_meta, decode_row, table_query

__all__ = ["PostgresSnapshot", "open_snapshot", "write_stream"]

FETCH_ROWS = 1000
BLOB_PAGE_CHUNKS = 16  # chunks of at most 64 KiB: 1 MiB per query while a backup reads a blob
_cursor_names = itertools.count(1)


class PostgresStore(Protocol):
    """What this module needs of ``store.PostgresStore`` (named here, not imported: the store
    imports this module)."""

    codec: PayloadCodec

    @property
    def pool(self) -> ConnectionPool: ...

    def queue_ops(
        self, conn: psycopg.Connection[Any], codec: PayloadCodec, ops: Sequence[Op]
    ) -> None: ...


class PostgresSnapshot(StoreSnapshot):
    """One repeatable-read transaction: one instant for every query (see the module)."""

    def __init__(self, store: PostgresStore, conn: psycopg.Connection[Any], codec: PayloadCodec):
        self._store = store
        self._conn = conn
        self._codec = codec

    def iter_rows(self, table: Table, group: str | None = None) -> Iterator[StoredRow]:
        if table == "meta":
            for key, value in self._stream(META_SELECT, ()):
                yield decode_meta(self._codec, key, value)
            return
        query = table_query("grp, key, payload, vector", table, group)
        for grp, key, payload, vector in self._stream(*query):
            yield decode_row(self._codec, table, grp, key, payload, vector)

    def count(self, table: Table, group: str | None = None) -> int:
        with map_postgres_errors():
            row = self._conn.execute(*table_query("count(*)", table, group)).fetchone()
        return 0 if row is None else int(row[0])

    def read_blob(self, name: str) -> Iterator[bytes]:
        with map_postgres_errors():
            found = self._conn.execute(
                "SELECT 1 FROM dakera.blobs WHERE name = %s AND committed", (name,)
            ).fetchone()
        if found is None:
            raise NotFound("the attachment's bytes are missing", resource="attachment")
        return self._blob_pages(name)

    def _blob_pages(self, name: str) -> Iterator[bytes]:
        after = -1
        while True:
            with map_postgres_errors():
                rows = self._conn.execute(
                    "SELECT chunk, data FROM dakera.blob_chunks WHERE name = %s AND chunk > %s "
                    "ORDER BY chunk LIMIT %s",
                    (name, after, BLOB_PAGE_CHUNKS),
                    binary=True,
                ).fetchall()
            for chunk, data in rows:
                after = int(chunk)
                yield bytes(data)
            if len(rows) < BLOB_PAGE_CHUNKS:
                return

    def _stream(self, sql: str, params: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql`` through a named cursor, ``FETCH_ROWS`` per round trip."""
        with map_postgres_errors():
            cursor = self._conn.cursor(name=f"dakera_snapshot_{next(_cursor_names)}", binary=True)
        try:
            cursor.itersize = FETCH_ROWS
            with map_postgres_errors():
                cursor.execute(sql, params)
            while True:
                with map_postgres_errors():
                    chunk = cursor.fetchmany(FETCH_ROWS)
                if not chunk:
                    return
                yield from chunk
        finally:
            with map_postgres_errors():
                cursor.close()


class _Opened:
    """The context manager ``open_snapshot`` returns (closes the connection on exit)."""

    def __init__(self, store: PostgresStore, url: str, begin_access: str) -> None:
        self._store = store
        self._url = url
        self._begin_access = begin_access
        self._conn: psycopg.Connection[Any] | None = None

    def __enter__(self) -> PostgresSnapshot:
        conn = connect_direct(self._url, autocommit=False)
        try:
            conn.isolation_level = IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            codec = self._store.codec
            with map_postgres_errors():
                # The first statement of the transaction takes its snapshot: the instant.
                conn.execute(self._begin_access, (codec.fingerprint, True))
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return PostgresSnapshot(self._store, conn, codec)

    def __exit__(self, *_: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.rollback()
            except psycopg.Error:
                pass  # the connection is being closed anyway
            conn.close()


def open_snapshot(store: PostgresStore, url: str, begin_access: str) -> _Opened:
    """``Store.snapshot`` for ``store`` (see the module docstring)."""
    return _Opened(store, url, begin_access)


def write_stream(store: PostgresStore, batches: Iterable[Sequence[Op]], begin_access: str) -> int:
    """``Store.write_stream`` for ``store``: every batch in one transaction (see the module)."""
    codec = store.codec
    done = 0
    with map_postgres_errors(), store.pool.connection() as conn:
        try:
            conn.execute(begin_access, (codec.fingerprint, True))
            for batch in batches:
                if batch:
                    store.queue_ops(conn, codec, batch)
                    done += len(batch)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        if conn.info.transaction_status != TransactionStatus.IDLE:
            raise StorageError("the transaction did not commit")
    return done
