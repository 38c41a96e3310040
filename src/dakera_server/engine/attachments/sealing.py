"""AES-256-GCM over an attachment's byte stream, under a key of its own (envelope encryption).

Why not the store's ``PayloadCodec`` directly: a key rotation re-encrypts every store record in
one transaction (``security/encryption.py``); re-encrypting hundreds of megabytes of files in
that transaction is not possible. So each attachment gets a random 256-bit data key, the
file is sealed with it, and the data key lives in the attachment's record in the store, where
the store's codec (AES-256-GCM under the master key, the same path every record takes) seals
it. A rotation re-wraps the small data keys with everything else; the files never change.

The stream is cut into records of ``PLAIN_BYTES`` (the STREAM construction of Hoang,
Reyhanitabar, Rogaway and Vizár): record ``i`` is sealed with nonce = ``i`` (11 bytes, big
endian) + a last-record flag, and the attachment's identity as associated data. A data key is
used for one stream only, so nonces never repeat under a key; records cannot be reordered,
dropped, swapped between attachments or cut off at the end without failing authentication.
On disk a record is its sealed length (4 bytes, big endian) and the ciphertext with its tag.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dakera_server.errors import StorageError

__all__ = ["PLAIN_BYTES", "StreamSealer", "new_data_key", "unseal"]

PLAIN_BYTES = 1 << 16
TAG_BYTES = 16
LENGTH = struct.Struct(">I")
MAX_RECORD = PLAIN_BYTES + TAG_BYTES


def new_data_key() -> bytes:
    """A fresh random 256-bit data key for one attachment."""
    return os.urandom(32)


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class StreamSealer:
    """Seals a stream fed in pieces of any size; ``finish`` emits the last record."""

    def __init__(self, key: bytes, identity: str) -> None:
        self._aead = AESGCM(key)
        self._aad = identity.encode("utf-8")
        self._pending = bytearray()
        self._index = 0

    def feed(self, data: bytes) -> bytes:
        """Sealed records for every full piece now available (a partial one waits)."""
        self._pending.extend(data)
        out = bytearray()
        # Keep at least one byte back: the last record must be sealed with the last flag.
        while len(self._pending) > PLAIN_BYTES:
            out += self._record(bytes(self._pending[:PLAIN_BYTES]), last=False)
            del self._pending[:PLAIN_BYTES]
        return bytes(out)

    def finish(self) -> bytes:
        """The final record (possibly empty plaintext)."""
        record = self._record(bytes(self._pending), last=True)
        self._pending.clear()
        return record

    def _record(self, plain: bytes, *, last: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._index, last), plain, self._aad)
        self._index += 1
        return LENGTH.pack(len(sealed)) + sealed


def unseal(key: bytes, identity: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The plaintext of a sealed stream, record by record; ``StorageError`` on any tampering
    (a changed byte, reordered or missing records, a cut-off end)."""
    aead = AESGCM(key)
    aad = identity.encode("utf-8")
    buffer = bytearray()
    index = 0
    finished = False
    for chunk in chunks:
        buffer.extend(chunk)
        while len(buffer) >= LENGTH.size:
            (size,) = LENGTH.unpack_from(buffer)
            if size < TAG_BYTES or size > MAX_RECORD or finished:
                raise StorageError("a stored attachment failed authentication")
            if len(buffer) < LENGTH.size + size:
                break
            sealed = bytes(buffer[LENGTH.size : LENGTH.size + size])
            del buffer[: LENGTH.size + size]
            plain, finished = _open(aead, aad, index, sealed)
            index += 1
            if plain:
                yield plain
    if buffer or not finished:
        raise StorageError("a stored attachment failed authentication")


def _open(aead: AESGCM, aad: bytes, index: int, sealed: bytes) -> tuple[bytes, bool]:
    """Open record ``index`` as an inner record, else as the last one; (plaintext, last)."""
    try:
        return aead.decrypt(_nonce(index, False), sealed, aad), False
    except InvalidTag:
        pass
    try:
        return aead.decrypt(_nonce(index, True), sealed, aad), True
    except InvalidTag:
        raise StorageError("a stored attachment failed authentication") from None
