"""The business-event log in the store's PostgreSQL database (``dakera.audit_events``).

Same contract as ``SqliteEventLog`` (``storage/eventlog.py``), with two differences that come
from sharing the store's database: the payloads follow the store's codec (a rotation re-encodes
them inside the store's own ``reencode`` transaction, so ``stage_reencode`` and
``apply_staged`` have nothing to do), and every append and read runs through the store's
``begin_access`` (the codec lock and key check), like the store's own writes.

Event ids come in blocks reserved in the database (``reserve_ids``: a counter row in ``meta``,
moved under its row lock, never below the highest stored id), so two nodes never number two
events alike; within a node they increase, across nodes they interleave by block.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from dakera_server.storage.base import CurrentCodec, PayloadCodec
from dakera_server.storage.eventlog import EventFilter, EventLog, EventRow
from dakera_server.storage.postgres.store import PostgresStore

__all__ = ["PostgresEventLog"]

TABLE = "audit_events"
ID_COUNTER = "plain:event_ids_reserved"  # plain: never sealed (storage/postgres/reencode.py)
# The highest id reserved so far moves up by ``n`` under the row's lock; the first reservation
# (or one after ids were stored without it) starts above the highest stored id.
_STORED_MAX = "(SELECT coalesce(max(id), 0) FROM dakera.audit_events)"
RESERVE = f"""INSERT INTO dakera.meta AS m (key, value)
VALUES (%(key)s, convert_to(({_STORED_MAX} + %(n)s)::text, 'UTF8'))
ON CONFLICT (key) DO UPDATE SET value = convert_to(
    (greatest(convert_from(m.value, 'UTF8')::bigint, {_STORED_MAX}) + %(n)s)::text, 'UTF8')
RETURNING convert_from(value, 'UTF8')::bigint"""


class PostgresEventLog(EventLog):
    """Event rows in ``dakera.audit_events``, written through ``store``'s pool and codec."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._lock = threading.RLock()
        self.codec = CurrentCodec(store)  # always the store's: a rotation switches both

    def last_id(self) -> int:
        rows, _ = self._store.select_rows(
            "SELECT coalesce(max(id), 0) FROM dakera.audit_events", (), checked=False
        )
        return int(rows[0][0])

    shared = True

    def reserve_ids(self, count: int) -> int:
        def work(conn: psycopg.Connection[Any], codec: PayloadCodec) -> Callable[[], int]:
            cursor = conn.cursor()
            cursor.execute(RESERVE, {"key": ID_COUNTER, "n": count})
            return lambda: int(cursor.fetchone()[0]) - count + 1  # type: ignore[index]

        return self._store.run(work, checked=False)

    def append(self, rows: Sequence[EventRow]) -> None:
        if not rows:
            return

        def work(conn: psycopg.Connection[Any], codec: PayloadCodec) -> Callable[[], None]:
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO dakera.audit_events "
                    "(id, ts, event_type, agent_id, namespace, payload) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                    [
                        (
                            row.id,
                            row.timestamp,
                            row.event_type,
                            row.agent_id,
                            row.namespace,
                            codec.encode(TABLE, str(row.id), row.payload),
                        )
                        for row in rows
                    ],
                )
            return lambda: None

        with self._lock:
            self._store.run(work, checked=True)

    def page(self, where: EventFilter, limit: int) -> list[EventRow]:
        clause, params = where.where("%s")
        sql = (
            "SELECT id, ts, event_type, agent_id, namespace, payload FROM dakera.audit_events"
            + clause
        )
        sql += " ORDER BY id DESC LIMIT %s"
        params.append(limit)
        found, codec = self._store.select_rows(sql, tuple(params))
        return [
            EventRow(
                int(event_id),
                int(ts),
                str(kind),
                agent,
                namespace,
                codec.decode(TABLE, str(event_id), bytes(payload)),
            )
            for event_id, ts, kind, agent, namespace, payload in found
        ]

    def count(self) -> int:
        rows, _ = self._store.select_rows(
            "SELECT count(*) FROM dakera.audit_events", (), checked=False
        )
        return int(rows[0][0])

    def hold(self) -> threading.RLock:
        return self._lock

    def stage_reencode(self, new_codec: PayloadCodec) -> int:
        """Nothing to stage: the store's ``reencode`` rewrites the events in its transaction
        (and counts them)."""
        return 0

    def apply_staged(self, new_codec: PayloadCodec) -> None:
        """Nothing to apply: the log reads the store's codec, which the rotation switched."""

    def close(self) -> None:
        """The pool belongs to the store, which closes it."""
