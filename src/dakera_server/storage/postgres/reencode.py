"""Re-encoding every payload of a PostgreSQL store under another codec (``Store.reencode``).

Pages through each table by primary key (so memory stays flat at any size), decodes with the
old codec and seals with the new one, in one transaction or one per ``batch_rows`` rows. Each
transaction holds the codec advisory lock exclusively and moves ``dakera.codec_state`` to the
new fingerprint, so every node's reads and writes wait for it and then check their key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from dakera_server.storage.base import PayloadCodec
from dakera_server.storage.postgres.connect import LOCK_CLASS, LOCK_CODEC
from dakera_server.storage.postgres.schema import DATA_TABLES

__all__ = ["PLAIN_META_PREFIX", "Reencoding"]

PLAIN_META_PREFIX = "plain:"
PROGRESS_EVERY = 2000
PAGE_ROWS = 1000


class Reencoding:
    """One ``reencode`` run: pages through every table, rewriting payloads, committing every
    ``batch_rows`` rows when asked to (each transaction retakes the exclusive lock)."""

    def __init__(
        self,
        old: PayloadCodec,
        new: PayloadCodec,
        batch_rows: int | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.old, self.new = old, new
        self.batch_rows = batch_rows
        self.progress = progress
        self.done = 0
        self._since_commit = 0

    def begin(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, LOCK_CODEC))
        conn.execute("UPDATE dakera.codec_state SET fingerprint = %s", (self.new.fingerprint,))

    def _count(self, conn: psycopg.Connection[Any], rows: int) -> None:
        before = self.done
        self.done += rows
        self._since_commit += rows
        if self.progress is not None and before // PROGRESS_EVERY != self.done // PROGRESS_EVERY:
            self.progress(self.done)
        if self.batch_rows is not None and self._since_commit >= self.batch_rows:
            conn.commit()
            self._since_commit = 0
            self.begin(conn)

    def rewrite_all(self, conn: psycopg.Connection[Any]) -> None:
        """Every record table, the encoded meta rows and the business-event log."""
        for table in DATA_TABLES:
            self.rewrite_table(conn, table)
        self.rewrite_meta(conn)
        self.rewrite_events(conn)

    def rewrite_table(self, conn: psycopg.Connection[Any], table: str) -> None:
        after: tuple[str, str] | None = None
        while True:
            where = "" if after is None else "WHERE (grp, key) > (%s, %s) "
            rows = conn.execute(
                f"SELECT grp, key, payload, vector FROM dakera.{table} {where}"
                "ORDER BY grp, key LIMIT %s",
                (*(after or ()), PAGE_ROWS),
                binary=True,
            ).fetchall()
            if not rows:
                return
            updates = []
            for grp, key, payload, vector in rows:
                record_id = f"{grp}/{key}"
                plain = self.old.decode(table, record_id, bytes(payload))
                sealed_vector = None
                if vector is not None:
                    plain_vector = self.old.decode(table + ".vector", record_id, bytes(vector))
                    sealed_vector = self.new.encode(table + ".vector", record_id, plain_vector)
                updates.append((self.new.encode(table, record_id, plain), sealed_vector, grp, key))
            with conn.cursor() as cursor:
                cursor.executemany(
                    f"UPDATE dakera.{table} SET payload = %s, vector = %s "
                    "WHERE grp = %s AND key = %s",
                    updates,
                )
            after = (rows[-1][0], rows[-1][1])
            self._count(conn, len(rows))

    def rewrite_meta(self, conn: psycopg.Connection[Any]) -> None:
        rows = conn.execute(
            "SELECT key, value FROM dakera.meta WHERE NOT starts_with(key, %s)",
            (PLAIN_META_PREFIX,),
            binary=True,
        ).fetchall()
        updates = [
            (self.new.encode("meta", key, self.old.decode("meta", key, bytes(value))), key)
            for key, value in rows
        ]
        with conn.cursor() as cursor:
            cursor.executemany("UPDATE dakera.meta SET value = %s WHERE key = %s", updates)
        self._count(conn, len(rows))

    def rewrite_events(self, conn: psycopg.Connection[Any]) -> None:
        # The business-event log lives in the same database: its payloads follow the same key
        # in the same transaction (storage/postgres/eventlog.py).
        after = -1
        while True:
            rows = conn.execute(
                "SELECT id, payload FROM dakera.audit_events WHERE id > %s ORDER BY id LIMIT %s",
                (after, PAGE_ROWS),
                binary=True,
            ).fetchall()
            if not rows:
                return
            updates = [
                (
                    self.new.encode(
                        "audit_events",
                        str(event_id),
                        self.old.decode("audit_events", str(event_id), bytes(payload)),
                    ),
                    event_id,
                )
                for event_id, payload in rows
            ]
            with conn.cursor() as cursor:
                cursor.executemany(
                    "UPDATE dakera.audit_events SET payload = %s WHERE id = %s", updates
                )
            after = int(rows[-1][0])
            self._count(conn, len(rows))
