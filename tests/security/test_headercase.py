"""Rate-limit header names reach the wire in the SDK's case under both uvicorn protocols.

``security/headercase.py`` relies on how uvicorn writes header names (``name.lower()``); this
reads the raw response bytes, so an uvicorn change that lower-cases them another way fails
here rather than silently blinding the SDK's ``last_rate_limit_headers``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dakera_server.cli import HTTP_PROTOCOL
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY
from tests.security.test_ratelimit import start_uvicorn_server


def raw_head(url: str, path: str) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ROOT_KEY}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk
            answer += chunk
    return answer.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize("protocol", sorted({"h11", "httptools", HTTP_PROTOCOL}))
def test_rate_limit_header_names_keep_their_case(
    tmp_path: Path, embedder: EmbeddingProvider, protocol: str
) -> None:
    url, server, thread = start_uvicorn_server(
        tmp_path / "d", embedder, protocol, rate_limit_rps=50, rate_limit_burst=10
    )
    try:
        head = raw_head(url, "/v1/auth/whoami")
        for name in (b"X-RateLimit-Limit: 60", b"X-RateLimit-Remaining: ", b"X-RateLimit-Reset: "):
            assert b"\r\n" + name in head, head
        assert head.startswith(b"HTTP/1.1 200")
        # Framing headers are still recognised (one content-length, no chunking added).
        assert head.lower().count(b"\r\ncontent-length: ") == 1
        assert b"transfer-encoding" not in head.lower()
    finally:
        server.should_exit = True
        thread.join(timeout=30)
