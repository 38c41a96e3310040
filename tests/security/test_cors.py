"""CORS: preflights for listed origins only, headers on errors, * with credentials refused."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dakera_server.config import Settings
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.errors import ConfigError
from tests.conftest import RunningServer, start_server
from tests.processes import BIN, free_port

APP = "https://app.example.com"
EVIL = "https://evil.example.net"


def _preflight(origin: str, method: str = "POST", headers: str = "authorization, content-type"):
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.fixture(scope="module")
def listed(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("cors"),
        embedder,
        cors_origins=(APP, "https://dashboard.example.com"),
        cors_credentials=True,
    )
    yield running
    running.stop()


def test_preflight_from_a_listed_origin_is_answered(listed: RunningServer) -> None:
    with listed.http(key=None) as http:  # browsers send preflights without credentials
        answer = http.options("/v1/memory/store", headers=_preflight(APP))
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == APP
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    allowed = answer.headers["Access-Control-Allow-Headers"]
    assert "authorization" in allowed and "x-api-key" in allowed
    assert "Origin" in answer.headers["Vary"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (_preflight(EVIL), "origin not allowed"),
        (_preflight("https://app.example.com.evil.net"), "origin not allowed"),
        (_preflight(APP, method="TRACE"), "method not allowed"),
        (_preflight(APP, headers="x-forwarded-host"), "header not allowed"),
    ],
)
def test_other_preflights_are_refused_in_our_error_shape(
    listed: RunningServer, headers: dict[str, str], reason: str
) -> None:
    with listed.http(key=None) as http:
        answer = http.options("/v1/memory/store", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["code"] == "INVALID_REQUEST"
    assert answer.json()["error"].startswith("CORS preflight refused:")
    assert reason in answer.json()["error"]
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_listed_origin_can_read_answers_and_errors(listed: RunningServer) -> None:
    with (
        listed.http(headers={"Origin": APP}) as http,
        listed.http(key=None, headers={"Origin": APP}) as anonymous,
    ):
        ok = http.get("/v1/agents")
        refused = anonymous.get("/v1/agents")
        invalid = http.post("/v1/memory/store", json={"agent_id": "<script>", "content": "x"})
    assert (ok.status_code, refused.status_code, invalid.status_code) == (200, 401, 400)
    for answer in (ok, refused, invalid):
        assert answer.headers["Access-Control-Allow-Origin"] == APP
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]


def test_other_origins_get_no_cors_headers(listed: RunningServer) -> None:
    with listed.http(headers={"Origin": EVIL}) as http:
        answer = http.get("/v1/agents")
    assert answer.status_code == 200  # the browser, not the server, withholds the answer
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_without_origins_every_preflight_is_refused(server: RunningServer) -> None:
    with server.http(key=None) as http:
        answer = http.options("/v1/memory/store", headers=_preflight(APP))
        plain = http.get("/health", headers={"Origin": APP})
    assert answer.status_code == 400
    assert "Access-Control-Allow-Origin" not in plain.headers


def test_wildcard_without_credentials_allows_any_origin(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    running = start_server(tmp_path, embedder, cors_origins=("*",))
    try:
        with running.http(key=None) as http:
            preflight = http.options("/v1/memory/recall", headers=_preflight(EVIL))
            plain = http.get("/health", headers={"Origin": EVIL})
    finally:
        running.stop()
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    assert plain.headers["Access-Control-Allow-Origin"] == "*"


def test_wildcard_with_credentials_refuses_to_start() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"DAKERA_CORS_ORIGINS": "*", "DAKERA_CORS_CREDENTIALS": "true"})
    message = str(refused.value)
    assert "DAKERA_CORS_ORIGINS" in message and "DAKERA_CORS_CREDENTIALS" in message
    assert "credentialed" in message


def test_the_cli_explains_the_wildcard_refusal(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DAKERA_DATA_DIR": str(tmp_path),
        "DAKERA_PORT": str(free_port()),
        "DAKERA_CORS_ORIGINS": "*",
        "DAKERA_CORS_CREDENTIALS": "true",
    }
    done = subprocess.run([str(BIN), "serve"], env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"DAKERA_CORS_ORIGINS=* with DAKERA_CORS_CREDENTIALS=true" in done.stderr


@pytest.mark.parametrize(
    "value", ["app.example.com", "https://app.example.com/path", "ftp://x.org"]
)
def test_malformed_origins_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="DAKERA_CORS_ORIGINS"):
        Settings.from_env({"DAKERA_CORS_ORIGINS": value})
