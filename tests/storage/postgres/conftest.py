"""Fixtures of the PostgreSQL store tests: a cluster a test may stop, kill and restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import pgcluster
from tests.pgcluster import PostgresCluster


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test alone (the session's ``postgres`` is shared), stopped at the end."""
    if not pgcluster.available():
        pytest.skip(pgcluster.MISSING_REASON)
    cluster = PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()
