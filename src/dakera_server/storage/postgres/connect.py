"""Connections to PostgreSQL: the pool every store call borrows from, and the URL described
without its password.

The URL may carry a password, so it is never logged or shown: ``describe_url`` gives
``postgresql user@host:port/dbname`` for logs and status, and errors name the server the same
way.

Pool choices (psycopg_pool): a connection that sat idle in the pool for more than
``CHECK_IDLE_SECONDS`` is checked with an empty query when it is borrowed, so the connections
that died with a restarted PostgreSQL are dropped and replaced instead of failing a request
each (one used moments ago is not: the check's round trip added 0.8 ms to a 10 ms commit at p50
under load, docs/benchmarks.md; a connection that died since fails its call with a 503, once,
and is replaced); a borrower waits at most ``ACQUIRE_TIMEOUT`` seconds for a connection
(PostgreSQL down: the request answers 503 after that wait rather than hanging); the pool keeps
reconnecting in the background with exponential backoff, so nothing needs a restart when the
database is back.
"""

from __future__ import annotations

import logging
import time
import weakref
import zlib
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from dakera_server.errors import ConfigError, Unavailable
from dakera_server.storage.postgres.errors import map_postgres_errors

__all__ = [
    "ACQUIRE_TIMEOUT",
    "LOCK_CLASS",
    "LOCK_CODEC",
    "LOCK_MIGRATE",
    "PASS_LOCKS",
    "connect_direct",
    "describe_url",
    "open_pool",
    "pass_lock_id",
]

logger = logging.getLogger("dakera_server.storage.postgres")

# Advisory lock keys (two-int form): a class of our own, then one object per purpose.
LOCK_CLASS = 0x64616B65  # "dake"
LOCK_MIGRATE = 1  # schema migrations at start-up: one node at a time
LOCK_CODEC = 2  # shared by every read and write, exclusive while a rotation re-encodes
# Background work done by one node at a time (``PostgresStore.exclusive``): objects 16 and up.
PASS_LOCKS = {
    "decay": 16,
    "ttl_sweep": 17,
    "dedup": 18,
    "consolidation": 19,
    "compression": 20,
    "resume": 21,
}


def pass_lock_id(name: str) -> int:
    """The advisory-lock object of background work ``name`` (a stable number from 16 up)."""
    known = PASS_LOCKS.get(name)
    return known if known is not None else 1000 + zlib.crc32(name.encode("utf-8")) % 1_000_000


POOL_MIN = 2
# Per process. A store call holds a connection for one pipelined round trip plus the commit, so
# a few cover the request threads; 10 per node keeps a handful of nodes well under PostgreSQL's
# default max_connections of 100.
POOL_MAX = 10
ACQUIRE_TIMEOUT = 3.0
CHECK_IDLE_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 5
OPEN_TIMEOUT = 10.0


def describe_url(url: str) -> str:
    """``postgresql user@host:port/dbname``: where the store is, without the password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql (unparsable URL)"
    user = parts.get("user") or ""
    host = parts.get("host") or "localhost"
    port = parts.get("port") or "5432"
    dbname = parts.get("dbname") or user
    return f"postgresql {user}{'@' if user else ''}{host}:{port}/{dbname}"


def _connection_kwargs(url: str) -> dict[str, Any]:
    """Defaults the URL may override: a connect timeout and our application name."""
    try:
        given = conninfo_to_dict(url)
    except psycopg.Error:
        raise ConfigError(
            "DAKERA_STORAGE_URL could not be parsed as a PostgreSQL URL (the value is not "
            "shown: it may hold a password). Use postgresql://user:password@host:5432/dbname."
        ) from None
    extra: dict[str, Any] = {}
    if "connect_timeout" not in given:
        extra["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    if "application_name" not in given:
        extra["application_name"] = "dakera-server"
    return extra


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Every new connection: make commits durable even if the server default says otherwise.

    ``synchronous_commit=off`` acknowledges commits before their WAL reaches disk, which would
    break "a 2xx is durable"; any other value (on, local, remote_write, remote_apply) keeps at
    least local durability and is left as the operator set it.
    """
    conn.autocommit = True
    try:
        found = conn.execute("SHOW synchronous_commit").fetchone()
        if found is not None and found[0] == "off":
            conn.execute("SET synchronous_commit = on")
    finally:
        conn.autocommit = False


_returned_at: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = (
    weakref.WeakKeyDictionary()
)


def _stamp(conn: psycopg.Connection[Any]) -> None:
    """Pool ``reset`` hook: remember when the connection came back."""
    _returned_at[conn] = time.monotonic()


def _check_if_idle(conn: psycopg.Connection[Any]) -> None:
    """Pool ``check`` hook: an empty query, unless the connection was in use moments ago."""
    returned = _returned_at.get(conn)
    if returned is not None and time.monotonic() - returned < CHECK_IDLE_SECONDS:
        return
    ConnectionPool.check_connection(conn)


def open_pool(url: str) -> ConnectionPool:
    """An open pool on ``url``; ``Unavailable`` naming the server when it cannot connect."""
    where = describe_url(url)
    pool: ConnectionPool = ConnectionPool(
        url,
        kwargs=_connection_kwargs(url),
        min_size=POOL_MIN,
        max_size=POOL_MAX,
        open=False,
        configure=_configure,
        check=_check_if_idle,
        reset=_stamp,
        timeout=ACQUIRE_TIMEOUT,
        name="dakera",
    )
    try:
        with map_postgres_errors():
            pool.open(wait=True, timeout=OPEN_TIMEOUT)
    except Unavailable:
        pool.close()
        raise Unavailable(f"cannot reach {where} (is it running, and the URL right?)") from None
    with pool.connection() as conn, map_postgres_errors():
        fsync = conn.execute("SHOW fsync").fetchone()
        conn.rollback()
    if fsync is not None and fsync[0] == "off":
        logger.warning(
            "%s runs with fsync=off: a write acknowledged by this server can be lost if "
            "PostgreSQL or its machine crashes",
            where,
        )
    return pool


def connect_direct(url: str, *, autocommit: bool) -> psycopg.Connection[Any]:
    """A connection outside the pool (LISTEN, VACUUM): the caller closes it."""
    with map_postgres_errors():
        return psycopg.connect(url, autocommit=autocommit, **_connection_kwargs(url))
