"""Distributed rate limits on a real Redis: one budget across processes, and Redis failures.

Each test starts its own ``redis-server`` on a free loopback port with a temporary directory
(no persistence) and stops it afterwards. Skipped only when the ``redis-server`` binary is
missing (``.ci/run`` installs it).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from limits import RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from dakera_server.engine.lifecycle.policies import RateLimitPolicy
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.security.ratelimit import BURST_IDS, SUSTAINED_IDS, RateLimiter
from tests.conftest import ROOT_KEY, start_server
from tests.processes import free_port, spawn_server

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (apt-get install redis-server)"
)
RPS, BURST = 1, 4
BUDGET = RPS + BURST
AUTH = {"Authorization": f"Bearer {ROOT_KEY}"}


class RedisProcess:
    """A throwaway redis-server on 127.0.0.1:``port``."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def burst(urls: list[str], count: int) -> list[int]:
    """``count`` requests spread over ``urls`` within one second (retried if the box is slow)."""
    with httpx.Client(headers=AUTH, timeout=10) as http:
        for _ in range(3):
            started = time.monotonic()
            codes = [
                http.get(f"{urls[i % len(urls)]}/v1/auth/whoami").status_code for i in range(count)
            ]
            if time.monotonic() - started < 0.8:
                return codes
            time.sleep(11)  # let both windows (1 s and 10 s) empty
    pytest.fail("could not send a burst within one second on this machine")


def health(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/health", timeout=10).json())


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.mark.slow
def test_two_processes_share_one_budget(tmp_path: Path, redis_server: RedisProcess) -> None:
    env = {
        "DAKERA_REDIS_URL": redis_server.url,
        "RATE_LIMIT_RPS": str(RPS),
        "RATE_LIMIT_BURST": str(BURST),
    }
    first = spawn_server(tmp_path / "a", tmp_path / "a.log", **env)
    try:
        second = spawn_server(tmp_path / "b", tmp_path / "b.log", **env)
        try:
            for url in (first.url, second.url):
                state = health(url)
                assert state["status"] == "healthy"
                assert state["details"]["rate_limit"]["backend"] == "redis"
            codes = burst([first.url, second.url], 4 * BUDGET)
            # Each process alone would accept BUDGET; together they accept BUDGET, not 2x.
            assert codes.count(200) == BUDGET, codes
            assert codes.count(429) == 3 * BUDGET
            assert "RATE_LIMIT_EXCEEDED" not in first.output()  # never logged as an error
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.mark.slow
def test_redis_down_at_start_then_back(tmp_path: Path) -> None:
    missing = RedisProcess(tmp_path / "redis")  # nothing listens on its port yet
    process = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_REDIS_URL=missing.url,
        RATE_LIMIT_RPS=str(RPS),
        RATE_LIMIT_BURST=str(BURST),
    )
    try:
        state = health(process.url)
        assert state["status"] == "degraded"
        assert state["details"]["rate_limit"]["backend"] == "local"
        assert state["details"]["rate_limit"]["redis"] == "unreachable"
        assert "unreachable" in process.output() and "local to this process" in process.output()
        ready = httpx.get(f"{process.url}/health/ready", timeout=10)
        assert ready.status_code == 200
        assert ready.json()["checks"]["rate_limit"]["status"] == "degraded"
        # Still limited (locally), never open.
        codes = burst([process.url], BUDGET + 3)
        assert codes.count(200) == BUDGET and codes.count(429) == 3
        missing.start()
        try:
            wait_for(lambda: health(process.url)["status"] == "healthy")
            assert health(process.url)["details"]["rate_limit"]["backend"] == "redis"
            assert "answers again" in process.output()
        finally:
            missing.stop()
    finally:
        process.stop()


