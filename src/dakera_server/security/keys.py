"""The key ring: turns a presented secret into a ``Caller`` (root key + stored keys).

The root key comes from ``DAKERA_ROOT_API_KEY`` (hashed in memory at start-up, never written)
or, when none is configured and no key exists yet, is generated once by ``bootstrap`` and kept
only as a salted hash in the store's meta table. Stored keys live in the engine's ``KeyStore``.

Authentication is one constant-time check against the root key's hash, then one lookup-handle
HMAC, one dict lookup and one constant-time verification. The root key has no lookup handle:
a handle depends on the store's pepper, which a restore replaces, and a root handle derived
under the other pepper refused the root key while a restore finished (a few HMACs per request
are cheaper than that window: about a microsecond each).
A well-formed ``dk_`` secret that matches nothing makes the ring check (at most ten times a
second) whether another process (``dakera-server keys create``) added keys, so a key created
from the command line works against a running server at once.
"""

from __future__ import annotations

import re
import threading
import time

import orjson

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.keys.rules import (
    MAX_SECRET_CHARS,
    ROOT_KEY_BITS,
    SecretHash,
    generate_root_secret,
    generate_secret,
    key_entropy_bits,
)
from dakera_server.engine.keys.store import ROOT_KEY_ID, KeyStore
from dakera_server.errors import InvalidApiKey

__all__ = ["ROOT_CALLER", "KeyRing", "SecretHash", "generate_secret"]

ROOT_KEY_META = "root_key_hash"
MISS_REFRESH_INTERVAL = 0.1
SECRET_SHAPE = re.compile(r"dk_[0-9a-f]{32}")

ROOT_CALLER = Caller(key_id=ROOT_KEY_ID, name="root", scope=Scope.SUPER_ADMIN, namespaces=None)


class KeyRing:
    """Resolves a presented secret to a ``Caller``; holds only hashes."""

    def __init__(self, keys: KeyStore, root_key: str | None) -> None:
        self.keys = keys
        self._root: SecretHash | None = None
        self.generated_root_key: str | None = None
        self.root_key_is_short = root_key is not None and key_entropy_bits(root_key) < ROOT_KEY_BITS
        self._miss_lock = threading.Lock()
        self._last_miss_refresh = 0.0
        if root_key is not None:
            self._root = SecretHash.of(root_key)
        else:
            stored = keys.meta(ROOT_KEY_META)
            if stored is not None:
                self._root = SecretHash.from_dict(orjson.loads(stored))

    def bootstrap(self) -> str | None:
        """With no root key configured or stored and no stored key, make a root key.

        Returns its secret, to be shown once; only its hash is stored.
        """
        if self._root is not None or self.keys.count() > 0:
            return None
        secret = generate_root_secret()
        digest = SecretHash.of(secret)
        # The secret's size is kept beside its hash (``doctor`` checks the root key's entropy).
        bits = 4 * (len(secret) - len("dk_"))
        payload = orjson.dumps({**digest.to_dict(), "bits": bits})
        stored = self.keys.insert_meta(ROOT_KEY_META, payload)
        if stored != payload:
            # Another node sharing the store bootstrapped first: its root key stands, and its
            # secret was shown by that node, never by this one.
            self._root = SecretHash.from_dict(orjson.loads(stored))
            return None
        self._root = digest
        self.generated_root_key = secret
        return secret

    def authenticate(self, secret: str) -> Caller:
        """The caller for ``secret``; ``InvalidApiKey`` / ``ApiKeyExpired`` otherwise."""
        if len(secret) > MAX_SECRET_CHARS:
            raise InvalidApiKey("invalid API key")
        root = self._root
        if root is not None and root.matches(secret):
            return ROOT_CALLER
        record = self.keys.find(secret)
        if record is None and self._refresh_on_miss(secret):
            record = self.keys.find(secret)
        if record is None:
            raise InvalidApiKey("invalid API key")
        return self.keys.caller_for(record)

    def _refresh_on_miss(self, secret: str) -> bool:
        """Reload keys another process may have added; at most every ``MISS_REFRESH_INTERVAL``."""
        if not SECRET_SHAPE.fullmatch(secret):
            return False
        now = time.monotonic()
        with self._miss_lock:
            if now - self._last_miss_refresh < MISS_REFRESH_INTERVAL:
                return False
            self._last_miss_refresh = now
        return self.keys.refresh_if_changed()
