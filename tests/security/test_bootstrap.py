"""Start-up of authentication: a generated root key, short-key and auth-off warnings, the
auth-off Host guard. These run ``dakera-server serve`` as a real process and read its output.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest

from dakera_server.config import Settings
from dakera_server.engine.keys.rules import key_entropy_bits
from dakera_server.engine.text.embedding import EmbeddingProvider
from tests.conftest import start_server
from tests.processes import BIN, spawn_server

SECRET = re.compile(r"dk_[0-9a-f]{32}")  # an application key (128 bits)
ROOT_SECRET = re.compile(r"\bdk_[0-9a-zA-Z_\-]{20,}")  # any key-shaped token in the output
pytestmark = pytest.mark.slow


def whoami(url: str, key: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/auth/whoami", headers={"Authorization": f"Bearer {key}"})


def files_contain(data_dir: Path, needle: str) -> list[str]:
    return [
        str(path)
        for path in data_dir.rglob("*")
        if path.is_file() and needle.encode() in path.read_bytes()
    ]


def test_auth_is_on_by_default() -> None:
    assert Settings().auth_enabled is True
    assert Settings.from_env({}).auth_enabled is True


def test_first_start_without_keys_generates_a_root_key_shown_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = spawn_server(data, tmp_path / "first.log", DAKERA_ROOT_API_KEY="")
    try:
        output = server.output()
        found = ROOT_SECRET.findall(output)
        assert len(found) == 1, output
        root = found[0]
        # 256 bits from the CSPRNG, as the production checklist requires: dk_ + 64 lower hex.
        assert re.fullmatch(r"dk_[0-9a-f]{64}", root), root
        assert key_entropy_bits(root) == 256
        assert "Authorization: Bearer" in output
        assert "256 bits" not in output  # no short-key warning about its own key
        me = whoami(server.url, root).json()
        assert (me["key_id"], me["scope"], me["unrestricted"]) == ("root", "super_admin", True)
        assert httpx.get(f"{server.url}/v1/agents").status_code == 401
        assert files_contain(data, root) == []
    finally:
        server.stop()
    again = spawn_server(data, tmp_path / "second.log", DAKERA_ROOT_API_KEY="")
    try:
        assert ROOT_SECRET.findall(again.output()) == []
        assert whoami(again.url, root).status_code == 200
    finally:
        again.stop()
    assert files_contain(data, root) == []


def test_stored_keys_mean_no_root_key_is_generated(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = subprocess.run(
        [str(BIN), "keys", "create", "--name", "ops", "--scope", "super_admin"],
        env={"DAKERA_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    secret = SECRET.search(created.stdout)
    assert secret is not None
    server = spawn_server(data, tmp_path / "server.log", DAKERA_ROOT_API_KEY="")
    try:
        assert ROOT_SECRET.findall(server.output()) == []
        assert whoami(server.url, secret.group(0)).json()["scope"] == "super_admin"
    finally:
        server.stop()


@pytest.mark.parametrize(
    "short_key",
    [
        "test-key",
        "0123456789abcdef0123456789abcdef",  # 128 bits of hex: enough before, not for root
        "dk_" + "ab" * 31,  # 62 hex characters: 248 bits
    ],
)
def test_a_short_root_key_works_but_is_warned_about(tmp_path: Path, short_key: str) -> None:
    server = spawn_server(tmp_path / "data", tmp_path / "server.log", DAKERA_ROOT_API_KEY=short_key)
    try:
        assert whoami(server.url, short_key).json()["scope"] == "super_admin"
        output = server.output()
        assert "256 bits" in output and "openssl rand -hex 32" in output
        assert short_key not in output
    finally:
        server.stop()


def test_a_256_bit_root_key_gets_no_warning(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    server = spawn_server(tmp_path / "data", tmp_path / "server.log", DAKERA_ROOT_API_KEY=key)
    try:
        assert whoami(server.url, key).json()["scope"] == "super_admin"
        assert "256 bits" not in server.output()
    finally:
        server.stop()


def test_auth_off_warns_loudly_and_guards_the_host(tmp_path: Path) -> None:
    server = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_AUTH_ENABLED="false",
        DAKERA_ALLOWED_HOSTS="memory.internal",
    )
    try:
        assert "AUTHENTICATION IS DISABLED" in server.output()
        me = httpx.get(f"{server.url}/v1/auth/whoami").json()
        assert (me["key_id"], me["auth_enabled"], me["scope"]) == (
            "auth-disabled",
            False,
            "super_admin",
        )
        for host in ("localhost", "127.0.0.1:3300", "memory.internal"):
            assert httpx.get(f"{server.url}/v1/agents", headers={"Host": host}).status_code == 200
        foreign = httpx.get(f"{server.url}/v1/agents", headers={"Host": "evil.example"})
        assert (foreign.status_code, foreign.json()["code"]) == (421, "HOST_NOT_ALLOWED")
    finally:
        server.stop()


def test_auth_off_in_process_has_no_generated_key(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    server = start_server(tmp_path, embedder, auth_enabled=False, root_api_key=None)
    try:
        app = server.uvicorn_server.config.app
        assert app.state.keyring.generated_root_key is None
        rebinding = httpx.get(f"{server.url}/v1/agents", headers={"Host": "attacker.example:80"})
        assert rebinding.status_code == 421
    finally:
        server.stop()
