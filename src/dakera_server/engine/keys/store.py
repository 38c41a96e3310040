"""API keys: records, lifecycle (create, update, rotate, deactivate, delete) and lookup.

A secret is never stored. Each record keeps a salted HMAC-SHA256 of its secret, compared in
constant time, and a *lookup handle*: HMAC-SHA256 of the secret under a server-wide random
pepper (kept in the store's meta table), cut to 64 bits. The handle indexes the records, so
authenticating costs one dict lookup and two HMACs however many keys exist (the pepper and the
records indexed under it are one ``KeyIndex``, swapped whole); no scan, and the
handle alone cannot be reversed into the secret.

Several processes may share a data directory (the server and ``dakera-server keys``). Every key
write also stores a fresh token in the meta row ``api_keys_version``; ``refresh_if_changed``
re-reads the keys only when that token is not the one this process last saw, so a key created
or revoked from the command line reaches a running server without a restart.

Who may manage which key (dakera-api.md §4.10, §9): an unrestricted super_admin manages every
key; anyone else only keys whose scope is at most theirs and whose every grant lies inside their
own grants. Keys outside that reach answer exactly like keys that do not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.events.bus import EventBus
from dakera_server.engine.keys.records import KeyRecord, NewKey, manages
from dakera_server.engine.keys.rules import (
    KEY_ID_PATTERN,
    SecretHash,
    check_expires_in_days,
    check_grace_secs,
    check_grants,
    check_key_name,
    check_scope,
    generate_secret,
    new_key_id,
)
from dakera_server.engine.keys.usage import UsageBook
from dakera_server.errors import (
    ApiKeyExpired,
    ApiKeyNotFound,
    Conflict,
    DakeraError,
    InvalidApiKey,
    InvalidInput,
    NamespaceAccessDenied,
    NamespaceNotFound,
    StorageError,
)
from dakera_server.storage.base import Op, Store

__all__ = [
    "ROOT_KEY_ID",
    "KeyRecord",
    "KeyStore",
    "SecretHash",
    "generate_secret",
]

logger = logging.getLogger("dakera_server.keys")

KEY_GROUP = "key"
PEPPER_META = "api_key_pepper"
VERSION_META = "api_keys_version"
ROOT_KEY_ID = "root"


# ------------------------------------------------------------------------------ the store
@dataclass(frozen=True)
class KeyIndex:
    """The pepper and the records indexed under it, replaced as one object: a restore brings
    another pepper with its keys, and a lookup must never pair one with the other."""

    pepper: bytes
    by_id: dict[str, KeyRecord]
    by_lookup: dict[str, KeyRecord]

    @classmethod
    def of(cls, pepper: bytes, records: Sequence[KeyRecord]) -> KeyIndex:
        """Index ``records`` (their lookup handles were derived under ``pepper``)."""
        return cls(pepper, {r.key_id: r for r in records}, {r.lookup: r for r in records})

    def handle(self, secret: str) -> str:
        """The non-secret index of ``secret``: 64 bits of HMAC-SHA256 under the pepper."""
        return hmac.digest(self.pepper, secret.encode("utf-8"), hashlib.sha256)[:8].hex()


def _nothing() -> None:
    """The default hook: nothing to catch up with on a store of one process."""


class KeyStore:
    """Every stored key, indexed in memory by id and by lookup handle, persisted on change."""

    def __init__(
        self,
        store: Store,
        events: EventBus | None = None,
        *,
        clock: Callable[[], float] = time.time,
        node: str | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self.events = events or EventBus(clock)
        self._lock = threading.Lock()
        self._version: bytes | None = None
        # Replaced whole on every change, so the request path reads it without a lock.
        self._index = KeyIndex.of(b"", ())
        self.usage = UsageBook(store, node)  # ``node``: this node's name on a shared store
        # Set by the follower on a shared store: catch up with other nodes' key changes first
        # (a revocation on another node refuses the very next request here).
        self.before_lookup: Callable[[], object] = _nothing
        self.reload()

    # -------------------------------------------------------------- loading
    def _load_pepper(self) -> bytes:
        # First start on this data directory or database: insert-if-absent, then read back,
        # so two processes racing here both use whichever pepper committed first.
        return self.insert_meta(PEPPER_META, secrets.token_bytes(32))

    def _stored_version(self) -> bytes | None:
        row = self._store.get_row("meta", VERSION_META)
        return None if row is None else row.payload

    def reload(self) -> int:
        """Re-read the pepper and every key (a restore may have replaced both, committed on
        this node or another); returns how many keys there are."""
        version = self._stored_version()
        pepper = self._load_pepper()
        records = [
            KeyRecord.from_payload(row.payload)
            for row in self._store.iter_rows("api_keys", KEY_GROUP)
        ]
        with self._lock:
            self._index = KeyIndex.of(pepper, records)
            self._version = version
        return len(records)

    def refresh_if_changed(self) -> bool:
        """Reload when another process changed the keys since we last looked (one point read)."""
        if self._stored_version() == self._version:
            return False
        self.reload()
        return True

    def maintain(self) -> None:
        """Periodic work (background thread): persist usage, pick up other processes' changes.

        A busy or failing store is logged and retried next time; it never stops the caller.
        """
        try:
            self.usage.flush()
            self.refresh_if_changed()
        except DakeraError as exc:
            logger.warning("API key maintenance deferred: %s", exc.message)

    def meta(self, name: str) -> bytes | None:
        """A value of the store's meta table (the bootstrap root key's hash lives there)."""
        row = self._store.get_row("meta", name)
        return None if row is None else row.payload

    def insert_meta(self, name: str, value: bytes) -> bytes:
        """Store ``value`` under ``name`` unless a value is there already; returns the stored
        one (ours, or the one another process committed first)."""
        row = self._store.get_row("meta", name)
        if row is None:
            self._store.write([Op.insert("meta", name, value)])
            row = self._store.get_row("meta", name)
            if row is None:
                raise StorageError(f"the meta value {name!r} could not be stored")
        return row.payload

    def put_meta(self, name: str, value: bytes) -> None:
        """Durably set a meta value."""
        self._store.write([Op.put("meta", name, value)])

    def count(self) -> int:
        """How many keys are stored (the root key is not one of them)."""
        return len(self._index.by_id)

    # -------------------------------------------------------------- authentication
    def lookup_handle(self, secret: str) -> str:
        """The non-secret index of ``secret`` under the current pepper."""
        return self._index.handle(secret)

    def find(self, secret: str) -> KeyRecord | None:
        """The record whose secret is ``secret``, or ``None``. The handle is derived from the
        same index object it is looked up in, after catching up with other nodes."""
        self.before_lookup()
        index = self._index
        record = index.by_lookup.get(index.handle(secret))
        if record is None or not record.secret_hash.matches(secret):
            return None
        return record

    def caller_for(self, record: KeyRecord) -> Caller:
        """The caller of a matched key; 401 when it is deactivated, rotated out or expired."""
        now = self._clock()
        if not record.is_active(now):
            raise InvalidApiKey("invalid API key")
        if record.is_expired(now):
            raise ApiKeyExpired("the API key has expired")
        return record.caller

    # -------------------------------------------------------------- writes
    def _commit(self, ops: list[Op], changed: Sequence[KeyRecord], removed: Sequence[str]) -> None:
        """Persist ``ops`` with a new version token, then update the in-memory indexes."""
        token = secrets.token_bytes(8)
        self._store.write([*ops, Op.put("meta", VERSION_META, token)])
        with self._lock:
            index = self._index
            records = {k: v for k, v in index.by_id.items() if k not in removed}
            records.update({r.key_id: r for r in changed})
            self._index = KeyIndex.of(index.pepper, list(records.values()))
            self._version = token

    def _put(self, record: KeyRecord) -> Op:
        return Op.put("api_keys", record.key_id, record.to_payload(), group=KEY_GROUP)

    def _mint(
        self,
        *,
        name: str,
        scope: Scope,
        namespaces: tuple[str, ...] | None,
        expires_at: int | None,
        created_by: str,
    ) -> NewKey:
        secret = generate_secret()
        key_id = new_key_id()
        while key_id in self._index.by_id or key_id == ROOT_KEY_ID:
            key_id = new_key_id()
        record = KeyRecord(
            key_id=key_id,
            name=name,
            scope=scope,
            namespaces=namespaces,
            created_at=int(self._clock()),
            expires_at=expires_at,
            lookup=self.lookup_handle(secret),
            secret_hash=SecretHash.of(secret),
            created_by=created_by,
        )
        return NewKey(record, secret)

    def _check_within(self, caller: Caller, grants: tuple[str, ...] | None, scope: Scope) -> None:
        if scope > caller.scope:
            raise NamespaceAccessDenied(f"this key cannot grant the '{scope.wire}' scope")
        if grants is None:
            if not caller.unrestricted:
                raise NamespaceAccessDenied("only an unrestricted key can grant every namespace")
            return
        outside = [g for g in grants if not caller.grant_matches_pattern(g)]
        if outside:
            raise NamespaceAccessDenied(
                "this key can only grant namespaces within its own grants: "
                + ", ".join(repr(g) for g in outside)
            )

    def create(
        self,
        caller: Caller,
        *,
        name: Any,
        scope: Any,
        namespaces: Any = None,
        expires_in_days: Any = None,
    ) -> NewKey:
        """A new key with the given grants (``None`` = every namespace); secret shown once."""
        key_name = check_key_name(name)
        key_scope = check_scope(scope)
        grants = check_grants(namespaces)
        days = check_expires_in_days(expires_in_days)
        self._check_within(caller, grants, key_scope)
        expires_at = None if days is None else int(self._clock()) + days * 86_400
        new = self._mint(
            name=key_name,
            scope=key_scope,
            namespaces=grants,
            expires_at=expires_at,
            created_by=caller.key_id,
        )
        self._commit([self._put(new.record)], [new.record], ())
        self.events.emit(
            "key_created", details={"key_id": new.record.key_id, "name": new.record.name}
        )
        return new

    def create_for_namespace(
        self,
        caller: Caller,
        namespace: str,
        *,
        name: Any,
        scope: Any,
        extra_namespaces: Any = None,
        expires_in_days: Any = None,
    ) -> NewKey:
        """A key restricted to ``namespace`` plus ``extra_namespaces``, scope at most admin."""
        self._visible(caller, namespace)
        check_grants([namespace], "namespace")
        extras = check_grants(extra_namespaces, "extra_namespaces") or ()
        check_scope(scope, at_most=Scope.ADMIN)
        grants = list(dict.fromkeys([namespace, *extras]))
        return self.create(
            caller, name=name, scope=scope, namespaces=grants, expires_in_days=expires_in_days
        )

    # -------------------------------------------------------------- reads
    def _visible(self, caller: Caller, namespace: str | None) -> None:
        if namespace is not None and not caller.can_see(namespace):
            raise NamespaceNotFound(f"namespace '{namespace}' not found", resource="namespace")

    def _record(self, caller: Caller, key_id: str, namespace: str | None) -> KeyRecord:
        """A key the caller manages (and that reaches ``namespace``); else 404."""
        self._visible(caller, namespace)
        if key_id == ROOT_KEY_ID and namespace is None:
            raise InvalidInput("the root key is set by DAKERA_ROOT_API_KEY; change it there")
        record = self._index.by_id.get(key_id)
        if (
            record is None
            or not manages(caller, record)
            or (namespace is not None and not record.reaches(namespace))
        ):
            # Echo only what looks like a key id: a secret pasted into a URL is never repeated.
            shown = f" '{key_id}'" if KEY_ID_PATTERN.fullmatch(key_id) else ""
            raise ApiKeyNotFound(f"API key{shown} not found", resource="api_key")
        return record

    def list_keys(self, caller: Caller, namespace: str | None = None) -> list[KeyRecord]:
        """Keys the caller manages (restricted to ``namespace`` when given), oldest first."""
        self._visible(caller, namespace)
        found = [
            r
            for r in self._index.by_id.values()
            if manages(caller, r) and (namespace is None or r.reaches(namespace))
        ]
        return sorted(found, key=lambda r: (r.created_at, r.key_id))

    def get(self, caller: Caller, key_id: str, namespace: str | None = None) -> KeyRecord:
        """One key the caller manages; ``ApiKeyNotFound`` otherwise."""
        return self._record(caller, key_id, namespace)

    def describe(self, caller: Caller, key_id: str) -> dict[str, Any]:
        """KeyInfo of one key, including the root key's own description."""
        if key_id == ROOT_KEY_ID:
            return {
                "key_id": ROOT_KEY_ID,
                "name": "root",
                "scope": Scope.SUPER_ADMIN.wire,
                "namespaces": None,
                "created_at": None,
                "expires_at": None,
                "active": True,
                "expired": False,
                "grants_version": 1,
                "inert_namespaces": [],
            }
        return self._record(caller, key_id, None).to_wire(self._clock())

    def usage_of(self, caller: Caller, key_id: str, namespace: str | None = None) -> dict[str, Any]:
        """The ``/usage`` answer of a key the caller manages (the root key's too)."""
        if not (key_id == ROOT_KEY_ID and namespace is None):
            self._record(caller, key_id, namespace)
        wire = self.usage.get(key_id).to_wire(key_id)
        if namespace is not None:
            wire["namespace"] = namespace
        return wire

    def now(self) -> float:
        """The key store's clock (what expiry is measured against)."""
        return self._clock()

    # -------------------------------------------------------------- lifecycle
    def update(
        self,
        caller: Caller,
        key_id: str,
        changes: dict[str, Any],
        namespace: str | None = None,
    ) -> KeyRecord:
        """Rename a key or replace its grants (``namespaces: None`` = every namespace).

        The scope cannot change; an inactive key is a 409; new grants must lie inside the
        caller's own.
        """
        record = self._record(caller, key_id, namespace)
        if not record.is_active(self._clock()):
            raise Conflict(f"API key '{record.key_id}' is not active")
        if not changes:
            raise InvalidInput("give 'name' or 'namespaces' to change")
        updated = record
        if "name" in changes:
            updated = replace(updated, name=check_key_name(changes["name"]))
        if "namespaces" in changes:
            grants = check_grants(changes["namespaces"])
            self._check_within(caller, grants, record.scope)
            updated = replace(updated, namespaces=grants)
        self._commit([self._put(updated)], [updated], ())
        return updated

    def deactivate(self, caller: Caller, key_id: str, namespace: str | None = None) -> KeyRecord:
        """Turn a key off for good (it stays listed as inactive); idempotent."""
        record = self._record(caller, key_id, namespace)
        updated = replace(record, active=False)
        self._commit([self._put(updated)], [updated], ())
        self.events.emit("key_deactivated", details={"key_id": key_id, "name": record.name})
        return updated

    def delete(self, caller: Caller, key_id: str, namespace: str | None = None) -> KeyRecord:
        """Remove a key and its usage counters; its secret stops working at once."""
        record = self._record(caller, key_id, namespace)
        ops = [Op.delete("api_keys", key_id, group=KEY_GROUP), *self.usage.forget_ops([key_id])]
        self._commit(ops, (), [key_id])
        self.events.emit("key_revoked", details={"key_id": key_id, "name": record.name})
        return record

    def rotate(
        self, caller: Caller, key_id: str, grace_secs: Any = None
    ) -> tuple[NewKey, KeyRecord]:
        """A new secret and id with the same name, scope, grants and expiry.

        The old key stops at once, or after ``grace_secs`` (≤ 7 days). Returns the new key and
        the old record as it now is.
        """
        grace = check_grace_secs(grace_secs)
        record = self._record(caller, key_id, None)
        now = int(self._clock())
        if not record.is_active(now):
            raise Conflict(f"API key '{record.key_id}' is not active")
        new = self._mint(
            name=record.name,
            scope=record.scope,
            namespaces=record.namespaces,
            expires_at=record.expires_at,
            created_by=caller.key_id,
        )
        if grace:
            old = replace(record, active_until=now + grace, rotated_to=new.record.key_id)
        else:
            old = replace(record, active=False, rotated_to=new.record.key_id)
        self._commit([self._put(new.record), self._put(old)], [new.record, old], ())
        self.events.emit(
            "key_rotated",
            details={"key_id": key_id, "name": record.name, "new_key_id": new.record.key_id},
        )
        return new, old
