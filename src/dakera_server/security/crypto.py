"""Encryption at rest: AES-256-GCM per record, keys from a passphrase (Argon2id) or 64 hex.

Every stored blob is ``MAGIC | key id (8 bytes) | nonce (12) | ciphertext+tag`` with a fresh
random nonce per encryption and the record's identity (table + record id) as associated data, so
a ciphertext moved to another record fails to decrypt. A key check value (an encryption of a
fixed label under the key, kept in the store) tells at start-up whether the configured key is
the one the data was written with, before any record is read.

The passphrase salt is per data directory (kept beside the key check value, not secret).
The key itself is never stored, logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dakera_server.config import HEX_KEY
from dakera_server.errors import ConfigError, StorageError
from dakera_server.storage.base import PayloadCodec

__all__ = [
    "MAGIC",
    "AesGcmCodec",
    "EncryptionKey",
    "KeyMismatch",
    "derive_key",
]

MAGIC = b"$enc$v1$"
NONCE_BYTES = 12
KEY_ID_BYTES = 8
# Argon2id parameters (RFC 9106 second recommendation, lighter memory): ~0.3 s here, once per start.
ARGON_TIME_COST = 3
ARGON_MEMORY_KIB = 65_536
ARGON_PARALLELISM = 2
CHECK_LABEL = b"dakera key check v1"


class KeyMismatch(ConfigError):
    """The configured key is not the one the data directory was encrypted with."""


def derive_key(secret: str, salt: bytes) -> bytes:
    """The 256-bit key: 64 hex used as is, anything else through Argon2id with ``salt``."""
    if HEX_KEY.fullmatch(secret):
        return bytes.fromhex(secret)
    return hash_secret_raw(
        secret.encode("utf-8"),
        salt,
        time_cost=ARGON_TIME_COST,
        memory_cost=ARGON_MEMORY_KIB,
        parallelism=ARGON_PARALLELISM,
        hash_len=32,
        type=Type.ID,
    )


@dataclass(frozen=True)
class EncryptionKey:
    """A derived 256-bit key with its public id (a hash prefix, safe to show)."""

    material: bytes

    @property
    def key_id(self) -> str:
        """Short public identifier of the key (never reveals the key)."""
        return hashlib.sha256(b"dakera key id" + self.material).hexdigest()[:16]

    def check_value(self) -> bytes:
        """A value that proves possession of the key without revealing it."""
        return hmac.new(self.material, CHECK_LABEL, hashlib.sha256).digest()


class AesGcmCodec(PayloadCodec):
    """AES-256-GCM over every stored payload; the record identity is the associated data.

    ``decode`` accepts plaintext written before encryption was switched on (no ``MAGIC``
    prefix) only while ``allow_plaintext`` is set, i.e. during the one-time migration.
    """

    def __init__(self, key: EncryptionKey, *, allow_plaintext: bool = False) -> None:
        self.key = key
        self._aead = AESGCM(key.material)
        self._key_id = bytes.fromhex(key.key_id)
        self.allow_plaintext = allow_plaintext

    def encode(self, table: str, record_id: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, f"{table}\x00{record_id}".encode())
        return MAGIC + self._key_id + nonce + sealed

    def decode(self, table: str, record_id: str, stored: bytes) -> bytes:
        if not stored.startswith(MAGIC):
            if self.allow_plaintext:
                return stored
            raise StorageError("a stored record is not encrypted although encryption is on")
        body = stored[len(MAGIC) :]
        nonce = body[KEY_ID_BYTES : KEY_ID_BYTES + NONCE_BYTES]
        try:
            return self._aead.decrypt(
                nonce, body[KEY_ID_BYTES + NONCE_BYTES :], f"{table}\x00{record_id}".encode()
            )
        except InvalidTag:
            raise StorageError("a stored record failed authentication") from None

    @property
    def fingerprint(self) -> str | None:
        return self.key.key_id

    @staticmethod
    def is_encrypted(stored: bytes) -> bool:
        """Whether ``stored`` was written by this codec."""
        return stored.startswith(MAGIC)
