"""The PostgreSQL schema, created and migrated by the server at start-up.

Everything lives in the ``dakera`` schema (so a database shared with other applications gets no
name clashes). ``dakera.schema_version`` holds one row, the number of migrations applied. At
start-up ``migrate`` takes a transaction-level advisory lock, reads the version and applies the
missing steps in the same transaction: two nodes starting at once serialize on the lock, and the
second finds the work done. A schema newer than this server refuses to start.

Tables:

* one per record kind (``memories``, ``sessions``, ``namespaces``, ``vectors``, ``api_keys``,
  ``edges``, ``trash``; ``attachments``, ``documents``, ``representations`` since version 2)
  with the SQLite shape: ``grp``, ``key``, ``payload``, ``vector``;
  ``toast_tuple_target`` at its maximum keeps a memory row (payload + 1.5 KB vector, sealed
  bytes that do not compress) inline instead of compressed and moved out of line;
* ``meta`` (key → value);
* the change log: ``change_heads`` (one row per change group: its latest number and the one
  before), ``changes`` (one record per operation), ``change_horizon`` (records at or below it
  were pruned), numbers drawn from the ``change_seq`` sequence;
* ``codec_state``: the fingerprint of the key the rows are sealed under, pinned by the first
  ``reencode`` (in-place encryption or rotation); ``NULL``: not pinned (a plaintext store);
* ``audit_events``: the business-event log (``storage/postgres/eventlog.py``);
* ``blobs`` and ``blob_chunks``: attachment files (``storage/postgres/blobs.py``);
* ``begin_access(fingerprint, checked)``: run first in every transaction. It takes the codec
  advisory lock shared (a rotation takes it exclusively) and, when ``checked``, raises SQLSTATE
  ``DK001`` if a fingerprint is pinned and the caller's is another one (or none).
"""

from __future__ import annotations

from typing import Any

import psycopg

from dakera_server.errors import StorageError
from dakera_server.storage.postgres.connect import LOCK_CLASS, LOCK_CODEC, LOCK_MIGRATE
from dakera_server.storage.postgres.errors import CODEC_CHANGED, map_postgres_errors

__all__ = ["DATA_TABLES", "MIGRATIONS", "SCHEMA", "migrate", "schema_version"]

SCHEMA = "dakera"
# The record tables of the first migration (it must keep creating exactly these), then those
# later migrations added; DATA_TABLES is every one of them.
FIRST_TABLES = ("memories", "sessions", "namespaces", "vectors", "api_keys", "edges", "trash")
LATER_TABLES = ("attachments", "documents", "representations")
DATA_TABLES = FIRST_TABLES + LATER_TABLES

_DATA_TABLE = """CREATE TABLE dakera.{name} (
    grp text NOT NULL,
    key text NOT NULL,
    payload bytea NOT NULL,
    vector bytea,
    PRIMARY KEY (grp, key)
) WITH (toast_tuple_target = 8160);"""

# Each entry migrates the schema from version i to i+1; never edit a released entry.
MIGRATIONS: tuple[str, ...] = (
    "\n".join(_DATA_TABLE.format(name=name) for name in FIRST_TABLES)
    + f"""
CREATE TABLE dakera.meta (key text PRIMARY KEY, value bytea NOT NULL);
CREATE SEQUENCE dakera.change_seq AS bigint;
CREATE TABLE dakera.change_heads (
    grp text PRIMARY KEY,
    seq bigint NOT NULL,
    prev bigint NOT NULL
);
CREATE TABLE dakera.changes (
    grp text NOT NULL,
    seq bigint NOT NULL,
    ord integer NOT NULL,
    tbl text NOT NULL,
    row_grp text NOT NULL,
    key text NOT NULL,
    op text NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (grp, seq, ord)
);
CREATE INDEX changes_by_seq ON dakera.changes (seq);
CREATE TABLE dakera.change_horizon (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq bigint NOT NULL
);
INSERT INTO dakera.change_horizon (seq) VALUES (0);
CREATE TABLE dakera.codec_state (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    fingerprint text
);
INSERT INTO dakera.codec_state (fingerprint) VALUES (NULL);
CREATE FUNCTION dakera.begin_access(expected text, checked boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    stored text;
BEGIN
    PERFORM pg_advisory_xact_lock_shared({LOCK_CLASS}, {LOCK_CODEC});
    SELECT fingerprint INTO stored FROM dakera.codec_state;
    IF checked AND stored IS NOT NULL AND stored IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'payload codec differs from the store''s' USING ERRCODE = '{CODEC_CHANGED}';
    END IF;
END
$$;
CREATE TABLE dakera.audit_events (
    id bigint PRIMARY KEY,
    ts bigint NOT NULL,
    event_type text NOT NULL,
    agent_id text,
    namespace text,
    payload bytea NOT NULL
);
CREATE INDEX audit_events_agent ON dakera.audit_events (agent_id, id);
CREATE INDEX audit_events_type ON dakera.audit_events (event_type, id);
CREATE INDEX audit_events_ts ON dakera.audit_events (ts);
""",
    # 2: attachment manifests, imported documents and vector records' extra representations
    # (the SQLite store's migration 3), and the blob store (``storage/postgres/blobs.py``):
    # one row per blob, its bytes in chunks of at most 64 KB.
    "\n".join(_DATA_TABLE.format(name=name) for name in LATER_TABLES)
    + """
CREATE TABLE dakera.blobs (
    name text PRIMARY KEY,
    committed boolean NOT NULL DEFAULT false,
    size bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    committed_at timestamptz
);
CREATE TABLE dakera.blob_chunks (
    name text NOT NULL REFERENCES dakera.blobs (name) ON DELETE CASCADE,
    chunk integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (name, chunk)
);
ALTER TABLE dakera.blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
""",
)


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The applied version (0 for a database the server never touched)."""
    with map_postgres_errors():
        exists = conn.execute("SELECT to_regclass('dakera.schema_version') IS NOT NULL").fetchone()
        if exists is None or not exists[0]:
            return 0
        found = conn.execute("SELECT version FROM dakera.schema_version").fetchone()
    return 0 if found is None else int(found[0])


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Bring the schema to ``len(MIGRATIONS)`` in one transaction; returns the version.

    The advisory lock serializes nodes starting together. ``CREATE SCHEMA`` runs only when the
    schema is missing, so a role that was given an existing schema needs no database-level
    CREATE privilege.
    """
    with map_postgres_errors(), conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, LOCK_MIGRATE))
        found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone()
        if found is None:
            conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS dakera.schema_version ("
            "only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row), "
            "version integer NOT NULL)"
        )
        row = conn.execute("SELECT version FROM dakera.schema_version").fetchone()
        version = 0 if row is None else int(row[0])
        if version > len(MIGRATIONS):
            raise StorageError(f"the database was written by a newer server (schema {version})")
        for index in range(version, len(MIGRATIONS)):
            conn.execute(MIGRATIONS[index])  # several statements: allowed without parameters
        if row is None:
            conn.execute(
                "INSERT INTO dakera.schema_version (version) VALUES (%s)", (len(MIGRATIONS),)
            )
        elif version != len(MIGRATIONS):
            conn.execute("UPDATE dakera.schema_version SET version = %s", (len(MIGRATIONS),))
    return len(MIGRATIONS)
