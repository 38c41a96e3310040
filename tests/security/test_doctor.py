"""``dakera-server doctor`` and ``GET /v1/admin/doctor``: the production checklist, judged.

A deliberately weak configuration must list every failing item and exit non-zero; a hardened
one passes. The CLI runs as a subprocess on a real data directory; the route runs on a real
server, asked once directly and once as if through a trusted TLS proxy. The container and
nginx form of the hardened configuration is checked in ``tests/deploy``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from pathlib import Path

from dakera_server.config import Settings
from dakera_server.engine.access import Scope
from dakera_server.engine.keys.records import KeyRecord
from dakera_server.engine.keys.rules import SecretHash
from dakera_server.engine.keys.rules import key_entropy_bits as entropy_bits
from dakera_server.engine.keys.usage import KeyUsage
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.security.doctor.checks import FAIL, PASS, Facts, examine
from tests.conftest import ROOT_KEY, start_server
from tests.processes import BIN

STRONG_KEY = secrets.token_hex(32)
WEAK_ENV = {
    "DAKERA_ROOT_API_KEY": "changeme-root",
    "DAKERA_HOST": "93.184.216.34",
    "DAKERA_CORS_ORIGINS": "*",
    "RATE_LIMIT_RPS": "0",
}


def _doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DAKERA_", "RATE_"))}
    return subprocess.run(
        [str(BIN), "doctor", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _statuses(report: dict[str, object]) -> dict[str, str]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return {c["id"]: c["status"] for c in checks}


def test_a_weak_configuration_lists_each_failing_item(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**WEAK_ENV, "DAKERA_DATA_DIR": str(data)}
    # A data directory with only the root key in it: no application key exists.
    created = subprocess.run(
        [str(BIN), "keys", "list"], env={**os.environ, **env}, capture_output=True, check=False
    )
    assert created.returncode == 0
    table = _doctor(env)
    assert table.returncode == 1, table.stdout + table.stderr
    for item in (
        "Root API key with 256-bit+ entropy",
        "Scoped application keys",
        "TLS on all external endpoints",
        "Server behind reverse proxy",
        "Encryption at rest",
        "CORS restricted",
        "Rate limiting",
        "Audit logging",
    ):
        line = next(line for line in table.stdout.splitlines() if line.startswith(item))
        assert " FAIL " in line, line
    report = json.loads(_doctor(env, "--json").stdout)
    assert report["passed"] is False
    assert set(report["required_failed"]) == {
        "root_key_entropy",
        "scoped_keys",
        "tls_proxy",
        "bind_address",
    }


def test_a_hardened_configuration_passes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        "DAKERA_DATA_DIR": str(data),
        "DAKERA_ROOT_API_KEY": STRONG_KEY,
        "DAKERA_ENCRYPTION_KEY": secrets.token_hex(32),
        "DAKERA_TRUSTED_PROXIES": "10.0.0.0/8",
        "DAKERA_AUDIT_ENABLED": "true",
        "DAKERA_CORS_ORIGINS": "https://app.example.com",
    }
    created = subprocess.run(
        [str(BIN), "keys", "create", "--name", "app", "--scope", "write", "--namespace", "app"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    result = _doctor(env, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = _statuses(json.loads(result.stdout))
    for item in ("root_key_entropy", "scoped_keys", "root_key_usage", "tls_proxy"):
        assert statuses[item] == PASS, (item, statuses)
    assert statuses["bind_address"] == PASS
    assert statuses["firewall"] == "manual"


def test_the_route_judges_the_running_server_and_how_it_was_reached(
    tmp_path: Path, embedder: EmbeddingProvider
) -> None:
    running = start_server(
        tmp_path / "data",
        embedder,
        root_api_key=STRONG_KEY,
        trusted_proxies=("127.0.0.1",),
        rate_limit_rps=100,
    )
    try:
        with running.http(STRONG_KEY) as http:
            direct = http.get("/v1/admin/doctor").json()
            assert _statuses(direct)["scoped_keys"] == FAIL
            # The root key used as an application would: the usage counters say so.
            stored = http.post("/v1/memory/store", json={"agent_id": "a", "content": "x"})
            assert stored.status_code == 200
            key = http.post("/admin/keys", json={"name": "app", "scope": "write"})
            assert key.status_code == 201
            via_proxy = http.get(
                "/v1/admin/doctor",
                headers={"X-Forwarded-For": "198.51.100.4", "X-Forwarded-Proto": "https"},
            ).json()
            plain_proxy = http.get("/v1/admin/doctor", headers={"X-Forwarded-Proto": "http"}).json()
            also_admin = http.get("/admin/doctor")
            assert also_admin.status_code == 200
        with running.http(ROOT_KEY) as http:
            assert http.get("/v1/admin/doctor").status_code == 401
    finally:
        running.stop()
    statuses = _statuses(via_proxy)
    assert statuses["scoped_keys"] == PASS
    assert statuses["tls_proxy"] == PASS
    assert statuses["root_key_usage"] == FAIL
    usage = next(c for c in via_proxy["checks"] if c["id"] == "root_key_usage")
    assert "POST /v1/memory/store" in usage["detail"]
    assert _statuses(plain_proxy)["tls_proxy"] == FAIL


def _record(
    key_id: str, scope: Scope, age_days: float, namespaces: tuple[str, ...] | None
) -> KeyRecord:
    return KeyRecord(
        key_id=key_id,
        name=key_id,
        scope=scope,
        namespaces=namespaces,
        created_at=int(time.time() - age_days * 86_400),
        expires_at=None,
        lookup="x",
        secret_hash=SecretHash.of("dk_" + "0" * 64),
    )


def test_old_keys_and_unrestricted_keys_are_reported() -> None:
    facts = Facts(
        now=time.time(),
        uid=1000,
        root_read_only=True,
        keys=(_record("old", Scope.WRITE, 120, None), _record("new", Scope.READ, 3, None)),
        root_usage=KeyUsage(total=2, by_endpoint={"GET /admin/keys": 2}),
    )
    report = examine(Settings(root_api_key=STRONG_KEY), facts)
    statuses = {f.id: f.status for f in report.findings}
    assert statuses["key_rotation"] == FAIL
    assert "old" in next(f.detail for f in report.findings if f.id == "key_rotation")
    assert statuses["namespace_keys"] == FAIL
    assert statuses["root_key_usage"] == PASS
    assert statuses["non_root_read_only"] == PASS


def test_entropy_estimates() -> None:
    assert entropy_bits(secrets.token_hex(32)) == 256
    assert entropy_bits("dk_" + secrets.token_hex(16)) == 128
    assert entropy_bits(secrets.token_urlsafe(32)) >= 250
    assert entropy_bits("a" * 64) < 64  # a pattern, not a random draw
    assert entropy_bits("changeme") < 64


def test_an_any_address_bind_is_judged_by_the_hosts_addresses() -> None:
    settings = Settings(host="0.0.0.0", root_api_key=STRONG_KEY)
    private = Facts(now=time.time(), host_addresses=("10.1.2.3", "fd00::5"))
    public = Facts(now=time.time(), host_addresses=("10.1.2.3", "93.184.216.34"))
    unknown = Facts(now=time.time())

    def bind(facts: Facts) -> str:
        return next(f.status for f in examine(settings, facts).findings if f.id == "bind_address")

    assert bind(private) == PASS
    assert bind(public) == FAIL
    assert bind(unknown) == FAIL
    loopback = examine(Settings(host="127.0.0.1"), unknown).findings
    assert next(f.status for f in loopback if f.id == "bind_address") == PASS
