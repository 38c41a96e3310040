"""The change log: written with every write, exact per-group catch-up, wake-ups, pruning."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from dakera_server.errors import StorageError
from dakera_server.storage.base import Change, GroupCommit, Op, change_group
from dakera_server.storage.postgres import PostgresStore
from tests.pgcluster import PostgresCluster


@pytest.fixture
def url(postgres: PostgresCluster) -> str:
    return postgres.url(postgres.create_database("changes"))


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(url)
    yield opened
    opened.close()


def test_change_groups_keep_agents_namespaces_and_keys_apart() -> None:
    assert change_group("memories", "bob", "m1") == "agent/bob"
    assert change_group("sessions", "bob", "s1") == "agent/bob"
    assert change_group("edges", "bob", "m1") == "agent/bob"
    assert change_group("trash", "bob", "m1") == "agent/bob"
    assert change_group("vectors", "bob", "v1") == "namespace/bob"
    assert change_group("namespaces", "", "bob") == "namespace/bob"
    assert change_group("api_keys", "key", "k1") == "keys/key"
    assert change_group("api_keys", "usage", "k1") == "keys/usage"
    assert change_group("meta", "", "memory_policy:x") == "meta"


def test_a_write_commits_its_change_records(store: PostgresStore) -> None:
    receipt = store.commit(
        [
            Op.put("memories", "m1", b"x", group="bob"),
            Op.put("vectors", "v1", b"y", group="docs"),
            Op.put("namespaces", "docs", b"info"),
            Op.delete("memories", "m0", group="bob"),
        ]
    )
    assert set(receipt) == {"agent/bob", "namespace/docs"}
    bob = receipt["agent/bob"]
    assert bob.previous == 0 and bob.seq > 0
    log = store.change_log
    assert log.heads(["agent/bob", "namespace/docs", "agent/nobody"]) == {
        "agent/bob": bob.seq,
        "namespace/docs": receipt["namespace/docs"].seq,
        "agent/nobody": 0,
    }
    assert log.changes_after("agent/bob", 0) == [
        Change("agent/bob", bob.seq, 0, "memories", "bob", "m1", "put"),
        Change("agent/bob", bob.seq, 3, "memories", "bob", "m0", "delete"),
    ]
    docs = log.changes_after("namespace/docs", 0)
    assert docs is not None and [(c.table, c.key) for c in docs] == [
        ("vectors", "v1"),
        ("namespaces", "docs"),
    ]
    second = store.commit([Op.delete_group("memories", "bob")])
    assert second["agent/bob"] == GroupCommit("agent/bob", bob.seq, second["agent/bob"].seq)
    assert second["agent/bob"].seq > bob.seq
    after = log.changes_after("agent/bob", bob.seq)
    assert after is not None and [(c.op, c.key) for c in after] == [("delete_group", "")]
    assert log.latest() >= second["agent/bob"].seq
    assert {c.group for c in log.changes_since(0)} == {"agent/bob", "namespace/docs"}


def test_a_failed_batch_records_nothing_and_wakes_no_one(store: PostgresStore) -> None:
    listener = store.change_log.listen()
    try:
        bad = Op.put("no_such_table", "k", b"x")  # type: ignore[arg-type]
        with pytest.raises(StorageError):
            store.write([Op.put("memories", "m", b"x", group="a"), bad])
        assert store.change_log.head("agent/a") == 0
        assert store.change_log.changes_since(0) == []
        assert listener.wait(0.3) == []
        receipt = store.commit([Op.put("memories", "m", b"x", group="a")])
        notices = listener.wait(10)
        assert [(n.group, n.seq) for n in notices] == [("agent/a", receipt["agent/a"].seq)]
    finally:
        listener.close()


def test_catching_up_per_group_misses_no_write_of_concurrent_nodes(url: str) -> None:
    """Two nodes (stores) write to three groups from four threads while a follower catches up
    by head + changes_after, the way phase 2's nodes will: it must see every write once."""
    nodes = [PostgresStore(url), PostgresStore(url)]
    groups = ["g0", "g1", "g2"]
    written: dict[str, set[str]] = {f"agent/{g}": set() for g in groups}
    seen: dict[str, list[str]] = {f"agent/{g}": [] for g in groups}
    cursors = dict.fromkeys(written, 0)
    done = threading.Event()
    lock = threading.Lock()

    def writer(index: int) -> None:
        node = nodes[index % 2]
        for i in range(60):
            group = groups[(index + i) % 3]
            key = f"w{index}-{i}"
            other = groups[(index + i + 1) % 3]
            node.write(
                [
                    Op.put("memories", key, b"x", group=group),
                    Op.put("sessions", key, b"y", group=other),
                ]
            )
            with lock:
                written[f"agent/{group}"].add(key)
                written[f"agent/{other}"].add(key)

    def catch_up() -> None:
        log = nodes[0].change_log
        for group, head in log.heads(list(cursors)).items():
            while cursors[group] < head:
                changes = log.changes_after(group, cursors[group], limit=25)
                assert changes is not None and changes, "a committed head has its records"
                assert all(c.seq > cursors[group] for c in changes)
                seen[group].extend(c.key for c in changes)
                cursors[group] = changes[-1].seq

    failures: list[BaseException] = []

    def follower() -> None:
        try:
            while not done.is_set():
                catch_up()
        except BaseException as exc:
            failures.append(exc)

    following = threading.Thread(target=follower)
    following.start()
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    following.join()
    try:
        assert failures == []
        catch_up()
        for group, keys in written.items():
            assert sorted(seen[group]) == sorted(keys), group  # each write seen exactly once
    finally:
        for node in nodes:
            node.close()


def test_changes_after_never_splits_a_transaction(store: PostgresStore) -> None:
    store.write([Op.put("memories", f"a{i}", b"x", group="t") for i in range(5)])
    whole = store.change_log.changes_after("agent/t", 0, limit=3)
    assert whole is not None and len(whole) == 5  # one transaction alone over the limit
    first_seq = whole[0].seq
    store.write([Op.put("memories", f"b{i}", b"x", group="t") for i in range(3)])
    store.write([Op.put("memories", f"c{i}", b"x", group="t") for i in range(3)])
    page = store.change_log.changes_after("agent/t", first_seq, limit=4)
    assert page is not None and [c.key for c in page] == ["b0", "b1", "b2"]


def test_pruned_records_make_old_cursors_reload(store: PostgresStore) -> None:
    first = store.commit([Op.put("memories", "m1", b"x", group="p")])["agent/p"].seq
    second = store.commit([Op.put("memories", "m2", b"x", group="p")])["agent/p"].seq
    assert store.change_log.prune(first) == 1
    assert store.change_log.changes_after("agent/p", 0) is None  # reload the group's rows
    tail = store.change_log.changes_after("agent/p", first)
    assert tail is not None and [(c.seq, c.key) for c in tail] == [(second, "m2")]
    assert store.change_log.changes_after("agent/p", second) == []
