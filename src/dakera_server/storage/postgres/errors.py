"""psycopg's exceptions translated into the error tree, in one place (STYLE.md habit 8).

    psycopg.Error                        →  StorageError (500), unless below
    ├── IntegrityError                   →  Conflict (409)
    ├── DataError                        →  InvalidInput (400): a value PostgreSQL cannot hold,
    │                                       e.g. a NUL character in a text column
    ├── OperationalError                 →  Unavailable (503): unreachable, shutting down,
    │   │                                   pool timeout, statement cancelled, disk full
    │   └── TransactionRollback          →  Unavailable (503): deadlock or serialization
    │                                       failure; the transaction rolled back, retry
    ├── ReadOnlySqlTransaction           →  Unavailable (503): connected to a standby (during
    │                                       a failover); retry reaches the new primary
    └── DatabaseError with SQLSTATE DK001 →  CodecChanged (503): this process's encryption
                                            key is not the one the store is sealed under

Anything that is not a ``psycopg.Error`` passes through untouched; every translation keeps the
driver exception as ``__cause__`` (``raise ... from exc``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from dakera_server.errors import (
    Conflict,
    DakeraError,
    InvalidInput,
    StorageError,
    Unavailable,
)

__all__ = ["CODEC_CHANGED", "CodecChanged", "map_postgres_errors", "translate"]

# Raised by dakera.begin_access() (schema.py) when the caller's codec fingerprint differs.
CODEC_CHANGED = "DK001"


class CodecChanged(Unavailable):
    """The store's rows are sealed under another key than this process's codec: a rotation
    committed (here, and the caller retries with the new codec, or on another node, and this
    node must restart with the new ``DAKERA_ENCRYPTION_KEY``)."""


def translate(exc: psycopg.Error) -> DakeraError:
    """The error-tree exception for a driver exception (the table in the module docstring)."""
    if exc.sqlstate == CODEC_CHANGED:
        return CodecChanged(
            "the encryption key was rotated: restart this server with the new DAKERA_ENCRYPTION_KEY"
        )
    if isinstance(exc, psycopg.IntegrityError):
        return Conflict("the record conflicts with an existing one")
    if isinstance(exc, psycopg.DataError):
        return InvalidInput("a value cannot be stored (for example a NUL character in an id)")
    if isinstance(exc, psycopg.errors.TransactionRollback):
        return Unavailable("the store is busy, retry shortly")
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return Unavailable("the database is read-only (failing over?), retry shortly")
    if isinstance(exc, psycopg.OperationalError):
        return Unavailable("the database is unreachable, retry shortly")
    return StorageError("the store could not complete the operation")


@contextmanager
def map_postgres_errors() -> Iterator[None]:
    """Translate driver errors into the error tree; re-raise anything unrecognised."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from exc
