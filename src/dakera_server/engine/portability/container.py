"""The backup file: a self-describing, checksummed, optionally sealed stream of store rows
and attachment files.

Layout of format version 2 (integers big-endian)::

    MAGIC          b"DAKERA-BACKUP\\n"
    u32 + header   JSON, never secret: format, format_version, server_version, backup_id,
                   created_at, sealed, key_check (sealed: a known text sealed with the key),
                   compression
    frames         kind (1 byte) + flags (1 byte) + u32 length + body, in this order:
                   one 'I' (info: name, namespaces), then pairs of 'R' (rows: keys and
                   payloads) and 'V' (those rows' vectors, float32, never compressed:
                   they do not compress and zlib was most of a backup's time), then 'B'
                   frames (attachment files, after every row), one 'E' (end)
                   flags bit 0: the body was zlib-compressed (before sealing)
                   sealed 'I'/'R'/'V'/'B' bodies: ``codec.encode("backup",
                   "<backup_id>/<frame no>")``, AES-256-GCM bound to this backup and this
                   position (no reordering, no splicing of frames between backups)
    'B' body       u16 + the attachment record's group (its namespace), u16 + its key (the
                   ``sha256:`` ref), u8 flags (bit 0: the file's last piece), then up to
                   ``BLOB_FRAME_BYTES`` of the file's plaintext; never compressed (files are
                   mostly compressed formats already, and zlib would dominate the time). The
                   pieces of one file are consecutive; an empty file is one empty last piece
    'E' body       JSON {"counts": {section: rows}, "frames": n}: numbers only, never sealed,
                   so ``verify`` reports counts without the key; ``attachment_bytes`` in the
                   counts is the total size of the files carried
    trailer        b"SHA256" + the SHA-256 of every byte before the trailer

Why this shape: the header is readable first (a newer format is refused by its version before
anything else is parsed), a copy cut short has no 'E' frame and trailer (truncated, not
"corrupt"), any altered byte breaks the SHA-256, and with encryption at rest no id, agent id,
tag, content or attachment byte is in the clear: the store's key columns and the files travel
inside the sealed frames. Compression happens before sealing (ciphertext does not compress).

Versions: 1 had no 'attachments' rows and no 'B' frames (and a restore of it leaves
attachments alone); 2 added both. A version-1 file reads as it always did, and a server that
reads only version 1 refuses a version-2 file by its header instead of misreading a table code
it does not know.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from dakera_server.engine.portability.pieces import BlobPiece, pack_piece, unpack_piece
from dakera_server.engine.rules import MEMORY_ID_PATTERN
from dakera_server.errors import (
    BackupCorrupt,
    BackupKeyMismatch,
    BackupTooNew,
    BackupTruncated,
    BackupUnrecognised,
    StorageError,
)
from dakera_server.storage.base import IdentityCodec, PayloadCodec, StoredRow, Table

__all__ = [
    "ATTACHMENTS_SINCE",
    "BLOB_FRAME_BYTES",
    "FORMAT_VERSION",
    "BackupHeader",
    "BackupReader",
    "BackupWriter",
    "BlobPiece",
    "VerifiedBackup",
    "is_sealing",
]

MAGIC = b"DAKERA-BACKUP\n"
FORMAT = "dakera-backup"
FORMAT_VERSION = 2
ATTACHMENTS_SINCE = 2  # the first format version that carries attachments
TRAILER = b"SHA256"
KEY_CHECK = b"dakera-backup key check v1"
CODEC_TABLE = "backup"
MAX_HEADER_BYTES = 64 * 1024
MAX_FRAME_BYTES = 256 * 1024 * 1024
FRAME_TARGET_BYTES = 4 * 1024 * 1024
BLOB_FRAME_BYTES = 1024 * 1024
COMPRESSED = 1
NO_VECTOR = 0xFFFFFFFF
ROW_HEAD = struct.Struct(">BHHII")
FRAME_HEAD = struct.Struct(">ccI")
# A row's table travels as its index here: new tables go at the end, so older files keep
# meaning what they meant.
TABLES: tuple[Table, ...] = (
    "memories", "sessions", "namespaces", "vectors", "api_keys", "edges", "meta", "trash",
    "documents", "representations", "attachments",
)  # fmt: skip
TABLE_CODES = {name: index for index, name in enumerate(TABLES)}
_TRUNCATED = (
    "the backup file is truncated: it ends before its end frame and checksum "
    "(an interrupted copy or upload)"
)


def is_sealing(codec: PayloadCodec) -> bool:
    """Whether ``codec`` encrypts (encryption at rest is on)."""
    return not isinstance(codec, IdentityCodec)


@dataclass(frozen=True)
class BackupHeader:
    """The clear-text header of a backup file."""

    backup_id: str
    created_at: int
    server_version: str
    sealed: bool
    compression: str
    key_check: str | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        """The header as written."""
        return orjson.dumps(
            {
                "format": FORMAT,
                "format_version": self.format_version,
                "server_version": self.server_version,
                "backup_id": self.backup_id,
                "created_at": self.created_at,
                "sealed": self.sealed,
                "key_check": self.key_check,
                "compression": self.compression,
            }
        )


@dataclass
class VerifiedBackup:
    """What ``BackupReader.verify`` established about a file."""

    header: BackupHeader
    name: str
    namespaces: list[str] | None
    counts: dict[str, int]
    sha256: str
    size: int
    extra: dict[str, Any] = field(default_factory=dict)


class BackupWriter:
    """Writes one backup to a binary file object, row by row (``add``), then ``finish``."""

    def __init__(
        self,
        out: IO[bytes],
        header: BackupHeader,
        codec: PayloadCodec,
        *,
        name: str,
        namespaces: list[str] | None,
    ) -> None:
        self._out = out
        self._codec = codec
        self._header = header
        self._hash = hashlib.sha256()
        self._frames = 0
        self._buffer = bytearray()
        self._vectors = bytearray()
        self.counts: dict[str, int] = {}
        self.size = 0
        head = header.to_json()
        self._emit(MAGIC + struct.pack(">I", len(head)) + head)
        info = orjson.dumps({"name": name, "namespaces": namespaces})
        self._frame(b"I", info)

    def _emit(self, data: bytes) -> None:
        self._hash.update(data)
        self._out.write(data)
        self.size += len(data)

    def _frame(self, kind: bytes, body: bytes, *, compress: bool = True) -> None:
        flags = 0
        if compress and self._header.compression == "gzip":
            body = zlib.compress(body, 1)
            flags |= COMPRESSED
        if self._header.sealed:
            body = self._codec.encode(CODEC_TABLE, f"{self._header.backup_id}/{self._frames}", body)
        self._frames += 1
        self._emit(FRAME_HEAD.pack(kind, bytes([flags]), len(body)) + body)

    def add(self, section: str, row: StoredRow) -> None:
        """Append one row, counted under ``section`` (``memories``, ``policies``…)."""
        group = row.group.encode("utf-8")
        key = row.key.encode("utf-8")
        vector = row.vector
        self._buffer += ROW_HEAD.pack(
            TABLE_CODES[row.table],
            len(group),
            len(key),
            len(row.payload),
            NO_VECTOR if vector is None else len(vector),
        )
        self._buffer += group + key + row.payload
        if vector is not None:
            self._vectors += vector
        self.counts[section] = self.counts.get(section, 0) + 1
        if len(self._buffer) >= FRAME_TARGET_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the rows buffered so far as one frame."""
        if self._buffer:
            self._frame(b"R", bytes(self._buffer))
            self._frame(b"V", bytes(self._vectors), compress=False)
            self._buffer = bytearray()
            self._vectors = bytearray()

    def add_blob(self, group: str, key: str, chunks: Iterator[bytes]) -> int:
        """Append one attachment file (the record ``group``/``key`` was added with ``add``)
        from ``chunks``, in frames of at most ``BLOB_FRAME_BYTES``: memory does not grow
        with the file. Call after the last row. Returns the bytes written."""
        self.flush()
        g, k = group.encode("utf-8"), key.encode("utf-8")
        pending = bytearray()
        total = 0
        for chunk in chunks:
            pending += chunk
            total += len(chunk)
            while len(pending) > BLOB_FRAME_BYTES:
                piece = pack_piece(g, k, bytes(pending[:BLOB_FRAME_BYTES]), False)
                self._frame(b"B", piece, compress=False)
                del pending[:BLOB_FRAME_BYTES]
        self._frame(b"B", pack_piece(g, k, bytes(pending), True), compress=False)
        self.counts["attachment_bytes"] = self.counts.get("attachment_bytes", 0) + total
        return total

    def finish(self) -> str:
        """Write the end frame and the checksum; returns the SHA-256 hex."""
        self.flush()
        end = orjson.dumps({"counts": self.counts, "frames": self._frames})
        self._emit(FRAME_HEAD.pack(b"E", b"\x00", len(end)) + end)
        digest = self._hash.digest()
        self._out.write(TRAILER + digest)
        self.size += len(TRAILER) + len(digest)
        return digest.hex()


