"""The blob store contract on the file backend: invisible until committed, durable after,
aborts and crashes leave nothing, reads stream in bounded chunks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dakera_server.errors import NotFound, StorageError
from dakera_server.storage.blobs import CHUNK_BYTES, FileBlobStore


def test_commit_makes_a_blob_readable_in_chunks(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    writer = store.create()
    data = bytes(range(256)) * 1000
    writer.write(data[:1000])
    writer.write(data[1000:])
    assert store.names() == []  # not visible before commit
    name = writer.commit()
    assert name == writer.name and store.names() == [name]
    parts = list(store.read(name))
    assert b"".join(parts) == data and max(len(p) for p in parts) <= CHUNK_BYTES


def test_abort_and_interrupted_writes_leave_nothing(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    aborted = store.create()
    aborted.write(b"x" * 100)
    aborted.abort()
    crashed = store.create()
    crashed.write(b"y" * 100)  # never committed nor aborted: a crash
    FileBlobStore(tmp_path)  # the next start sweeps the temp folder
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    crashed.abort()  # only closes this process's handle now


def test_delete_and_missing(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    writer = store.create()
    writer.write(b"bytes")
    name = writer.commit()
    store.delete(name)
    store.delete(name)
    with pytest.raises(NotFound):
        list(store.read(name))
    with pytest.raises(StorageError):
        list(store.read("../../etc/passwd"))
