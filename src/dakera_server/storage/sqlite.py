"""SQLite store: WAL, ``synchronous=FULL``, schema migrations, driver errors mapped once.

Every table has the same shape (group, key, payload, vector) so one code path persists all
record kinds; the engine keeps what it searches in memory and reads the store only at start-up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dakera_server.errors import Conflict, StorageError, Unavailable
from dakera_server.storage.base import (
    IdentityCodec,
    Op,
    PayloadCodec,
    Store,
    StoredRow,
    StoreSnapshot,
    Table,
)

__all__ = ["SqliteStore", "map_sqlite_errors", "open_durable"]

TABLES: tuple[Table, ...] = ("memories", "sessions", "namespaces", "vectors", "api_keys", "edges")
# Tables added by later migrations (the first migration must keep creating exactly TABLES).
LATER_TABLES: tuple[Table, ...] = ("trash", "attachments", "documents", "representations")

# Each entry migrates the schema from version i to i+1; never edit a released entry.
MIGRATIONS: tuple[str, ...] = (
    "\n".join(
        f"""CREATE TABLE {table} (
            grp TEXT NOT NULL,
            key TEXT NOT NULL,
            payload BLOB NOT NULL,
            vector BLOB,
            PRIMARY KEY (grp, key)
        );"""
        for table in TABLES
    )
    + "\nCREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);",
    # 2: restorable copies of memories removed by deduplication/consolidation (lifecycle).
    """CREATE TABLE trash (
        grp TEXT NOT NULL,
        key TEXT NOT NULL,
        payload BLOB NOT NULL,
        vector BLOB,
        PRIMARY KEY (grp, key)
    );""",
    # 3: attachment manifests (engine/attachments), imported documents (engine/documents) and
    # the extra representations of vector records (engine/records).
    "\n".join(
        f"""CREATE TABLE {table} (
            grp TEXT NOT NULL,
            key TEXT NOT NULL,
            payload BLOB NOT NULL,
            vector BLOB,
            PRIMARY KEY (grp, key)
        );"""
        for table in ("attachments", "documents", "representations")
    ),
)


PLAIN_META_PREFIX = "plain:"
PROGRESS_EVERY = 2000
SNAPSHOT_FETCH_ROWS = 1000
# Op kinds that write a row (put replaces, insert keeps an existing one, update needs one).
_WRITES = ("put", "insert", "update")


def _checked(table: str) -> str:
    """Table names are interpolated into SQL, so only the declared ones pass."""
    if table != "meta" and table not in TABLES and table not in LATER_TABLES:
        raise StorageError(f"unknown table {table!r}")
    return table


def _table_query(columns: str, table: str, group: str | None) -> tuple[str, tuple[str, ...]]:
    """``SELECT columns`` of a data table, of one group when ``group`` is given (the store's
    and the snapshot's reads alike)."""
    sql = f"SELECT {columns} FROM {_checked(table)}"
    if group is None:
        return sql, ()
    return sql + " WHERE grp = ?", (group,)


def open_durable(path: Path, migrations: Sequence[str], what: str) -> sqlite3.Connection:
    """A connection for a durable file: WAL, ``synchronous=FULL``, deleted content zeroed,
    temporary tables in memory, schema migrated to ``len(migrations)``.

    Each migration step runs as one script with its version bump, so it commits whole.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with map_sqlite_errors():
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("PRAGMA temp_store=MEMORY")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(migrations):
            raise StorageError(f"{what} was written by a newer server (schema {version})")
        for index in range(version, len(migrations)):
            bump = f"PRAGMA user_version = {index + 1};"
            try:
                conn.executescript(f"BEGIN IMMEDIATE;\n{migrations[index]}\n{bump}\nCOMMIT;")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
    return conn


@contextmanager
def map_sqlite_errors() -> Iterator[None]:
    """Translate driver errors into the error tree; re-raise anything unrecognised."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise Conflict("the record conflicts with an existing one") from exc
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            raise Unavailable("the store is busy, retry shortly") from exc
        raise StorageError("the store could not complete the operation") from exc
    except sqlite3.DatabaseError as exc:
        raise StorageError("the store could not complete the operation") from exc


_IDENTITY = IdentityCodec()


def _meta_codec(codec: PayloadCodec, key: str) -> PayloadCodec:
    # Meta rows named plain:* describe the encryption itself (salt, key check value) and
    # must be readable before the key is known; they never hold secrets or content.
    return _IDENTITY if key.startswith(PLAIN_META_PREFIX) else codec


class SqliteSnapshot(StoreSnapshot):
    """A WAL read transaction on its own connection: one instant for every query."""

    def __init__(self, conn: sqlite3.Connection, codec: PayloadCodec) -> None:
        self._conn = conn
        self._codec = codec

    def iter_rows(self, table: Table, group: str | None = None) -> Iterator[StoredRow]:
        if table == "meta":
            with map_sqlite_errors():
                rows = self._conn.execute("SELECT key, value FROM meta").fetchall()
            for key, value in rows:
                yield StoredRow(
                    "meta", key, "", _meta_codec(self._codec, key).decode("meta", key, value)
                )
            return
        sql, params = _table_query("grp, key, payload, vector", table, group)
        with map_sqlite_errors():
            cursor = self._conn.execute(sql, params)
        codec = self._codec
        while True:
            with map_sqlite_errors():
                chunk = cursor.fetchmany(SNAPSHOT_FETCH_ROWS)
            if not chunk:
                return
            for grp, key, payload, vector in chunk:
                record_id = f"{grp}/{key}"
                yield StoredRow(
                    table,
                    key,
                    grp,
                    codec.decode(table, record_id, payload),
                    None if vector is None else codec.decode(table + ".vector", record_id, vector),
                )

    def count(self, table: Table, group: str | None = None) -> int:
        sql, params = _table_query("COUNT(*)", table, group)
        with map_sqlite_errors():
            return int(self._conn.execute(sql, params).fetchone()[0])


class SqliteStore(Store):
    """The embedded default store: one SQLite file under the data directory."""

    def __init__(self, path: Path, codec: PayloadCodec | None = None) -> None:
        self.path = path
        self.codec = codec or IdentityCodec()
        self._lock = threading.Lock()
        self._conn = open_durable(path, MIGRATIONS, "the data directory")

    @property
    def schema_version(self) -> int:
        """The schema version on disk."""
        with self._lock, map_sqlite_errors():
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def write(self, ops: Sequence[Op]) -> None:
        if not ops:
            return
        with self._lock, map_sqlite_errors():
            # Encode under the lock: a rotation swaps the codec while holding it, and a payload
            # sealed before the swap but written after it would be under the retired key.
            encoded = [self._encode(op) for op in ops]
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in encoded:
                    self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def _encode(self, op: Op) -> tuple[str, tuple[object, ...]]:
        row = op.row
        _checked(row.table)
        if row.table == "meta":
            if op.kind in _WRITES:
                value = self._meta_codec(row.key).encode("meta", row.key, row.payload)
                if op.kind == "update":
                    return "UPDATE meta SET value = ? WHERE key = ?", (value, row.key)
                verb = "INSERT OR IGNORE" if op.kind == "insert" else "INSERT OR REPLACE"
                return f"{verb} INTO meta (key, value) VALUES (?, ?)", (row.key, value)
            return "DELETE FROM meta WHERE key = ?", (row.key,)
        if op.kind in _WRITES:
            record_id = f"{row.group}/{row.key}"
            payload = self.codec.encode(row.table, record_id, row.payload)
            vector = (
                None
                if row.vector is None
                else self.codec.encode(row.table + ".vector", record_id, row.vector)
            )
            if op.kind == "update":
                sql = f"UPDATE {row.table} SET payload = ?, vector = ? WHERE grp = ? AND key = ?"
                return sql, (payload, vector, row.group, row.key)
            verb = "INSERT OR IGNORE" if op.kind == "insert" else "INSERT OR REPLACE"
            sql = f"{verb} INTO {row.table} (grp, key, payload, vector) VALUES (?,?,?,?)"
            return sql, (row.group, row.key, payload, vector)
        if op.kind == "delete":
            return f"DELETE FROM {row.table} WHERE grp = ? AND key = ?", (row.group, row.key)
        return f"DELETE FROM {row.table} WHERE grp = ?", (row.group,)

    def _decode(
        self, table: Table, grp: str, key: str, payload: bytes, vector: bytes | None
    ) -> StoredRow:
        record_id = f"{grp}/{key}"
        return StoredRow(
            table,
            key,
            grp,
            self.codec.decode(table, record_id, payload),
            None if vector is None else self.codec.decode(table + ".vector", record_id, vector),
        )

    def iter_rows(self, table: Table, group: str | None = None) -> Iterator[StoredRow]:
        if table == "meta":
            with self._lock, map_sqlite_errors():
                rows = self._conn.execute("SELECT key, value FROM meta").fetchall()
            for key, value in rows:
                yield StoredRow("meta", key, "", self._meta_codec(key).decode("meta", key, value))
            return
        sql, params = _table_query("grp, key, payload, vector", table, group)
        with self._lock, map_sqlite_errors():
            rows = self._conn.execute(sql, params).fetchall()
        for grp, key, payload, vector in rows:
            yield self._decode(table, grp, key, payload, vector)

    def get_row(self, table: Table, key: str, group: str = "") -> StoredRow | None:
        with self._lock, map_sqlite_errors():
            if table == "meta":
                found = self._conn.execute(
                    "SELECT value FROM meta WHERE key = ?", (key,)
                ).fetchone()
                return (
                    None
                    if found is None
                    else StoredRow(
                        "meta", key, "", self._meta_codec(key).decode("meta", key, found[0])
                    )
                )
            row = self._conn.execute(
                f"SELECT payload, vector FROM {_checked(table)} WHERE grp = ? AND key = ?",
                (group, key),
            ).fetchone()
        return None if row is None else self._decode(table, group, key, row[0], row[1])

    def count(self, table: Table, group: str | None = None) -> int:
        sql, params = _table_query("COUNT(*)", table, group)
        with self._lock, map_sqlite_errors():
            return int(self._conn.execute(sql, params).fetchone()[0])

    def _meta_codec(self, key: str) -> PayloadCodec:
        return _meta_codec(self.codec, key)

    @contextmanager
    def snapshot(self) -> Iterator[StoreSnapshot]:
        """A read transaction on a second connection (see ``Store.snapshot``).

        It is established under the store lock, so a ``write`` through this store either
        returned before (visible) or starts after (never visible); with WAL the writer never
        waits for the reader afterwards.
        """
        with map_sqlite_errors():
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            with map_sqlite_errors():
                conn.execute("PRAGMA query_only=ON")
                with self._lock:
                    codec = self.codec
                    conn.execute("BEGIN")
                    # The WAL read mark is taken by the first read, not by BEGIN.
                    conn.execute("SELECT COUNT(*) FROM meta").fetchone()
            yield SqliteSnapshot(conn, codec)
        finally:
            with map_sqlite_errors():
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                conn.close()

    def write_stream(self, batches: Iterable[Sequence[Op]]) -> int:
        done = 0
        with self._lock, map_sqlite_errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for batch in batches:
                    for sql, params in (self._encode(op) for op in batch):
                        self._conn.execute(sql, params)
                    done += len(batch)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return done

    def reencode(
        self,
        new_codec: PayloadCodec,
        *,
        batch_rows: int | None = None,
        extra_ops: Sequence[Op] = (),
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Rewrite every payload and vector with ``new_codec``; returns the rows rewritten.

        With ``batch_rows=None`` the whole store is rewritten in ONE transaction together with
        ``extra_ops`` (a key rotation: either every record is under the new key or none is).
        With a batch size, each batch commits on its own (an in-place encryption that can resume:
        the old codec must then read both forms). Writers wait on the store lock meanwhile, so a
        write arriving during the rewrite lands afterwards, under the new codec.
        """
        old_codec = self.codec
        done = 0
        with self._lock, map_sqlite_errors():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for table in (*TABLES, *LATER_TABLES):
                    rows = self._conn.execute(
                        f"SELECT grp, key, payload, vector FROM {_checked(table)}"
                    ).fetchall()
                    for grp, key, payload, vector in rows:
                        record_id = f"{grp}/{key}"
                        plain = old_codec.decode(table, record_id, payload)
                        plain_vector = (
                            None
                            if vector is None
                            else old_codec.decode(table + ".vector", record_id, vector)
                        )
                        self._conn.execute(
                            f"UPDATE {table} SET payload = ?, vector = ? WHERE grp = ? AND key = ?",
                            (
                                new_codec.encode(table, record_id, plain),
                                None
                                if plain_vector is None
                                else new_codec.encode(table + ".vector", record_id, plain_vector),
                                grp,
                                key,
                            ),
                        )
                        done += 1
                        if batch_rows is not None and done % batch_rows == 0:
                            self._conn.execute("COMMIT")
                            self._conn.execute("BEGIN IMMEDIATE")
                        if progress is not None and done % PROGRESS_EVERY == 0:
                            progress(done)
                meta = self._conn.execute("SELECT key, value FROM meta").fetchall()
                for key, value in meta:
                    if key.startswith(PLAIN_META_PREFIX):
                        continue
                    plain = old_codec.decode("meta", key, value)
                    self._conn.execute(
                        "UPDATE meta SET value = ? WHERE key = ?",
                        (new_codec.encode("meta", key, plain), key),
                    )
                    done += 1
                self.codec = new_codec
                for sql, params in (self._encode(op) for op in extra_ops):
                    self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
            except BaseException:
                self.codec = old_codec
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
        if progress is not None:
            progress(done)
        return done

    def scrub(self) -> None:
        """Overwrite freed pages and fold the WAL back, so no old page image stays on disk."""
        with self._lock, map_sqlite_errors():
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def describe(self) -> str:
        return f"sqlite {self.path}"

    def disk_usage(self) -> dict[str, int]:
        """The database file and its WAL and shared-memory files, in bytes."""
        parts = {
            "database": self.path,
            "wal": self.path.with_name(self.path.name + "-wal"),
            "shm": self.path.with_name(self.path.name + "-shm"),
        }
        sizes = {name: path.stat().st_size if path.exists() else 0 for name, path in parts.items()}
        return {**sizes, "total": sum(sizes.values())}

    def compact(self, *, force: bool = False) -> dict[str, Any]:
        """Checkpoint the WAL into the database file and truncate it; ``VACUUM`` when pages are
        free (or ``force``). Writers wait on the store lock meanwhile."""
        before = self.disk_usage()
        with self._lock, map_sqlite_errors():
            free_before = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            vacuumed = force or free_before > 0
            if vacuumed:
                self._conn.execute("VACUUM")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            free_after = int(self._conn.execute("PRAGMA freelist_count").fetchone()[0])
            page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        after = self.disk_usage()
        return {
            "backend": "sqlite",
            "bytes_before": before["total"],
            "bytes_after": after["total"],
            "bytes_reclaimed": max(0, before["total"] - after["total"]),
            "wal_bytes_before": before["wal"],
            "wal_bytes_after": after["wal"],
            "free_pages_before": free_before,
            "free_pages_after": free_after,
            "page_size": page_size,
            "vacuumed": vacuumed,
        }

    def close(self) -> None:
        with self._lock, map_sqlite_errors():
            self._conn.close()
