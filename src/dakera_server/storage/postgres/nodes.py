"""What nodes sharing one PostgreSQL store know of each other: heartbeats and advisory locks.

* Heartbeats: one ``plain:node:<id>`` row of ``meta`` per node, written with the database's
  clock (every node judges ages by that one clock), outside the change log (no follower reloads
  anything for it) and never sealed (no secret in it).
* ``exclusive(name)``: a session-level advisory lock (class ``LOCK_CLASS``, object from
  ``pass_lock_id``) on a connection of its own, held for the block. PostgreSQL releases it when
  that connection ends, so a node killed mid-pass leaves the work to the next taker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import orjson
import psycopg

from dakera_server.errors import Unavailable
from dakera_server.storage.base import PayloadCodec
from dakera_server.storage.postgres.connect import LOCK_CLASS, connect_direct, pass_lock_id
from dakera_server.storage.postgres.errors import map_postgres_errors
from dakera_server.storage.postgres.reencode import PLAIN_META_PREFIX

_T = TypeVar("_T")


class PostgresStore(Protocol):
    """What this module uses of ``store.PostgresStore`` (no import: store.py imports us)."""

    def run(
        self,
        work: Callable[[psycopg.Connection[Any], PayloadCodec], Callable[[], _T]],
        *,
        checked: bool,
    ) -> _T: ...

    def select_rows(
        self, sql: str, params: tuple[Any, ...], *, checked: bool = True
    ) -> tuple[list[tuple[Any, ...]], PayloadCodec]: ...


__all__ = ["NODE_PREFIX", "exclusive", "forget", "heartbeat", "read"]

NODE_PREFIX = PLAIN_META_PREFIX + "node:"
HEARTBEAT = """INSERT INTO dakera.meta (key, value) VALUES (%s, convert_to(
    (%s::jsonb || jsonb_build_object('beat', extract(epoch FROM clock_timestamp())))::text,
    'UTF8'))
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"""


def _execute(store: PostgresStore, sql: str, params: tuple[Any, ...]) -> None:
    def work(conn: psycopg.Connection[Any], codec: PayloadCodec) -> Callable[[], None]:
        conn.execute(sql, params)
        return lambda: None

    store.run(work, checked=False)


def heartbeat(store: PostgresStore, node_id: str, info: dict[str, Any]) -> None:
    """Record that ``node_id`` is alive now, with ``info`` about it."""
    body = orjson.dumps({k: v for k, v in info.items() if k != "beat"}).decode()
    _execute(store, HEARTBEAT, (NODE_PREFIX + node_id, body))


def read(store: PostgresStore) -> list[dict[str, Any]]:
    """Every node's last heartbeat: its info, ``node_id`` and ``age_seconds``."""
    rows, _ = store.select_rows(
        "SELECT key, convert_from(value, 'UTF8'), "
        "extract(epoch FROM clock_timestamp())::float8 FROM dakera.meta "
        "WHERE starts_with(key, %s)",
        (NODE_PREFIX,),
        checked=False,
    )
    found = []
    for key, text, now in rows:
        info = orjson.loads(text)
        beat = float(info.pop("beat", 0.0))
        found.append(
            {**info, "node_id": key[len(NODE_PREFIX) :], "age_seconds": max(0.0, now - beat)}
        )
    return sorted(found, key=lambda n: str(n["node_id"]))


def forget(store: PostgresStore, node_id: str) -> None:
    """Drop a node's heartbeat row."""
    _execute(store, "DELETE FROM dakera.meta WHERE key = %s", (NODE_PREFIX + node_id,))


@contextmanager
def exclusive(url: str, name: str) -> Iterator[bool]:
    """Whether this process holds background work ``name`` for the block (False when another
    holds it, or the store is unreachable: nobody runs it now)."""
    try:
        conn = connect_direct(url, autocommit=True)
    except Unavailable:
        yield False
        return
    try:
        with map_postgres_errors():
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, pass_lock_id(name))
            ).fetchone()
        yield bool(row and row[0])
    finally:
        conn.close()  # ends the session: the lock goes with it
