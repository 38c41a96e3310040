"""``PostgresStore``: the ``Store`` contract on PostgreSQL, with the change log written alongside.

One write is one transaction, sent as one pipeline (a single round trip plus the commit):

1. ``dakera.begin_access(fingerprint, checked)``: the codec lock, shared, and the key check;
2. the change heads of the batch's groups, bumped in sorted order (row locks: writers of one
   group serialize from here to their commit, so each group's numbers follow commit order, and
   sorted locking cannot deadlock);
3. the operations, in batch order;
4. one change record per operation, numbered with its group's new head;
5. ``pg_notify('dakera_changes', {"group", "seq"})`` per group (delivered at commit only);
6. ``COMMIT``: with ``synchronous_commit`` at least ``local`` (``connect.py``), it returns after
   the WAL is flushed, so the call returns only once the write is durable.

Any failure before the commit rolls everything back (all or nothing). A connection lost
*during* the commit is reported as ``Unavailable`` although the commit may have happened: the
client was not told "done", so nothing acknowledged is lost, but a retried write may find its
first attempt applied (puts and deletes are idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from dakera_server.errors import StorageError
from dakera_server.storage.base import (
    GroupCommit,
    IdentityCodec,
    Op,
    PayloadCodec,
    Store,
    StoredRow,
    StoreSnapshot,
    Table,
    change_group,
)
from dakera_server.storage.postgres import nodes
from dakera_server.storage.postgres.changes import CHANNEL, PostgresChangeLog
from dakera_server.storage.postgres.connect import connect_direct, describe_url, open_pool
from dakera_server.storage.postgres.errors import CodecChanged, map_postgres_errors
from dakera_server.storage.postgres.reencode import PLAIN_META_PREFIX, Reencoding
from dakera_server.storage.postgres.rows import (
    META_SELECT,
    checked_table,
    decode_meta,
    decode_row,
    table_query,
)
from dakera_server.storage.postgres.schema import DATA_TABLES, migrate, schema_version
from dakera_server.storage.postgres.snapshot import open_snapshot, write_stream

__all__ = ["PostgresStore"]

_T = TypeVar("_T")
# A local rotation swaps the codec while writers wait on its lock: they retry with the new one.
CODEC_ATTEMPTS = 3

BEGIN_ACCESS = "SELECT dakera.begin_access(%s, %s)"
BUMP_HEADS = """INSERT INTO dakera.change_heads AS h (grp, seq, prev)
SELECT g, nextval('dakera.change_seq'), 0 FROM unnest(%s::text[]) AS g ORDER BY g
ON CONFLICT (grp) DO UPDATE SET prev = h.seq, seq = nextval('dakera.change_seq')
RETURNING grp, prev, seq"""
RECORD_CHANGES = """INSERT INTO dakera.changes (grp, seq, ord, tbl, row_grp, key, op)
SELECT c.grp, h.seq, c.ord, c.tbl, c.row_grp, c.key, c.op
FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[])
    AS c(grp, ord, tbl, row_grp, key, op)
