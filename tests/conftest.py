"""Shared fixtures: a real server on a free loopback port, SDK and HTTP clients, clean env.

One in-thread server is shared per test session for the SDK suites (``server``); tests that need
their own configuration call ``start_server``; tests that need a process boundary (kill -9,
CLI, env parsing) use ``spawn_server`` from ``tests/processes.py``.

``--store-backend=postgres`` runs the shared server (and every server a suite starts with
``fresh_storage()``) on a PostgreSQL database of a session cluster (``tests/pgcluster.py``)
instead of the embedded SQLite store; ``make test`` runs the SDK memory and vector suites both
ways.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from dakera_server.app import build_engine, create_app
from dakera_server.config import Settings
from dakera_server.engine.core import Engine
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.engine.text.providers import create_provider
from tests import pgcluster

ROOT_KEY = "test-root-key-0123456789abcdef0123456789"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="store of the shared SDK-suite server: embedded SQLite or a test PostgreSQL",
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[pgcluster.PostgresCluster]:
    """A PostgreSQL 15 cluster for this test session (per xdist worker), stopped at the end."""
    if not pgcluster.available():
        pytest.skip(pgcluster.MISSING_REASON)
    cluster = pgcluster.PostgresCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="session")
def fresh_storage(request: pytest.FixtureRequest) -> Callable[[], dict[str, Any]]:
    """``start_server`` overrides for a fresh store of the selected backend: nothing for SQLite
    (the server's temp data dir holds it), a new database's ``storage_url`` for PostgreSQL."""
    if request.config.getoption("--store-backend") == "sqlite":
        return dict
    cluster: pgcluster.PostgresCluster = request.getfixturevalue("postgres")
    return lambda: {"storage_url": cluster.url(cluster.create_database("srv"))}


@pytest.fixture(autouse=True)
def clean_environ() -> Iterator[None]:
    """Remove DAKERA_* and RATE_LIMIT_* for each test and restore them afterwards."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("DAKERA_", "RATE_LIMIT_"))}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(("DAKERA_", "RATE_LIMIT_"))]:
            del os.environ[key]
        os.environ.update(saved)


@dataclass
class RunningServer:
    """A server running in a thread of this process."""

    url: str
    settings: Settings
    engine: Engine
    uvicorn_server: uvicorn.Server
    thread: threading.Thread

    def http(
        self, key: str | None = ROOT_KEY, headers: dict[str, str] | None = None
    ) -> httpx.Client:
        """An httpx client for this server, with ``key`` as Bearer (None: no key)."""
        sent = {"Authorization": f"Bearer {key}"} if key else {}
        sent.update(headers or {})
        return httpx.Client(base_url=self.url, headers=sent, timeout=30.0)

    def stop(self) -> None:
        self.uvicorn_server.should_exit = True
        self.thread.join(timeout=30)


def wait_ready(url: str, timeout: float = 60.0, exited: Callable[[], bool] = lambda: False) -> None:
    """Poll /health/ready until it answers 200 (``RuntimeError`` as soon as ``exited()``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if exited():
            raise RuntimeError(f"server at {url} exited before it was ready")
        try:
            if httpx.get(f"{url}/health/ready", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} did not become ready")


def start_server(
    data_dir: Path,
    embedder: EmbeddingProvider | None = None,
    clock: Callable[[], float] | None = None,
    **overrides: Any,
) -> RunningServer:
    """Start ``create_app`` on 127.0.0.1:0 in a thread and wait until it is ready.

    ``clock`` replaces the engine's wall clock (decay and TTL tests move it forward).
    """
    # The global rate limit is off unless a test asks for it: suites share one server and
    # would otherwise trip over each other's budget (tests/security/test_ratelimit*.py set it).
    base = {"data_dir": data_dir, "root_api_key": ROOT_KEY, "port": 0, "rate_limit_rps": 0}
    base["grpc_port"] = 0  # gRPC on a free port too: parallel test servers never collide
    settings = Settings(**{**base, **overrides})
    engine = build_engine(settings, embedder=embedder, clock=clock or time.time)
    app = create_app(settings, engine=engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # proxy_headers=False as `dakera-server serve` does: forwarded headers are the app's to judge.
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    app.state.request_shutdown = lambda: setattr(server, "should_exit", True)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_ready(url)
    return RunningServer(url, settings, engine, server, thread)


@pytest.fixture(scope="session")
def embedder() -> EmbeddingProvider:
    """The built-in model, loaded once per test session."""
    return create_provider("builtin")


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    embedder: EmbeddingProvider,
    fresh_storage: Callable[[], dict[str, Any]],
) -> Iterator[RunningServer]:
    """One shared server (auth on, root key ``ROOT_KEY``) for the SDK suites."""
    running = start_server(tmp_path_factory.mktemp("shared-data"), embedder, **fresh_storage())
    yield running
    running.stop()


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    """An httpx client with the root key."""
    with server.http() as client:
        yield client


@pytest.fixture
def client(server: RunningServer) -> Iterator[Any]:
    """The official sync SDK client with the root key."""
    from dakera import DakeraClient

    sdk = DakeraClient(server.url, api_key=ROOT_KEY)
    yield sdk
    sdk.close()


@pytest.fixture
def agent_id(request: pytest.FixtureRequest) -> str:
    """A fresh agent id per test, so tests on the shared server never see each other's data."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:80].strip("-")
    return f"t-{name}-{time.monotonic_ns() % 1_000_000}"
