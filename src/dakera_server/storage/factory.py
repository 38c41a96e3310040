"""Which store and event log a server opens: the one place the backend is chosen.

``DAKERA_STORAGE_URL`` unset: the embedded SQLite file ``DATA_DIR/dakera.db`` and the event log
``DATA_DIR/events.db``. Set to a ``postgresql://`` URL: ``PostgresStore`` on that database, the
event log and the attachment files (``storage/postgres/blobs.py``) in the same database.
Either way the data directory still holds the node's index
snapshots (caches: checked against the store before use).
"""

from __future__ import annotations

from pathlib import Path

from dakera_server.storage.base import PayloadCodec, Store
from dakera_server.storage.blobs import BlobStore, FileBlobStore
from dakera_server.storage.eventlog import EVENT_LOG_FILE, EventLog, SqliteEventLog
from dakera_server.storage.sqlite import SqliteStore

__all__ = ["ATTACHMENTS_DIR", "DB_FILE", "open_blob_store", "open_event_log", "open_store"]

DB_FILE = "dakera.db"
ATTACHMENTS_DIR = "attachments"


def open_store(storage_url: str | None, data_dir: Path, codec: PayloadCodec | None = None) -> Store:
    """The store the settings select, opened (and its schema migrated)."""
    if storage_url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteStore(data_dir / DB_FILE, codec)
    # Imported here: an embedded server never loads the PostgreSQL driver.
    from dakera_server.storage.postgres import PostgresStore

    return PostgresStore(storage_url, codec)


def open_event_log(store: Store, data_dir: Path) -> EventLog:
    """The business-event log that goes with ``store``."""
    if isinstance(store, SqliteStore):
        return SqliteEventLog(data_dir / EVENT_LOG_FILE, store.codec)
    from dakera_server.storage.postgres import PostgresEventLog, PostgresStore

    if not isinstance(store, PostgresStore):
        raise TypeError(f"no event log for {type(store).__name__}")
    return PostgresEventLog(store)


def open_blob_store(store: Store, data_dir: Path) -> BlobStore:
    """Where attachment files go: files under ``DATA_DIR/attachments`` beside a SQLite store,
    the shared database beside a PostgreSQL one (every node serves every file)."""
    if isinstance(store, SqliteStore):
        return FileBlobStore(data_dir / ATTACHMENTS_DIR)
    from dakera_server.storage.postgres import PostgresBlobStore, PostgresStore

    if not isinstance(store, PostgresStore):
        raise TypeError(f"no blob store for {type(store).__name__}")
    return PostgresBlobStore(store.pool)
