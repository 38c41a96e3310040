"""deploy/nginx/dakera.conf in front of a real server: TLS, redirects, forwarded headers, gRPC mTLS.

Debian's nginx runs the shipped configuration (only its listen ports and certificate directory
are moved to the test's); certificates come from ``trustme``. The server trusts only the proxy
(``DAKERA_TRUSTED_PROXIES=127.0.0.1``); clients connect from other loopback addresses
(127.0.0.2, 127.0.0.3), so the audit log's ``ip`` shows which address the server believed.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from dakera import DakeraClient

from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.grpc.generated import vectors_pb2 as pb
from dakera_server.grpc.generated import vectors_pb2_grpc as pb_grpc
from tests.conftest import ROOT_KEY, RunningServer, start_server
from tests.deploy.support import Certificates, Nginx, make_certificates, require_nginx, start_nginx
from tests.security.test_audit import entries, requests_of


@dataclass
class Proxied:
    server: RunningServer
    nginx: Nginx
    certs: Certificates
    audit_log: Path


@pytest.fixture(scope="module")
def proxied(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[Proxied]:
    require_nginx()
    workdir = tmp_path_factory.mktemp("nginx")
    certs = make_certificates(workdir / "tls")
    log = workdir / "audit.jsonl"
    server = start_server(
        workdir / "data",
        embedder,
        trusted_proxies=("127.0.0.1",),
        audit_enabled=True,
        audit_log_path=log,
    )
    grpc_port = server.uvicorn_server.config.app.state.grpc_server.port
    rest = server.url.removeprefix("http://")
    try:
        for nginx in start_nginx(workdir, certs.directory, rest, f"127.0.0.1:{grpc_port}"):
            yield Proxied(server, nginx, certs, log)
    finally:
        server.stop()


def _client(certs: Certificates, source: str = "127.0.0.2") -> httpx.Client:
    trust = ssl.create_default_context(cafile=str(certs.ca_file))
    return httpx.Client(
        verify=trust,
        transport=httpx.HTTPTransport(local_address=source, verify=trust),
        headers={"Authorization": f"Bearer {ROOT_KEY}"},
        timeout=30,
    )


def test_the_sdk_works_over_https(proxied: Proxied, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(proxied.certs.ca_file))  # a private CA
    client = DakeraClient(proxied.nginx.url, api_key=ROOT_KEY)
    client.store_memory("tls-agent", "Shipped behind nginx with TLS", importance=0.6)
    recalled = client.recall("tls-agent", "what was shipped behind nginx?")
    assert recalled.memories[0].content == "Shipped behind nginx with TLS"


def test_plain_http_redirects_to_https(proxied: Proxied) -> None:
    answer = httpx.get(f"http://localhost:{proxied.nginx.http_port}/v1/memory/store?x=1")
    assert answer.status_code == 301
    assert answer.headers["location"] == (
        f"https://localhost:{proxied.nginx.https_port}/v1/memory/store?x=1"
    )


def test_the_audit_ip_is_the_client_only_through_the_trusted_proxy(proxied: Proxied) -> None:
    forged = {"X-Forwarded-For": "6.6.6.6", "User-Agent": "ip-probe/1"}
    with _client(proxied.certs, "127.0.0.2") as via_proxy:
        assert via_proxy.get(f"{proxied.nginx.url}/v1/auth/whoami", headers=forged).is_success
        doctor = via_proxy.get(f"{proxied.nginx.url}/v1/admin/doctor").json()
    direct = httpx.Client(
        transport=httpx.HTTPTransport(local_address="127.0.0.3"),
        headers={"Authorization": f"Bearer {ROOT_KEY}", **forged},
    )
    with direct:
        assert direct.get(f"{proxied.server.url}/v1/auth/whoami").is_success
    ips = _wait_for_ips(proxied.audit_log, 2)
    # Through nginx: the real client (nginx overwrote the forged header). Direct: the peer.
    assert ips == ["127.0.0.2", "127.0.0.3"]
    tls = next(c for c in doctor["checks"] if c["id"] == "tls_proxy")
    assert tls["status"] == "pass", tls


def _wait_for_ips(log: Path, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [
            e["ip"]
            for e in requests_of(entries(log)) if log.exists()
            if e["user_agent"] == "ip-probe/1"
        ]  # fmt: skip
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"audit entries missing: {log.read_text() if log.exists() else ''}")


def test_bodies_over_the_limit_are_refused_at_the_proxy(proxied: Proxied) -> None:
    with _client(proxied.certs) as http:
        answer = http.post(
            f"{proxied.nginx.url}/v1/memory/store",
            content=b"x" * (10 * 1024 * 1024 + 1),
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 413


def test_event_streams_are_not_buffered(proxied: Proxied) -> None:
    received: list[dict[str, Any]] = []
    opened = threading.Event()

    def listen() -> None:
        with (
            _client(proxied.certs) as http,
            http.stream("GET", f"{proxied.nginx.url}/v1/events/stream") as stream,
        ):
            opened.set()
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("agent_id") == "sse-agent":
                        received.append(event)
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert opened.wait(10)
    time.sleep(0.3)
    with _client(proxied.certs) as http:
        stored = http.post(
            f"{proxied.nginx.url}/v1/memory/store",
            json={"agent_id": "sse-agent", "content": "streamed through the proxy"},
        )
        assert stored.status_code == 200
    started = time.monotonic()
    thread.join(timeout=10)
    assert received, "the event did not come through nginx"
    assert time.monotonic() - started < 5


def _grpc_stub(proxied: Proxied, with_client_cert: bool) -> tuple[grpc.Channel, Any]:
    root = proxied.certs.ca_file.read_bytes()
    if with_client_cert:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=root,
            private_key=proxied.certs.client_key.read_bytes(),
            certificate_chain=proxied.certs.client_cert.read_bytes(),
        )
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
    channel = grpc.secure_channel(f"localhost:{proxied.nginx.grpc_port}", credentials)
    return channel, pb_grpc.VectorServiceStub(channel)


def test_grpc_through_nginx_needs_a_client_certificate(proxied: Proxied) -> None:
    metadata = (("x-api-key", ROOT_KEY),)
    channel, stub = _grpc_stub(proxied, with_client_cert=False)
    with channel, pytest.raises(grpc.RpcError) as refused:
        stub.Health(pb.HealthRequest(), timeout=10)
    assert refused.value.code() in (  # type: ignore[attr-defined]
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    channel, stub = _grpc_stub(proxied, with_client_cert=True)
    with channel:
        health = stub.Health(pb.HealthRequest(), timeout=10)
        assert health is not None
        upserted = stub.Upsert(
            pb.UpsertRequest(
                namespace="mtls-ns", vectors=[pb.ProtoVector(id="v1", values=[1.0, 0.0, 0.0])]
            ),
            metadata=metadata,
        )
        assert upserted.upserted_count == 1
        found = stub.Query(
            pb.QueryRequest(namespace="mtls-ns", vector=[1.0, 0.0, 0.0], top_k=1),
            metadata=metadata,
        )
        assert [r.id for r in found.results] == ["v1"]