JOIN dakera.change_heads AS h ON h.grp = c.grp"""
NOTIFY = f"""SELECT pg_notify('{CHANNEL}', json_build_object('group', grp, 'seq', seq)::text)
FROM dakera.change_heads WHERE grp = ANY(%s::text[])"""
META_PUT = (
    "INSERT INTO dakera.meta (key, value) VALUES (%s, %s) "
    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
)
META_INSERT = "INSERT INTO dakera.meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING"
# Op kinds that write a row (put replaces, insert keeps an existing one, update needs one).
_WRITES = ("put", "insert", "update")
_IDENTITY = IdentityCodec()


def _is_plain_meta(op: Op) -> bool:
    return op.row.table == "meta" and op.row.key.startswith(PLAIN_META_PREFIX)


class PostgresStore(Store):
    """Records in a PostgreSQL database shared by every node (``DAKERA_STORAGE_URL``)."""

    def __init__(self, url: str, codec: PayloadCodec | None = None) -> None:
        self._url = url
        self.codec = codec or IdentityCodec()
        self._pool: ConnectionPool = open_pool(url)
        try:
            with self._pool.connection() as conn:
                migrate(conn)
        except BaseException:
            self._pool.close()
            raise
        self._changes = PostgresChangeLog(self._pool, url)
        # Called with each committed write's receipts (the node's follower moves its cursors).
        self.on_commit: list[Callable[[Iterable[GroupCommit]], None]] = []

    # ------------------------------------------------------------------ plumbing
    @property
    def pool(self) -> ConnectionPool:
        """The connection pool (the event log and the change log borrow from it too)."""
        return self._pool

    @property
    def schema_version(self) -> int:
        """The schema version in the database."""
        with self._pool.connection() as conn:
            version = schema_version(conn)
            conn.rollback()
        return version

    def run(
        self,
        work: Callable[[psycopg.Connection[Any], PayloadCodec], Callable[[], _T]],
        *,
        checked: bool,
    ) -> _T:
        """Run ``work`` in one transaction opened by ``begin_access``, pipelined, and committed.

        ``work`` queues its statements with the codec it is given and returns a function that
        reads their results after the commit. ``checked`` asks the database to refuse a codec
        other than the one its rows are sealed under; when a rotation in this process swapped
        the codec meanwhile, the work is redone with the new one.
        """
        for attempt in range(CODEC_ATTEMPTS):
            codec = self.codec
            try:
                with map_postgres_errors(), self._pool.connection() as conn:
                    with conn.pipeline():
                        conn.execute(BEGIN_ACCESS, (codec.fingerprint, checked))
                        finish = work(conn, codec)
                        conn.commit()
                    if conn.info.transaction_status != TransactionStatus.IDLE:
                        # Never report success for a transaction that did not end in COMMIT.
                        raise StorageError("the transaction did not commit")
                    return finish()
            except CodecChanged:
                if self.codec is codec or attempt + 1 == CODEC_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ writes
    def write(self, ops: Sequence[Op]) -> None:
        self.commit(ops)

    def commit(self, ops: Sequence[Op]) -> dict[str, GroupCommit]:
        """``write`` that also tells, per change group, which change number it committed."""
        if not ops:
            return {}
        for op in ops:
            checked_table(op.row.table)
        checked = not all(_is_plain_meta(op) for op in ops)
        receipts = self.run(lambda conn, codec: self._queue_ops(conn, codec, ops), checked=checked)
        for hook in self.on_commit:
            hook(receipts.values())
        return receipts

    def _queue_ops(
        self, conn: psycopg.Connection[Any], codec: PayloadCodec, ops: Sequence[Op]
    ) -> Callable[[], dict[str, GroupCommit]]:
        """Queue the head bumps, operations, change records and notifications of ``ops``."""
        groups = [change_group(op.row.table, op.row.group, op.row.key) for op in ops]
        distinct = sorted(set(groups))
        heads = conn.cursor()
        heads.execute(BUMP_HEADS, (distinct,))
        cursor = conn.cursor()
        run_sql: str | None = None
        run_params: list[tuple[Any, ...]] = []
        for op in ops:
            sql, params = self._statement(op, codec)
            if sql != run_sql and run_params:
                cursor.executemany(run_sql, run_params)  # type: ignore[arg-type]
                run_params = []
            run_sql = sql
            run_params.append(params)
        if run_params:
            cursor.executemany(run_sql, run_params)  # type: ignore[arg-type]
        cursor.execute(
            RECORD_CHANGES,
            (
                groups,
                list(range(len(ops))),
                [op.row.table for op in ops],
                [op.row.group for op in ops],
                [op.row.key for op in ops],
                # Followers reload the row a change names, whatever wrote it.
                ["put" if op.kind in _WRITES else op.kind for op in ops],
            ),
        )
        cursor.execute(NOTIFY, (distinct,))

        def receipt() -> dict[str, GroupCommit]:
            return {
                str(group): GroupCommit(str(group), int(prev), int(seq))
                for group, prev, seq in heads.fetchall()
            }

        return receipt

    def _statement(self, op: Op, codec: PayloadCodec) -> tuple[str, tuple[Any, ...]]:
        row = op.row
        table = checked_table(row.table)
        if table == "meta":
            if op.kind in _WRITES:
                meta_codec = _IDENTITY if _is_plain_meta(op) else codec
                value = meta_codec.encode("meta", row.key, row.payload)
                if op.kind == "update":
                    return "UPDATE dakera.meta SET value = %s WHERE key = %s", (value, row.key)
                return META_INSERT if op.kind == "insert" else META_PUT, (row.key, value)
            return "DELETE FROM dakera.meta WHERE key = %s", (row.key,)  # as SQLite does
        if op.kind in _WRITES:
            record_id = f"{row.group}/{row.key}"
            vector = (
                None
                if row.vector is None
                else codec.encode(table + ".vector", record_id, row.vector)
            )
            payload = codec.encode(table, record_id, row.payload)
            if op.kind == "update":
                return (
                    f"UPDATE dakera.{table} SET payload = %s, vector = %s "
                    "WHERE grp = %s AND key = %s",
                    (payload, vector, row.group, row.key),
                )
            conflict = (
                "DO NOTHING"
                if op.kind == "insert"
                else "DO UPDATE SET payload = EXCLUDED.payload, vector = EXCLUDED.vector"
            )
            return (
                f"INSERT INTO dakera.{table} (grp, key, payload, vector) VALUES (%s, %s, %s, %s) "
                f"ON CONFLICT (grp, key) {conflict}",
                (row.group, row.key, payload, vector),
            )
        if op.kind == "delete":
            return f"DELETE FROM dakera.{table} WHERE grp = %s AND key = %s", (row.group, row.key)
        return f"DELETE FROM dakera.{table} WHERE grp = %s", (row.group,)

    # ------------------------------------------------------------------ reads
    def select_rows(
        self, sql: str, params: tuple[Any, ...], *, checked: bool = True
    ) -> tuple[list[tuple[Any, ...]], PayloadCodec]:
        """Rows of one query, with the codec that was current (and checked) when it ran."""

        def work(
            conn: psycopg.Connection[Any], codec: PayloadCodec
        ) -> Callable[[], tuple[list[tuple[Any, ...]], PayloadCodec]]:
            cursor = conn.cursor(binary=True)
            cursor.execute(sql, params)
            return lambda: (cursor.fetchall(), codec)

        return self.run(work, checked=checked)

    def iter_rows(self, table: Table, group: str | None = None) -> Iterator[StoredRow]:
        if table == "meta":
            rows, codec = self.select_rows(META_SELECT, ())
            for key, value in rows:
                yield decode_meta(codec, key, value)
            return
        rows, codec = self.select_rows(*table_query("grp, key, payload, vector", table, group))
        for grp, key, payload, vector in rows:
            yield decode_row(codec, table, grp, key, payload, vector)

    def get_row(self, table: Table, key: str, group: str = "") -> StoredRow | None:
        if table == "meta":
            plain = key.startswith(PLAIN_META_PREFIX)
            rows, codec = self.select_rows(
                "SELECT value FROM dakera.meta WHERE key = %s", (key,), checked=not plain
            )
            return None if not rows else decode_meta(codec, key, rows[0][0])
        sql, params = table_query("payload, vector", table, group)
        rows, codec = self.select_rows(sql + " AND key = %s", (*params, key))
        return None if not rows else decode_row(codec, table, group, key, *rows[0])

    def get_rows(self, table: Table, keys: Sequence[str], group: str) -> dict[str, StoredRow]:
        """See ``Store.get_rows``: one ``key = ANY(...)`` query."""
        if not keys:
            return {}
        sql, params = table_query("key, payload, vector", table, group)
        rows, codec = self.select_rows(sql + " AND key = ANY(%s)", (*params, list(set(keys))))
        return {key: decode_row(codec, table, group, key, payload, vector)
                for key, payload, vector in rows}  # fmt: skip

    def count(self, table: Table, group: str | None = None) -> int:
        rows, _ = self.select_rows(*table_query("count(*)", table, group), checked=False)
        return int(rows[0][0])

    # ------------------------------------------------------------------ re-encoding
    def reencode(
        self,
        new_codec: PayloadCodec,
        *,
        batch_rows: int | None = None,
        extra_ops: Sequence[Op] = (),
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """See ``Store.reencode``. The codec advisory lock is held exclusively by each
        transaction, so reads and writes of every node wait for it, and ``codec_state`` moves to
        the new fingerprint in the same transaction as the rows."""
        old_codec = self.codec
        job = Reencoding(old_codec, new_codec, batch_rows, progress)
        with map_postgres_errors(), self._pool.connection() as conn:
            try:
                job.begin(conn)
                job.rewrite_all(conn)
                self.codec = new_codec  # writers blocked on the lock wake up to the new codec
                if extra_ops:
                    self._queue_ops(conn, new_codec, extra_ops)
                conn.commit()
            except BaseException:
                self.codec = old_codec
                if not conn.closed:
                    conn.rollback()
                raise
        if progress is not None:
            progress(job.done)
        return job.done

    def scrub(self) -> None:
        """``VACUUM FULL`` of every table holding payloads: rewrites them so dead tuples (the
        plaintext versions an in-place encryption replaced) leave the table files. WAL segments
        and backups taken before keep their copies until PostgreSQL recycles them."""
        tables = ", ".join(f"dakera.{name}" for name in (*DATA_TABLES, "meta", "audit_events"))
        conn = connect_direct(self._url, autocommit=True)
        try:
            with map_postgres_errors():
                conn.execute(f"VACUUM FULL {tables}")
        finally:
            conn.close()

    # ------------------------------------------------------------------ space
    def disk_usage(self) -> dict[str, int]:
        """Bytes of the ``dakera`` schema's tables (with their indexes and TOAST) as PostgreSQL
        reports them: ``records`` (the record tables and meta), ``blobs`` (attachment files),
        ``log`` (change log, event log, bookkeeping). The database's WAL is the server's and
        shared with whatever else it holds, so it is not counted."""
        rows, _ = self.select_rows(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'dakera' AND c.relkind = 'r'",
            (),
            checked=False,
        )
        parts = {"records": 0, "blobs": 0, "log": 0}
        for name, size in rows:
            if name in DATA_TABLES or name == "meta":
                parts["records"] += int(size)
            elif name in ("blobs", "blob_chunks"):
                parts["blobs"] += int(size)
            else:
                parts["log"] += int(size)
        return {**parts, "total": sum(parts.values())}

    def compact(self, *, force: bool = False) -> dict[str, Any]:
        """``VACUUM`` of the schema's tables: dead row versions become reusable space (and
        empty pages at a table's end go back to the file system) without blocking readers or
        writers. ``force`` runs ``VACUUM FULL``, which rewrites each table to its minimal size
        but locks it exclusively meanwhile: every node's requests on it wait."""
        before = self.disk_usage()
        tables = ", ".join(
            f"dakera.{name}"
            for name in (*DATA_TABLES, "meta", "audit_events", "changes", "blobs", "blob_chunks")
        )
        conn = connect_direct(self._url, autocommit=True)  # VACUUM cannot run in a transaction
        try:
            with map_postgres_errors():
                conn.execute(f"VACUUM {'FULL ' if force else ''}{tables}")
        finally:
            conn.close()
        after = self.disk_usage()
        return {
            "backend": "postgresql",
            "bytes_before": before["total"],
            "bytes_after": after["total"],
            "bytes_reclaimed": max(0, before["total"] - after["total"]),
            "vacuumed": True,
            "full": force,
        }

    # ------------------------------------------------------------------ backups
    def snapshot(self) -> AbstractContextManager[StoreSnapshot]:
        """See ``Store.snapshot``: a repeatable-read transaction (``snapshot.py``)."""
        return open_snapshot(self, self._url, BEGIN_ACCESS)

    def write_stream(self, batches: Iterable[Sequence[Op]]) -> int:
        """See ``Store.write_stream``: one transaction, change log included (``snapshot.py``)."""
        return write_stream(self, batches, BEGIN_ACCESS)

    def queue_ops(
        self, conn: psycopg.Connection[Any], codec: PayloadCodec, ops: Sequence[Op]
    ) -> None:
        """Send the statements of ``ops`` (with their change records) on ``conn``'s open
        transaction; the caller commits."""
        self._queue_ops(conn, codec, ops)

    # ------------------------------------------------------------------ nodes (nodes.py)
    def heartbeat(self, node_id: str, info: dict[str, Any]) -> None:
        nodes.heartbeat(self, node_id, info)

    def nodes(self) -> list[dict[str, Any]]:
        return nodes.read(self)

    def forget_node(self, node_id: str) -> None:
        """Drop a node's heartbeat row (a node that left for good)."""
        nodes.forget(self, node_id)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        with nodes.exclusive(self._url, name) as mine:
            yield mine

    # ------------------------------------------------------------------ the rest
    def describe(self) -> str:
        return describe_url(self._url)

    @property
    def change_log(self) -> PostgresChangeLog:
        return self._changes

    def close(self) -> None:
        self._pool.close()
