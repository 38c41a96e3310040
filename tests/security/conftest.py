"""Fixtures of the security suites: servers with their own data dirs, keys made through the API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import RunningServer, start_server


class FakeClock:
    """A clock a test moves by hand (key expiry, rotation grace); starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def create_key(http: httpx.Client, **body: Any) -> dict[str, Any]:
    """``POST /admin/keys`` with ``body``; asserts 201 and returns the answer (with ``key``)."""
    answer = http.post("/admin/keys", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


@pytest.fixture(scope="module")
def keyserver(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[RunningServer]:
    """A server of this module's own (its key list is not shared with other suites)."""
    running = start_server(tmp_path_factory.mktemp("keys"), embedder)
    yield running
    running.stop()


@pytest.fixture
def root(keyserver: RunningServer) -> Iterator[httpx.Client]:
    """httpx with the root key on ``keyserver``."""
    with keyserver.http() as client:
        yield client
