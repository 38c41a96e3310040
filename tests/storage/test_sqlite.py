"""What only the SQLite store promises: WAL with full sync, its schema version, its error map."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dakera_server.errors import Conflict, StorageError, Unavailable
from dakera_server.storage.base import Op
from dakera_server.storage.sqlite import MIGRATIONS, SqliteStore, map_sqlite_errors


def test_reopen_keeps_data_and_schema(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "s.db")
    first.write([Op.put("sessions", "s1", b"p", group="a")])
    first.close()
    second = SqliteStore(tmp_path / "s.db")
    assert second.schema_version == len(MIGRATIONS)
    assert second.count("sessions") == 1
    second.close()


def test_wal_and_full_sync(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "s.db").close()
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_describe_names_the_file(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    assert store.describe() == f"sqlite {tmp_path / 's.db'}"
    assert store.change_log is None  # one process: nothing to follow
    store.close()


@pytest.mark.parametrize(
    ("driver_error", "ours"),
    [
        (sqlite3.IntegrityError("UNIQUE constraint failed"), Conflict),
        (sqlite3.OperationalError("database is locked"), Unavailable),
        (sqlite3.OperationalError("disk I/O error"), StorageError),
        (sqlite3.DatabaseError("file is not a database"), StorageError),
    ],
)
def test_driver_errors_are_mapped(driver_error: Exception, ours: type[Exception]) -> None:
    with pytest.raises(ours) as caught, map_sqlite_errors():
        raise driver_error
    assert caught.value.__cause__ is driver_error


def test_unrecognised_errors_pass_through() -> None:
    with pytest.raises(KeyError), map_sqlite_errors():
        raise KeyError("x")
