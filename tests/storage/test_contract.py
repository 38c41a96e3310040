"""The ``Store`` contract (storage/base.py), run against every implementation: the embedded
SQLite store and the PostgreSQL store (a fresh database of the session cluster per test)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import get_args

import pytest

from dakera_server.errors import StorageError
from dakera_server.security.crypto import MAGIC, AesGcmCodec, EncryptionKey
from dakera_server.storage.base import IdentityCodec, Op, PayloadCodec, Store, Table
from dakera_server.storage.postgres import PostgresStore
from dakera_server.storage.sqlite import SqliteStore

Opener = Callable[[PayloadCodec | None], Store]
KEY = AesGcmCodec(EncryptionKey(b"k" * 32))
OTHER_KEY = AesGcmCodec(EncryptionKey(b"o" * 32))


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens (and reopens) one store of the parametrized backend; closes them all after."""
    opened: list[Store] = []
    if request.param == "sqlite":

        def make(codec: PayloadCodec | None) -> Store:
            opened.append(SqliteStore(tmp_path / "store.db", codec))
            return opened[-1]

    else:
        cluster = request.getfixturevalue("postgres")
        url = cluster.url(cluster.create_database("contract"))

        def make(codec: PayloadCodec | None) -> Store:
            opened.append(PostgresStore(url, codec))
            return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(opener: Opener) -> Store:
    return opener(None)


def test_get_rows_answers_the_existing_keys_of_one_group(opener: Opener) -> None:
    store = opener(KEY)  # sealed payloads come back opened
    store.write([
        Op.put("memories", "m1", b"one", group="a", vector=b"\x01" * 8),
        Op.put("memories", "m2", b"two", group="a"),
        Op.put("memories", "m3", b"other agent", group="b"),
    ])  # fmt: skip
    rows = store.get_rows("memories", ["m2", "m1", "m3", "absent", "m1"], "a")
    assert sorted(rows) == ["m1", "m2"]
    assert (rows["m1"].payload, rows["m1"].vector, rows["m1"].group) == (b"one", b"\x01" * 8, "a")
    assert rows["m2"].payload == b"two" and rows["m2"].vector is None
    assert store.get_rows("memories", [], "a") == {}


def test_put_get_replace_delete(store: Store) -> None:
    store.write([Op.put("memories", "m1", b"one", group="a", vector=b"\x00" * 8)])
    row = store.get_row("memories", "m1", "a")
    assert row is not None and row.payload == b"one" and row.vector == b"\x00" * 8
    store.write([Op.put("memories", "m1", b"uno", group="a")])
    replaced = store.get_row("memories", "m1", "a")
    assert replaced is not None and replaced.payload == b"uno" and replaced.vector is None
    store.write([Op.delete("memories", "m1", group="a")])
    assert store.get_row("memories", "m1", "a") is None
    store.write([Op.delete("memories", "never-there", group="a")])  # absent is fine


def test_insert_keeps_an_existing_row_and_update_needs_one(store: Store) -> None:
    store.write([Op.update("memories", "m1", b"ghost", group="a")])
    assert store.get_row("memories", "m1", "a") is None  # update never creates
    store.write([Op.insert("memories", "m1", b"first", group="a", vector=b"\x01" * 4)])
    store.write([Op.insert("memories", "m1", b"second", group="a")])
    row = store.get_row("memories", "m1", "a")
    assert row is not None and row.payload == b"first" and row.vector == b"\x01" * 4
    store.write([Op.update("memories", "m1", b"changed", group="a")])
    changed = store.get_row("memories", "m1", "a")
    assert changed is not None and changed.payload == b"changed" and changed.vector is None
    store.write([Op.insert("meta", "pepper", b"p1"), Op.insert("meta", "pepper", b"p2")])
    store.write([Op.update("meta", "absent", b"x")])
    pepper = store.get_row("meta", "pepper")
    assert pepper is not None and pepper.payload == b"p1"
    assert store.get_row("meta", "absent") is None
    store.write([Op.update("meta", "pepper", b"p3")])
    assert store.get_row("meta", "pepper").payload == b"p3"  # type: ignore[union-attr]