class BackupReader:
    """Reads and checks a backup file. Every check happens before a single row is returned."""

    def __init__(self, source: IO[bytes], codec: PayloadCodec) -> None:
        self._in = source
        self._codec = codec

    def _read(self, size: int, hasher: Any) -> bytes:
        data = self._in.read(size)
        if len(data) != size:
            raise BackupTruncated(_TRUNCATED)
        if hasher is not None:
            hasher.update(data)
        return data

    def header(self, hasher: Any = None) -> BackupHeader:
        """Read the magic and header (format version checked first)."""
        magic = self._in.read(len(MAGIC))
        if magic != MAGIC:
            raise BackupUnrecognised("this is not a dakera-server backup file (unknown format)")
        if hasher is not None:
            hasher.update(magic)
        (length,) = struct.unpack(">I", self._read(4, hasher))
        if length > MAX_HEADER_BYTES:
            raise BackupUnrecognised("the backup header is not readable")
        try:
            raw = orjson.loads(self._read(length, hasher))
            version = int(raw["format_version"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise BackupUnrecognised("the backup header is not readable") from None
        if raw.get("format") != FORMAT:
            raise BackupUnrecognised("this is not a dakera-server backup file (unknown format)")
        if version > FORMAT_VERSION:
            raise BackupTooNew(
                f"the backup was written in format version {version} by server "
                f"{raw.get('server_version')}; this server reads format versions up to "
                f"{FORMAT_VERSION}: restore it with a newer server"
            )
        if not MEMORY_ID_PATTERN.fullmatch(str(raw.get("backup_id", ""))[:128]):
            raise BackupUnrecognised("the backup header is not readable (bad backup id)")
        try:
            return BackupHeader(
                backup_id=str(raw["backup_id"]),
                created_at=int(raw["created_at"]),
                server_version=str(raw["server_version"]),
                sealed=bool(raw["sealed"]),
                compression=str(raw["compression"]),
                key_check=raw.get("key_check"),
                format_version=version,
            )
        except (KeyError, TypeError, ValueError):
            raise BackupUnrecognised("the backup header is not readable") from None

    def _frames(self, hasher: Any) -> Iterator[tuple[bytes, int, bytes]]:
        while True:
            kind, flags, length = FRAME_HEAD.unpack(self._read(FRAME_HEAD.size, hasher))
            if length > MAX_FRAME_BYTES:
                raise BackupCorrupt("the backup's checksum does not match its content: altered")
            body = self._read(length, hasher)
            yield kind, flags[0], body
            if kind == b"E":
                return

    def verify(self) -> VerifiedBackup:
        """Check format version, completeness, SHA-256 and key, in that order, reading the
        (seekable) file once; nothing else is trusted before the checksum matched.

        Raises ``BackupUnrecognised``, ``BackupTooNew``, ``BackupTruncated``, ``BackupCorrupt``
        or ``BackupKeyMismatch``, each with its own message.
        """
        header = self.header()
        total = self._in.seek(0, 2)
        trailer_size = len(TRAILER) + 32
        if total < trailer_size:
            raise BackupTruncated(_TRUNCATED)
        self._in.seek(total - trailer_size)
        trailer = self._in.read(trailer_size)
        if not trailer.startswith(TRAILER):
            raise BackupTruncated(_TRUNCATED)
        hasher = hashlib.sha256()
        self._in.seek(0)
        remaining = total - trailer_size
        while remaining:
            chunk = self._in.read(min(remaining, 1024 * 1024))
            if not chunk:
                raise BackupTruncated(_TRUNCATED)
            hasher.update(chunk)
            remaining -= len(chunk)
        if hasher.digest() != trailer[len(TRAILER) :]:
            raise BackupCorrupt(
                "the backup's SHA-256 does not match its content: the file was altered or "
                "damaged after it was written"
            )
        self._in.seek(0)
        self.header()
        end: dict[str, Any] = {}
        info: dict[str, Any] = {}
        for kind, flags, body in self._frames(None):
            if kind == b"I":
                self._check_key(header)
                info = orjson.loads(self._open(header, 0, flags, body))
            elif kind == b"E":
                end = orjson.loads(body)
        return VerifiedBackup(
            header=header,
            name=str(info.get("name") or ""),
            namespaces=info.get("namespaces"),
            counts={str(k): int(v) for k, v in (end.get("counts") or {}).items()},
            sha256=hasher.hexdigest(),
            size=total,
        )

    def _check_key(self, header: BackupHeader) -> None:
        if not header.sealed:
            return
        if not is_sealing(self._codec):
            raise BackupKeyMismatch(
                "the backup is sealed with an encryption key, and encryption at rest is off "
                "on this server: start it with the same DAKERA_ENCRYPTION_KEY"
            )
        try:
            check = self._codec.decode(
                CODEC_TABLE, f"{header.backup_id}/key-check", bytes.fromhex(header.key_check or "")
            )
        except (StorageError, ValueError):
            check = b""
        if check != KEY_CHECK:
            raise BackupKeyMismatch(
                "the backup was sealed with a different encryption key than this server's "
                "DAKERA_ENCRYPTION_KEY"
            )

    def _open(self, header: BackupHeader, number: int, flags: int, body: bytes) -> bytes:
        if header.sealed:
            try:
                body = self._codec.decode(CODEC_TABLE, f"{header.backup_id}/{number}", body)
            except StorageError:
                raise BackupCorrupt(
                    "a sealed frame of the backup failed authentication: altered"
                ) from None
        if flags & COMPRESSED:
            try:
                body = zlib.decompress(body)
            except zlib.error:
                raise BackupCorrupt("a frame of the backup does not decompress: altered") from None
        return body

    def rows(self) -> Iterator[StoredRow]:
        """Every row, in file order. Call on a fresh reader of a file ``verify`` accepted."""
        header = self.header()
        pending = b""
        for number, (kind, flags, body) in enumerate(self._frames(None)):
            if kind == b"B":
                continue  # attachment files: ``blob_pieces``
            plain = self._open(header, number, flags, body) if kind != b"E" else body
            if kind == b"R":
                pending = plain
            elif kind == b"V":
                yield from _unpack_rows(pending, plain)

    def blob_pieces(self) -> Iterator[BlobPiece]:
        """Every piece of every attachment file, in file order (none in a version-1 file).
        Call on a fresh reader of a file ``verify`` accepted."""
        header = self.header()
        for number, (kind, flags, body) in enumerate(self._frames(None)):
            if kind == b"B":
                yield unpack_piece(self._open(header, number, flags, body))


def _unpack_rows(data: bytes, vectors: bytes) -> Iterator[StoredRow]:
    view = memoryview(data)
    offset = 0
    at = 0  # in ``vectors``
    size = len(data)
    while offset < size:
        code, glen, klen, plen, vlen = ROW_HEAD.unpack_from(view, offset)
        offset += ROW_HEAD.size
        group = bytes(view[offset : offset + glen]).decode("utf-8")
        offset += glen
        key = bytes(view[offset : offset + klen]).decode("utf-8")
        offset += klen
        payload = bytes(view[offset : offset + plen])
        offset += plen
        vector = None
        if vlen != NO_VECTOR:
            vector = vectors[at : at + vlen]
            at += vlen
        yield StoredRow(TABLES[code], key, group, payload, vector)


def seal_key_check(codec: PayloadCodec, backup_id: str) -> str:
    """The header's key check value: a known text sealed for this backup."""
    return codec.encode(CODEC_TABLE, f"{backup_id}/key-check", KEY_CHECK).hex()
