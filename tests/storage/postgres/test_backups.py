"""Backups and restores of a server on PostgreSQL: taken online through the repeatable-read
snapshot, restored into another PostgreSQL database (one transaction with its change records),
every memory coming back as stored; and a backup of PostgreSQL restored into the embedded
store, so data can leave the cluster."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dakera import DakeraClient

from dakera_server.engine.attachments.service import SYSTEM_READER
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.api.test_backups import TOPICS, recall_ids, restore
from tests.conftest import ROOT_KEY, start_server
from tests.pgcluster import PostgresCluster


def test_backup_of_postgres_restores_into_postgres_and_sqlite(
    postgres: PostgresCluster, tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    origin = start_server(
        tmp_path / "origin", embedder, storage_url=postgres.url(postgres.create_database("bk_a"))
    )
    into_pg = start_server(
        tmp_path / "into-pg", embedder, storage_url=postgres.url(postgres.create_database("bk_b"))
    )
    into_sqlite = start_server(tmp_path / "into-sqlite", embedder)
    try:
        client = DakeraClient(origin.url, api_key=ROOT_KEY)
        for i in range(40):
            client.store_memory(
                "pg-agent",
                f"note {i}: {TOPICS[i % 10]} memory number {i} with detail {i * 7}",
                importance=round(0.2 + (i % 7) / 10, 2),
            )
        client.upsert("pg-ns", [{"id": "v1", "values": [1.0, 0.0, 0.0]}])
        with origin.http() as http:
            created = http.post("/v1/admin/backups", json={"name": "pg"}).json()
            assert created["status"] == "completed", created
            data = http.get(f"/v1/admin/backups/{created['backup_id']}/download").content
        # Recall at backup time: the backup commits pending full-text writes first, so these
        # score on the statistics a restored server has (before that, a recall within a
        # quarter second of the last store ranked near-ties differently about one run in six).
        at_backup = recall_ids(client, "pg-agent")
        before = sorted(
            (m["id"], m["content"], m["importance"])
            for m in client.export_memories(format="jsonl", agent_id="pg-agent").data
        )
        for target in (into_pg, into_sqlite):
            assert restore(target, data)["status"] == "completed"
            restored = DakeraClient(target.url, api_key=ROOT_KEY)
            after = sorted(
                (m["id"], m["content"], m["importance"])
                for m in restored.export_memories(format="jsonl", agent_id="pg-agent").data
            )
            assert after == before
            assert recall_ids(restored, "pg-agent") == at_backup
            assert restored.query("pg-ns", [1.0, 0.0, 0.0], top_k=1).results[0].id == "v1"
        assert len(before) == 40
    finally:
        for server in (origin, into_pg, into_sqlite):
            server.stop()


def test_attachment_files_of_postgres_come_back_even_if_deleted_during_the_backup(
    postgres: PostgresCluster, tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    """The files are read in the backup's repeatable-read transaction: one deleted (record and
    blob rows) after the instant is still in the backup; restored into PostgreSQL and into the
    embedded store with the same bytes, ETag and type."""
    files = {"attachments_enabled": True, "max_attachment_bytes": 4_000_000}
    origin = start_server(
        tmp_path / "origin",
        embedder,
        storage_url=postgres.url(postgres.create_database("bkf_a")),
        **files,
    )
    into_pg = start_server(
        tmp_path / "into-pg",
        embedder,
        storage_url=postgres.url(postgres.create_database("bkf_b")),
        **files,
    )
    into_sqlite = start_server(tmp_path / "into-sqlite", embedder, **files)
    try:
        sdk = DakeraClient(origin.url, api_key=ROOT_KEY)
        big = os.urandom(1_500_000)  # many 64 KiB chunk rows, two backup frames
        kept = sdk.upload_attachment("_dakera_agent_pg-files", big).attachment_ref
        note = b"a note deleted while the backup runs"
        gone = sdk.upload_attachment("pg-docs", note, content_type="text/plain").attachment_ref
        memory = sdk.store_memory("pg-files", "the big file", attachment_ref=kept)
        store = origin.engine.portability.backups.store
        taking = store.snapshot

        @contextlib.contextmanager
        def snapshot_then_delete() -> Iterator[Any]:
            with taking() as view:
                origin.engine.attachments.delete(SYSTEM_READER, "pg-docs", gone)
                yield view

        store.snapshot = snapshot_then_delete  # type: ignore[method-assign]
        try:
            with origin.http() as http:
                created = http.post("/v1/admin/backups", json={"name": "pg-files"}).json()
                data = http.get(f"/v1/admin/backups/{created['backup_id']}/download").content
        finally:
            del store.snapshot
        assert sdk.list_attachments("pg-docs") == []
        assert created["counts"]["attachments"] == 2
        assert created["counts"]["attachment_bytes"] == len(big) + len(note)
        for target in (into_pg, into_sqlite):
            assert restore(target, data)["status"] == "completed"
            restored = DakeraClient(target.url, api_key=ROOT_KEY)
            got = restored.download_attachment("_dakera_agent_pg-files", kept)
            assert got.data == big and got.etag == hashlib.sha256(big).hexdigest()
            again = restored.download_attachment("pg-docs", gone)
            assert again.data == note and again.content_type == "text/plain"
            assert restored.get_memory("pg-files", memory["id"])["attachment_ref"] == kept
    finally:
        for server in (origin, into_pg, into_sqlite):
            server.stop()
