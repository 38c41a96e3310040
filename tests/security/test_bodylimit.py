"""Body-size limit: 413 PAYLOAD_TOO_LARGE from the declared length, or while the body streams."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from dakera_server.config import Settings
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import ROOT_KEY, RunningServer, start_server

LIMIT = 64 * 1024
CHUNK = 8 * 1024
STORE = "/v1/memory/store"


@pytest.fixture(scope="module")
def small_limit(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("bodylimit"), embedder, max_body_size=LIMIT)
    yield running
    running.stop()


def _connect(server: RunningServer) -> socket.socket:
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def _head(path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ROOT_KEY}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, rest


def test_default_limit_is_ten_megabytes() -> None:
    assert Settings().max_body_size == 10_485_760
    assert Settings.from_env({"DAKERA_MAX_BODY_SIZE": "2048"}).max_body_size == 2048


def test_declared_length_over_the_limit_is_refused_before_any_body_byte(
    small_limit: RunningServer,
) -> None:
    with _connect(small_limit) as sock:
        sock.sendall(_head(STORE, f"Content-Length: {50 * 1024 * 1024}\r\n"))
        status, body = _read_response(sock)  # not one byte of the 50 MB was sent
    assert status == 413
    assert orjson.loads(body)["code"] == "PAYLOAD_TOO_LARGE"


def test_chunked_body_is_refused_while_it_streams(small_limit: RunningServer) -> None:
    total = 64 * LIMIT  # the client would send 4 MB; the server must answer long before
    sent = 0
    with _connect(small_limit) as sock:
        sock.sendall(_head(STORE, "Transfer-Encoding: chunked\r\n"))
        chunk = b"%x\r\n" % CHUNK + b"a" * CHUNK + b"\r\n"
        answered = False
        try:
            while sent < total:
                sock.sendall(chunk)
                sent += CHUNK
                readable, _, _ = select.select([sock], [], [], 0.02)
                if readable:
                    answered = True
                    break
        except (BrokenPipeError, ConnectionResetError):
            answered = True
        assert answered, "the server never answered while the body was streaming"
        status, body = _read_response(sock)
    assert status == 413
    assert orjson.loads(body)["code"] == "PAYLOAD_TOO_LARGE"
    assert LIMIT <= sent < total // 2, f"answered after {sent} bytes"


def test_httpx_streaming_generator_gets_413(small_limit: RunningServer) -> None:
    # httpx writes the whole request before it reads, so this checks the answer, not the
    # timing (the raw-socket test above shows the server answers while the body streams).
    def body() -> Iterator[bytes]:
        for _ in range(2 * LIMIT // CHUNK):
            yield b" " * CHUNK

    with small_limit.http() as http:
        answer = http.post(STORE, content=body(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_a_body_under_the_limit_passes(small_limit: RunningServer) -> None:
    content = "x" * (LIMIT // 2)
    with small_limit.http() as http:
        answer = http.post(STORE, json={"agent_id": "body-limit", "content": content})
    assert answer.status_code == 200, answer.text


def test_refusal_carries_security_headers(small_limit: RunningServer) -> None:
    with small_limit.http() as http:
        answer = http.post(STORE, content=b"{" + b" " * (LIMIT + 1) + b"}")
    assert answer.status_code == 413
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert set(answer.json()) == {"error", "code"}


def test_env_variable_reaches_a_real_process(tmp_path: Path) -> None:
    from tests.processes import spawn_server

    process = spawn_server(tmp_path / "data", tmp_path / "log", DAKERA_MAX_BODY_SIZE="1000")
    try:
        big = httpx.post(
            f"{process.url}{STORE}",
            content=b"x" * 1001,
            headers={"Authorization": f"Bearer {ROOT_KEY}", "Content-Type": "application/json"},
        )
        assert big.status_code == 413
    finally:
        process.stop()
