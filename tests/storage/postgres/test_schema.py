"""Schema creation and migration at start-up (storage/postgres/schema.py)."""

from __future__ import annotations

import threading

import pytest

from dakera_server.errors import StorageError
from dakera_server.storage.base import Op
from dakera_server.storage.postgres import PostgresStore
from dakera_server.storage.postgres.schema import MIGRATIONS
from tests.pgcluster import PostgresCluster


def test_a_fresh_database_gets_the_versioned_schema(postgres: PostgresCluster) -> None:
    database = postgres.create_database("schema")
    store = PostgresStore(postgres.url(database))
    try:
        assert store.schema_version == len(MIGRATIONS)
        assert postgres.query(database, "SELECT version FROM dakera.schema_version") == [
            (len(MIGRATIONS),)
        ]
        tables = {
            name
            for (name,) in postgres.query(
                database, "SELECT tablename FROM pg_tables WHERE schemaname = 'dakera'"
            )
        }
        assert {"memories", "vectors", "meta", "changes", "change_heads", "audit_events"} <= tables
        assert not postgres.query(
            database, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'"
        ), "nothing outside the dakera schema"
    finally:
        store.close()


def test_nodes_starting_together_migrate_once(postgres: PostgresCluster) -> None:
    url = postgres.url(postgres.create_database("race"))
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            stores.append(PostgresStore(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == [] and len(stores) == 4
        stores[0].write([Op.put("memories", "m", b"x", group="a")])
        assert all(store.count("memories") == 1 for store in stores)
    finally:
        for store in stores:
            store.close()


def test_reopening_applies_nothing_twice(postgres: PostgresCluster) -> None:
    url = postgres.url(postgres.create_database("reopen"))
    first = PostgresStore(url)
    first.write([Op.put("memories", "m", b"x", group="a")])
    first.close()
    second = PostgresStore(url)
    try:
        assert second.count("memories") == 1 and second.schema_version == len(MIGRATIONS)
    finally:
        second.close()


def test_a_newer_schema_refuses_to_start(postgres: PostgresCluster) -> None:
    database = postgres.create_database("newer")
    PostgresStore(postgres.url(database)).close()
    postgres.query(database, "UPDATE dakera.schema_version SET version = 999")
    with pytest.raises(StorageError, match="newer server"):
        PostgresStore(postgres.url(database))


def test_a_version_1_database_is_migrated_keeping_its_rows(postgres: PostgresCluster) -> None:
    """A database written by the first PostgreSQL release (schema 1) gets the tables added
    since (attachments, documents, representations, blobs), its rows untouched."""
    database = postgres.create_database("v1")
    postgres.query(database, "CREATE SCHEMA dakera")
    postgres.query(
        database,
        "CREATE TABLE dakera.schema_version (only_row boolean PRIMARY KEY DEFAULT true "
        "CHECK (only_row), version integer NOT NULL)",
    )
    postgres.query(database, MIGRATIONS[0])
    postgres.query(database, "INSERT INTO dakera.schema_version (version) VALUES (1)")
    postgres.query(
        database, "INSERT INTO dakera.memories (grp, key, payload) VALUES ('a', 'm', 'x')"
    )
    store = PostgresStore(postgres.url(database))
    try:
        assert store.schema_version == len(MIGRATIONS) >= 2
        row = store.get_row("memories", "m", "a")
        assert row is not None and row.payload == b"x"
        store.write([Op.put("documents", "d", b"doc", group="a")])
        assert store.count("documents") == 1
    finally:
        store.close()
