"""deploy/caddy/Caddyfile in front of a real server: TLS, redirect, forwarded address, gRPC mTLS.

Debian's Caddy runs the shipped Caddyfile unchanged; only its environment placeholders are
set (ports, certificate files, upstreams, admin address), as an operator would.
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest

from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.grpc.generated import vectors_pb2 as pb
from dakera_server.grpc.generated import vectors_pb2_grpc as pb_grpc
from tests.conftest import ROOT_KEY, start_server
from tests.deploy.support import DEPLOY, Certificates, make_certificates, unavailable
from tests.processes import free_ports
from tests.security.test_audit import entries, requests_of


@dataclass
class Caddy:
    https_port: int
    http_port: int
    grpc_port: int
    certs: Certificates
    audit_log: Path


@pytest.fixture(scope="module")
def caddy(tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider) -> Iterator[Caddy]:
    binary = shutil.which("caddy")
    if binary is None:
        unavailable("caddy is not installed (apt-get install caddy)")
    assert binary is not None
    workdir = tmp_path_factory.mktemp("caddy")
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
    https, http, grpc_public, admin = free_ports(4)  # all different (see free_ports)
    ports = {"https": https, "http": http, "grpc": grpc_public}
    tls = certs.directory
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DAKERA_")},
        "HOME": str(workdir),
        "XDG_DATA_HOME": str(workdir / "xdg-data"),
        "XDG_CONFIG_HOME": str(workdir / "xdg-config"),
        "CADDY_ADMIN": f"localhost:{admin}",
        "DAKERA_DOMAIN": "localhost",
        "DAKERA_HTTP_PORT": str(ports["http"]),
        "DAKERA_HTTPS_PORT": str(ports["https"]),
        "DAKERA_GRPC_PUBLIC_PORT": str(ports["grpc"]),
        "DAKERA_TLS_CERT": str(tls / "server.crt"),
        "DAKERA_TLS_KEY": str(tls / "server.key"),
        "DAKERA_CLIENT_CA": str(tls / "client-ca.crt"),
        "DAKERA_UPSTREAM": server.url.removeprefix("http://"),
        "DAKERA_GRPC_UPSTREAM": f"127.0.0.1:{grpc_port}",
    }
    config = str(DEPLOY / "caddy" / "Caddyfile")
    checked = subprocess.run(
        [binary, "validate", "--config", config, "--adapter", "caddyfile"],
        env=environ, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    with (workdir / "caddy.log").open("wb") as output:
        process = subprocess.Popen(
            [binary, "run", "--config", config, "--adapter", "caddyfile"],
            env=environ,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        trust = ssl.create_default_context(cafile=str(certs.ca_file))
        while True:
            try:
                httpx.get(f"https://localhost:{ports['https']}/health/live", verify=trust)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((workdir / "caddy.log").read_text()) from None
                time.sleep(0.1)
        yield Caddy(ports["https"], ports["http"], ports["grpc"], certs, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        server.stop()


def test_rest_over_https_with_the_client_address(caddy: Caddy) -> None:
    trust = ssl.create_default_context(cafile=str(caddy.certs.ca_file))
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=trust)
    with httpx.Client(
        transport=transport,
        verify=trust,
        headers={"Authorization": f"Bearer {ROOT_KEY}", "User-Agent": "caddy-probe/1"},
    ) as http:
        whoami = http.get(
            f"https://localhost:{caddy.https_port}/v1/auth/whoami",
            headers={"X-Forwarded-For": "6.6.6.6"},
        )
        assert whoami.status_code == 200
        stored = http.post(
            f"https://localhost:{caddy.https_port}/v1/memory/store",
            json={"agent_id": "caddy-agent", "content": "behind caddy"},
        )
        assert stored.status_code == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ips = [e["ip"] for e in requests_of(entries(caddy.audit_log)) if e["user_agent"] ==
               "caddy-probe/1"] if caddy.audit_log.exists() else []  # fmt: skip
        if len(ips) >= 2:
            break
        time.sleep(0.05)
    assert ips[:2] == ["127.0.0.2", "127.0.0.2"]


def test_plain_http_redirects(caddy: Caddy) -> None:
    answer = httpx.get(f"http://localhost:{caddy.http_port}/v1/memory/recall")
    assert answer.status_code in (301, 308)
    assert answer.headers["location"] == (f"https://localhost:{caddy.https_port}/v1/memory/recall")


def test_grpc_needs_a_client_certificate(caddy: Caddy) -> None:
    root = caddy.certs.ca_file.read_bytes()
    bare = grpc.ssl_channel_credentials(root_certificates=root)
    with grpc.secure_channel(f"localhost:{caddy.grpc_port}", bare) as channel:
        with pytest.raises(grpc.RpcError):
            pb_grpc.VectorServiceStub(channel).Health(pb.HealthRequest(), timeout=10)
    mutual = grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=caddy.certs.client_key.read_bytes(),
        certificate_chain=caddy.certs.client_cert.read_bytes(),
    )
    with grpc.secure_channel(f"localhost:{caddy.grpc_port}", mutual) as channel:
        answer = pb_grpc.VectorServiceStub(channel).Health(pb.HealthRequest(), timeout=10)
        assert answer.status
