"""Helpers for the lifecycle suites: a clock tests can move, and a server that runs on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dakera import DakeraClient

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server

DAY = 86_400.0
HOUR = 3_600.0

# Background passes stay off unless a test turns them on: tests move time by days and must
# decide themselves when a cycle runs.
QUIET = {"decay_interval_secs": 0, "ttl_sweep_interval_secs": 0, "autopilot_enabled": False}


class FakeClock:
    """A wall clock that only moves when told to (thread-safe)."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        with self._lock:
            self._now += seconds


@contextmanager
def clock_server(
    data_dir: Path, embedder: EmbeddingProvider, clock: FakeClock, **settings: Any
) -> Iterator[tuple[RunningServer, Any]]:
    """A server on ``clock`` (quiet unless ``settings`` say otherwise) and an SDK client."""
    server = start_server(data_dir, embedder, clock=clock, **{**QUIET, **settings})
    client = DakeraClient(server.url, api_key=ROOT_KEY)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
