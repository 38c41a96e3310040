"""Turning encryption at rest on, checking the key at start-up, and rotating it.

Backend-neutral: everything goes through the ``Store`` contract (``reencode``, ``scrub``, the
meta table), so the embedded SQLite store and the PostgreSQL store behave the same. Files
beside the store are handled by what they are: the SQLite event log (``DATA_DIR/events.db``,
present only with the SQLite store) is staged and switched with the rotation, and index
snapshots under ``DATA_DIR/snapshots`` are dropped and rebuilt under the new key.

States of a store, decided before anything is read:

* no key configured, no encryption record   → plaintext, as before;
* no key configured, encryption record      → refuse to start ("data is encrypted");
* key configured, record, key check matches → serve, every record through AES-256-GCM;
* key configured, record, check differs     → refuse to start ("key does not match"), nothing
  on disk changes;
* key configured, no record (plaintext dir) → encrypt in place, in batches that commit on their
  own; the record is written first with ``state: migrating``, so an interrupted run resumes.

The encryption record lives in the store's ``plain:encryption`` meta row: the Argon2id salt,
the key id and the key check value. None of it reveals the key. With PostgreSQL the salt is
per database, so every node sharing it derives the same key from the same passphrase.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dakera_server.config import check_encryption_key
from dakera_server.errors import ConfigError, Conflict, InvalidInput
from dakera_server.security.crypto import (
    AesGcmCodec,
    EncryptionKey,
    KeyMismatch,
    derive_key,
)
from dakera_server.storage.base import Op, PayloadCodec, Store, Table
from dakera_server.storage.eventlog import EVENT_LOG_FILE, EventLog, SqliteEventLog

__all__ = ["EncryptionState", "Rotation", "open_codec", "record_of"]

logger = logging.getLogger("dakera_server.encryption")
RECORD_KEY = "plain:encryption"
MIGRATION_BATCH = 5000
SNAPSHOT_DIR = "snapshots"


def record_of(store: Store) -> dict[str, Any] | None:
    """The encryption record of a store, or ``None`` for a plaintext one."""
    row = store.get_row("meta", RECORD_KEY)
    return None if row is None else dict(orjson.loads(row.payload))


def _record(key: EncryptionKey, salt: bytes, state: str) -> bytes:
    return orjson.dumps(
        {
            "version": 1,
            "salt": salt.hex(),
            "key_id": key.key_id,
            "check": key.check_value().hex(),
            "state": state,
            "updated_at": int(time.time()),
        }
    )


def _matches(key: EncryptionKey, record: dict[str, Any]) -> bool:
    return secrets.compare_digest(key.check_value().hex(), str(record["check"]))


def open_codec(store: Store, secret: str | None, data_dir: Path) -> PayloadCodec | None:
    """The codec ``store`` (opened with the identity codec) must use from now on; refuses a
    missing or mismatched key, and encrypts a plaintext store in place first.

    ``None`` means plaintext. The caller installs a returned codec as ``store.codec``.
    """
    if secret is None:
        if record_of(store) is not None:
            raise ConfigError(
                f"the store ({store.describe()}) is encrypted but DAKERA_ENCRYPTION_KEY is not "
                "set: start with the key it was encrypted with."
            )
        return None
    check_encryption_key("DAKERA_ENCRYPTION_KEY", secret)
    record = record_of(store)
    salt = bytes.fromhex(record["salt"]) if record else secrets.token_bytes(16)
    key = EncryptionKey(derive_key(secret, salt))
    if record is not None and not _matches(key, record):
        raise KeyMismatch(
            "DAKERA_ENCRYPTION_KEY does not match the key this store was encrypted with "
            "(key check value differs); nothing was changed."
        )
    if record is None or record.get("state") == "migrating":
        _encrypt_in_place(store, key, salt)
        _encrypt_event_log(data_dir / EVENT_LOG_FILE, key)
        drop_snapshots(data_dir)
    return AesGcmCodec(key)


def drop_snapshots(data_dir: Path) -> int:
    """Delete index snapshots written under another key (or none): they are rebuilt from the
    store at the next start and then written under the current key."""
    removed = 0
    for path in (data_dir / SNAPSHOT_DIR).glob("*"):
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def _encrypt_event_log(path: Path, key: EncryptionKey) -> None:
    """Encrypt the SQLite business-event log beside the store (staged, so a crash can resume).
    A log inside the store's database (PostgreSQL) was encrypted by the store's ``reencode``."""
    if not path.exists():
        return
    log = SqliteEventLog(path, AesGcmCodec(key, allow_plaintext=True))
    try:
        log.stage_reencode(AesGcmCodec(key))
        log.apply_staged(AesGcmCodec(key))
        log.scrub()
    finally:
        log.close()


def _encrypt_in_place(store: Store, key: EncryptionKey, salt: bytes) -> None:
    """Encrypt a plaintext (or half-migrated) store, batch by batch, then scrub old pages."""
    store.write([Op.put("meta", RECORD_KEY, _record(key, salt, "migrating"))])
    started = time.perf_counter()
    store.codec = AesGcmCodec(key, allow_plaintext=True)
    count = store.reencode(
        AesGcmCodec(key, allow_plaintext=True),
        batch_rows=MIGRATION_BATCH,
        progress=lambda n: logger.info("encrypting the data directory: %d records", n),
    )
    store.codec = AesGcmCodec(key)
    store.write([Op.put("meta", RECORD_KEY, _record(key, salt, "done"))])
    store.scrub()
    logger.info("encrypted %d records in place in %.1f s", count, time.perf_counter() - started)


@dataclass
class EncryptionState:
    """Progress of the last rotation, for ``GET /v1/admin/encryption/status``."""

    status: str = "idle"
    records_done: int = 0
    records_total: int = 0
    started_at: int | None = None
    finished_at: int | None = None
    key_id: str | None = None
    previous_key_id: str | None = None
    error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def to_wire(self) -> dict[str, Any]:
        """JSON form (ids only, never key material)."""
        return {
            "status": self.status,
            "records_done": self.records_done,
            "records_total": self.records_total,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "key_id": self.key_id,
            "previous_key_id": self.previous_key_id,
            "error": self.error,
        }


class Rotation:
    """Re-encrypts the whole store under a new key in one transaction (atomic under kill -9)."""

    def __init__(self, store: Store, data_dir: Path, event_log: EventLog | None = None) -> None:
        self.store = store
        self.data_dir = data_dir
        self.event_log = event_log
        self.state = EncryptionState()

    @property
    def enabled(self) -> bool:
        """Whether the store is encrypted."""
        return isinstance(self.store.codec, AesGcmCodec)

    def current_key(self) -> EncryptionKey:
        """The key in use; refuses when encryption is off."""
        codec = self.store.codec
        if not isinstance(codec, AesGcmCodec):
            raise InvalidInput(
                "encryption at rest is not enabled: set DAKERA_ENCRYPTION_KEY and restart"
            )
        return codec.key

    def verify_old(self, old_secret: str) -> None:
        """The security document's form names the old key: it must be the current one."""
        current = self.current_key()
        record = record_of(self.store)
        salt = bytes.fromhex(record["salt"]) if record else b""
        if not secrets.compare_digest(
            EncryptionKey(derive_key(old_secret, salt)).check_value(), current.check_value()
        ):
            raise InvalidInput("'old_key' is not the key currently in use")

    def rotate(self, new_secret: str | None) -> dict[str, Any]:
        """Re-encrypt everything under ``new_secret``.

        A server-generated key would have to be stored or shown to survive a restart; neither is
        acceptable, so the new key is required (the operator sets it as DAKERA_ENCRYPTION_KEY).
        """
        current = self.current_key()
        if new_secret is None:
            raise InvalidInput(
                "'new_key' is required: the server never stores or shows key material, and the "
                "new key must be set as DAKERA_ENCRYPTION_KEY before the next restart"
            )
        try:
            check_encryption_key("new_key", new_secret)
        except ConfigError as exc:
            raise InvalidInput(str(exc)) from None
        if not self.state.lock.acquire(blocking=False):
            raise Conflict("a key rotation is already running")
        try:
            record = record_of(self.store) or {}
            salt = bytes.fromhex(record.get("salt", "")) or secrets.token_bytes(16)
            new_key = EncryptionKey(derive_key(new_secret, salt))
            if new_key.key_id == current.key_id:
                raise InvalidInput("'new_key' is the key already in use")
            self.state.status = "running"
            self.state.started_at = int(time.time())
            self.state.records_done = 0
            self.state.records_total = self._record_count()
            self.state.previous_key_id = current.key_id
            self.state.key_id = new_key.key_id
            self.state.error = None
            new_codec = AesGcmCodec(new_key)
            # A SQLite event log is a second file: stage its payloads first, switch the main store
            # in one transaction, then swap the staged payloads in (recover() settles a crash).
            # A PostgreSQL one is rewritten inside the store's transaction (stage/apply: no-ops).
            with self.event_log.hold() if self.event_log is not None else nullcontext():
                staged = 0 if self.event_log is None else self.event_log.stage_reencode(new_codec)
                count = self.store.reencode(
                    new_codec,
                    extra_ops=[Op.put("meta", RECORD_KEY, _record(new_key, salt, "done"))],
                    progress=self._progress,
                )
                if self.event_log is not None:
                    self.event_log.apply_staged(new_codec)
            count += staged
            drop_snapshots(self.data_dir)
            self.state.status = "completed"
            self.state.finished_at = int(time.time())
            return {
                "rotated": count,
                "skipped": 0,
                "namespaces": [],
                "key_id": new_key.key_id,
                "previous_key_id": current.key_id,
                "scope": "global",
                "reseal": "completed",
                "failed_namespaces": [],
                "action_required": "set DAKERA_ENCRYPTION_KEY to the new key before the next "
                "restart",
                "status_url": "/admin/encryption/status",
            }
        except BaseException as exc:
            self.state.status = "failed"
            self.state.error = type(exc).__name__
            raise
        finally:
            self.state.lock.release()

    def _record_count(self) -> int:
        tables: tuple[Table, ...] = (
            "memories",
            "sessions",
            "namespaces",
            "vectors",
            "api_keys",
            "edges",
            "trash",
        )
        return sum(self.store.count(table) for table in tables)

    def _progress(self, done: int) -> None:
        self.state.records_done = done
