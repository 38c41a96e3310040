"""Back-pressure (``security/backpressure.py``): past the limit, 503 + Retry-After at once.

Requests are held in flight deterministically: a raw socket sends a store's headers and only
part of its body, so the request has passed the layer and waits for the rest. With a limit of
two, two such requests fill the server; a third is refused, health probes are not, nothing the
refused request carried is written, and finishing the held bodies frees the slots.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server

LIMIT = 2


@pytest.fixture
def tiny(tmp_path: Path, embedder: EmbeddingProvider) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "data", embedder, max_concurrent_requests=LIMIT)
    yield running
    running.stop()


class HeldStore:
    """A store request whose body is only partly sent: in flight until ``finish``."""

    def __init__(self, url: str, content: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        body = f'{{"agent_id": "held", "content": "{content}"}}'.encode()
        head = (
            "POST /v1/memory/store HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {ROOT_KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.sock.sendall(head + body[:5])
        self.rest = body[5:]

    def finish(self) -> int:
        """Send the rest of the body; the answer's status."""
        self.sock.sendall(self.rest)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed without an answer"
            answer += chunk
        self.sock.close()
        return int(answer.split(b" ", 2)[1])


def refused_once_full(http: httpx.Client) -> httpx.Response:
    """Poll until the held requests have taken their slots and a request is refused."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = http.get("/v1/auth/whoami")
        if answer.status_code == 503:
            return answer
        assert answer.status_code == 200, answer.text
        time.sleep(0.02)
    raise AssertionError("the server never refused a request past its limit")


def test_past_the_limit_requests_get_503_with_retry_after(tiny: RunningServer) -> None:
    held = [HeldStore(tiny.url, f"held memory {i}") for i in range(LIMIT)]
    with tiny.http() as http:
        refusal = refused_once_full(http)
        assert refusal.json() == {
            "error": f"the server is at capacity ({LIMIT} requests in progress); "
            "retry after 1 second",
            "code": "SERVICE_UNAVAILABLE",
        }
        assert refusal.headers["Retry-After"] == "1"
        assert refusal.headers["X-Content-Type-Options"] == "nosniff"  # outer layers still ran
        # Health probes are never counted or refused.
        for probe in ("/health", "/health/ready", "/health/live", "/metrics"):
            assert http.get(probe).status_code == 200, probe
        # A refused write writes nothing.
        refused = http.post("/v1/memory/store", json={"agent_id": "held", "content": "refused"})
        assert refused.status_code == 503
        assert [h.finish() for h in held] == [200] * LIMIT
        # The slots are free again.
        assert http.get("/v1/auth/whoami").status_code == 200
        listed = http.get("/v1/agents/held/memories").json()
        contents = sorted(m["content"] for m in listed)
        assert contents == [f"held memory {i}" for i in range(LIMIT)]


def test_a_refused_request_is_answered_at_once(tiny: RunningServer) -> None:
    held = [HeldStore(tiny.url, f"held {i}") for i in range(LIMIT)]
    with tiny.http() as http:
        refused_once_full(http)
        # Not queued behind the held requests (which would wait here for 30 s): refused.
        with httpx.Client(base_url=tiny.url, timeout=10) as quick:
            answer = quick.post(
                "/v1/memory/recall",
                json={"agent_id": "held", "query": "anything"},
                headers={"Authorization": f"Bearer {ROOT_KEY}"},
            )
        assert answer.status_code == 503
    assert [h.finish() for h in held] == [200] * LIMIT


def test_an_open_event_stream_holds_no_slot(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    running = start_server(tmp_path / "data", embedder, max_concurrent_requests=1)
    try:
        with running.http() as http, http.stream("GET", "/v1/events/stream") as stream:
            assert stream.status_code == 200
            for _ in range(5):
                assert http.get("/v1/auth/whoami").status_code == 200
    finally:
        running.stop()


def test_zero_means_no_limit(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    running = start_server(tmp_path / "data", embedder, max_concurrent_requests=0)
    held = [HeldStore(running.url, f"unlimited {i}") for i in range(4)]
    try:
        with running.http() as http:
            for _ in range(5):
                assert http.get("/v1/auth/whoami").status_code == 200
        assert [h.finish() for h in held] == [200] * 4
    finally:
        running.stop()