def test_groups_are_separate(store: Store) -> None:
    store.write(
        [Op.put("vectors", "v", b"1", group="ns1"), Op.put("vectors", "v", b"2", group="ns2")]
    )
    assert store.count("vectors") == 2
    assert store.count("vectors", "ns1") == 1
    assert [r.payload for r in store.iter_rows("vectors", "ns2")] == [b"2"]
    store.write([Op.delete_group("vectors", "ns1")])
    assert [r.group for r in store.iter_rows("vectors")] == ["ns2"]


def test_ops_apply_in_batch_order(store: Store) -> None:
    store.write(
        [
            Op.put("sessions", "s", b"first", group="a"),
            Op.delete("sessions", "s", group="a"),
            Op.put("sessions", "s", b"third", group="a"),
            Op.put("sessions", "gone", b"x", group="a"),
            Op.delete("sessions", "gone", group="a"),
        ]
    )
    assert [(r.key, r.payload) for r in store.iter_rows("sessions", "a")] == [("s", b"third")]


def test_a_batch_is_all_or_nothing(store: Store) -> None:
    store.write([Op.put("memories", "keep", b"x", group="a")])
    bad = Op.put("no_such_table", "k", b"x")  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        store.write([Op.put("memories", "new", b"y", group="a"), bad])
    assert store.get_row("memories", "new", "a") is None
    assert store.count("memories") == 1


def test_meta_round_trip(store: Store) -> None:
    store.write([Op.put("meta", "k", b"v"), Op.put("meta", "plain:x", b"p")])
    found = store.get_row("meta", "k")
    assert found is not None and found.payload == b"v"
    assert sorted(r.key for r in store.iter_rows("meta")) == ["k", "plain:x"]
    store.write([Op.delete("meta", "k")])
    assert store.get_row("meta", "k") is None


def test_every_table_holds_binary_payloads(store: Store) -> None:
    blob = bytes(range(256)) * 4
    tables = get_args(Table)
    assert "meta" in tables
    tables = tuple(t for t in tables if t != "meta")
    store.write([Op.put(t, "k", blob, group="g", vector=blob[::-1]) for t in tables])
    for table in tables:
        row = store.get_row(table, "k", "g")
        assert row is not None and row.payload == blob and row.vector == blob[::-1]


def test_reopen_keeps_data(opener: Opener) -> None:
    first = opener(None)
    first.write([Op.put("sessions", "s1", b"p", group="a")])
    first.close()
    second = opener(None)
    assert second.count("sessions") == 1


def test_codec_seals_payloads_and_vectors(opener: Opener) -> None:
    sealed = opener(KEY)
    sealed.write([Op.put("memories", "m", b"secret", group="a", vector=b"vec")])
    row = sealed.get_row("memories", "m", "a")
    assert row is not None and (row.payload, row.vector) == (b"secret", b"vec")
    raw = opener(None)  # the same store read without the key: only ciphertext
    [stored] = raw.iter_rows("memories")
    assert stored.payload.startswith(MAGIC) and b"secret" not in stored.payload
    assert stored.vector is not None and b"vec" not in stored.vector


def test_reencode_switches_every_row_and_meta_atomically(opener: Opener) -> None:
    store = opener(KEY)
    store.write(
        [Op.put("memories", f"m{i}", f"p{i}".encode(), group="a") for i in range(30)]
        + [Op.put("meta", "secret-meta", b"m"), Op.put("meta", "plain:record", b"r")]
    )
    done = store.reencode(OTHER_KEY, extra_ops=[Op.put("meta", "plain:record", b"new")])
    assert done == 31  # 30 memories and one encoded meta row; plain:* rows stay as they are
    assert store.codec is OTHER_KEY
    assert sorted(r.payload for r in store.iter_rows("memories")) == sorted(
        f"p{i}".encode() for i in range(30)
    )
    plain = store.get_row("meta", "plain:record")
    assert plain is not None and plain.payload == b"new"
    store.close()
    reopened = opener(OTHER_KEY)
    meta = reopened.get_row("meta", "secret-meta")
    assert meta is not None and meta.payload == b"m"


