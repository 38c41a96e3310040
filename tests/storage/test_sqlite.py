"""The storage contract, run against every implementation, and the driver-error map."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from dakera_server.errors import Conflict, StorageError, Unavailable
from dakera_server.storage.base import Op, Store
from dakera_server.storage.sqlite import MIGRATIONS, SqliteStore, map_sqlite_errors


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    implementation = SqliteStore(tmp_path / "store.db")
    yield implementation
    implementation.close()


def test_put_get_replace_delete(store: Store) -> None:
    store.write([Op.put("memories", "m1", b"one", group="a", vector=b"\x00" * 8)])
    row = store.get_row("memories", "m1", "a")
    assert row is not None and row.payload == b"one" and row.vector == b"\x00" * 8
    store.write([Op.put("memories", "m1", b"uno", group="a")])
    assert store.get_row("memories", "m1", "a").payload == b"uno"  # type: ignore[union-attr]
    store.write([Op.delete("memories", "m1", group="a")])
    assert store.get_row("memories", "m1", "a") is None


def test_groups_are_separate(store: Store) -> None:
    store.write(
        [Op.put("vectors", "v", b"1", group="ns1"), Op.put("vectors", "v", b"2", group="ns2")]
    )
    assert store.count("vectors") == 2
    store.write([Op.delete_group("vectors", "ns1")])
    assert [r.group for r in store.iter_rows("vectors")] == ["ns2"]


def test_a_batch_is_all_or_nothing(store: Store) -> None:
    store.write([Op.put("memories", "keep", b"x", group="a")])
    bad = Op.put("no_such_table", "k", b"x")  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        store.write([Op.put("memories", "new", b"y", group="a"), bad])
    assert store.get_row("memories", "new", "a") is None
    assert store.count("memories") == 1


def test_meta_round_trip(store: Store) -> None:
    store.write([Op.put("meta", "k", b"v")])
    assert store.get_row("meta", "k") is not None
    assert [r.key for r in store.iter_rows("meta")] == ["k"]


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
