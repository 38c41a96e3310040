"""``DAKERA_TRUSTED_PROXIES``: forwarded headers count only when the peer is a trusted proxy.

The audit log's ``ip`` is where a forged ``X-Forwarded-For`` would hurt: these tests send the
same forged headers to a server that trusts the loopback peer and to one that trusts nothing,
and read the audit entries. A real nginx in front is tested in ``tests/deploy/test_nginx.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dakera_server.config import Settings
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.errors import ConfigError
from dakera_server.security.proxy import TrustedProxies
from tests.conftest import start_server
from tests.processes import spawn_server
from tests.security.test_audit import entries, requests_of


def _audited_ips(tmp_path: Path, embedder: EmbeddingProvider, **settings: object) -> list[str]:
    log = tmp_path / "audit.jsonl"
    running = start_server(
        tmp_path / "data", embedder, audit_enabled=True, audit_log_path=log, **settings
    )
    try:
        with running.http() as http:
            for forwarded in ("203.0.113.9", "198.51.100.1, 203.0.113.10", "not-an-ip"):
                answer = http.get(
                    "/v1/auth/whoami",
                    headers={"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"},
                )
                assert answer.status_code == 200
    finally:
        running.stop()
    return [e["ip"] for e in requests_of(entries(log)) if e["path"] == "/v1/auth/whoami"]


def test_forwarded_for_is_believed_from_a_trusted_proxy(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    ips = _audited_ips(tmp_path, embedder, trusted_proxies=("127.0.0.0/8",))
    # the right-most untrusted address; an unparsable entry leaves the peer as the client
    assert ips == ["203.0.113.9", "203.0.113.10", "127.0.0.1"]


def test_forwarded_for_is_ignored_from_anyone_else(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    assert _audited_ips(tmp_path, embedder) == ["127.0.0.1"] * 3
    assert (
        _audited_ips(tmp_path / "b", embedder, trusted_proxies=("10.0.0.0/8",)) == ["127.0.0.1"] * 3
    )


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert trusted.client_of("198.51.100.7, 10.1.2.3, 10.9.9.9") == "198.51.100.7"
    assert trusted.client_of("6.6.6.6, 198.51.100.7, 10.1.2.3") == "198.51.100.7"
    assert trusted.client_of("10.1.2.3") == "10.1.2.3"  # all trusted: the left-most
    assert trusted.contains("::ffff:10.0.0.1") and not trusted.contains("garbage")


def test_the_served_process_ignores_uvicorns_default_trust(tmp_path: Path) -> None:
    """uvicorn trusts 127.0.0.1 by default; `serve` turns that off so only our setting counts."""
    log = tmp_path / "audit.jsonl"
    server = spawn_server(
        tmp_path / "data",
        tmp_path / "server.log",
        DAKERA_AUDIT_ENABLED="true",
        DAKERA_AUDIT_LOG_PATH=str(log),
    )
    try:
        import httpx

        from tests.conftest import ROOT_KEY

        answer = httpx.get(
            f"{server.url}/v1/auth/whoami",
            headers={"Authorization": f"Bearer {ROOT_KEY}", "X-Forwarded-For": "203.0.113.9"},
        )
        assert answer.status_code == 200
    finally:
        server.stop()
    ips = [e["ip"] for e in requests_of(entries(log)) if e["path"] == "/v1/auth/whoami"]
    assert ips == ["127.0.0.1"]


def test_bad_proxy_addresses_stop_start_up() -> None:
    with pytest.raises(ConfigError, match="DAKERA_TRUSTED_PROXIES"):
        Settings.from_env({"DAKERA_TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"})
    parsed = Settings.from_env({"DAKERA_TRUSTED_PROXIES": " 10.1.2.3/8 , ::1 "})
    assert parsed.trusted_proxies == ("10.0.0.0/8", "::1/128")
