"""Rate limiting on one server: the global bucket, per-namespace windows, headers, 429s, SDK.

Budgets here are tiny (RATE_LIMIT_RPS=2, RATE_LIMIT_BURST=3: 5 requests in any second) and
each test gets a fresh server, so counts are exact. A burst is only judged when it was sent
within one window; on a machine too slow for that the burst is tried again.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from dakera import DakeraClient, MemoryPolicy, RateLimitError, RetryConfig

from dakera_server.app import create_app
from dakera_server.cli import HTTP_PROTOCOL
from dakera_server.config import Settings
from dakera_server.engine.core import Engine
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.errors import ConfigError
from tests.conftest import ROOT_KEY, RunningServer, start_server, wait_ready

RPS, BURST = 2, 3
BUDGET = RPS + BURST


@pytest.fixture
def limited(tmp_path: Path, embedder: EmbeddingProvider) -> Iterator[RunningServer]:
    """A fresh server with a 5-per-second global budget."""
    running = start_server(tmp_path / "data", embedder, rate_limit_rps=RPS, rate_limit_burst=BURST)
    yield running
    running.stop()


@pytest.fixture
def unlimited_server(tmp_path: Path, embedder: EmbeddingProvider) -> Iterator[RunningServer]:
    """A fresh server without the global limit (namespace windows only)."""
    running = start_server(tmp_path / "data", embedder, rate_limit_rps=0)
    yield running
    running.stop()


def burst(send: Callable[[], httpx.Response], count: int) -> list[httpx.Response]:
    """``count`` requests inside one second (retried after a pause if the machine was slow)."""
    for _ in range(3):
        started = time.monotonic()
        answers = [send() for _ in range(count)]
        if time.monotonic() - started < 0.8:
            return answers
        time.sleep(1.1)
    pytest.fail("could not send a burst within one second on this machine")


def test_burst_beyond_the_budget_gets_429_with_retry_after(limited: RunningServer) -> None:
    with limited.http() as http:
        answers = burst(lambda: http.get("/v1/auth/whoami"), BUDGET + 3)
    statuses = [a.status_code for a in answers]
    assert statuses == [200] * BUDGET + [429] * 3
    refused = answers[-1]
    assert refused.headers["content-type"].startswith("application/json")
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    body = refused.json()
    assert body["code"] == "RATE_LIMIT_EXCEEDED"
    assert body["error"] and body["message"]
    assert "Traceback" not in refused.text


def test_every_response_carries_rate_limit_headers(limited: RunningServer) -> None:
    with limited.http() as http:
        answers = burst(lambda: http.get("/v1/auth/whoami"), BUDGET + 1)
    now = time.time()
    remaining = [int(a.headers["X-RateLimit-Remaining"]) for a in answers]
    assert remaining == [4, 3, 2, 1, 0, 0]
    for answer in answers:
        assert int(answer.headers["X-RateLimit-Limit"]) == BUDGET
        reset = int(answer.headers["X-RateLimit-Reset"])
        assert now - 1 <= reset <= now + 2  # Unix seconds, within the 1-second window


def test_health_probes_are_never_counted(limited: RunningServer) -> None:
    with limited.http() as http:
        answers = burst(lambda: http.get("/v1/auth/whoami"), BUDGET + 1)
        assert answers[-1].status_code == 429
        for path in ("/health", "/health/ready", "/health/live", "/metrics"):
            probe = http.get(path)
            assert probe.status_code == 200, path
        assert http.get("/health").headers["X-RateLimit-Remaining"] == "0"


def test_refused_by_authentication_does_not_spend_the_budget(limited: RunningServer) -> None:
    with limited.http(key="dk_not_a_key") as bad:
        for _ in range(BUDGET + 2):
            assert bad.get("/v1/auth/whoami").status_code == 401
    with limited.http() as http:
        answers = burst(lambda: http.get("/v1/auth/whoami"), BUDGET)
    assert [a.status_code for a in answers] == [200] * BUDGET


def test_a_refused_write_writes_nothing(limited: RunningServer, agent_id: str) -> None:
    with limited.http() as http:
        answers = burst(lambda: http.get("/v1/auth/whoami"), BUDGET)
        assert all(a.status_code == 200 for a in answers)
        refused = http.post("/v1/memory/store", json={"agent_id": agent_id, "content": "x"})
        assert refused.status_code == 429
        time.sleep(1.1)
        listed = http.get(f"/v1/agents/{agent_id}/memories")
        assert listed.status_code == 200 and listed.json() == []
        events = http.get("/v1/audit", params={"agent_id": agent_id}).json()
        assert events["events"] == []


def test_sdk_sees_rate_limit_error_with_retry_after(limited: RunningServer) -> None:
    no_retry = DakeraClient(limited.url, api_key=ROOT_KEY, retry_config=RetryConfig(max_retries=1))
    try:
        error: RateLimitError | None = None
        started = time.monotonic()
        for _ in range(BUDGET + 5):
            try:
                no_retry.whoami()
            except RateLimitError as exc:
                error = exc
                break
        assert error is not None and time.monotonic() - started < 1.0
        assert isinstance(error.retry_after, int) and error.retry_after >= 1
        assert error.code is not None and error.code.value == "RATE_LIMIT_EXCEEDED"
    finally:
        no_retry.close()
    # The default client waits Retry-After and succeeds.
    patient = DakeraClient(limited.url, api_key=ROOT_KEY)
    try:
        assert patient.whoami().key_id == "root"
    finally:
        patient.close()


def start_uvicorn_server(
    data_dir: Path, embedder: EmbeddingProvider, http: str, **overrides: Any
) -> Any:
    """The app on uvicorn's ``http`` protocol implementation ("h11" or "httptools")."""
    settings = Settings(data_dir=data_dir, root_api_key=ROOT_KEY, port=0, **overrides)
    app = create_app(settings, engine=Engine(settings, embedder=embedder))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=http, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    wait_ready(url)
    return url, server, thread