def test_batched_reencode_encrypts_a_plaintext_store(opener: Opener) -> None:
    store = opener(None)
    store.write([Op.put("edges", f"e{i}", b"x", group="a") for i in range(25)])
    reading_both = AesGcmCodec(KEY.key, allow_plaintext=True)
    store.codec = reading_both
    seen: list[int] = []
    assert store.reencode(reading_both, batch_rows=7, progress=seen.append) == 25
    assert seen[-1] == 25
    store.scrub()
    store.close()
    strict = opener(KEY)
    assert [r.payload for r in strict.iter_rows("edges")] == [b"x"] * 25


def test_writes_during_a_rotation_land_under_the_new_key(opener: Opener) -> None:
    store = opener(KEY)
    store.write([Op.put("memories", f"m{i}", b"x" * 200, group="a") for i in range(2000)])
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(40):
                store.write([Op.put("sessions", f"s{i}", b"during", group="a")])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    store.reencode(OTHER_KEY)
    thread.join()
    assert errors == []
    store.close()
    reopened = opener(OTHER_KEY)
    assert sorted(r.key for r in reopened.iter_rows("sessions")) == sorted(
        f"s{i}" for i in range(40)
    )
    assert reopened.count("memories") == 2000


def test_identity_codec_is_the_default(store: Store) -> None:
    assert isinstance(store.codec, IdentityCodec)
    assert "password" not in store.describe()


def test_disk_usage_and_compact_report_real_sizes(store: Store) -> None:
    store.write([Op.put("memories", f"m{i}", b"p" * 2000, group="a") for i in range(200)])
    store.write([Op.delete_group("memories", "a")])
    usage = store.disk_usage()
    assert usage is not None and usage["total"] > 0
    assert usage["total"] == sum(v for k, v in usage.items() if k != "total")
    report = store.compact(force=True)
    assert report["bytes_before"] == usage["total"]
    assert 0 < report["bytes_after"] <= report["bytes_before"]
    assert store.count("memories") == 0
    store.write([Op.put("memories", "after", b"x", group="a")])  # still writable
    assert store.count("memories") == 1


def test_snapshot_is_one_instant_and_never_blocks_writers(store: Store) -> None:
    store.write([Op.put("memories", "before", b"1", group="a")])
    with store.snapshot() as view:
        started = time.perf_counter()
        store.write(
            [
                Op.put("memories", "after", b"2", group="a"),
                Op.delete("memories", "before", group="a"),
            ]
        )
        assert time.perf_counter() - started < 1.0  # the writer did not wait for the reader
        assert [r.key for r in view.iter_rows("memories")] == ["before"]
        assert view.count("memories") == 1
    assert [r.key for r in store.iter_rows("memories")] == ["after"]


def test_write_stream_is_one_transaction(store: Store) -> None:
    store.write([Op.put("memories", "old", b"x", group="a")])

    def failing() -> Iterator[list[Op]]:
        yield [Op.delete_group("memories", "a")]
        yield [Op.put("memories", "new", b"y", group="a")]
        raise RuntimeError("the source broke")

    with pytest.raises(RuntimeError):
        store.write_stream(failing())
    assert [r.key for r in store.iter_rows("memories")] == ["old"]
    done = store.write_stream(
        iter([[Op.delete_group("memories", "a")], [Op.put("memories", "new", b"y", group="a")]])
    )
    assert done == 2
    assert [r.key for r in store.iter_rows("memories")] == ["new"]


def test_snapshot_streams_large_tables_and_meta_sealed(opener: Opener) -> None:
    """More rows than one fetch, sealed payloads and meta rows all come back decoded."""
    store = opener(KEY)
    store.write(
        [
            Op.put("vectors", f"v{i:05d}", b"p%d" % i, group="ns", vector=b"\x01" * 8)
            for i in range(2500)
        ]
        + [Op.put("meta", "memory_policy:ns", b"policy")]
    )
    with store.snapshot() as view:
        rows = list(view.iter_rows("vectors", "ns"))
        meta = {r.key: r.payload for r in view.iter_rows("meta")}
        assert view.count("vectors") == 2500
    assert len(rows) == 2500 and {r.key for r in rows} == {f"v{i:05d}" for i in range(2500)}
    assert rows[0].vector == b"\x01" * 8 and rows[0].payload.startswith(b"p")
    assert meta["memory_policy:ns"] == b"policy"
