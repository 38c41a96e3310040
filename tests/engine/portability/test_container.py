"""The backup file format: round trips, and each way a file is refused (container.py)."""

from __future__ import annotations

import io
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.portability.container import (
    BLOB_FRAME_BYTES,
    BackupHeader,
    BackupReader,
    BackupWriter,
    seal_key_check,
)
from dakera_server.errors import (
    BackupCorrupt,
    BackupKeyMismatch,
    BackupTooNew,
    BackupTruncated,
    BackupUnrecognised,
)
from dakera_server.security.crypto import AesGcmCodec, EncryptionKey
from dakera_server.storage.base import IdentityCodec, PayloadCodec, StoredRow

ROWS = [
    StoredRow("memories", "mem_canary_key_1", "agent-a", b'{"content":"canary-XYZ"}', b"\x00" * 16),
    StoredRow("sessions", "s1", "agent-a", b"{}"),
    StoredRow("meta", "memory_policy:ns", "", b"{}"),
]


def codec() -> AesGcmCodec:
    return AesGcmCodec(EncryptionKey(secrets.token_bytes(32)))


def write(
    rows: list[StoredRow], seal: PayloadCodec | None = None, compression: str = "gzip"
) -> bytes:
    out = io.BytesIO()
    sealing = seal is not None
    chosen = seal or IdentityCodec()
    header = BackupHeader(
        backup_id="bk_1",
        created_at=1,
        server_version="t",
        sealed=sealing,
        compression=compression,
        key_check=seal_key_check(chosen, "bk_1") if sealing else None,
    )
    writer = BackupWriter(out, header, chosen, name="n", namespaces=None)
    for row in rows:
        writer.add(row.table, row)
    writer.finish()
    return out.getvalue()


def read(data: bytes, with_codec: PayloadCodec | None = None) -> list[StoredRow]:
    chosen = with_codec or IdentityCodec()
    BackupReader(io.BytesIO(data), chosen).verify()
    return list(BackupReader(io.BytesIO(data), chosen).rows())


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_round_trip_plain_and_sealed(compression: str) -> None:
    assert read(write(ROWS, compression=compression)) == ROWS
    key = codec()
    sealed = write(ROWS, key, compression)
    assert read(sealed, key) == ROWS
    assert (
        b"canary-XYZ" not in sealed
        and b"agent-a" not in sealed
        and b"mem_canary_key_1" not in sealed
    )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["memories", "vectors", "edges", "meta"]),
            st.text(min_size=1, max_size=20),
            st.text(max_size=20),
            st.binary(max_size=300),
            st.one_of(st.none(), st.binary(max_size=64)),
        ),
        max_size=30,
    )
)
def test_any_rows_round_trip(rows: list[tuple[str, str, str, bytes, bytes | None]]) -> None:
    stored = [StoredRow(t, k, g, p, v) for t, k, g, p, v in rows]  # type: ignore[arg-type]
    assert read(write(stored)) == stored


def test_every_refusal_has_its_own_error() -> None:
    good = write(ROWS)
    tampered = bytearray(good)
    tampered[len(good) // 2] ^= 0x01
    with pytest.raises(BackupCorrupt, match="SHA-256"):
        read(bytes(tampered))
    with pytest.raises(BackupTruncated, match="truncated"):
        read(good[: len(good) - 100])
    newer = good.replace(b'"format_version":2', b'"format_version":9', 1)
    with pytest.raises(BackupTooNew, match="format version 9"):
        read(newer)
    with pytest.raises(BackupUnrecognised):
        read(b"PK\x03\x04 not a backup")
    key = codec()
    with pytest.raises(BackupKeyMismatch, match="different encryption key"):
        read(write(ROWS, key), codec())
    with pytest.raises(BackupKeyMismatch, match="encryption at rest is off"):
        read(write(ROWS, key))


def write_with_files(
    files: list[tuple[str, str, bytes]], seal: PayloadCodec | None = None
) -> bytes:
    """A backup of ``ROWS`` followed by attachment files (group, key, bytes)."""
    out = io.BytesIO()
    chosen = seal or IdentityCodec()
    header = BackupHeader(
        backup_id="bk_2",
        created_at=1,
        server_version="t",
        sealed=seal is not None,
        compression="gzip",
        key_check=seal_key_check(chosen, "bk_2") if seal is not None else None,
    )
    writer = BackupWriter(out, header, chosen, name="n", namespaces=None)
    for row in ROWS:
        writer.add(row.table, row)
    for group, key, data in files:
        # Uneven chunks, as a blob store or an unsealing stream hands them over.
        writer.add_blob(group, key, iter([data[i : i + 7000] for i in range(0, len(data), 7000)]))
    writer.finish()
    return out.getvalue()


def files_of(data: bytes, chosen: PayloadCodec) -> list[tuple[str, str, bytes]]:
    BackupReader(io.BytesIO(data), chosen).verify()
    found: list[tuple[str, str, bytes]] = []
    current = bytearray()
    for piece in BackupReader(io.BytesIO(data), chosen).blob_pieces():
        current += piece.data
        if piece.last:
            found.append((piece.group, piece.key, bytes(current)))
            current = bytearray()
    assert not current
    return found


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=12), st.binary(max_size=9000)),
        max_size=6,
    )
)
def test_files_round_trip_after_the_rows(files: list[tuple[str, str, bytes]]) -> None:
    data = write_with_files(files)
    assert files_of(data, IdentityCodec()) == files
    assert list(BackupReader(io.BytesIO(data), IdentityCodec()).rows()) == ROWS


def test_a_large_file_is_cut_into_sealed_frames() -> None:
    key = codec()
    big = secrets.token_bytes(BLOB_FRAME_BYTES * 2 + 12345)
    canary = b"file-canary-Q7" * 50
    data = write_with_files([("ns", "sha256:a", big), ("ns", "sha256:b", canary)], key)
    assert files_of(data, key) == [("ns", "sha256:a", big), ("ns", "sha256:b", canary)]
    assert b"file-canary-Q7" not in data and big[:64] not in data
    pieces = [len(p.data) for p in BackupReader(io.BytesIO(data), key).blob_pieces()]
    assert pieces == [BLOB_FRAME_BYTES, BLOB_FRAME_BYTES, 12345, len(canary)]
