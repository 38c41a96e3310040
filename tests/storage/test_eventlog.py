"""The ``EventLog`` contract (storage/eventlog.py) on both backends: the SQLite file beside the
store and the ``audit_events`` table of the PostgreSQL store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dakera_server.security.crypto import AesGcmCodec, EncryptionKey
from dakera_server.storage.base import Store
from dakera_server.storage.eventlog import EventFilter, EventLog, EventRow
from dakera_server.storage.factory import open_event_log
from dakera_server.storage.postgres import PostgresStore
from dakera_server.storage.sqlite import SqliteStore

KEY = AesGcmCodec(EncryptionKey(b"e" * 32))
NEW_KEY = AesGcmCodec(EncryptionKey(b"n" * 32))


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened: Store = SqliteStore(tmp_path / "dakera.db", KEY)
    else:
        cluster = request.getfixturevalue("postgres")
        opened = PostgresStore(cluster.url(cluster.create_database("events")), KEY)
    yield opened
    opened.close()


@pytest.fixture
def log(store: Store, tmp_path: Path) -> Iterator[EventLog]:
    opened = open_event_log(store, tmp_path)
    yield opened
    opened.close()


def event(event_id: int, agent: str | None = "a", kind: str = "stored") -> EventRow:
    return EventRow(event_id, 1000 + event_id, kind, agent, None, f"payload {event_id}".encode())


def test_append_page_count_and_ids_continue(log: EventLog) -> None:
    assert log.last_id() == 0
    log.append([event(1), event(2, agent="b"), event(3, kind="forgotten")])
    log.append([event(2, agent="changed")])  # a retried id keeps what it was
    assert log.count() == 3 and log.last_id() == 3
    newest_first = log.page(EventFilter(), 10)
    assert [row.id for row in newest_first] == [3, 2, 1]
    assert newest_first[1].agent_id == "b" and newest_first[0].payload == b"payload 3"
    assert [r.id for r in log.page(EventFilter(agent_id="a"), 10)] == [3, 1]
    assert [r.id for r in log.page(EventFilter(event_type="forgotten"), 10)] == [3]
    assert [r.id for r in log.page(EventFilter(from_ts=1002, to_ts=1003), 10)] == [3, 2]
    assert [r.id for r in log.page(EventFilter(before_id=3), 1)] == [2]


def test_a_rotation_switches_the_log_with_the_store(store: Store, log: EventLog) -> None:
    log.append([event(i) for i in range(1, 6)])
    with log.hold():
        staged = log.stage_reencode(NEW_KEY)
        rewritten = store.reencode(NEW_KEY)
        log.apply_staged(NEW_KEY)
    assert staged + rewritten >= 5  # counted by the log (SQLite) or by the store (PostgreSQL)
    assert log.codec.fingerprint == NEW_KEY.fingerprint
    assert [r.payload for r in log.page(EventFilter(), 10)][-1] == b"payload 1"
    log.append([event(6)])
    assert log.count() == 6