@pytest.mark.slow
def test_redis_failing_later_falls_back_to_local_limits(
    tmp_path: Path,
    redis_server: RedisProcess,
    embedder: EmbeddingProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    running = start_server(
        tmp_path / "data",
        embedder,
        redis_url=redis_server.url,
        rate_limit_rps=RPS,
        rate_limit_burst=BURST,
    )
    try:
        assert health(running.url)["details"]["rate_limit"]["backend"] == "redis"
        with caplog.at_level(logging.WARNING, logger="dakera_server.ratelimit"):
            redis_server.stop()
            time.sleep(1.1)
            codes = burst([running.url], BUDGET + 2)
        # The first call after the failure notices it; every request is answered, none is a 500.
        assert set(codes) <= {200, 429}, codes
        assert codes.count(200) <= BUDGET and codes.count(429) >= 2
        assert any("local to this process" in r.getMessage() for r in caplog.records)
        state = health(running.url)
        assert state["status"] == "degraded" and state["details"]["rate_limit"]["shared"] is False
        redis_server.start()
        wait_for(lambda: health(running.url)["status"] == "healthy")
    finally:
        running.stop()


def test_global_and_namespace_strategies_use_distinct_keys(
    tmp_path: Path, redis_server: RedisProcess, embedder: EmbeddingProvider
) -> None:
    running = start_server(
        tmp_path / "data",
        embedder,
        redis_url=redis_server.url,
        rate_limit_rps=50,
        rate_limit_burst=50,
    )
    try:
        with running.http() as http:
            policy = {
                "rate_limit_enabled": True,
                "rate_limit_stores_per_minute": 2,
                "rate_limit_recalls_per_minute": 2,
            }
            assert http.put("/v1/namespaces/_dakera_agent_r/memory_policy", json=policy).is_success
            stores = [
                http.post(
                    "/v1/memory/store", json={"agent_id": "r", "content": f"note {i}"}
                ).status_code
                for i in range(3)
            ]
            recalls = [
                http.post("/v1/memory/recall", json={"agent_id": "r", "query": "note"}).status_code
                for _ in range(3)
            ]
        assert stores == [200, 200, 429] and recalls == [200, 200, 429]
        client = redis_server.client()
        try:
            types = {key.decode(): client.type(key).decode() for key in client.scan_iter("LIMITS*")}
        finally:
            client.close()
        moving = [k for k in types if "moving-window" in k]
        sliding = [k for k in types if "sliding-window-counter" in k]
        # The global burst window is a list (moving window); the global sustained window and
        # the namespace windows are counters (strings). A key under both would be WRONGTYPE.
        assert len(moving) == 1 and types[moving[0]] == "list", types
        assert all(types[k] == "string" for k in sliding), types
        for part in ("/global/", "/store/", "/recall/"):
            assert any(part in k for k in sliding), (part, types)
        assert health(running.url)["status"] == "healthy"  # no WRONGTYPE ever marked it down
    finally:
        running.stop()


def test_one_round_trip_per_request_on_limits_own_keys(redis_server: RedisProcess) -> None:
    policy = RateLimitPolicy(stores_per_minute=3, recalls_per_minute=None)
    limiter = RateLimiter(
        rps=5,
        burst=5,
        redis_url=redis_server.url,
        namespace_limits=lambda _ns: policy,
        limits_active=lambda: True,
    )
    client = redis_server.client()
    try:
        assert limiter.check().allowed  # the first call also loads the script
        client.config_resetstat()
        decisions = [limiter.check("ns-a", "store") for _ in range(5)]
        calls = {name: stats["calls"] for name, stats in client.info("commandstats").items()}
        # Every limits call is a script too (EVALSHA): one per request means one round trip.
        assert calls.get("cmdstat_evalsha") == 5, calls
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert decisions[2].reason == "namespace 'ns-a' stores per minute"
        assert decisions[2].remaining == 0 and decisions[3].retry_after(time.time()) >= 1
        assert [d.limit for d in decisions[3:]] == [3, 3]
        # limits' own strategies read what the script wrote, and refused requests were not
        # counted in the global windows (1 + 3 requests passed).
        storage = RedisStorage(redis_server.url)
        burst_window = MovingWindowRateLimiter(storage).get_window_stats(
            RateLimitItemPerSecond(10, 1), *BURST_IDS
        )
        sustained = SlidingWindowCounterRateLimiter(storage).get_window_stats(
            RateLimitItemPerSecond(55, 10), *SUSTAINED_IDS
        )
        namespace = SlidingWindowCounterRateLimiter(storage).get_window_stats(
            RateLimitItemPerMinute(3, 1), "dakera", "ns", "ns-a", "store", "sliding-window-counter"
        )
        assert (burst_window.remaining, sustained.remaining, namespace.remaining) == (6, 51, 0)
        # The headers report the window with the fewest requests left: the namespace's.
        assert (decisions[0].limit, decisions[0].remaining) == (3, 2)
        alone = limiter.check()  # no namespace: the 1 s window (1 + 3 + this one counted)
        assert (alone.limit, alone.remaining) == (10, 5)
        for _ in range(5):
            assert limiter.check().allowed
        assert not limiter.check().allowed  # the 1 s window is full now
        probe = limiter.check(consume=False)  # health probes: never counted, never refused
        assert probe.allowed and (probe.limit, probe.remaining) == (10, 0)
    finally:
        client.close()
        limiter.close()


def test_concurrent_limiters_share_one_exact_budget(redis_server: RedisProcess) -> None:
    # Two limiters (two connections, as two processes have) hammered from eight threads: the
    # script decides and counts atomically, so exactly the budget passes, never one more.
    budget = 50
    policy = RateLimitPolicy(stores_per_minute=budget, recalls_per_minute=None)
    limiters = [
        RateLimiter(
            rps=0,
            burst=0,
            redis_url=redis_server.url,
            namespace_limits=lambda _ns: policy,
            limits_active=lambda: True,
        )
        for _ in range(2)
    ]
    allowed: list[int] = []
    lock = threading.Lock()

    def hammer(limiter: RateLimiter) -> None:
        passed = sum(limiter.check("shared", "store").allowed for _ in range(40))
        with lock:
            allowed.append(passed)

    threads = [threading.Thread(target=hammer, args=(limiters[i % 2],)) for i in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(limiter.status()["backend"] == "redis" for limiter in limiters)
        assert sum(allowed) == budget, allowed
    finally:
        for limiter in limiters:
            limiter.close()
