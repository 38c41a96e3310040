"""The body of a 'B' frame of a backup: one piece of one attachment file (``container.py``
describes the layout), apart so the container stays about the frames."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dakera_server.errors import BackupCorrupt

__all__ = ["BlobPiece", "pack_piece", "unpack_piece"]

LAST_PIECE = 1


@dataclass(frozen=True)
class BlobPiece:
    """One piece of an attachment file in a backup: the record it belongs to (group, key)."""

    group: str
    key: str
    data: bytes
    last: bool


def pack_piece(group: bytes, key: bytes, data: bytes, last: bool) -> bytes:
    """The frame body of one piece (before the backup compresses or seals it)."""
    flags = bytes([LAST_PIECE if last else 0])
    return struct.pack(">H", len(group)) + group + struct.pack(">H", len(key)) + key + flags + data


def unpack_piece(body: bytes) -> BlobPiece:
    """Inverse of ``pack_piece``; ``BackupCorrupt`` for a body that is not one."""
    try:
        (glen,) = struct.unpack_from(">H", body, 0)
        group = body[2 : 2 + glen].decode("utf-8")
        at = 2 + glen
        (klen,) = struct.unpack_from(">H", body, at)
        key = body[at + 2 : at + 2 + klen].decode("utf-8")
        at += 2 + klen
        flags = body[at]
    except (struct.error, IndexError, UnicodeDecodeError):
        raise BackupCorrupt("an attachment frame of the backup is malformed: altered") from None
    return BlobPiece(group, key, body[at + 1 :], bool(flags & LAST_PIECE))
