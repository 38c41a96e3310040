"""A stored API key without its secret (``KeyRecord``), a freshly made one with it (``NewKey``),
and the rule of who may manage which key (dakera-api.md §4.10, §9): an unrestricted super_admin
manages every key; anyone else only keys whose scope is at most theirs and whose every grant lies
inside their own grants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.keys.rules import INERT_GRANTS, SecretHash

__all__ = ["KeyRecord", "NewKey", "manages"]


@dataclass(frozen=True)
class KeyRecord:
    """One stored key, without its secret.

    ``active`` is cleared by deactivation; ``active_until`` is set by a rotation with a grace
    period (the old key works until then). ``namespaces`` is ``None`` for every namespace.
    """

    key_id: str
    name: str
    scope: Scope
    namespaces: tuple[str, ...] | None
    created_at: int
    expires_at: int | None
    lookup: str
    secret_hash: SecretHash
    active: bool = True
    active_until: int | None = None
    created_by: str = ""
    rotated_to: str | None = None

    def is_active(self, now: float) -> bool:
        """Not deactivated, and not past a rotation's grace period."""
        return self.active and (self.active_until is None or now < self.active_until)

    def is_expired(self, now: float) -> bool:
        """Past ``expires_at``."""
        return self.expires_at is not None and now >= self.expires_at

    @cached_property
    def caller(self) -> Caller:
        """The caller a request with this key acts as (built once per record)."""
        return Caller(self.key_id, self.name, self.scope, self.namespaces, self.expires_at)

    def reaches(self, namespace: str) -> bool:
        """Whether the key is *restricted* to grants that include ``namespace``."""
        return self.namespaces is not None and self.caller.can_see(namespace)

    def to_wire(self, now: float) -> dict[str, Any]:
        """The KeyInfo object (dakera-api.md §3.11); never the secret."""
        wire: dict[str, Any] = {
            "key_id": self.key_id,
            "name": self.name,
            "scope": self.scope.wire,
            "namespaces": None if self.namespaces is None else list(self.namespaces),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "active": self.is_active(now),
            "expired": self.is_expired(now),
            "grants_version": 1,
            "inert_namespaces": [g for g in self.namespaces or () if g in INERT_GRANTS],
        }
        if self.active_until is not None:
            wire["active_until"] = self.active_until
        return wire

    def to_payload(self) -> bytes:
        """Stored form: everything but the secret, which was never known to the record."""
        return orjson.dumps(
            {
                "key_id": self.key_id,
                "name": self.name,
                "scope": self.scope.wire,
                "namespaces": None if self.namespaces is None else list(self.namespaces),
                "created_at": self.created_at,
                "expires_at": self.expires_at,
                "lookup": self.lookup,
                "hash": self.secret_hash.to_dict(),
                "active": self.active,
                "active_until": self.active_until,
                "created_by": self.created_by,
                "rotated_to": self.rotated_to,
            }
        )

    @classmethod
    def from_payload(cls, data: bytes) -> KeyRecord:
        """Inverse of ``to_payload``."""
        raw = orjson.loads(data)
        grants = raw.get("namespaces")
        return cls(
            key_id=raw["key_id"],
            name=raw["name"],
            scope=Scope.parse(raw["scope"]),
            namespaces=None if grants is None else tuple(grants),
            created_at=int(raw["created_at"]),
            expires_at=raw.get("expires_at"),
            lookup=raw["lookup"],
            secret_hash=SecretHash.from_dict(raw["hash"]),
            active=bool(raw.get("active", True)),
            active_until=raw.get("active_until"),
            created_by=raw.get("created_by", ""),
            rotated_to=raw.get("rotated_to"),
        )


@dataclass(frozen=True)
class NewKey:
    """A freshly made key: its record and its secret (shown once, then forgotten)."""

    record: KeyRecord
    secret: str = field(repr=False)


def manages(caller: Caller, record: KeyRecord) -> bool:
    """Whether ``caller`` may see and change ``record`` (see the module docstring)."""
    if caller.unrestricted and caller.scope is Scope.SUPER_ADMIN:
        return True
    if record.namespaces is None or "*" in record.namespaces or record.scope > caller.scope:
        return False
    return all(caller.grant_matches_pattern(grant) for grant in record.namespaces)
