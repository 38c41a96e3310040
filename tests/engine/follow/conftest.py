"""The two-node tests share the PostgreSQL store tests' fixture of a cluster they may stop."""

from tests.storage.postgres.conftest import own_cluster

__all__ = ["own_cluster"]
