"""Two nodes on one PostgreSQL and one Redis: a per-namespace rate limit set through one node
is one budget across both (the policy follows through PostgreSQL, the counts live in Redis).

The policy reaches the other node's rate-limit layer through the follower (LISTEN wake-up or
any catch-up of ``meta``), not on the very next request: under load the wake-up can trail a
request (docs/scale-out.md), so the test lets B read the policy first."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT_KEY
from tests.pgcluster import PostgresCluster
from tests.processes import spawn_server
from tests.security.test_ratelimit_redis import REDIS_SERVER, RedisProcess

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}


@pytest.mark.slow
@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_a_namespace_rate_limit_is_one_budget_over_both_nodes(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    redis_server = RedisProcess(tmp_path / "redis")
    redis_server.start()
    url = postgres.url(postgres.create_database("limits"))
    env = {"DAKERA_STORAGE_URL": url, "DAKERA_REDIS_URL": redis_server.url}
    nodes = []
    try:
        nodes = [spawn_server(tmp_path / n, tmp_path / f"{n}.log", **env) for n in ("a", "b")]
        a, b = (httpx.Client(base_url=n.url, headers=HEADERS, timeout=30) for n in nodes)
        with a, b:
            policy = {"rate_limit_enabled": True, "rate_limit_stores_per_minute": 4}
            assert a.put("/v1/namespaces/_dakera_agent_rl/memory_policy", json=policy).is_success
            # B's rate-limit layer learns the policy from its LISTEN wake-up (never by a store
            # read on its event loop); a policy read on B catches B up at once.
            read = b.get("/v1/namespaces/_dakera_agent_rl/memory_policy").json()
            assert read["rate_limit_stores_per_minute"] == 4
            codes = [
                (a, b)[i % 2]
                .post("/v1/memory/store", json={"agent_id": "rl", "content": f"note {i}"})
                .status_code
                for i in range(6)
            ]
            assert codes == [200, 200, 200, 200, 429, 429], codes
            other = b.post("/v1/memory/store", json={"agent_id": "free", "content": "x"})
            assert other.status_code == 200  # another namespace has its own (no) limit
    finally:
        for node in nodes:
            node.stop()
        redis_server.stop()
