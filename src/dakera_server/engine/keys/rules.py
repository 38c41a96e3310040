"""API key rules: secret generation and hashing, and the checks every key field passes.

Kept apart from the key store so that the store reads as lifecycle only. A secret is
``dk_`` + 32 hex characters (128 random bits); only a salted HMAC-SHA256 of it is ever kept.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from dakera_server.engine.access import Scope
from dakera_server.errors import InvalidInput

__all__ = [
    "CREATE_WARNING",
    "INERT_GRANTS",
    "KEY_ID_PATTERN",
    "MAX_SECRET_CHARS",
    "ROOT_KEY_BITS",
    "SecretHash",
    "check_expires_in_days",
    "check_grace_secs",
    "check_grants",
    "check_key_name",
    "check_scope",
    "generate_root_secret",
    "generate_secret",
    "key_entropy_bits",
    "new_key_id",
]

MAX_NAME_CHARS = 128
MAX_GRANTS = 100
MAX_GRANT_BYTES = 255
MAX_EXPIRES_IN_DAYS = 36_500
MAX_GRACE_SECS = 604_800
# A presented string longer than this is refused before any hashing.
MAX_SECRET_CHARS = 512
KEY_ID_PATTERN = re.compile(r"dk_key_[0-9a-f]{8}")
GRANT_PATTERN = re.compile(r"^(\*|[A-Za-z0-9_][A-Za-z0-9_.:\-]*\*?)$")
INERT_GRANTS = frozenset({"_dakera_sessions", "_dakera_embedding_models"})
CREATE_WARNING = "Save this key — it will not be shown again."


ROOT_KEY_BITS = 256
_ALPHABETS = (
    (16, frozenset("0123456789abcdef")),
    (16, frozenset("0123456789ABCDEF")),
    (32, frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=")),
    (36, frozenset(string.digits + string.ascii_lowercase)),
    (62, frozenset(string.digits + string.ascii_letters)),
    (64, frozenset(string.digits + string.ascii_letters + "+/=-_")),
)


def generate_secret() -> str:
    """A new application key secret: ``dk_`` + 32 hex characters (128 random bits).

    The shape the SDK and the key routes have always handed out; 128 bits from the OS CSPRNG
    cannot be guessed online. The root key is held to the security document's higher bar.
    """
    return "dk_" + secrets.token_hex(16)


def generate_root_secret() -> str:
    """A new root (super_admin) key: ``dk_`` + 64 hex characters, 256 random bits from the OS
    CSPRNG: the production checklist's "root API key with 256-bit+ entropy"."""
    return "dk_" + secrets.token_hex(ROOT_KEY_BITS // 8)


def key_entropy_bits(secret: str) -> int:
    """An upper bound on the entropy of a key, from its length and the smallest common alphabet
    it uses (a ``dk_`` prefix carries none).

    A key drawn uniformly from an alphabet of size A with n characters has n·log2(A) bits; this
    cannot tell a random key from a patterned one of the same shape, so keys with few distinct
    characters (``aaaa…``, ``abab…``) are scored by their distinct characters instead. A key from
    ``openssl rand -hex 32`` has 256; a key written by hand has far less than this bound.
    """
    body = secret.removeprefix("dk_")
    if not body:
        return 0
    chars = set(body)
    size = next((n for n, alphabet in _ALPHABETS if chars <= alphabet), 95)
    if len(chars) < min(size, len(body)) / 4:
        return int(len(chars) * math.log2(size))
    return int(len(body) * math.log2(size))


def new_key_id() -> str:
    """A new public key id: ``dk_key_`` + 8 hex characters (distinct from any secret)."""
    return "dk_key_" + secrets.token_hex(4)


@dataclass(frozen=True)
class SecretHash:
    """A salted HMAC-SHA256 of a secret; the only form in which a secret is kept."""

    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, secret: str, salt: bytes | None = None) -> SecretHash:
        """Hash ``secret`` with ``salt`` (a fresh random salt by default)."""
        salt = salt if salt is not None else secrets.token_bytes(16)
        return cls(salt, hmac.digest(salt, secret.encode("utf-8"), hashlib.sha256))

    def matches(self, secret: str) -> bool:
        """Constant-time comparison of ``secret`` against this hash."""
        candidate = hmac.digest(self.salt, secret.encode("utf-8"), hashlib.sha256)
        return hmac.compare_digest(candidate, self.digest)

    def to_dict(self) -> dict[str, str]:
        """JSON-able form."""
        return {"salt": self.salt.hex(), "digest": self.digest.hex()}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SecretHash:
        """Inverse of ``to_dict``."""
        return cls(bytes.fromhex(raw["salt"]), bytes.fromhex(raw["digest"]))


def check_key_name(value: Any) -> str:
    """A key name: a non-blank string of at most 128 characters."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'name' must be a non-empty string")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidInput(f"'name' is longer than {MAX_NAME_CHARS} characters")
    return value


def check_scope(value: Any, *, at_most: Scope = Scope.SUPER_ADMIN) -> Scope:
    """``read|write|admin|super_admin`` (up to ``at_most``) → Scope."""
    allowed = [s.wire for s in Scope if Scope.PUBLIC < s <= at_most]
    if not isinstance(value, str):
        raise InvalidInput(f"'scope' must be one of {', '.join(allowed)}")
    try:
        scope = Scope.parse(value)
    except ValueError:
        raise InvalidInput(f"'scope' must be one of {', '.join(allowed)}") from None
    if scope > at_most:
        raise InvalidInput(f"'scope' must be one of {', '.join(allowed)}")
    return scope


def check_grants(value: Any, field_name: str = "namespaces") -> tuple[str, ...] | None:
    """``None`` (every namespace) or ≤ 100 exact names / ``prefix*`` patterns of ≤ 255 bytes."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"'{field_name}' must be a list of namespace names")
    if len(value) > MAX_GRANTS:
        raise InvalidInput(f"'{field_name}' holds more than {MAX_GRANTS} entries")
    for grant in value:
        if len(grant.encode("utf-8")) > MAX_GRANT_BYTES:
            raise InvalidInput(f"'{field_name}' entry is longer than {MAX_GRANT_BYTES} bytes")
        if not GRANT_PATTERN.fullmatch(grant):
            raise InvalidInput(
                f"'{field_name}' entry {grant!r} is not a namespace name or a 'prefix*' pattern"
            )
    return tuple(dict.fromkeys(value))


def check_expires_in_days(value: Any) -> int | None:
    """A whole number of days between 1 and 36500, or ``None``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("'expires_in_days' must be a whole number of days")
    if not 1 <= value <= MAX_EXPIRES_IN_DAYS:
        raise InvalidInput(f"'expires_in_days' must be between 1 and {MAX_EXPIRES_IN_DAYS}")
    return value


def check_grace_secs(value: Any) -> int:
    """Rotation grace: 0 (none) up to 604800 seconds (7 days)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("'grace_secs' must be a whole number of seconds")
    if not 0 <= value <= MAX_GRACE_SECS:
        raise InvalidInput(f"'grace_secs' must be between 0 and {MAX_GRACE_SECS}")
    return value
