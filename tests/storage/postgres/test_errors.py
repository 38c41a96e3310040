"""The psycopg → error-tree map (storage/postgres/errors.py), pinned class by class."""

from __future__ import annotations

import inspect

import psycopg
import psycopg_pool
import pytest

from dakera_server.errors import Conflict, DakeraError, InvalidInput, StorageError, Unavailable
from dakera_server.storage.postgres.errors import CodecChanged, map_postgres_errors, translate


def _with_state(cls: type[psycopg.Error], sqlstate: str) -> psycopg.Error:
    error = cls("x")
    error.sqlstate = sqlstate  # type: ignore[misc]
    return error


@pytest.mark.parametrize(
    ("driver_error", "ours"),
    [
        (psycopg.errors.UniqueViolation("duplicate key"), Conflict),
        (psycopg.errors.ForeignKeyViolation("fk"), Conflict),
        (psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes"), InvalidInput),
        (psycopg.errors.StringDataRightTruncation("too long"), InvalidInput),
        (psycopg.OperationalError("connection refused"), Unavailable),
        (psycopg.errors.AdminShutdown("terminating connection"), Unavailable),
        (psycopg.errors.CannotConnectNow("the database system is starting up"), Unavailable),
        (psycopg.errors.DeadlockDetected("deadlock detected"), Unavailable),
        (psycopg.errors.SerializationFailure("could not serialize"), Unavailable),
        (psycopg.errors.QueryCanceled("canceling statement"), Unavailable),
        (psycopg.errors.ReadOnlySqlTransaction("read-only transaction"), Unavailable),
        (psycopg_pool.PoolTimeout("couldn't get a connection"), Unavailable),
        (psycopg_pool.PoolClosed("the pool is closed"), Unavailable),
        (psycopg.errors.UndefinedTable("relation does not exist"), StorageError),
        (psycopg.errors.InsufficientPrivilege("permission denied"), StorageError),
        (psycopg.InterfaceError("the connection is closed"), StorageError),
        (_with_state(psycopg.DatabaseError, "DK001"), CodecChanged),
    ],
)
def test_driver_errors_are_mapped(driver_error: psycopg.Error, ours: type[Exception]) -> None:
    with pytest.raises(ours) as caught, map_postgres_errors():
        raise driver_error
    assert type(caught.value) is ours
    assert caught.value.__cause__ is driver_error


def test_every_psycopg_error_class_maps_into_the_tree() -> None:
    classes = [
        cls
        for module in (psycopg, psycopg.errors, psycopg_pool)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, psycopg.Error)
    ]
    assert len(classes) > 200  # the SQLSTATE classes are all there
    for cls in classes:
        mapped = translate(cls("x"))
        assert isinstance(mapped, DakeraError), cls
        assert "x" not in mapped.message.split(), cls  # no driver text reaches a client


def test_codec_changed_is_a_503() -> None:
    assert issubclass(CodecChanged, Unavailable) and CodecChanged.status == 503


def test_unrecognised_errors_pass_through() -> None:
    with pytest.raises(KeyError), map_postgres_errors():
        raise KeyError("x")
