"""Reading the change log (``ChangeLog`` in ``storage/base.py``) and listening for wake-ups.

The records are written by ``PostgresStore`` in each write's own transaction (``store.py``);
this module only reads them, prunes old ones and listens on the ``dakera_changes`` channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool

from dakera_server.storage.base import Change, ChangeListener, ChangeLog, ChangeNotice
from dakera_server.storage.postgres.connect import connect_direct
from dakera_server.storage.postgres.errors import map_postgres_errors

__all__ = ["CHANNEL", "PostgresChangeListener", "PostgresChangeLog"]

CHANNEL = "dakera_changes"
_COLUMNS = "grp, seq, ord, tbl, row_grp, key, op"


def _change(row: tuple[Any, ...]) -> Change:
    grp, seq, ordinal, table, row_group, key, op = row
    return Change(str(grp), int(seq), int(ordinal), str(table), str(row_group), str(key), op)


class PostgresChangeLog(ChangeLog):
    """The change log of one PostgreSQL store, read through the store's pool."""

    def __init__(self, pool: ConnectionPool, url: str) -> None:
        self._pool = pool
        self._url = url

    def _fetch(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with map_postgres_errors(), self._pool.connection() as conn:
            rows = conn.execute(sql, params).fetchall()
            conn.rollback()
        return rows

    def head(self, group: str) -> int:
        rows = self._fetch("SELECT seq FROM dakera.change_heads WHERE grp = %s", (group,))
        return int(rows[0][0]) if rows else 0

    def heads(self, groups: Sequence[str]) -> dict[str, int]:
        wanted = list(groups)
        found = {
            str(grp): int(seq)
            for grp, seq in self._fetch(
                "SELECT grp, seq FROM dakera.change_heads WHERE grp = ANY(%s::text[])", (wanted,)
            )
        }
        return {group: found.get(group, 0) for group in wanted}

    def heads_all(self, prefix: str = "") -> dict[str, int]:
        rows = self._fetch(
            "SELECT grp, seq FROM dakera.change_heads WHERE starts_with(grp, %s)", (prefix,)
        )
        return {str(grp): int(seq) for grp, seq in rows}

    def changes_after(self, group: str, seq: int, *, limit: int = 10_000) -> list[Change] | None:
        # Changes first, horizon second: a prune committing in between makes the answer None
        # (a needless reload), never a silent hole.
        with map_postgres_errors(), self._pool.connection() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM dakera.changes WHERE grp = %s AND seq > %s "
                "ORDER BY seq, ord LIMIT %s",
                (group, seq, limit + 1),
            ).fetchall()
            horizon = conn.execute("SELECT seq FROM dakera.change_horizon").fetchone()
            if len(rows) > limit:
                cut = int(rows[limit][1])
                rows = [row for row in rows if int(row[1]) < cut]
                if not rows:  # one transaction larger than the limit: return it whole
                    rows = conn.execute(
                        f"SELECT {_COLUMNS} FROM dakera.changes WHERE grp = %s AND seq = %s "
                        "ORDER BY ord",
                        (group, cut),
                    ).fetchall()
            conn.rollback()
        if horizon is not None and seq < int(horizon[0]):
            return None
        return [_change(row) for row in rows]

    def latest(self) -> int:
        rows = self._fetch("SELECT coalesce(max(seq), 0) FROM dakera.change_heads", ())
        return int(rows[0][0])

    def changes_since(self, seq: int, *, limit: int = 10_000) -> list[Change]:
        rows = self._fetch(
            f"SELECT {_COLUMNS} FROM dakera.changes WHERE seq > %s ORDER BY seq, grp, ord LIMIT %s",
            (seq, limit),
        )
        return [_change(row) for row in rows]

    def prune(self, up_to_seq: int) -> int:
        with map_postgres_errors(), self._pool.connection() as conn:
            deleted = conn.execute(
                "DELETE FROM dakera.changes WHERE seq <= %s", (up_to_seq,)
            ).rowcount
            conn.execute("UPDATE dakera.change_horizon SET seq = greatest(seq, %s)", (up_to_seq,))
            conn.commit()
        return int(deleted)

    def listen(self) -> PostgresChangeListener:
        return PostgresChangeListener(self._url)


class PostgresChangeListener(ChangeListener):
    """``LISTEN dakera_changes`` on a connection of its own (outside the pool)."""

    def __init__(self, url: str) -> None:
        self._conn: psycopg.Connection[Any] = connect_direct(url, autocommit=True)
        with map_postgres_errors():
            self._conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> list[ChangeNotice]:
        notices = []
        with map_postgres_errors():
            for notify in self._conn.notifies(timeout=timeout, stop_after=1):
                body = orjson.loads(notify.payload)
                notices.append(ChangeNotice(str(body["group"]), int(body["seq"])))
        return notices

    def close(self) -> None:
        self._conn.close()
