"""A restore replaces the API-key pepper and the keys together; a process that learns of it
(the next lookup on a shared store, or the reload after a restore) swaps both at once, and the
root key is accepted at every instant in between.

CI caught the old order: the pepper was re-read first and the root key's lookup handle after
it, so a restore-status poll in that gap got 401.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

from dakera_server.engine.keys.store import KEY_GROUP, PEPPER_META, VERSION_META, KeyStore
from dakera_server.security.keys import ROOT_CALLER, KeyRing
from dakera_server.storage.base import Op
from dakera_server.storage.sqlite import SqliteStore

ROOT = "dk_" + "ab" * 32


def restore_keys_of(source: SqliteStore, into: SqliteStore) -> None:
    """What a full restore writes for the keys: the source's pepper, its key rows, a new
    version token, and nothing of the target's keys left."""
    ops = [Op.delete_group("api_keys", KEY_GROUP)]
    ops += [Op.put("api_keys", r.key, r.payload, group=KEY_GROUP)
            for r in source.iter_rows("api_keys", KEY_GROUP)]  # fmt: skip
    pepper = source.get_row("meta", PEPPER_META)
    assert pepper is not None
    ops += [Op.put("meta", PEPPER_META, pepper.payload),
            Op.put("meta", VERSION_META, secrets.token_bytes(8))]  # fmt: skip
    into.write(ops)


def test_a_key_from_the_restored_backup_works_before_the_reload(tmp_path: Path) -> None:
    backup_store = SqliteStore(tmp_path / "backup.db")
    served = SqliteStore(tmp_path / "served.db")
    try:
        restored_key = KeyStore(backup_store).create(ROOT_CALLER, name="kept", scope="admin")
        ring = KeyRing(KeyStore(served), ROOT)
        old_key = ring.keys.create(ROOT_CALLER, name="old", scope="read")
        assert ring.keys.lookup_handle("x") != KeyStore(backup_store).lookup_handle("x")

        restore_keys_of(backup_store, served)

        # A miss makes the ring look for keys another process wrote: it finds the restored
        # pepper and records together, so the restored key's handle matches.
        assert ring.authenticate(restored_key.secret).key_id == restored_key.record.key_id
        assert ring.authenticate(ROOT) is ROOT_CALLER
        assert ring.keys.find(old_key.secret) is None
    finally:
        backup_store.close()
        served.close()


def test_the_root_key_is_accepted_while_the_pepper_changes_again_and_again(
    tmp_path: Path,
) -> None:
    backups = [SqliteStore(tmp_path / f"backup-{i}.db") for i in range(2)]
    served = SqliteStore(tmp_path / "served.db")
    try:
        for store in backups:  # two peppers, restored in turn
            KeyStore(store).create(ROOT_CALLER, name="kept", scope="admin")
        ring = KeyRing(KeyStore(served), ROOT)
        refused: list[Exception] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                try:
                    assert ring.authenticate(ROOT) is ROOT_CALLER
                except Exception as exc:  # any refusal is the failure
                    refused.append(exc)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            for turn in range(60):
                restore_keys_of(backups[turn % 2], served)
                ring.keys.reload()
        finally:
            done.set()
            poller.join()
        assert refused == []
    finally:
        for store in [*backups, served]:
            store.close()
