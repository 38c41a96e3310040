"""``PostgresBlobStore``: attachment files in the database every node shares.

Why in PostgreSQL and not on each node's disk: with several nodes, a file uploaded through
node A must be downloadable through node B, and a node's disk is a cache that may be lost. A
shared file system or an object store would be a second stateful service to run and back up;
the database is already there, replicated and backed up. Attachments are bounded by
``DAKERA_MAX_ATTACHMENT_BYTES`` (and sealed chunk by chunk by the engine when encryption is on,
so the database only ever sees ciphertext). Deployments storing many large files should weigh
the database's size; the embedded SQLite mode keeps files on disk (``storage/blobs.py``).

Layout (schema version 2): ``dakera.blobs`` (one row per blob: name, committed flag, size,
times) and ``dakera.blob_chunks`` (its bytes in chunks of at most ``CHUNK_BYTES``, stored
uncompressed: sealed bytes do not compress).

The ``BlobStore`` contract, on a shared database:

* ``create`` inserts an uncommitted ``blobs`` row; ``write`` buffers and inserts whole chunks,
  each in a short transaction with ``synchronous_commit = off`` (no WAL flush per chunk);
  ``commit`` marks the row committed in a synchronous transaction, whose WAL flush covers every
  earlier chunk record as well (the WAL is one sequence), so the blob is durable when it
  returns. ``abort`` deletes the row (and its chunks, by cascade).
* Uploads cut short by a crash leave uncommitted rows: ``sweep`` (run when the store opens)
  deletes those older than ``STALE_UPLOAD_SECONDS``, leaving other nodes' uploads in flight.
* ``names`` lists committed blobs **older than** ``ORPHAN_GRACE_SECONDS``: the attachment
  engine deletes listed blobs that no record names, and on a shared store another node may be
  between committing a blob and writing its record.
* ``read`` checks the blob is committed, then streams pages of chunks, each page read with a
  connection borrowed only for that query, so a slow download holds no connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

from psycopg_pool import ConnectionPool

from dakera_server.errors import DakeraError, NotFound, StorageError
from dakera_server.storage.blobs import CHUNK_BYTES, NAME, BlobStore, BlobWriter
from dakera_server.storage.postgres.errors import map_postgres_errors

__all__ = ["ORPHAN_GRACE_SECONDS", "STALE_UPLOAD_SECONDS", "PostgresBlobStore"]

STALE_UPLOAD_SECONDS = 3600
ORPHAN_GRACE_SECONDS = 600
PAGE_CHUNKS = 16  # 1 MB per query while streaming a download


def _checked(name: str) -> str:
    if not NAME.fullmatch(name):
        raise StorageError("a blob name is malformed")
    return name


class _PostgresWriter(BlobWriter):
    def __init__(self, pool: ConnectionPool, name: str) -> None:
        self._pool = pool
        self.name = name
        self._buffer = bytearray()
        self._chunks = 0
        self._size = 0
        self._done = False
        self._execute("INSERT INTO dakera.blobs (name) VALUES (%s)", (name,), durable=False)

    def _execute(self, sql: str, params: tuple[Any, ...], *, durable: bool) -> int:
        with map_postgres_errors(), self._pool.connection() as conn:
            with conn.transaction():
                if not durable:
                    conn.execute("SET LOCAL synchronous_commit = off")
                count = conn.execute(sql, params).rowcount
        return int(count)

    def _flush(self, *, final: bool) -> None:
        while len(self._buffer) >= CHUNK_BYTES or (final and self._buffer):
            chunk = bytes(self._buffer[:CHUNK_BYTES])
            del self._buffer[:CHUNK_BYTES]
            self._execute(
                "INSERT INTO dakera.blob_chunks (name, chunk, data) VALUES (%s, %s, %s)",
                (self.name, self._chunks, chunk),
                durable=False,
            )
            self._chunks += 1

    def write(self, data: bytes) -> None:
        if self._done:
            raise StorageError("the blob is already closed")
        self._buffer += data
        self._size += len(data)
        try:
            self._flush(final=False)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> str:
        try:
            self._flush(final=True)
            updated = self._execute(
                "UPDATE dakera.blobs SET committed = true, size = %s, committed_at = now() "
                "WHERE name = %s AND NOT committed",
                (self._size, self.name),
                durable=True,
            )
        except BaseException:
            self.abort()
            raise
        if updated != 1:
            raise StorageError("the attachment could not be written")
        self._done = True
        return self.name

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer.clear()
        # Best effort: a database that is down now leaves the row to ``sweep``.
        try:
            self._execute("DELETE FROM dakera.blobs WHERE name = %s", (self.name,), durable=False)
        except DakeraError:
            pass


class PostgresBlobStore(BlobStore):
    """Blobs in ``dakera.blobs``/``dakera.blob_chunks``; see the module docstring."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self.sweep()

    def sweep(self) -> int:
        """Delete uploads a crash left uncommitted for more than ``STALE_UPLOAD_SECONDS``."""
        with map_postgres_errors(), self._pool.connection() as conn:
            deleted = conn.execute(
                "DELETE FROM dakera.blobs WHERE NOT committed "
                "AND created_at < now() - make_interval(secs => %s)",
                (STALE_UPLOAD_SECONDS,),
            ).rowcount
            conn.commit()
        return int(deleted)

    def create(self) -> BlobWriter:
        return _PostgresWriter(self._pool, secrets.token_hex(16))

    def read(self, name: str) -> Iterator[bytes]:
        _checked(name)
        with map_postgres_errors(), self._pool.connection() as conn:
            found = conn.execute(
                "SELECT 1 FROM dakera.blobs WHERE name = %s AND committed", (name,)
            ).fetchone()
            conn.rollback()
        if found is None:
            raise NotFound("the attachment's bytes are missing", resource="attachment")
        return self._pages(name)

    def _pages(self, name: str) -> Iterator[bytes]:
        after = -1
        while True:
            with map_postgres_errors(), self._pool.connection() as conn:
                rows = conn.execute(
                    "SELECT chunk, data FROM dakera.blob_chunks WHERE name = %s AND chunk > %s "
                    "ORDER BY chunk LIMIT %s",
                    (name, after, PAGE_CHUNKS),
                    binary=True,
                ).fetchall()
                conn.rollback()
            for chunk, data in rows:
                after = int(chunk)
                yield bytes(data)
            if len(rows) < PAGE_CHUNKS:
                return

    def delete(self, name: str) -> None:
        _checked(name)
        with map_postgres_errors(), self._pool.connection() as conn:
            conn.execute("DELETE FROM dakera.blobs WHERE name = %s", (name,))
            conn.commit()

    def names(self) -> list[str]:
        with map_postgres_errors(), self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT name FROM dakera.blobs WHERE committed "
                "AND committed_at < now() - make_interval(secs => %s)",
                (ORPHAN_GRACE_SECONDS,),
            ).fetchall()
            conn.rollback()
        return [str(name) for (name,) in rows]
