"""API key secrets: generation, salted hashing, constant-time verification.

A secret is never stored: only ``HMAC-SHA256(salt, secret)`` with a per-key random salt. The
root key from ``DAKERA_ROOT_API_KEY`` is hashed the same way at start-up and kept only hashed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

from dakera_server.engine.access import Caller, Scope
from dakera_server.errors import InvalidApiKey
from dakera_server.storage.base import Op, Store

__all__ = ["KeyRing", "SecretHash", "generate_secret"]

ROOT_KEY_META = "root_key_hash"


def generate_secret() -> str:
    """A new key secret: ``dk_`` + 32 hex characters (128 bits)."""
    return "dk_" + secrets.token_hex(16)


@dataclass(frozen=True)
class SecretHash:
    """A salted HMAC of a secret."""

    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, secret: str, salt: bytes | None = None) -> SecretHash:
        """Hash ``secret`` with ``salt`` (fresh random salt by default)."""
        salt = salt if salt is not None else secrets.token_bytes(16)
        return cls(salt, hmac.new(salt, secret.encode("utf-8"), hashlib.sha256).digest())

    def matches(self, secret: str) -> bool:
        """Constant-time comparison of ``secret`` against this hash."""
        candidate = hmac.new(self.salt, secret.encode("utf-8"), hashlib.sha256).digest()
        return hmac.compare_digest(candidate, self.digest)

    def to_json(self) -> bytes:
        """Serialised form for the store."""
        return orjson.dumps({"salt": self.salt.hex(), "digest": self.digest.hex()})

    @classmethod
    def from_json(cls, data: bytes) -> SecretHash:
        """Inverse of ``to_json``."""
        raw = orjson.loads(data)
        return cls(bytes.fromhex(raw["salt"]), bytes.fromhex(raw["digest"]))


ROOT_CALLER = Caller(key_id="root", name="root", scope=Scope.SUPER_ADMIN, namespaces=None)


class KeyRing:
    """Resolves a presented secret to a ``Caller``; holds only hashes."""

    def __init__(self, store: Store, root_key: str | None) -> None:
        self.store = store
        self._root: SecretHash | None = None
        self.generated_root_key: str | None = None
        if root_key is not None:
            self._root = SecretHash.of(root_key)
        else:
            row = store.get_row("meta", ROOT_KEY_META)
            if row is not None:
                self._root = SecretHash.from_json(row.payload)

    def bootstrap(self) -> str | None:
        """With no root key configured or stored, make one; returns its secret (shown once)."""
        if self._root is not None:
            return None
        secret = generate_secret()
        digest = SecretHash.of(secret)
        self.store.write([Op.put("meta", ROOT_KEY_META, digest.to_json())])
        self._root = digest
        self.generated_root_key = secret
        return secret

    def authenticate(self, secret: str) -> Caller:
        """The caller for ``secret``; ``InvalidApiKey`` when it matches nothing."""
        if self._root is not None and self._root.matches(secret):
            return ROOT_CALLER
        raise InvalidApiKey("invalid API key")
