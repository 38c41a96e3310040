"""The blob store contract (storage/blobs.py) on both backends, files and PostgreSQL:
invisible until committed, durable after, aborts and crashes leave nothing, reads stream in
bounded chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dakera_server.errors import NotFound, StorageError
from dakera_server.storage.blobs import CHUNK_BYTES, BlobStore, FileBlobStore
from dakera_server.storage.postgres import PostgresBlobStore, PostgresStore
from tests.pgcluster import PostgresCluster


@dataclass
class Backend:
    """A blob store, how to reopen it (a restart), and how to age what it holds (PostgreSQL
    lists a committed blob only after a grace period, and sweeps only stale uploads)."""

    open: Callable[[], BlobStore]
    age: Callable[[], None]
    stored_files: Callable[[], int]


@pytest.fixture(params=["files", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "files":
        yield Backend(
            lambda: FileBlobStore(tmp_path),
            lambda: None,
            lambda: len([p for p in tmp_path.rglob("*") if p.is_file()]),
        )
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    database = cluster.create_database("blobs")
    store = PostgresStore(cluster.url(database))

    def age() -> None:
        cluster.query(
            database,
            "UPDATE dakera.blobs SET created_at = created_at - interval '2 hours', "
            "committed_at = committed_at - interval '2 hours'",
        )

    def rows() -> int:
        found = cluster.query(database, "SELECT count(*) FROM dakera.blobs")
        return int(found[0][0])  # type: ignore[call-overload]

    try:
        yield Backend(lambda: PostgresBlobStore(store.pool), age, rows)
    finally:
        store.close()


def test_commit_makes_a_blob_readable_in_chunks(backend: Backend) -> None:
    store = backend.open()
    writer = store.create()
    data = bytes(range(256)) * 1000
    writer.write(data[:1000])
    writer.write(data[1000:])
    backend.age()
    assert store.names() == []  # not visible before commit
    name = writer.commit()
    backend.age()
    assert name == writer.name and store.names() == [name]
    parts = list(store.read(name))
    assert b"".join(parts) == data and max(len(p) for p in parts) <= CHUNK_BYTES
    assert list(backend.open().read(name)) == parts  # durable: a restart reads the same


def test_an_empty_blob_and_one_of_exactly_one_chunk(backend: Backend) -> None:
    store = backend.open()
    for size in (0, CHUNK_BYTES, CHUNK_BYTES + 1):
        writer = store.create()
        writer.write(b"z" * size)
        assert b"".join(store.read(writer.commit())) == b"z" * size


def test_abort_and_interrupted_writes_leave_nothing(backend: Backend) -> None:
    store = backend.open()
    aborted = store.create()
    aborted.write(b"x" * 100)
    aborted.abort()
    crashed = store.create()
    crashed.write(b"y" * 100)  # never committed nor aborted: a crash
    backend.age()
    backend.open()  # the next start sweeps what a crash left
    assert backend.stored_files() == 0
    crashed.abort()  # only closes this process's handle now


def test_delete_and_missing(backend: Backend) -> None:
    store = backend.open()
    writer = store.create()
    writer.write(b"bytes")
    name = writer.commit()
    store.delete(name)
    store.delete(name)
    with pytest.raises(NotFound):
        list(store.read(name))
    with pytest.raises(StorageError):
        list(store.read("../../etc/passwd"))


def test_an_upload_in_flight_elsewhere_is_neither_listed_nor_swept(
    postgres: PostgresCluster,
) -> None:
    """On a shared database another node may be mid-upload, or between its blob and its
    record: a starting node must not take either for leftovers."""
    store = PostgresStore(postgres.url(postgres.create_database("inflight")))
    try:
        uploading = PostgresBlobStore(store.pool).create()
        uploading.write(b"a" * (CHUNK_BYTES + 10))
        committed = PostgresBlobStore(store.pool).create()
        committed.write(b"b")
        name = committed.commit()
        starting = PostgresBlobStore(store.pool)  # sweeps at start
        assert starting.names() == []  # just committed: its record may still be on its way
        finished = uploading.commit()
        assert b"".join(starting.read(finished)) == b"a" * (CHUNK_BYTES + 10)
        assert b"".join(starting.read(name)) == b"b"
    finally:
        store.close()


def test_held_deletes_wait_for_the_last_hold(tmp_path: Path) -> None:
    """A backup holds deletes: a blob deleted meanwhile stays readable until the last hold
    ends, then goes (nested holds: the outer one decides)."""
    blobs = FileBlobStore(tmp_path)
    writer = blobs.create()
    writer.write(b"still needed by a backup")
    name = writer.commit()
    with blobs.hold_deletes():
        with blobs.hold_deletes():
            blobs.delete(name)
        assert b"".join(blobs.read(name)) == b"still needed by a backup"
    with pytest.raises(NotFound):
        blobs.read(name)
    assert name not in blobs.names()