def test_sdk_reads_rate_limit_headers_from_the_served_protocol(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    # The SDK copies headers into a plain dict and reads "X-RateLimit-Limit" case-sensitively;
    # `dakera-server serve` runs HTTP_PROTOCOL (httptools), which keeps these names' case
    # (security/headercase.py; tests/security/test_headercase.py checks the raw bytes).
    url, server, thread = start_uvicorn_server(
        tmp_path / "d", embedder, HTTP_PROTOCOL, rate_limit_rps=RPS, rate_limit_burst=BURST
    )
    client = DakeraClient(url, api_key=ROOT_KEY, retry_config=RetryConfig(max_retries=1))
    try:
        client.whoami()
        headers = client.last_rate_limit_headers
        assert headers is not None
        assert headers.limit == BUDGET and headers.remaining == BUDGET - 1
        assert headers.reset is not None and abs(headers.reset - time.time()) <= 2
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)


def test_sustained_rate_falls_back_to_rps(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    # R=1, B=4: 5 in any second, about 14 in any ten seconds (a window counter: approximate).
    running = start_server(tmp_path / "d", embedder, rate_limit_rps=1, rate_limit_burst=4)
    try:
        accepted = 0
        with running.http() as http:
            deadline = time.monotonic() + 8.0
            while time.monotonic() < deadline:
                accepted += http.get("/v1/auth/whoami").status_code == 200
                time.sleep(0.02)
        # The 1-second window alone would let about 40 through in 8 s. The counter's windows
        # are aligned to the clock, so up to 14 + 14*0.6 can pass when one boundary falls early.
        assert 10 <= accepted <= 24, accepted
    finally:
        running.stop()


# ------------------------------------------------------------- namespace windows


def set_policy(http: httpx.Client, namespace: str, **policy: Any) -> dict[str, Any]:
    answer = http.put(f"/v1/namespaces/{namespace}/memory_policy", json=policy)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def store(http: httpx.Client, agent_id: str, content: str) -> httpx.Response:
    return http.post("/v1/memory/store", json={"agent_id": agent_id, "content": content})


def recall(http: httpx.Client, agent_id: str) -> httpx.Response:
    return http.post("/v1/memory/recall", json={"agent_id": agent_id, "query": "coffee"})


def test_namespace_store_and_recall_windows(unlimited_server: RunningServer) -> None:
    with unlimited_server.http() as http:
        set_policy(
            http,
            "_dakera_agent_limited",
            rate_limit_enabled=True,
            rate_limit_stores_per_minute=2,
            rate_limit_recalls_per_minute=1,
        )
        first = store(http, "limited", "I like coffee")
        assert first.status_code == 200
        assert first.headers["X-RateLimit-Limit"] == "2"
        assert first.headers["X-RateLimit-Remaining"] == "1"
        assert store(http, "limited", "and tea").status_code == 200
        refused = store(http, "limited", "and water")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "_dakera_agent_limited" in refused.json()["details"]
        # Recalls have their own window.
        assert recall(http, "limited").status_code == 200
        assert recall(http, "limited").status_code == 429
        # Other namespaces and other routes are not limited.
        assert store(http, "free", "no limit here").status_code == 200
        assert http.get("/v1/agents/limited/memories").status_code == 200
        # A batch is one store operation; the window is full, so it is refused whole.
        batch = http.post(
            "/v1/memories/store/batch",
            json={"agent_id": "limited", "memories": [{"content": "a"}, {"content": "b"}]},
        )
        assert batch.status_code == 429
        assert len(http.get("/v1/agents/limited/memories").json()) == 2
        # Switching the policy off lifts the limit at once.
        set_policy(http, "_dakera_agent_limited", rate_limit_enabled=False)
        assert store(http, "limited", "now free").status_code == 200


def test_namespace_limit_without_per_minute_values_limits_nothing(
    unlimited_server: RunningServer,
) -> None:
    with unlimited_server.http() as http:
        set_policy(http, "_dakera_agent_onlyflag", rate_limit_enabled=True)
        for index in range(4):
            assert store(http, "onlyflag", f"memory {index}").status_code == 200


def test_sdk_memory_policy_round_trip_and_defaults(unlimited_server: RunningServer) -> None:
    client = DakeraClient(unlimited_server.url, api_key=ROOT_KEY)
    try:
        assert client.get_memory_policy("fresh-ns") == MemoryPolicy()
        wanted = MemoryPolicy(
            working_ttl_seconds=600,
            episodic_decay="linear",
            rate_limit_enabled=True,
            rate_limit_stores_per_minute=30,
            dedup_on_store=True,
            consolidated_count=99,  # server-managed: ignored
        )
        stored = client.set_memory_policy("fresh-ns", wanted)
        assert stored.working_ttl_seconds == 600 and stored.episodic_decay == "linear"
        assert stored.rate_limit_stores_per_minute == 30
        assert stored.rate_limit_recalls_per_minute is None
        assert stored.consolidated_count == 0
        assert client.get_memory_policy("fresh-ns") == stored
    finally:
        client.close()


@pytest.mark.parametrize(
    "body",
    [
        {"episodic_decay": "sideways"},
        {"rate_limit_stores_per_minute": 0},
        {"rate_limit_recalls_per_minute": "ten"},
        {"rate_limit_enabled": "yes"},
        {"dedup_threshold": 1.5},
        {"working_ttl_seconds": -1},
        [],
    ],
)
def test_bad_policies_are_400_and_change_nothing(
    unlimited_server: RunningServer, body: Any
) -> None:
    with unlimited_server.http() as http:
        answer = http.put("/v1/namespaces/bad-policy/memory_policy", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["code"] == "INVALID_REQUEST"
        assert http.get("/v1/namespaces/bad-policy/memory_policy").json()["dedup_threshold"] == 0.92


def test_policy_and_its_limit_survive_a_restart(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    data = tmp_path / "data"
    first = start_server(data, embedder)
    try:
        with first.http() as http:
            set_policy(
                http, "_dakera_agent_kept", rate_limit_enabled=True, rate_limit_stores_per_minute=1
            )
    finally:
        first.stop()
    second = start_server(data, embedder)
    try:
        with second.http() as http:
            policy = http.get("/v1/namespaces/_dakera_agent_kept/memory_policy").json()
            assert policy["rate_limit_stores_per_minute"] == 1
            assert store(http, "kept", "one").status_code == 200
            assert store(http, "kept", "two").status_code == 429
    finally:
        second.stop()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"RATE_LIMIT_RPS": "fast"}, "RATE_LIMIT_RPS"),
        ({"RATE_LIMIT_BURST": "-1"}, "RATE_LIMIT_BURST"),
        ({"DAKERA_REDIS_URL": "http://localhost:6379"}, "DAKERA_REDIS_URL"),
    ],
)
def test_bad_rate_limit_settings_stop_startup(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)


def test_redis_url_never_appears_in_settings_repr() -> None:
    settings = Settings(redis_url="redis://:s3cret-pass@127.0.0.1:1/0")
    assert "s3cret-pass" not in repr(settings)
