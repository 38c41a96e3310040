"""Security headers: the document's table on every response, the three presets, the overrides."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dakera_server.config import Settings
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.errors import ConfigError
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.processes import BIN, free_port, spawn_server

ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
DEFAULT = {
    **ALWAYS,
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}


def _boom() -> None:
    raise RuntimeError("unexpected failure inside a handler")


@pytest.fixture(scope="module")
def default_server(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("headers"), embedder, max_body_size=4096)
    # A route that fails unexpectedly, to see the 500 path (added after start: routes are
    # looked up per request).
    app: Any = running.uvicorn_server.config.app
    app.add_api_route("/boom", _boom, methods=["GET"])
    yield running
    running.stop()


def _responses(server: RunningServer) -> dict[str, httpx.Response]:
    with server.http() as http, server.http(key=None) as anonymous:
        return {
            "200": http.get("/health"),
            "201-ish write": http.post(
                "/v1/memory/store", json={"agent_id": "hdr", "content": "plain note"}
            ),
            "400 validation": http.post(
                "/v1/memory/store", json={"agent_id": "../../etc/passwd", "content": "x"}
            ),
            "401": anonymous.get("/v1/agents"),
            "404": http.get("/no/such/route"),
            "405": http.delete("/health"),
            "413": http.post("/v1/memory/store", content=b"x" * 5000),
            "500": http.get("/boom"),
        }


def test_default_preset_headers_are_on_every_response(default_server: RunningServer) -> None:
    responses = _responses(default_server)
    statuses = {name: r.status_code for name, r in responses.items()}
    assert statuses == {
        "200": 200,
        "201-ish write": 200,
        "400 validation": 400,
        "401": 401,
        "404": 404,
        "405": 405,
        "413": 413,
        "500": 500,
    }
    for name, response in responses.items():
        for header, value in DEFAULT.items():
            assert response.headers.get(header) == value, (name, header)


def test_a_500_is_our_json_and_leaks_nothing(default_server: RunningServer) -> None:
    with default_server.http() as http:
        answer = http.get("/boom")
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error", "code": "INTERNAL_ERROR"}
    assert "RuntimeError" not in answer.text


def _headers_with(tmp_path: Path, embedder: EmbeddingProvider, **settings: Any) -> httpx.Headers:
    running = start_server(tmp_path, embedder, **settings)
    try:
        with running.http() as http:
            return http.get("/health").headers
    finally:
        running.stop()


def test_permissive_preset_drops_csp_and_hsts(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    headers = _headers_with(tmp_path, embedder, security_preset="permissive")
    assert "Content-Security-Policy" not in headers
    assert "Strict-Transport-Security" not in headers
    for header, value in {**ALWAYS, "X-Frame-Options": "DENY"}.items():
        assert headers[header] == value


def test_strict_preset_is_restrictive_with_hsts_preload(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    headers = _headers_with(tmp_path, embedder, security_preset="strict")
    assert headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains; preload"
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "form-action 'none'" in csp and "sandbox" in csp
    for header, value in ALWAYS.items():
        assert headers[header] == value


def test_explicit_settings_override_the_preset(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    headers = _headers_with(
        tmp_path,
        embedder,
        hsts_max_age=600,
        frame_options="SAMEORIGIN",
        csp_directives="default-src 'none'; frame-ancestors 'none'; base-uri 'self'",
    )
    assert headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"
    assert headers["X-Frame-Options"] == "SAMEORIGIN"
    assert headers["Content-Security-Policy"].endswith("base-uri 'self'")


def test_hsts_and_csp_can_be_switched_off(tmp_path: Path, embedder: EmbeddingProvider) -> None:
    headers = _headers_with(tmp_path, embedder, hsts_enabled=False, csp_enabled=False)
    assert "Strict-Transport-Security" not in headers
    assert "Content-Security-Policy" not in headers
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_environment_variables_reach_a_real_process(tmp_path: Path) -> None:
    process = spawn_server(
        tmp_path / "data",
        tmp_path / "log",
        DAKERA_SECURITY_PRESET="strict",
        DAKERA_FRAME_OPTIONS="SAMEORIGIN",
        DAKERA_CSP_DIRECTIVES="default-src 'none'",
    )
    try:
        answer = httpx.get(f"{process.url}/v1/agents", headers={"X-API-Key": ROOT_KEY})
        refused = httpx.get(f"{process.url}/v1/agents")
    finally:
        process.stop()
    for response in (answer, refused):
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert response.headers["Content-Security-Policy"] == "default-src 'none'"
        assert response.headers["Strict-Transport-Security"].endswith("; preload")
    assert refused.status_code == 401


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"DAKERA_SECURITY_PRESET": "paranoid"}, ["DAKERA_SECURITY_PRESET"]),
        ({"DAKERA_FRAME_OPTIONS": "DENY\r\nX-Evil: 1"}, ["DAKERA_FRAME_OPTIONS"]),
        ({"DAKERA_CSP_DIRECTIVES": "default-src\n'none'"}, ["DAKERA_CSP_DIRECTIVES"]),
        ({"DAKERA_HSTS_MAX_AGE": "-1"}, ["DAKERA_HSTS_MAX_AGE"]),
        (
            {"DAKERA_SECURITY_PRESET": "strict", "DAKERA_HSTS_MAX_AGE": "3600"},
            ["DAKERA_HSTS_MAX_AGE", "preload", "31536000"],
        ),
    ],
)
def test_bad_header_settings_stop_start_up(env: dict[str, str], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(env)
    for needle in needles:
        assert needle in str(refused.value)


def test_the_cli_refuses_a_bad_preset_with_a_clear_message(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DAKERA_DATA_DIR": str(tmp_path),
        "DAKERA_PORT": str(free_port()),
        "DAKERA_SECURITY_PRESET": "paranoid",
    }
    done = subprocess.run([str(BIN), "serve"], env=env, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"DAKERA_SECURITY_PRESET" in done.stderr
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(env["DAKERA_PORT"]))) != 0
