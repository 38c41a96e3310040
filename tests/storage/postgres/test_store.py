"""What the PostgreSQL store promises beyond the shared contract: durable commits, the codec
guard between nodes, and its behaviour while PostgreSQL is down and after it comes back."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from dakera_server.errors import InvalidInput, Unavailable
from dakera_server.security.crypto import AesGcmCodec, EncryptionKey
from dakera_server.storage.base import Op
from dakera_server.storage.postgres import CodecChanged, PostgresStore, describe_url
from tests import pgcluster
from tests.pgcluster import PostgresCluster

KEY = AesGcmCodec(EncryptionKey(b"k" * 32))
OTHER_KEY = AesGcmCodec(EncryptionKey(b"o" * 32))


@pytest.fixture
def url(postgres: PostgresCluster) -> str:
    return postgres.url(postgres.create_database("store"))


def test_commits_are_synchronous_even_when_the_database_says_off(
    postgres: PostgresCluster,
) -> None:
    database = postgres.create_database("async")
    postgres.query(database, f'ALTER DATABASE "{database}" SET synchronous_commit = off')
    store = PostgresStore(postgres.url(database))
    try:
        with store.pool.connection() as conn:
            found = conn.execute("SHOW synchronous_commit").fetchone()
            conn.rollback()
        assert found == ("on",)
    finally:
        store.close()


def test_a_node_holding_a_rotated_out_key_can_neither_write_nor_read(url: str) -> None:
    first = PostgresStore(url, KEY)
    first.reencode(KEY)  # pins the fingerprint, as in-place encryption does at start-up
    second = PostgresStore(url, KEY)
    plaintext = PostgresStore(url)
    try:
        second.write([Op.put("memories", "m1", b"x", group="a")])
        first.reencode(OTHER_KEY)  # a rotation on the first node
        with pytest.raises(CodecChanged) as refused:
            second.write([Op.put("memories", "m2", b"stale", group="a")])
        assert refused.value.status == 503
        with pytest.raises(CodecChanged):
            second.get_row("memories", "m1", "a")
        with pytest.raises(CodecChanged):
            plaintext.write([Op.put("memories", "m3", b"plain", group="a")])
        assert second.get_row("meta", "plain:anything") is None  # plain meta stays readable
        assert first.count("memories") == 1
        row = first.get_row("memories", "m1", "a")
        assert row is not None and row.payload == b"x"
    finally:
        for store in (first, second, plaintext):
            store.close()


def test_a_nul_character_in_a_key_is_invalid_input(url: str) -> None:
    store = PostgresStore(url)
    try:
        with pytest.raises(InvalidInput):
            store.write([Op.put("vectors", "a\x00b", b"x", group="ns")])
        assert store.count("vectors") == 0
    finally:
        store.close()


def test_the_password_never_appears_in_descriptions(postgres: PostgresCluster) -> None:
    database = postgres.create_database("secret")
    url = postgres.url(database, password="s3cret-pw")
    store = PostgresStore(url)
    try:
        assert "s3cret-pw" not in store.describe()
        assert store.describe() == f"postgresql postgres@127.0.0.1:{postgres.port}/{database}"
        assert "s3cret-pw" not in repr(store)
    finally:
        store.close()
    assert describe_url("postgresql://u:pw@db.example:6543/app") == (
        "postgresql u@db.example:6543/app"
    )


def test_an_unreachable_database_refuses_to_open_without_leaking_the_password() -> None:
    port = pgcluster._free_port()
    with pytest.raises(Unavailable) as refused:
        PostgresStore(f"postgresql://u:hunter22@127.0.0.1:{port}/x?connect_timeout=2")
    assert f"127.0.0.1:{port}" in refused.value.message
    assert "hunter22" not in refused.value.message


@pytest.mark.slow
def test_writes_across_a_postgres_crash_and_restart(own_cluster: PostgresCluster) -> None:
    """PostgreSQL killed (immediate shutdown) and restarted under four writers: writes raise
    Unavailable while it is down, every acknowledged write is there afterwards, and the same
    store (pool) writes again without being reopened."""
    database = own_cluster.create_database("restart")
    store = PostgresStore(own_cluster.url(database))
    listener = store.change_log.listen()
    acknowledged: list[str] = []
    refused: list[str] = []
    other: list[BaseException] = []
    stop = threading.Event()
    restarted_at: list[float] = []
    after_restart: list[str] = []

    def writer(index: int) -> None:
        for n in range(100_000):
            if stop.is_set():
                return
            key = f"w{index}-{n}"
            try:
                store.write([Op.put("memories", key, b"x", group=f"g{index % 2}")])
            except Unavailable:
                refused.append(key)
                time.sleep(0.05)
                continue
            except BaseException as exc:
                other.append(exc)
                return
            acknowledged.append(key)
            if restarted_at:
                after_restart.append(key)

    writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in writers:
        thread.start()
    try:
        time.sleep(1.0)
        own_cluster.stop_immediately()
        with pytest.raises(Unavailable):  # the wake-up connection is gone: catch up
            while listener.wait(5):  # (after the notices already received)
                pass
        time.sleep(1.5)
        own_cluster.start()
        restarted_at.append(time.monotonic())
        deadline = time.monotonic() + 30
        while len(after_restart) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in writers:
            thread.join()
        listener.close()
    try:
        assert other == []
        assert refused, "writes while PostgreSQL was down must fail, not succeed"
        assert len(after_restart) >= 20, "the pool must reconnect by itself"
        stored = {row.key for row in store.iter_rows("memories")}
        missing = set(acknowledged) - stored
        assert not missing, f"{len(missing)} acknowledged writes lost"
        again = store.change_log.listen()
        try:
            receipt = store.commit([Op.put("memories", "last", b"x", group="g0")])
            assert [n.seq for n in again.wait(10)] == [receipt["agent/g0"].seq]
        finally:
            again.close()
    finally:
        store.close()
    with psycopg.connect(own_cluster.url(database)) as conn:
        count = conn.execute("SELECT count(*) FROM dakera.memories").fetchone()
    assert count is not None and count[0] >= len(acknowledged)
