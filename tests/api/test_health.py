"""Health probes, metrics and capabilities (dakera-api.md §3.1)."""

from __future__ import annotations

from typing import Any

import httpx


def test_probes_need_no_key(server: Any) -> None:
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "healthy"
    major, minor, patch = (int(p) for p in health["version"].split("-")[0].split("."))
    assert (major, minor, patch) >= (0, 12, 3)
    assert httpx.get(f"{server.url}/health/ready").json()["ready"] is True
    assert httpx.get(f"{server.url}/health/live").json()["alive"] is True


def test_metrics_are_prometheus_text(server: Any) -> None:
    answer = httpx.get(f"{server.url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "dakera_memories " in answer.text


def test_sdk_health_and_capabilities(client: Any, server: Any) -> None:
    assert client.health()["status"] == "healthy"
    assert client.is_ready()
    caps = client.capabilities()
    assert caps is not None


def test_whoami_with_root_key(http: Any) -> None:
    me = http.get("/v1/auth/whoami").json()
    assert me["scope"] == "super_admin" and me["unrestricted"] is True
