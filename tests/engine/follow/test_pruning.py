"""Change-log retention on a real PostgreSQL store: records older than the retention go, newer
ones stay, one node prunes at a time, and a follower whose cursor fell below the horizon still
catches up (by reloading the group)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dakera_server.engine.follow.pruning import LOCK_NAME, ChangeLogPruner
from dakera_server.storage.base import Op
from dakera_server.storage.postgres import PostgresStore
from tests.pgcluster import PostgresCluster


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stores(postgres: PostgresCluster) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    url = postgres.url(postgres.create_database("pruning"))
    a, b = PostgresStore(url), PostgresStore(url)
    yield a, b
    a.close()
    b.close()


def write(store: PostgresStore, key: str) -> int:
    return store.commit([Op.put("memories", key, b"x", group="bob")])["agent/bob"].seq


def test_records_older_than_the_retention_are_pruned_and_newer_ones_kept(
    stores: tuple[PostgresStore, PostgresStore],
) -> None:
    store, _ = stores
    clock = Clock()
    pruner = ChangeLogPruner(store.change_log, store.exclusive, retention=60, every=10, clock=clock)
    old = write(store, "m1")
    assert pruner.due() and pruner.tick() == 0  # the first note: nothing has aged yet
    assert not pruner.due()
    clock.now += 30
    newer = write(store, "m2")
    assert pruner.tick() == 0  # 30 s: under the retention
    clock.now += 31
    assert pruner.tick() == 1  # the first note aged: everything up to it goes (m1)
    log = store.change_log
    assert log.changes_after("agent/bob", old) is not None  # at the horizon: still exact
    assert [c.key for c in log.changes_after("agent/bob", old) or []] == ["m2"]
    assert log.changes_after("agent/bob", 0) is None  # below it: reload the group
    assert newer > old


def test_only_the_holder_of_the_lock_prunes(stores: tuple[PostgresStore, PostgresStore]) -> None:
    a, b = stores
    clock = Clock()
    pruner = ChangeLogPruner(b.change_log, b.exclusive, retention=5, every=1, clock=clock)
    write(a, "m1")
    pruner.tick()
    clock.now += 10
    with a.exclusive(LOCK_NAME) as mine:  # another node is pruning right now
        assert mine
        assert pruner.tick() == 0
    assert a.change_log.changes_after("agent/bob", 0) is not None  # nothing was pruned
    write(a, "m2")
    clock.now += 10
    assert pruner.tick() >= 1  # the next pass, the lock free, prunes up to an aged note
